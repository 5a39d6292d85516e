"""Sweep audits as the paper's experiments need them: extra probe sets (``audit.probes``), one audit
per split (``audit.split: [eval, train]``), the pooled out-of-distribution accuracy, and sweeps
written before these keys existed keeping their ids.

The fake trainers and the ``host``/``fakes`` fixtures come from test_sweep.py; the audit here is a
fake too, one that records what it was asked (split, probe sets) and writes results the way the
real runner names them (``factual@ood-logic``).
"""

from __future__ import annotations

import io
import json
import time

import pytest
from click.testing import CliRunner

from rho_audit.api.events import RunEvent
from rho_audit.api.results import DimensionResult, Evaluation
from rho_audit.audit.runner import AuditOutcome, emit
from rho_audit.cli.sweep import summary_tables, sweep
from rho_audit.report.ood import pooled_of_scores
from rho_audit.store import RunStore
from rho_audit.train import sweep as sw
from tests.test_sweep import GOOD, fake_score, fakes, host, plan_of, problems_of, write  # noqa: F401

OOD = ["ood-clinical", "ood-logic", "ood-social"]
#: (pairs, correct) each fake audit reports for an extra set, by split.
OOD_COUNTS = {
    "eval": {"ood-clinical": (22, 11), "ood-logic": (21, 14), "ood-social": (19, 10)},
    "train": {"ood-clinical": (18, 9), "ood-logic": (19, 12), "ood-social": (21, 7)},
}

PAPER = """\
name: paper-like
grid:
  trainer: [fake-sft, fake-guided]
  seed: [1, 2]
audit:
  dimensions: [factual, toxicity]
  split: [train, eval]
  probes: [ood-clinical, ood-logic, ood-social]
  limit: 10
"""


