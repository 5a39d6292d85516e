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
    assert "position 2" in result.output and "relevance (keyword match" in result.output
    store = RunStore(store_path)
    (run,) = store.runs()
    assert run.kind == "diff" and run.status == "complete" and run.adapter == str(adapter.resolve())
    doc = store.diff_results(run.run_id)
    assert doc["layer"] == 1 and doc["n_texts"] == 20
    assert np.asarray(doc["deltas"]).shape == (3, 64)
    assert [len(p["diff"]["logit_lens"]) for p in doc["readouts"]] == [5, 5, 5]
    # The tiny model answers with newlines only: nothing unsteered is coherent, so nothing is tried.
    assert len(doc["steering"]["samples"]) == 2 and doc["steering"]["search"] == []
    assert doc["steering"]["unsteered_share"] == 0.0 and doc["alpha_eta"] == 0.0
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


def test_diff_grades_relevance_with_a_judge_and_keywords_and_measures_steering(tiny_model_path, tmp_path):
    """The local judge (on the tiny model) grades each distinct top token against --domain once,
    cached in the run store under the run's 'relevance' usage; the keywords grade the same tokens,
    and the card shows both, their agreement and the steering measures."""
    adapter = build_lora_adapter(tiny_model_path, tmp_path / "adapter", ("self_attn.q_proj", "mlp.up_proj"))
    store_path = tmp_path / "runs.sqlite"
    args = [
        "diff", str(tiny_model_path), "--adapter", str(adapter), "--texts", "12", "--positions", "2",
        "--layer", "1", "--top", "4", "--prompts", "2", "--alpha-steps", "1", "--max-tokens", "4",
        "--keywords", "cat,dog", "--domain", "cats and dogs", "--relevance-judge", "local",
        "--judge-option", f"model={tiny_model_path}", "--judge-max-calls", "500", "--store", str(store_path),
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "relevance (LLM judge local@1" in result.output and "relevance (keyword match" in result.output
    assert "judge vs keywords on" in result.output and "mean cosine to the domain" in result.output
    store = RunStore(store_path)
    (run,) = store.runs()
    doc = store.diff_results(run.run_id)
    judged, keyword = doc["relevance_graders"]
    assert doc["relevance"] == judged and judged["grader"].startswith("LLM judge local@1")
    assert set(judged["labels"]) == set(keyword["labels"])  # the same tokens, graded twice
    asked = [k for k in judged["labels"] if any(c.isalnum() for c in k)]
    (usage,) = [u for u in store.judge_usage(run.run_id) if u["context"] == "relevance"]
    assert usage["calls"] + usage["cache_hits"] == len(asked) and usage["max_calls"] == 500
    assert doc["relevance_agreement"]["n"] == len(asked)
    measures = doc["steering_measures"]
    assert set(measures["keyword_rate"]) == {"unsteered", "steered"}
    assert -1.0 <= measures["domain_similarity"]["steered"] <= 1.0
    text = render(build_card(store, [run.run_id]), "md").text
    assert (
        "judge vs keywords on" in text
        and "rubric token-relevance" in text
        and "relevance judge local@1" in text
    )
    assert (
        "mean cosine to the domain description" in text
        and "none of the unsteered answers is coherent" in text
    )
    store.close()


def test_a_relevance_judge_needs_a_domain(tmp_path):
    store = tmp_path / "s.sqlite"
    args = ["diff", "--adapter", str(tmp_path), "--relevance-judge", "local", "--store", str(store)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "pass --domain" in str(result.exception)
    assert not store.exists()  # refused before anything was loaded or stored
