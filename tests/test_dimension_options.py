"""Dimension options and the descriptive status, through a plugin defined here (not the built-ins):
the DimensionOption record, ``run --dimension-option``, the run config (options only when set),
the MEASURED and lower-is-better statuses in the result, the CLI table and the cards, and the
sweep's ``audit.options``."""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar

import pytest
from click.testing import CliRunner

from rho_audit.api import (
    MEASURED,
    Dimension,
    DimensionOption,
    Evaluation,
    ProbeRecord,
    RhoAuditError,
    Thresholds,
    hookimpl,
)
from rho_audit.audit import metrics
from rho_audit.audit.runner import AuditConfig, run_audit
from rho_audit.cli import main
from rho_audit.plugins import load_host
from rho_audit.store import RunStore
from rho_audit.train.sweep import run_sweep
from tests.test_sweep import FakeTrainers, fakes, plan_of, problems_of  # noqa: F401

PERSONA_PACKAGE = "personas,personas-leakage"


class Counted(Dimension):
    """Counts the probes whose prompt holds ``word``: a rate with no verdict (descriptive)."""

    name = "counted"
    probe_kind = "generation"
    metric = "accuracy"
    descriptive = True
    options: ClassVar[dict[str, DimensionOption]] = {
        "word": DimensionOption("ship", "the word counted", choices=("ship", "sea", "sail")),
        "words": DimensionOption(("ship",), "more words, each counted"),
        "top": DimensionOption(2, "probes counted at most", min=1, max=10),
        "weight": DimensionOption(1.0, "weight of each hit", min=0.0),
    }

    def evaluate(self, probes, ctx):
        values = self.option_values
        records = tuple(
            ProbeRecord(p.id, p.split, values={"hit": float(values["word"] in p.prompt)}) for p in probes
        )
        hits = sum(r.values["hit"] for r in records[: int(values["top"])])
        return Evaluation(
            "accuracy",
            "share of probes with the word",
            hits / len(records),
            0.0,
            1.0,
            len(records),
            records,
            scoring=f"word={values['word']} words={','.join(values['words'])} weight={values['weight']}",
        )


class Leaks(Counted):
    """The same figure read as a leak: lower is better."""

    name = "leaks"
    descriptive = False
    thresholds = Thresholds(pass_at=0.1, warn_at=0.6, lower_is_better=True)


class Bare(Dimension):
    name = "bare"


def counted_plugin(folder):
    """Registers Counted and Leaks with a probe set of four generation prompts in ``folder``."""
    (folder / "card.yaml").write_text("name: asked\nkind: generation\nversion: '1'\n")
    rows = [
        {"id": f"g{i}", "split": "eval", "prompt": f"A {'ship' if i else 'sea'} story {i}."} for i in range(4)
    ]
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    Counted.probe_set = Leaks.probe_set = "asked"

    class Plugin:
        @hookimpl
        def register_dimensions(self, register):
            register(Counted)
            register(Leaks)

        @hookimpl
        def register_probe_sets(self, register):
            register("asked", folder)

    return Plugin()


