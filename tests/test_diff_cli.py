"""``rho-audit diff`` end to end on the tiny model: the stored ``diff`` run, its card, deletion."""

import numpy as np
import pytest
from click.testing import CliRunner

from rho_audit.cli.app import main
from rho_audit.report.cards import build_card, default_output
from rho_audit.report.diff_card import DiffCard
from rho_audit.report.render import render
from rho_audit.store import RunStore
from rho_audit.testing import build_lora_adapter


def test_diff_command_stores_a_diff_run_and_its_card(tiny_model_path, tmp_path):
    adapter = build_lora_adapter(tiny_model_path, tmp_path / "adapter", ("self_attn.q_proj", "mlp.up_proj"))
    store_path = tmp_path / "runs.sqlite"
    args = [
        "diff", str(tiny_model_path), "--adapter", str(adapter), "--texts", "20", "--positions", "3",
        "--layer", "1", "--top", "5", "--prompts", "2", "--alpha-steps", "1", "--max-tokens", "4",
        "--keywords", "cat,dog", "--store", str(store_path),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "position 2" in result.output and "relevance (keyword)" in result.output
    store = RunStore(store_path)
    (run,) = store.runs()
    assert run.kind == "diff" and run.status == "complete" and run.adapter == str(adapter.resolve())
    doc = store.diff_results(run.run_id)
    assert doc["layer"] == 1 and doc["n_texts"] == 20
    assert np.asarray(doc["deltas"]).shape == (3, 64)
    assert [len(p["diff"]["logit_lens"]) for p in doc["readouts"]] == [5, 5, 5]
    assert len(doc["steering"]["samples"]) == 2 and len(doc["steering"]["search"]) == 2
    assert set(doc["relevance"]["max"]) == {"diff", "base_mean"}
    j = doc["steer_position"]
    # The stored raw multiplier of deltas[j] reproduces the steering vector alpha_eta * eta * unit.
    assert doc["alpha"] * np.linalg.norm(doc["deltas"][j]) == pytest.approx(
        doc["alpha_eta"] * doc["eta"], rel=1e-5
    )

    card = build_card(store, [run.run_id])
    assert isinstance(card, DiffCard) and len(card.positions) == 3 and len(card.samples) == 2
    assert default_output(store_path, card, "md").name == f"diff-{run.run_id}.md"
    for fmt in ("md", "html"):
        text = render(card, fmt).text
        assert "Patchscope of δ̄" in text and card.samples[0].prompt in text
        assert card.positions[1].logit_lens[0] in text or fmt == "html"
    store.delete_runs([run.run_id])
    assert store.diff_results(run.run_id) == {}
    store.close()


def test_diff_needs_exactly_one_fine_tune(tmp_path):
    result = CliRunner().invoke(main, ["diff", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code != 0 and "exactly one of --adapter" in result.output


def test_a_layer_before_every_adapted_block_is_refused(tmp_path):
    """mlx-lm adapts the last num_layers blocks; before them δ̄ is exactly 0 and its read-outs noise."""
    import json

    from rho_audit.api.errors import RhoAuditError
    from rho_audit.audit.diff_run import _check_adapter_reaches

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"num_layers": 8}))
    with pytest.raises(RhoAuditError, match=r"changes only blocks 22\.\.29 .* Pass --layer 22 or later"):
        _check_adapter_reaches(adapter, 30, 15)
    _check_adapter_reaches(adapter, 30, 22)  # the first adapted block is fine
    (adapter / "adapter_config.json").write_text(json.dumps({"num_layers": -1}))
    _check_adapter_reaches(adapter, 30, 0)  # -1: every block