class SplitAudit:
    """A fake run_audit that stores its split in the run config (as the real one does) and
    scores each extra probe set with the dimension its card names."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, tuple[str, ...], tuple[str, ...]]] = []
        self.interrupt_at: int | None = None  # the call that raises KeyboardInterrupt mid-audit

    def __call__(self, config, plugin_host):
        sets = tuple(c.source for c in config.probe_choices)
        self.calls.append((config.adapter, config.split, tuple(config.dimensions or ()), sets))
        run_id = f"audit-{len(self.calls)}-{time.monotonic_ns()}"
        store = RunStore(config.store)
        store.start_run(
            run_id, "fake", None, config.adapter, config.seed, {"split": config.split}, "x", {}, None
        )
        emit(plugin_host, RunEvent("run_started", run_id, total=len(config.dimensions)))
        if self.interrupt_at == len(self.calls):
            store.close()
            raise KeyboardInterrupt
        shift = 0.0 if config.split == "eval" else 0.5
        results = []
        for dim in config.dimensions:
            s = fake_score(config.adapter) + shift
            ev = Evaluation("rank_biserial", "fake", s, s - 0.1, s + 0.1, 10, (), paired_accuracy=0.5)
            results.append(DimensionResult(dim, "fake", dim, "1", ev, "PASS", 0.0, {}))
        for name in sets:
            n, correct = OOD_COUNTS[config.split][name]
            bonus = 1 if config.adapter else 0  # a trained cell gets one more pair right per set
            ev = Evaluation(
                "rank_biserial", "fake", 0.2, 0.1, 0.3, n, (), paired_accuracy=(correct + bonus) / n
            )
            label = f"factual@{name}" if "factual" in config.dimensions else "factual"
            results.append(DimensionResult(label, "fake", name, "1", ev, "PASS", 0.0, {}))
        for result in results:
            store.add_result(run_id, result)
        store.finish_run(run_id, "complete")
        store.close()
        return AuditOutcome(run_id, config.store, "fake", results, "complete")


@pytest.fixture
def split_audit(monkeypatch, fakes):  # noqa: F811
    audit = SplitAudit()
    monkeypatch.setattr("rho_audit.audit.runner.run_audit", audit)
    return fakes[0], audit


# --------------------------------------------------------------------------------------------
# The sweep file
# --------------------------------------------------------------------------------------------


def test_sweeps_written_before_probes_and_splits_keep_their_ids(tmp_path, host):  # noqa: F811
    """The ids of existing sweeps (and so their rows in existing stores) must not change."""
    assert plan_of(tmp_path, host).sweep_id == "demo-aaab9c89"
    assert plan_of(tmp_path, host, quick=True).sweep_id == "demo-quick-853c9cd2"
    listed = GOOD.replace("limit: 10}", "limit: 10, split: [eval]}")
    assert plan_of(tmp_path, host, listed).sweep_id == "demo-aaab9c89"
    assert plan_of(tmp_path, host, GOOD.replace("limit: 10}", "limit: 10, probes: []}")).sweep_id == (
        "demo-aaab9c89"
    )


def test_probes_and_splits_are_part_of_each_cells_identity(tmp_path, host):  # noqa: F811
    """As every audit setting: changing them makes another sweep (the old one stays in the store)."""
    plan = plan_of(tmp_path, host, PAPER)
    cell = plan.train_cells[0]
    assert cell.audit["split"] == ["eval", "train"]  # held-out first, whatever the file's order
    assert cell.audit["probes"] == OOD and plan.baselines[0].audit == cell.audit
    fewer = plan_of(tmp_path, host, PAPER.replace(", ood-social]", "]"))
    one_split = plan_of(tmp_path, host, PAPER.replace("[train, eval]", "eval"))
    assert len({plan.sweep_id, fewer.sweep_id, one_split.sweep_id}) == 3
    assert one_split.cells[0].audit["split"] == "eval"


def test_bad_probe_sets_and_splits_name_their_line(tmp_path, host):  # noqa: F811
    text = """\
    name: bad
    grid: {trainer: [fake-sft], seed: [1]}
    audit:
      split: [eval, trian, eval]
      probes:
        - ood-clinical
        - ood-logik
        - factul=ood-social
        - =ood-social
        - toxicity=ood-social
    """
    msg = problems_of(tmp_path, host, text)
    path = tmp_path / "sweep.yaml"
    assert (
        f"{path}:4: audit.split[1]: unknown split 'trian' (known: all, eval, train; did you mean 'train'?)"
        in msg
    )
    assert f"{path}:4: audit.split[2]: repeats the split 'eval'" in msg
    assert f"{path}:7: audit.probes[1]: unknown probe set 'ood-logik' (known: " in msg
    assert "ood-clinical, ood-logic, ood-social" in msg and "did you mean 'ood-logic'?" in msg
    assert f"{path}:8: audit.probes[2]: unknown dimension 'factul'" in msg
    assert f"{path}:9: audit.probes[3]: '=ood-social': write SET or DIMENSION=SET" in msg
    assert "audit.probes[4]" not in msg  # any pair dimension may score a pair set
    assert "audit.probes[0]" not in msg
    msg = problems_of(tmp_path, host, "name: b\ngrid: {seed: [1]}\naudit: {split: evl}\n")
    assert f"{path}:3: audit.split: unknown split 'evl'" in msg and "did you mean 'eval'?" in msg


def test_a_probe_set_without_probes_in_an_audited_split_is_refused(tmp_path, host):  # noqa: F811
    folder = tmp_path / "held-out-only"
    folder.mkdir()
    (folder / "card.yaml").write_text("name: held-out-only\ndimension: factual\nkind: pair\nversion: 1.0.0\n")
    rows = [{"id": f"h{i}", "split": "eval", "positive": f"yes {i}", "negative": f"no {i}"} for i in range(3)]
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = f"name: b\ngrid: {{seed: [1]}}\naudit:\n  split: [eval, train]\n  probes: [{folder}]\n"
    msg = problems_of(tmp_path, host, text)
    assert f"audit.probes[0]: probe set '{folder}' has no probes in split 'train'" in msg
    plan_of(tmp_path, host, text.replace("[eval, train]", "eval"))  # a folder is accepted


def test_dry_run_says_what_each_cell_audits(tmp_path, host, fakes, monkeypatch):  # noqa: F811
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path = write(tmp_path, PAPER)
    args = [str(path), "--dry-run", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "o")]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(sweep, args)
    assert result.exit_code == 0, result.output
    assert "split held-out (eval), in-sample (train) (2 audit runs per cell)" in result.output
    assert "extra probe sets ood-clinical, ood-logic, ood-social" in result.output


# --------------------------------------------------------------------------------------------
# Running: one audit per split, the extra sets, resuming between splits
# --------------------------------------------------------------------------------------------


def test_each_cell_and_the_baseline_audit_every_split_with_the_extra_sets(tmp_path, host, split_audit):  # noqa: F811
    _, audit = split_audit
    plan, store = plan_of(tmp_path, host, PAPER), tmp_path / "runs.sqlite"
    outcome = sw.run_sweep(plan, store, host)
    assert len(outcome.ran) == 5 and not outcome.failed
    assert len(audit.calls) == 10  # 5 cells (baseline included) × 2 splits
    assert [c[1] for c in audit.calls[:2]] == ["eval", "train"]  # held-out first
    assert all(c[2] == ("factual", "toxicity") and c[3] == tuple(OOD) for c in audit.calls)

    db = RunStore(store)
    row = next(r for r in db.cells(plan.sweep_id) if r.cell_id == "fake-guided_seed2")
    splits = row.result["splits"]
    assert list(splits) == ["eval", "train"] and row.audit_run_id == splits["eval"]["audit_run_id"]
    assert row.result["scores"] == splits["eval"]["scores"]  # the headline is the held-out audit
    assert db.run(splits["train"]["audit_run_id"]).config["split"] == "train"
    [pooled] = pooled_of_scores(splits["eval"]["scores"])
    assert pooled.set_names == tuple(OOD) and (pooled.pooled.correct, pooled.pooled.n) == (38, 62)
    db.close()

    eval_summary, train_summary = sw.summaries(plan, store)
    assert (eval_summary.split, train_summary.split) == ("eval", "train")
    column = sw.pooled_column("factual")
    assert eval_summary.baselines["default"][column] == pytest.approx(35 / 62)
    assert train_summary.baselines["default"][column] == pytest.approx(28 / 58)
    guided = next(c for c in eval_summary.conditions if c.condition == "fake-guided")
    assert guided.mean[column] == pytest.approx(38 / 62) and guided.mean_delta[column] == pytest.approx(
        3 / 62
    )
    sft1 = train_summary.cells[0]
    assert sft1.cell.cell_id == "fake-sft_seed1" and sft1.scores["toxicity"] == pytest.approx(0.5 + 0.11)
    assert sft1.deltas["toxicity"] == pytest.approx(0.01)  # against the baseline's train-split audit

    from rich.console import Console

    out = io.StringIO()
    for summary in (eval_summary, train_summary):
        for table in summary_tables(summary):
            Console(file=out, width=250).print(table)
    text = out.getvalue()
    assert "scores after training (Δ vs baseline), held-out (eval)" in text
    assert "per condition: mean over seeds ± std, and Δ of the mean vs baseline, in-sample (train)" in text
    assert "factual OOD acc" in text and "pooled over the extra probe sets" in text


def test_a_kill_between_two_splits_keeps_the_finished_one(tmp_path, host, split_audit):  # noqa: F811
    _, audit = split_audit
    plan, store = plan_of(tmp_path, host, PAPER), tmp_path / "runs.sqlite"
    audit.interrupt_at = 4  # the baseline's two audits, then the first cell's eval, then its train
    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(plan, store, host)
    db = RunStore(store)
    row = next(r for r in db.cells(plan.sweep_id) if r.cell_id == "fake-sft_seed1")
    assert row.status == "auditing" and list(row.result["splits"]) == ["eval"]
    stale = row.audit_run_id
    db.close()
    audit.interrupt_at = None
    calls = len(audit.calls)
    sw.run_sweep(plan, store, host)
    redone = audit.calls[calls]
    assert redone[0] == plan.train_cells[0].adapter_dir and redone[1] == "train"  # eval not redone
    assert len(audit.calls) == calls + 1 + 2 * 3
    db = RunStore(store)
    assert db.run(stale).status == "interrupted"
    row = next(r for r in db.cells(plan.sweep_id) if r.cell_id == "fake-sft_seed1")
    assert row.status == "complete" and set(row.result["splits"]) == {"eval", "train"}
    db.close()


def test_probes_alone_audit_every_installed_dimension_too(tmp_path, host, split_audit):  # noqa: F811
    """`run --probes` without --plugins scores only the sets; a sweep's probes come on top."""
    _, audit = split_audit
    text = "name: p\nbaseline: true\ngrid: {trainer: [fake-sft], seed: [1]}\naudit: {probes: [ood-logic]}\n"
    sw.run_sweep(plan_of(tmp_path, host, text), tmp_path / "runs.sqlite", host)
    default = {r.name for r in host.select_dimensions(None)}  # not those without a set, e.g. labelled
    assert set(audit.calls[0][2]) == default and audit.calls[0][3] == ("ood-logic",)
    assert "labelled" in host.dimensions and "labelled" not in default