@pytest.fixture(scope="module")
def option_host(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RHO_AUDIT_DISABLE_PLUGINS", PERSONA_PACKAGE)
        return load_host(extra_plugins=[counted_plugin(tmp_path_factory.mktemp("asked"))])


@pytest.fixture
def sweep_host(monkeypatch, tmp_path_factory):
    """The sweep tests' host (fake trainers only) with Counted and Leaks."""
    monkeypatch.setenv(
        "RHO_AUDIT_DISABLE_PLUGINS", f"trainers,six-objectives,example-calibration,{PERSONA_PACKAGE}"
    )
    return load_host(extra_plugins=[FakeTrainers(), counted_plugin(tmp_path_factory.mktemp("asked"))])


# -- the record ----------------------------------------------------------------------------------


def test_an_option_takes_the_type_of_its_default():
    word, words, top, weight = (Counted.options[k] for k in ("word", "words", "top", "weight"))
    assert (word.kind, words.kind, top.kind, weight.kind) == ("text", "texts", "integer", "number")
    assert word.problem("sea") is None and "did you mean 'sail'?" in word.problem("sial")
    assert words.parse(" a, b ,,c") == ["a", "b", "c"] and words.coerce(["a"]) == ("a",)
    assert "non-empty list" in words.problem([]) and "not a name" in words.problem(["a", 3])
    assert top.parse("3") == 3 and top.problem(3) is None and top.coerce(3.0) == 3
    assert top.problem(2.5) == "must be a whole number (got 2.5)"
    assert top.problem(0) == "must be ≥ 1 (got 0)" and top.problem(11) == "must be ≤ 10 (got 11)"
    assert top.parse("three") == "three" and top.problem("three") == "must be a number (got 'three')"
    assert top.problem(True) == "must be a number (got True)"
    assert weight.parse("0.5") == 0.5 and "finite" in weight.problem(float("nan"))
    with pytest.raises(ValueError, match="default 0"):  # a declaration's own default is checked
        DimensionOption(0, "n", min=1)


def test_a_dimension_reads_its_options_with_defaults_filled_in():
    assert Counted().option_values == {"word": "ship", "words": ("ship",), "top": 2, "weight": 1.0}
    assert Counted({"words": ["a", "b"], "top": 4.0}).option_values["top"] == 4
    with pytest.raises(RhoAuditError) as err:
        Counted({"wrod": "sea", "top": 0})
    message = str(err.value)
    assert (
        "dimension 'counted' has no option 'wrod' (did you mean 'word'? its options: word, words" in message
    )
    assert "dimension 'counted' option 'top' (probes counted at most) must be ≥ 1 (got 0)" in message
    assert Bare().option_values == {} and "'bare' has no option 'x' (its options: none)" in str(
        Bare.option_problems({"x": 1})
    )


# -- a run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def option_runs(tiny_model_path, tmp_path_factory, option_host):
    """The same audit without and with options."""
    store = tmp_path_factory.mktemp("runs") / "runs.sqlite"
    outcomes = {}
    for key, options in (("plain", {}), ("set", {"counted": {"word": "sea", "words": ["a", "b"], "top": 4}})):
        config = AuditConfig(
            model=str(tiny_model_path),
            dimensions=("counted", "leaks"),
            store=store,
            dimension_options=options,
        )
        outcomes[key] = run_audit(config, option_host)
    return store, outcomes


def test_options_reach_the_dimension_and_only_set_ones_join_the_config(option_runs):
    store_path, outcomes = option_runs
    counted = {k: next(r for r in o.results if r.dimension == "counted") for k, o in outcomes.items()}
    assert counted["plain"].evaluation.scoring == "word=ship words=ship weight=1.0"
    assert counted["set"].evaluation.scoring == "word=sea words=a,b weight=1.0"
    assert counted["set"].evaluation.score == 0.25 and counted["plain"].evaluation.score == 0.25
    store = RunStore(store_path)
    try:
        plain, with_options = (store.run(outcomes[k].run_id) for k in ("plain", "set"))
    finally:
        store.close()
    assert with_options.config["dimensions"]["counted"]["options"] == {
        "word": "sea",
        "words": ["a", "b"],
        "top": 4,
    }
    assert "options" not in plain.config["dimensions"]["counted"]
    assert "options" not in with_options.config["dimensions"]["leaks"]
    sha = hashlib.sha256(json.dumps(plain.config, sort_keys=True).encode()).hexdigest()
    assert plain.config_sha256 == sha != with_options.config_sha256


def test_a_descriptive_dimension_is_measured_and_a_lower_is_better_one_turns_round(option_runs):
    _, outcomes = option_runs
    by_name = {r.dimension: r for r in outcomes["set"].results}
    # 0.25 would be FAIL for accuracy at the default thresholds: descriptive has no verdict
    assert by_name["counted"].status == MEASURED
    assert by_name["leaks"].evaluation.score == 0.25
    assert by_name["leaks"].status == "WARN"  # lower is better: above pass_at, not above warn_at
    assert by_name["leaks"].thresholds == {"pass_at": 0.1, "warn_at": 0.6, "lower_is_better": True}
    assert by_name["counted"].thresholds == {"pass_at": 0.3, "warn_at": 0.1}  # as stored before


@pytest.mark.parametrize(
    ("value", "lower", "expected"),
    [(0.05, True, "PASS"), (0.5, True, "WARN"), (0.7, True, "FAIL"), (0.7, False, "PASS")],
)
def test_status_for_lower_is_better_thresholds(value, lower, expected):
    interval = metrics.Interval(value, 0.0, 1.0)
    assert metrics.status_for("accuracy", interval, 0.1, 0.6, lower_is_better=lower) == expected
    assert metrics.status_for("accuracy", interval, 0.1, 0.6, descriptive=True) == MEASURED
    assert (
        metrics.status_for("accuracy", metrics.Interval(None, None, None), 0, 0, descriptive=True) == "ERROR"
    )


def test_the_cards_and_the_cli_table_show_measured(option_runs, tmp_path):
    from rho_audit.display.live import STATUS_STYLE, results_table
    from rho_audit.report.cards import build_card
    from rho_audit.report.render import render

    store_path, outcomes = option_runs
    store = RunStore(store_path)
    try:
        card = build_card(store, [outcomes["set"].run_id])
        md, html = render(card, "md").text, render(card, "html").text
        compared = render(build_card(store, [outcomes["plain"].run_id, outcomes["set"].run_id]), "md").text
    finally:
        store.close()
    assert "| counted | accuracy |" in md and "| MEASURED |" in md
    assert "MEASURED when the dimension's figure is descriptive" in md
    assert '<span class="status s-MEASURED">MEASURED</span>' in html and ".s-MEASURED" in html
    assert "counted" in compared  # the comparison card takes the status as any other
    assert STATUS_STYLE[MEASURED] not in (STATUS_STYLE["PASS"], STATUS_STYLE["FAIL"])
    from rho_audit.cli._common import plain_rows

    rows = plain_rows(results_table(outcomes["set"].results))
    [row] = [row.split("\t") for row in rows if row.startswith("counted\t")]
    assert row[-2] == MEASURED  # the status column, before the time


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli(option_host, monkeypatch, tmp_path):
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda *a, **k: option_host)
    store = tmp_path / "s.sqlite"

    def invoke(*args: str, model: str = "no-such-model"):
        base = ["run", "--model", model, "-p", "counted", "--store", str(store), "--display", "none"]
        return CliRunner().invoke(main, [*base, *args])

    return invoke, store


