"""The science MC set, the persona-capability dimension and persona centroids, on the tiny model.

The tiny model's weights are random, so these tests check the plumbing (every persona scored,
figures and CIs present and consistent with the records, cosines well formed), never the values.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner
from rho_audit_personas import geometry
from rho_audit_personas.capability import PersonaCapability, PersonaCapabilityPanel
from rho_audit_personas.data import LETTERS, PROBES, SCIENCE_MC, load_neutral_questions, load_science_mc
from rho_audit_personas.library import persona

from rho_audit.api import AuditContext, RhoAuditError
from rho_audit.cli import main
from rho_audit.model.language_model import LanguageModel


def test_science_mc_validates_with_balanced_letters_and_a_half_split():
    result = CliRunner().invoke(main, ["probes", "validate", SCIENCE_MC, "persona-neutral-questions"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 2
    questions = load_science_mc()
    assert len(questions) >= 400
    assert len({q.question for q in questions}) == len(questions)
    for q in questions:
        assert len(q.choices) == 4 and len(set(q.choices)) == 4
        assert q.prompt.splitlines()[1:5] == [f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices)]
    for split in ("train", "eval"):
        part = load_science_mc(split)
        assert len(part) == len(questions) // 2
        assert Counter(q.letter for q in part) == dict.fromkeys("ABCD", len(part) // 4)
    assert len(load_neutral_questions()) >= 100


def test_card_names_the_dimension_and_size():
    card = (PROBES / SCIENCE_MC / "card.yaml").read_text()
    assert "dimension: persona-capability" in card
    assert f"size: {len(load_science_mc())}" in card


def test_unknown_persona_in_the_panel_option_is_a_user_error():
    with pytest.raises(RhoAuditError, match="'villian' is not allowed \\(did you mean 'villain'\\?"):
        PersonaCapability({"panel": ["villian"]})


def test_panel_option_all_and_defaults():
    panel, source = PersonaCapability({"panel": ["all"], "source": "spy"}).panel()
    assert len(panel) == 48 and source.name == "spy"
    panel, source = PersonaCapabilityPanel().panel()
    assert [p.name for p in panel][:3] == ["villain", "hacker-villain", "evil-scientist"] and len(panel) == 9
    assert source.name == "villain"
    assert PersonaCapabilityPanel().option_values["centroid_questions"] == 30


@pytest.mark.parametrize("dimension", ["persona-capability", "persona-capability-text"])
def test_capability_end_to_end_on_the_tiny_model_with_two_personas(dimension, tiny_model_path, tmp_path):
    out = tmp_path / "out.json"
    args = ["run", "--plugins", dimension, "--model", str(tiny_model_path), "--limit", "8"]
    args += ["--dimension-option", f"{dimension}.panel=villain,chef"]
    args += ["--dimension-option", f"{dimension}.source=villain"]
    args += ["--dimension-option", f"{dimension}.centroid_questions=4"]
    args += ["--store", str(tmp_path / "runs.sqlite"), "--json", str(out), "--display", "plain"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [dim] = json.loads(out.read_text())["results"]
    assert dim["error"] is None
    ev = dim["evaluation"]
    assert ev["metric"] == "accuracy" and ev["n"] == 8
    sec = ev["secondary"]
    for name in ("none", "villain", "chef"):
        rate = sec[f"accuracy[{name}]"]
        assert sec[f"accuracy[{name}] ci_low"] <= rate <= sec[f"accuracy[{name}] ci_high"]
        assert rate == np.mean([r["values"][f"correct[{name}]"] for r in ev["records"]])
        assert -1.0 <= sec[f"cosine[{name}]"] <= 1.0 + 1e-6
    assert sec["cosine[villain]"] == pytest.approx(1.0, abs=1e-6)
    # no --persona: the headline is the no-persona accuracy
    assert ev["score"] == sec["accuracy[none]"]
    assert ev["trend"] == ["accuracy[villain]"]
    for r in ev["records"]:
        assert r["output"] in "ABCD" and r["correct"] == bool(r["values"]["correct[none]"])
    reply = "option letter" if dimension == "persona-capability" else "option's text"
    assert reply in ev["scoring"]
    # the package's report section: the table with the source marked, and the scatter
    run_id = json.loads(out.read_text())["run"]["run_id"]
    report = ["report", run_id, "--store", str(tmp_path / "runs.sqlite")]
    for fmt in ("md", "html"):
        card = tmp_path / f"card.{fmt}"
        result = CliRunner().invoke(main, [*report, "--format", fmt, "--out", str(card)])
        assert result.exit_code == 0, result.output
        text = card.read_text()
        assert "section failed" not in text and "villain (source)" in text
    assert text.count("<circle") == 2 and "villain (source):" in text  # none and chef; villain a square


def test_centroid_cosines_are_symmetric_and_one_to_themselves(tiny_model_path):
    lm = LanguageModel.load(tiny_model_path, "tiny")
    ctx = AuditContext(model=lm, judge=None, template="chat", seed=0)  # type: ignore[arg-type]
    personas = [None, persona("villain"), persona("hacker-villain"), persona("chef")]
    vectors = geometry.centroids(ctx, personas, load_neutral_questions()[:6])
    assert list(vectors) == ["none", "villain", "hacker-villain", "chef"]
    assert lm.system_prompt is None  # using_persona restored the model
    names, matrix = geometry.cosine_matrix(vectors)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-9)
    to_villain = geometry.cosines_to(vectors, "villain")
    assert to_villain["villain"] == pytest.approx(1.0)
    assert to_villain == pytest.approx(dict(zip(names, matrix[names.index("villain")], strict=True)))
    # the persona changes the states: distinct personas do not share a centroid
    assert len({v.tobytes() for v in vectors.values()}) == 4


def test_the_shipped_set_is_what_the_builder_writes(monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "build_science_mc.py"
    spec = importlib.util.spec_from_file_location("build_science_mc", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    shipped = (PROBES / SCIENCE_MC / "probes.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in shipped] == module.build()