def test_the_real_audit_of_a_baseline_with_extra_sets_and_two_splits(tmp_path, tiny_model_path):
    """The real runner on the tiny model: the extra sets are stored as DIM@SET, each split is its
    own run, and the cards show the pooled accuracy for each split."""
    from rho_audit.plugins import load_host
    from rho_audit.report.audit_card import build_audit_card
    from rho_audit.report.render import render
    from rho_audit.report.sweep_card import build_sweep_card

    real = load_host()
    text = (
        f"name: tiny\nmodels: [{tiny_model_path}]\ngrid: {{trainer: [sft], seed: [1]}}\n"
        "audit: {dimensions: [factual], probes: [ood-clinical, ood-logic], split: [eval, train], limit: 4}\n"
    )
    plan = sw.plan_sweep(write(tmp_path, text), real, out=tmp_path / "out")
    store = tmp_path / "runs.sqlite"
    result = sw.execute_cell(plan.baselines[0], store, real)
    assert result.status == "complete" and list(result.splits) == ["eval", "train"]
    scores = result.splits["train"]["scores"]
    assert list(scores) == ["factual", "factual@ood-clinical", "factual@ood-logic"]
    assert scores["factual@ood-logic"]["probe_set"] == "ood-logic" and scores["factual@ood-logic"]["n"] == 4
    db = RunStore(store)
    runs = {s: db.run(v["audit_run_id"]) for s, v in result.splits.items()}
    assert {s: r.config["split"] for s, r in runs.items()} == {"eval": "eval", "train": "train"}
    [pooled] = build_audit_card(db, runs["train"].run_id).ood
    assert pooled.set_names == ("ood-clinical", "ood-logic") and pooled.pooled.n == 8
    card = build_sweep_card(db, plan.sweep_id)
    assert [s.split for s in card.splits] == ["eval", "train"]
    assert [t.rows[0].single.n for s in card.splits for t in s.ood] == [8, 8]
    assert "## Out-of-distribution accuracy: factual — in-sample (train)" in render(card, "md").text
    db.close()