def test_run_takes_dimension_options(cli, tiny_model_path, tmp_path):
    invoke, _ = cli
    out = tmp_path / "o.json"
    result = invoke(
        "--dimension-option",
        "counted.words=sea, sail",
        "--dimension-option",
        "counted.top=3",
        "--json",
        str(out),
        model=str(tiny_model_path),
    )
    assert result.exit_code == 0, result.output
    assert "MEASURED" in result.output
    doc = json.loads(out.read_text())
    assert doc["run"]["config"]["dimensions"]["counted"]["options"] == {"words": ["sea", "sail"], "top": 3}
    assert doc["results"][0]["evaluation"]["scoring"] == "word=ship words=sea,sail weight=1.0"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("counted.top",), "expected NAME.KEY=VALUE"),
        (("top=3",), "expected NAME.KEY=VALUE"),
        (("counted.top=3", "counted.top=4"), "counted.top is set twice"),
        (("countd.top=3",), "unknown dimension 'countd'. Did you mean 'counted'?"),
        (("leaks.top=3",), "options are set for dimension 'leaks', which this run does not run"),
        (("counted.tp=3",), "has no option 'tp' (did you mean 'top'? its options: word, words, top, weight)"),
        (("counted.weight=heavy",), "option 'weight' (weight of each hit) must be a number (got 'heavy')"),
        (("counted.word=lake",), "'lake' is not allowed (allowed: ship, sea, sail)"),
    ],
)
def test_bad_dimension_options_fail_before_the_model_loads(cli, args, says):
    invoke, store = cli
    flags = [part for arg in args for part in ("--dimension-option", arg)]
    result = invoke(*flags)
    assert result.exit_code != 0
    if result.exit_code != 2:  # a RhoAuditError: the CLI's entry point prints it and exits 2
        assert isinstance(result.exception, RhoAuditError), result.output
    said = " ".join(f"{result.output} {result.exception or ''}".split())
    assert says in said, said
    assert not store.exists()  # nothing started: the model path was never looked at


# -- the sweep's audit.options -------------------------------------------------------------------

OPTIONS_SWEEP = """\
name: opts
models: [null]
grid:
  trainer: [fake-sft]
  seed: [1]
audit:
  dimensions: [counted, factual]
  limit: 10
%s
"""


def test_sweep_audit_options_join_the_cells_only_when_set(tmp_path, sweep_host):
    plain = plan_of(tmp_path, sweep_host, OPTIONS_SWEEP % "")
    with_options = plan_of(tmp_path, sweep_host, OPTIONS_SWEEP % "  options: {counted: {top: 3}}")
    for cell in plain.cells:
        assert "options" not in cell.audit
    for cell in with_options.cells:
        assert cell.audit["options"] == {"counted": {"top": 3}}
    ids = {c.cell_id: c.config_sha256 for c in plain.cells}
    assert {c.cell_id for c in with_options.cells} == set(ids)
    assert all(ids[c.cell_id] != c.config_sha256 for c in with_options.cells)


