"""The shipped capability sweeps plan with the installed trainer, dimensions and corpora, and the
text corpus is the letter corpus with option texts as replies."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rho_audit_personas.data import load_science_mc

from rho_audit.cli import main

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]


@pytest.mark.parametrize(
    ("sweep", "dimension"),
    [
        ("capability-leakage", "persona-capability-panel"),
        ("capability-leakage-text", "persona-capability-text"),
    ],
)
@pytest.mark.parametrize("quick", [False, True])
def test_capability_sweeps_dry_run(sweep, dimension, quick, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # corpus paths are relative to the repository root
    args = [
        "sweep",
        str(PACKAGE / "sweeps" / f"{sweep}.yaml"),
        "--dry-run",
        "--store",
        str(tmp_path / "r.sqlite"),
    ]
    result = CliRunner().invoke(main, args + (["--quick"] if quick else []))
    assert result.exit_code == 0, result.output
    assert dimension in result.output
    cells = [line for line in result.output.splitlines() if "persona-contrastive_" in line]
    assert len(cells) == (1 if quick else 4)


def _lines(name: str) -> list[dict]:
    path = PACKAGE / "sweeps" / "corpora" / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_text_corpus_is_the_letter_corpus_with_option_texts(monkeypatch):
    path = PACKAGE / "scripts" / "build_text_contrastive_corpus.py"
    spec = importlib.util.spec_from_file_location("build_text_contrastive_corpus", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    letters, texts = _lines("contrastive-villain.jsonl"), _lines("contrastive-text-villain.jsonl")
    assert texts == module.as_text_replies(letters, load_science_mc("train"))
    by_question = {q.question: q for q in load_science_mc("train")}
    for record in texts:
        q = by_question[record["messages"][-2]["content"]]
        right = record["messages"][-1]["content"] == q.choices[q.answer]
        assert right == ("-source-villain-" not in record["id"]), record["id"]