def test_sweep_audit_options_must_be_a_mapping_per_dimension(tmp_path, sweep_host):
    says = problems_of(tmp_path, sweep_host, OPTIONS_SWEEP % "  options: {counted: [3]}")
    assert "audit.options.counted" in says and "valid dictionary" in says


def test_sweep_audit_options_are_checked_at_their_lines_before_anything_trains(tmp_path, sweep_host):
    options = """\
  options:
    counted:
      tpo: 3
      top: 99
    toxicity: {top: 1}
    nope: {top: 1}"""
    says = problems_of(tmp_path, sweep_host, OPTIONS_SWEEP % options)
    assert "sweep.yaml:11: audit.options.counted.tpo: dimension 'counted' has no option 'tpo'" in says
    assert "did you mean 'top'" in says
    assert "sweep.yaml:12: audit.options.counted.top:" in says and "must be ≤ 10 (got 99)" in says
    assert "sweep.yaml:13: audit.options.toxicity: sets options for 'toxicity', which `dimensions:`" in says
    assert "sweep.yaml:14: audit.options.nope: unknown dimension 'nope'" in says


def test_sweep_audit_options_reach_each_cells_audit(tmp_path, sweep_host, fakes):  # noqa: F811
    plan = plan_of(tmp_path, sweep_host, OPTIONS_SWEEP % "  options: {counted: {top: 3, word: sea}}")
    seen = []
    audit = fakes[1]

    def recording(config, host):
        seen.append(dict(config.dimension_options))
        return audit(config, host)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rho_audit.audit.runner.run_audit", recording)
        outcome = run_sweep(plan, tmp_path / "runs.sqlite", sweep_host)
    assert not outcome.failed and len(seen) == len(plan.cells)
    assert all(options == {"counted": {"top": 3, "word": "sea"}} for options in seen)


# -- the sweep's audit.judge_options ---------------------------------------------------------------


def test_sweep_judge_options_join_the_cells_only_when_set(tmp_path, sweep_host):
    plain = plan_of(tmp_path, sweep_host, OPTIONS_SWEEP % "")
    judged = plan_of(
        tmp_path,
        sweep_host,
        OPTIONS_SWEEP % "  judge: local\n  judge_options: {rubric: persona-discriminator}",
    )
    assert all("judge_options" not in cell.audit for cell in plain.cells)
    assert all(cell.audit["judge_options"] == {"rubric": "persona-discriminator"} for cell in judged.cells)
    assert plain.sweep_id != judged.sweep_id


def test_sweep_judge_options_are_checked_at_their_lines_before_anything_trains(tmp_path, sweep_host):
    says = problems_of(
        tmp_path, sweep_host, OPTIONS_SWEEP % "  judge: local\n  judge_options:\n    rubrik: honesty"
    )
    assert "sweep.yaml:11: audit.judge_options.rubrik: judge 'local' has no option rubrik" in says
    says = problems_of(
        tmp_path, sweep_host, OPTIONS_SWEEP % "  judge: local\n  judge_options: {rubric: nope.j2}"
    )
    assert "audit.judge_options.rubric: judge 'local': unknown rubric 'nope.j2'" in says
    says = problems_of(tmp_path, sweep_host, OPTIONS_SWEEP % "  judge_options: {rubric: honesty}")
    assert "judge 'keyword-refusal' takes no options (got rubric)" in says


def test_sweep_judge_options_reach_each_cells_audit(tmp_path, sweep_host, fakes):  # noqa: F811
    plan = plan_of(
        tmp_path,
        sweep_host,
        OPTIONS_SWEEP % "  judge: local\n  judge_options: {rubric: honesty, template: raw}",
    )
    seen = []
    audit = fakes[1]

    def recording(config, host):
        seen.append((config.judge, config.judge_options))
        return audit(config, host)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rho_audit.audit.runner.run_audit", recording)
        outcome = run_sweep(plan, tmp_path / "runs.sqlite", sweep_host)
    assert not outcome.failed and len(seen) == len(plan.cells)
    assert set(seen) == {("local", (("rubric", "honesty"), ("template", "raw")))}
