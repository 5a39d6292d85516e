"""Sweeps: YAML validation with file:line, grid expansion and ids, resume logic, and a real SIGKILL.

Most tests use fake trainers (registered through ``load_host(extra_plugins=...)``) and a fake
``train``/``run_audit`` (monkeypatched), so they exercise the sweep's bookkeeping in milliseconds.
The SIGKILL test runs the real CLI on the tiny model; the last test runs the shipped quick
ablation on the default model.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from rho_audit.api import Trainer, TrainerOption, hookimpl
from rho_audit.api.errors import RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.results import DimensionResult, Evaluation
from rho_audit.audit.runner import AuditOutcome, emit
from rho_audit.cli.sweep import summary_tables, sweep
from rho_audit.display.live import SweepPlainDisplay, SweepRichDisplay
from rho_audit.plugins import load_host
from rho_audit.store import RunStore
from rho_audit.train import sweep as sw
from rho_audit.train.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SWEEP_CLI = [sys.executable, "-m", "rho_audit.cli", "sweep"]

# --------------------------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------------------------


class FakeSFT(Trainer):
    name = "fake-sft"


class FakeGuided(Trainer):
    name = "fake-guided"
    options: ClassVar = {
        "lambda": TrainerOption(0.2, "weight", min=0.0),
        "margin": TrainerOption(0.1, "margin"),
    }


class FakeTrainers:
    @hookimpl
    def register_trainers(self, register):
        register(FakeSFT)
        register(FakeGuided)


@pytest.fixture
def host(monkeypatch):
    # Only the fake trainers: the built-in ones (and the in-repo persona package's) would need a model.
    monkeypatch.setenv(
        "RHO_AUDIT_DISABLE_PLUGINS", "trainers,six-objectives,example-calibration,personas,personas-leakage"
    )
    return load_host(extra_plugins=[FakeTrainers()])


class Killed(BaseException):
    """Stands in for SIGKILL: nothing the process would do on its way out runs."""


class FakeTrain:
    """Stands in for rho_audit.train.loop.train with the same contract: resumes from its own
    checkpoint file (same run id), starts a new run id without one, returns at once when the
    adapter is finished, logs steps to the store."""

    def __init__(self, steps: int = 4) -> None:
        self.steps = steps
        self.calls: list[str] = []
        self.interrupt: dict[str, int] = {}  # cell dir name -> step that raises KeyboardInterrupt
        self.crash: set[str] = set()  # cell dir names whose training raises RuntimeError
        self.die: dict[str, int] = {}  # cell dir name -> step before which the process "is killed"

    def __call__(self, config, host, store, say=None, resume=True, reference_cache=None):
        from rho_audit.train.loop import TrainOutcome

        out = Path(config.adapter_dir)
        name = out.parent.name
        self.calls.append(name)
        done = out / "done.json"
        if done.exists():
            doc = json.loads(done.read_text())
            return TrainOutcome(doc["run_id"], out, self.steps, "complete", {"loss": 0.5})
        if name in self.crash:
            raise RuntimeError("loss is NaN")
        checkpoint = out / "checkpoint.json"
        state = json.loads(checkpoint.read_text()) if checkpoint.exists() else None
        attempt = self.calls.count(name)
        run_id = state["run_id"] if state else f"train-{name}" + (f"-{attempt}" if attempt > 1 else "")
        start = state["step"] if state else 0
        store.start_run(
            run_id, "fake", None, str(out), config.seed, {}, config.config_sha256(), {}, None, "train"
        )
        say(RunEvent("train_started", run_id, done=start, total=self.steps, message=name))
        for step in range(start + 1, self.steps + 1):
            if self.die.get(name) == step:
                raise Killed
            if self.interrupt.get(name) == step:
                store.finish_run(run_id, "interrupted")
                raise KeyboardInterrupt
            store.add_train_step(run_id, step, {"loss": 1.0 / step})
            say(RunEvent("train_step", run_id, done=step, total=self.steps, metrics={"loss": 1.0 / step}))
            out.mkdir(parents=True, exist_ok=True)
            checkpoint.write_text(json.dumps({"run_id": run_id, "step": step}))
        done.write_text(json.dumps({"run_id": run_id, "seed": config.seed, "options": config.options}))
        store.finish_run(run_id, "complete")
        return TrainOutcome(run_id, out, self.steps, "complete", {"loss": 0.5})


def fake_score(adapter: str | None) -> float:
    """0.1 for the base model; 0.1 + λ + seed/100 for an adapter."""
    if adapter is None:
        return 0.1
    doc = json.loads((Path(adapter) / "done.json").read_text())
    return 0.1 + doc["options"].get("lambda", 0.0) + doc["seed"] / 100


class FakeAudit:
    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def __call__(self, config, host):
        self.calls.append(config.adapter)
        run_id = f"audit-{len(self.calls)}-{time.monotonic_ns()}"
        store = RunStore(config.store)
        store.start_run(run_id, "fake", None, config.adapter, config.seed, {}, "x", {}, None)
        emit(host, RunEvent("run_started", run_id, total=len(config.dimensions)))
        results = []
        for dim in config.dimensions:
            s = fake_score(config.adapter)
            ev = Evaluation("rank_biserial", "fake", s, s - 0.1, s + 0.1, 10, ())
            result = DimensionResult(dim, "fake", dim, "1", ev, "PASS", 0.0, {})
            store.add_result(run_id, result)
            results.append(result)
        store.finish_run(run_id, "complete")
        store.close()
        return AuditOutcome(run_id, config.store, "fake", results, "complete")


@pytest.fixture
def fakes(monkeypatch):
    train, audit = FakeTrain(), FakeAudit()
    monkeypatch.setattr("rho_audit.train.loop.train", train)
    monkeypatch.setattr("rho_audit.audit.runner.run_audit", audit)
    return train, audit


GOOD = """\
name: demo
description: a small grid
models: [null]
grid:
  trainer: [fake-sft, fake-guided]
  lambda: [0.1, 0.2]
  seed: [1, 2]
train: {max_sft_examples: 8}
audit: {dimensions: [factual, toxicity], limit: 10}
quick:
  grid: {seed: [1]}
  train: {max_sft_examples: 4}
  audit: {limit: 4}
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def plan_of(tmp_path, host, text=GOOD, quick=False):
    return sw.plan_sweep(write(tmp_path, text), host, quick=quick, out=tmp_path / "out")


# --------------------------------------------------------------------------------------------
# Grid expansion and ids
# --------------------------------------------------------------------------------------------


def test_grid_expands_to_stable_ids_and_skips_axes_a_trainer_lacks(tmp_path, host):
    plan = plan_of(tmp_path, host)
    ids = [c.cell_id for c in plan.run_order()]
    # sft takes no λ: one sft cell per seed, not two identical ones; seeds run in waves.
    assert ids == [
        "baseline",
        "fake-sft_seed1",
        "fake-guided_lambda0.1_seed1",
        "fake-guided_lambda0.2_seed1",
        "fake-sft_seed2",
        "fake-guided_lambda0.1_seed2",
        "fake-guided_lambda0.2_seed2",
    ]
    cell = next(c for c in plan.cells if c.cell_id == "fake-guided_lambda0.2_seed2")
    assert cell.condition == "fake-guided_lambda0.2"
    # λ from the grid, the trainer's margin default written out so the hash pins it.
    assert cell.train["options"] == {"lambda": 0.2, "margin": 0.1}
    assert cell.train["seed"] == 2 and cell.train["max_sft_examples"] == 8
    assert cell.adapter_dir == str(plan.out_dir / cell.cell_id / "adapter")
    assert plan.out_dir == (tmp_path / "out" / plan.sweep_id).resolve()
    sft = next(c for c in plan.cells if c.cell_id == "fake-sft_seed1")
    assert sft.train["options"] == {}
    assert plan.sweep_id.startswith("demo-") and len({c.config_sha256 for c in plan.cells}) == len(plan.cells)
    again = plan_of(tmp_path, host)
    assert again.sweep_id == plan.sweep_id and again.cells == plan.cells


def test_sweep_id_follows_the_cells_not_the_wording(tmp_path, host):
    base = plan_of(tmp_path, host).sweep_id
    assert plan_of(tmp_path, host, GOOD.replace("a small grid", "reworded")).sweep_id == base
    assert (
        plan_of(tmp_path, host, GOOD.replace("max_sft_examples: 8", "max_sft_examples: 9")).sweep_id != base
    )
    quick = plan_of(tmp_path, host, quick=True)
    assert quick.sweep_id.startswith("demo-quick-") and quick.sweep_id != base
    assert [c.cell_id for c in quick.train_cells] == [
        "fake-sft_seed1",
        "fake-guided_lambda0.1_seed1",
        "fake-guided_lambda0.2_seed1",
    ]
    assert quick.train_cells[0].train["max_sft_examples"] == 4 and quick.cells[0].audit["limit"] == 4


def model_dir(folder: Path) -> Path:
    """Enough of an HF-format model folder to pass the sweep's check (config and weights)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_several_models_prefix_ids_and_get_a_baseline_each(tmp_path, host):
    model = model_dir(tmp_path / "models" / "My-Model")
    text = GOOD.replace("models: [null]", f"models: [null, {model}]")
    plan = plan_of(tmp_path, host, text)
    assert [c.cell_id for c in plan.baselines] == ["default_baseline", "My-Model_baseline"]
    assert "My-Model_fake-guided_lambda0.1_seed2" in {c.cell_id for c in plan.cells}
    assert {c.model for c in plan.train_cells} == {None, str(model)}


def test_no_baseline_and_options_in_the_train_block(tmp_path, host):
    text = """\
    name: opts
    baseline: false
    grid: {trainer: [fake-guided], seed: [0]}
    train: {options: {margin: 0.0}, lambda: 0.5}
    audit: {dimensions: [factual]}
    """
    plan = plan_of(tmp_path, host, text)
    [cell] = plan.cells
    assert cell.cell_id == "fake-guided_seed0" and cell.train["options"] == {"lambda": 0.5, "margin": 0.0}


# --------------------------------------------------------------------------------------------
# Validation: every problem, with file:line and key path; nothing runs
# --------------------------------------------------------------------------------------------


def problems_of(tmp_path, host, text, quick=False) -> str:
    path = write(tmp_path, text)
    with pytest.raises(sw.SweepFileError) as err:
        sw.plan_sweep(path, host, quick=quick, out=tmp_path / "out")
    assert "nothing was run" in str(err.value)
    return str(err.value)


def test_unknown_keys_name_the_line_and_suggest(tmp_path, host):
    text = """\
    name: bad
    grid:
      trainer: [fake-sft]
      lamda: [0.1]
    audit: {dimensions: [factual]}
    gird: {}
    """
    msg = problems_of(tmp_path, host, text)
    path = tmp_path / "sweep.yaml"
    assert f"{path}:6: gird: unknown key 'gird'" in msg and "did you mean 'grid'?" in msg
    # A top-level typo stops before the grid is looked at; fix it and the grid key shows.
    msg = problems_of(tmp_path, host, text.replace("gird: {}", ""))
    assert f"{path}:4: grid.lamda: unknown key 'lamda'" in msg and "did you mean 'lambda'?" in msg


def test_unknown_trainer_and_dimension_and_wrong_types(tmp_path, host):
    text = """\
    name: bad
    grid:
      trainer: [fake-sft, fake-guided, fake-sfft]
      seed: [1, two]
    train:
      epochs: many
    audit:
      dimensions: [factual, toxicty]
      limit: 1
    quick:
      train: {learning_rate: fast}
      audit: {limt: 3}
    """
    msg = problems_of(tmp_path, host, text)
    path = tmp_path / "sweep.yaml"
    lines = msg.splitlines()[1:]
    expected = [
        f"{path}:3: grid.trainer[2]: unknown trainer 'fake-sfft' (known: fake-guided, fake-sft; "
        "did you mean 'fake-sft'?)",
        f"{path}:4: grid.seed[1]: Input should be a valid integer",
        f"{path}:6: train.epochs: Input should be a valid integer",
        f"{path}:8: audit.dimensions[1]: unknown dimension 'toxicty'",
        f"{path}:9: audit.limit: Input should be greater than or equal to 2",
        f"{path}:11: quick.train.learning_rate: Input should be a valid number",
        f"{path}:12: quick.audit.limt: unknown key 'limt'",
    ]
    for want in expected:
        assert any(line.strip().startswith(want) for line in lines), (want, msg)
    assert "did you mean 'toxicity'?" in msg and "did you mean 'limit'?" in msg


def test_structural_mistakes(tmp_path, host):
    path = tmp_path / "sweep.yaml"
    msg = problems_of(tmp_path, host, "name: x\ngrid:\n  seed: 42\n")
    assert f"{path}:3: grid.seed: Input should be a valid list" in msg and "write a list" in msg
    msg = problems_of(tmp_path, host, "name: x\ngrid: {seed: [1]}\ngrid: {seed: [2]}\n")
    assert f"{path}:3: grid: duplicate key" in msg
    msg = problems_of(tmp_path, host, "name: x\ngrid:\n  seed: [1, 2, 1]\n")
    assert f"{path}:3: grid.seed[2]: repeats the value 1" in msg
    msg = problems_of(tmp_path, host, "name: x\ngrid: {adapter_dir: [a]}\n")
    assert f"{path}:2: grid.adapter_dir: 'adapter_dir' cannot be set here" in msg
    msg = problems_of(tmp_path, host, "name: x\ngrid: {trainer: [fake-sft], margin: [0.1]}\n")
    assert "no trainer of this sweep (fake-sft) takes option 'margin'" in msg
    msg = problems_of(tmp_path, host, "name: x\ngrid: {seed: [1]}\nquick: {grid: {lambda: [1]}}\n")
    assert f"{path}:3: quick.grid.lambda: not a key of `grid:`" in msg
    with pytest.raises(sw.SweepFileError, match=r"sweep.yaml:4: not valid YAML: .* started on line 3"):
        sw.plan_sweep(write(tmp_path, "name: x\ngrid:\n  seed: [1\n"), host)
    with pytest.raises(RhoAuditError, match="no `quick:` block"):
        sw.plan_sweep(write(tmp_path, "name: x\ngrid: {seed: [1]}\n"), host, quick=True)
    with pytest.raises(RhoAuditError, match="no sweep file"):
        sw.plan_sweep(tmp_path / "missing.yaml", host)


def test_invalid_file_runs_nothing_through_the_command(tmp_path, host, fakes, monkeypatch):
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path = write(tmp_path, GOOD.replace("fake-guided]", "fake-guidd]"))
    store = tmp_path / "runs.sqlite"
    result = CliRunner().invoke(sweep, [str(path), "--store", str(store), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, RhoAuditError), result.output
    assert "grid.trainer[1]: unknown trainer 'fake-guidd'" in str(result.exception)
    assert fakes[0].calls == [] and fakes[1].calls == [] and not store.exists()


def sweep_problems(tmp_path, host, fakes, monkeypatch, text: str) -> list[str]:
    """Run the command on ``text``; it must refuse before anything runs. The problem lines."""
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path, store = write(tmp_path, text), tmp_path / "runs.sqlite"
    result = CliRunner().invoke(sweep, [str(path), "--store", str(store), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, sw.SweepFileError), result.output
    assert result.exception.exit_code == 2
    assert fakes[0].calls == [] and fakes[1].calls == [] and not store.exists()
    head, *lines = str(result.exception).splitlines()
    assert head == f"{path} has {len(lines)} problem{'s' if len(lines) > 1 else ''}; nothing was run:"
    return [line.strip().removeprefix(f"{path}:") for line in lines]


def test_each_problem_is_reported_once_at_its_line(tmp_path, host, fakes, monkeypatch):
    text = (
        """\
    name: once
    models: [null, {tmp}/no-such-model]
    grid:
      trainer: [fake-sft, fake-guidde]
      lambda: [0.1, 0.2]
      lamda: [1]
      seed: [1]
    train: {{max_sft_exampels: 8, corpus: {tmp}/missing.jsonl}}
    quick:
      grid: {{seed: [2]}}
    """.replace("{tmp}", str(tmp_path))
        .replace("{{", "{")
        .replace("}}", "}")
    )
    problems = sweep_problems(tmp_path, host, fakes, monkeypatch, text)
    assert problems == [
        f"2: models[1]: model directory {tmp_path}/no-such-model does not exist; pass a local HF-format "
        "directory, a .gguf file, a Hugging Face repo id, or write null for the bundled default.",
        "4: grid.trainer[1]: unknown trainer 'fake-guidde' (known: fake-guided, fake-sft; did you mean "
        "'fake-guided'?)",
        "6: grid.lamda: unknown key 'lamda' (a TrainConfig field or a trainer option such as lambda, "
        "margin; did you mean 'lambda'?)",
        "8: train.max_sft_exampels: unknown key 'max_sft_exampels' (a TrainConfig field or a trainer "
        "option such as lambda, margin; did you mean 'max_sft_examples'?)",
        f"8: train.corpus: no corpus file '{tmp_path}/missing.jsonl' (a JSONL file; a relative path is "
        "taken from the folder rho-audit runs in)",
    ]


def test_a_model_folder_without_weights_is_refused_at_its_line(tmp_path, host, fakes, monkeypatch):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    text = f"name: m\nmodels:\n  - null\n  - {tmp_path}/half\ngrid: {{trainer: [fake-sft], seed: [1]}}\n"
    [problem] = sweep_problems(tmp_path, host, fakes, monkeypatch, text)
    assert problem.startswith(f"4: models[1]: model directory {tmp_path}/half has no *.safetensors weights")


class FakeShift(Trainer):
    """A trainer whose option may be negative (no range declared)."""

    name = "fake-shift"
    options: ClassVar = {"shift": TrainerOption(0.0, "offset")}


class ShiftTrainer:
    @hookimpl
    def register_trainers(self, register):
        register(FakeShift)


def test_option_ranges_are_checked_and_ids_keep_the_sign(tmp_path, host, fakes, monkeypatch):
    # fake-guided declares lambda ≥ 0: a negative value is refused at its line, once (not as a
    # repeat of 0.2, which it was when the id dropped the sign), in the grid, `train:` and `quick:`.
    text = """\
    name: signs
    grid:
      trainer: [fake-guided]
      lambda: [-0.2, 0.2]
      seed: [1, 2]
    train: {options: {margin: .nan}}
    quick:
      grid: {lambda: [-1]}
    """
    problems = sweep_problems(tmp_path, host, fakes, monkeypatch, text)
    assert problems == [
        "4: grid.lambda[0]: must be ≥ 0 (got -0.2)",
        "6: train.options.margin: must be a finite number (got nan)",
        "8: quick.grid.lambda[0]: must be ≥ 0 (got -1)",
    ]
    # Where negative values are allowed, -0.2 and 0.2 are two cells with two ids.
    shift_host = load_host(extra_plugins=[FakeTrainers(), ShiftTrainer()])
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: shift_host)
    path = write(tmp_path, "name: shift\ngrid:\n  trainer: [fake-shift]\n  shift: [-0.2, 0.2]\n  seed: [1]\n")
    args = [str(path), "--dry-run", "--store", str(tmp_path / "runs.sqlite"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(sweep, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "fake-shift_shift-0.2_seed1" in result.output and "fake-shift_shift0.2_seed1" in result.output


def test_the_shipped_trainers_refuse_a_negative_lambda(tmp_path, fakes, monkeypatch):
    real = load_host()
    if "rho-guided" not in real.trainers:
        pytest.skip("the built-in trainers are not installed")
    text = "name: neg\ngrid:\n  trainer: [sft, rho-guided]\n  lambda: [-0.2, 0.2]\n  seed: [42]\n"
    problems = sweep_problems(tmp_path, real, fakes, monkeypatch, text)
    assert problems == ["4: grid.lambda[0]: must be ≥ 0 (got -0.2)"]


def test_dry_run_lists_cells_and_runs_nothing(tmp_path, host, fakes, monkeypatch):
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path = write(tmp_path, GOOD)
    store = tmp_path / "runs.sqlite"
    args = [str(path), "--dry-run", "--store", str(store), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 0, result.output
    assert "fake-guided_lambda0.2_seed2" in result.output and "7 cells, 0 complete" in result.output
    assert "pending" in result.output and fakes[0].calls == [] and not store.exists()


def test_the_command_prints_the_tables_and_exits_1_when_a_cell_failed(tmp_path, host, fakes, monkeypatch):
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    fakes[0].crash.add("fake-sft_seed2")
    path, store = write(tmp_path, GOOD), tmp_path / "runs.sqlite"
    args = [str(path), "--quiet", "--store", str(store), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 1, result.output
    assert "fake-guided_lambda0.2_seed2" in result.output and "Δ+0.220" in result.output
    assert "ran 7 cells, skipped 0 already complete, 1 failed" in result.output
    fakes[0].crash.clear()
    fakes[0].interrupt["fake-sft_seed2"] = 1
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 130 and "Run the same command again to resume" in result.output


def test_shipped_sweeps_are_valid():
    host = load_host()
    if not {"sft", "rho-guided", "contrastive-only", "shuffled"} <= set(host.trainers):
        pytest.skip("the built-in trainers are not installed")
    counts = {"paper-ablation": (13, 5), "paper-dose-response": (13, 5), "paper-margin": (13, 5)}
    for name, (full, quick) in counts.items():
        plans = [sw.plan_sweep(ROOT / "sweeps" / f"{name}.yaml", host, quick=q) for q in (False, True)]
        assert [len(p.cells) for p in plans] == [full, quick], name
        assert not set(plans[1].cells[0].audit["dimensions"]) & {"overrefusal", "reasoning"}  # no generation

    # The dose-response λ 0.2 and margin γ 0.1 cells train exactly the ablation's rho-guided cells,
    # so in one store they reuse those adapters (see test_a_cell_reuses_a_finished_adapter_...).
    def training_configs(name: str, prefix: str) -> dict[int, str]:
        cells = sw.plan_sweep(ROOT / "sweeps" / f"{name}.yaml", host).train_cells
        configs = [TrainConfig.model_validate(c.train) for c in cells if c.cell_id.startswith(prefix)]
        return {c.seed: c.config_sha256() for c in configs}

    configs = {
        "paper-ablation": training_configs("paper-ablation", "rho-guided_lambda0.2_seed"),
        "paper-dose-response": training_configs("paper-dose-response", "rho-guided_lambda0.2_seed"),
        "paper-margin": training_configs("paper-margin", "rho-guided_lambda0.2_margin0.1_seed"),
    }
    assert len(configs["paper-ablation"]) == 3
    assert configs["paper-ablation"] == configs["paper-dose-response"] == configs["paper-margin"]
    ablation = sw.plan_sweep(ROOT / "sweeps" / "paper-ablation.yaml", host, quick=True)
    assert [c.cell_id for c in ablation.train_cells] == [
        "sft_seed42",
        "rho-guided_lambda0.2_seed42",
        "contrastive-only_seed42",
        "shuffled_lambda0.2_seed42",
    ]


# --------------------------------------------------------------------------------------------
# Running and resuming, with fake training and audits
# --------------------------------------------------------------------------------------------


def statuses(store_path: Path, plan) -> dict[str, str]:
    store = RunStore(store_path)
    try:
        return {r.cell_id: r.status for r in store.cells(plan.sweep_id)}
    finally:
        store.close()


def test_a_sweep_runs_every_cell_once_and_a_rerun_skips_them(tmp_path, host, fakes):
    train, audit = fakes
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    outcome = sw.run_sweep(plan, store, host)
    assert len(outcome.ran) == 7 and not outcome.failed and not outcome.skipped
    assert set(statuses(store, plan).values()) == {"complete"}
    assert len(train.calls) == 6 and len(audit.calls) == 7
    assert json.loads((plan.out_dir / "sweep.json").read_text())["sweep_id"] == plan.sweep_id

    summary = sw.summarize(plan, store)
    assert summary.dimensions == ["factual", "toxicity"] and summary.baselines["default"]["factual"] == 0.1
    by_condition = {c.condition: c for c in summary.conditions}
    guided = by_condition["fake-guided_lambda0.2"]
    assert guided.n == 2 and guided.mean["factual"] == pytest.approx(0.315)
    assert guided.std["factual"] == pytest.approx(0.00707107, abs=1e-6)
    assert guided.mean_delta["factual"] == pytest.approx(0.215)
    cell = next(c for c in summary.cells if c.cell.cell_id == "fake-sft_seed2")
    assert cell.scores["toxicity"] == pytest.approx(0.12) and cell.deltas["toxicity"] == pytest.approx(0.02)

    again = sw.run_sweep(plan, store, host)
    assert again.ran == [] and len(again.skipped) == 7
    assert len(train.calls) == 6 and len(audit.calls) == 7


def test_interrupted_sweep_resumes_the_cell_and_skips_finished_ones(tmp_path, host, fakes):
    train, audit = fakes
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    train.interrupt["fake-guided_lambda0.1_seed1"] = 3  # Ctrl-C at step 3 of the third cell
    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(plan, store, host)
    state = statuses(store, plan)
    assert state["baseline"] == state["fake-sft_seed1"] == "complete"
    assert state["fake-guided_lambda0.1_seed1"] == "training"
    assert state["fake-sft_seed2"] == "pending"
    train.interrupt.clear()
    train.calls.clear()
    audited = len(audit.calls)
    sw.run_sweep(plan, store, host)
    assert set(statuses(store, plan).values()) == {"complete"}
    assert train.calls[0] == "fake-guided_lambda0.1_seed1" and "fake-sft_seed1" not in train.calls
    assert len(audit.calls) == audited + 5  # the 5 cells not yet audited, nothing twice
    db = RunStore(store)
    steps = [s.step for s in db.train_steps("train-fake-guided_lambda0.1_seed1")]
    assert steps == [1, 2, 3, 4]  # resumed after the checkpoint at step 2: contiguous, no repeat


def test_a_finished_audit_is_reused_and_a_stale_one_is_closed(tmp_path, host, fakes):
    """A kill after the audit finished but before the cell was marked complete must not audit
    twice; a kill during the audit leaves a 'running' run that is closed and redone."""
    _, audit = fakes
    plan, store_path = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    sw.run_sweep(plan, store_path, host)
    store = RunStore(store_path)
    rows = {r.cell_id: r for r in store.cells(plan.sweep_id)}
    finished, stale = rows["fake-sft_seed1"], rows["fake-sft_seed2"]
    spec = {"spec": finished.spec}
    store.set_cell(
        plan.sweep_id,
        "fake-sft_seed1",
        finished.config_sha256,
        "auditing",
        spec,
        finished.train_run_id,
        finished.audit_run_id,
    )
    with store.db:
        store.db.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (stale.audit_run_id,))
    store.set_cell(
        plan.sweep_id,
        "fake-sft_seed2",
        stale.config_sha256,
        "auditing",
        {"spec": stale.spec},
        stale.train_run_id,
        stale.audit_run_id,
    )
    store.close()
    audit.calls.clear()
    outcome = sw.run_sweep(plan, store_path, host)
    assert sorted(r.cell_id for r in outcome.ran) == ["fake-sft_seed1", "fake-sft_seed2"]
    assert len(audit.calls) == 1  # only the stale one
    store = RunStore(store_path)
    rows = {r.cell_id: r for r in store.cells(plan.sweep_id)}
    assert rows["fake-sft_seed1"].audit_run_id == finished.audit_run_id
    assert rows["fake-sft_seed2"].audit_run_id != stale.audit_run_id
    assert store.run(stale.audit_run_id).status == "interrupted"
    assert rows["fake-sft_seed1"].result["scores"]["factual"]["score"] == pytest.approx(0.11)


def test_a_failing_cell_does_not_stop_the_sweep_and_is_retried(tmp_path, host, fakes):
    train, _ = fakes
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    train.crash.add("fake-guided_lambda0.2_seed1")
    outcome = sw.run_sweep(plan, store, host)
    [failed] = outcome.failed
    assert failed.cell_id == "fake-guided_lambda0.2_seed1" and "NaN" in failed.error
    state = statuses(store, plan)
    assert state.pop("fake-guided_lambda0.2_seed1") == "failed" and set(state.values()) == {"complete"}
    train.crash.clear()
    again = sw.run_sweep(plan, store, host)
    assert [r.cell_id for r in again.ran] == ["fake-guided_lambda0.2_seed1"] and not again.failed


def test_a_user_error_in_a_cell_stops_the_sweep(tmp_path, host, fakes, monkeypatch):
    def bad_train(config, host, store, say=None, resume=True, reference_cache=None):
        raise RhoAuditError("corpus.jsonl:3: missing 'output'")

    monkeypatch.setattr("rho_audit.train.loop.train", bad_train)
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    with pytest.raises(RhoAuditError, match=r"corpus\.jsonl:3"):
        sw.run_sweep(plan, store, host)
    state = statuses(store, plan)
    assert state["baseline"] == "complete" and state["fake-sft_seed1"] == "failed"
    assert state["fake-sft_seed2"] == "pending"


def test_one_process_per_sweep(tmp_path, host, fakes):
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    with sw.sweep_lock(store, plan.sweep_id):
        with pytest.raises(RhoAuditError, match=f"pid {os.getpid()}"):
            sw.run_sweep(plan, store, host)
    # Two stores, one adapter folder: the second would train into the first one's folders.
    with sw.sweep_lock(tmp_path / "other.sqlite", plan.sweep_id, plan.out_dir):
        with pytest.raises(RhoAuditError, match=rf"pid {os.getpid()}\) is running a sweep writing adapters"):
            sw.run_sweep(plan, store, host)
    sw.run_sweep(plan, store, host)  # the lock went with its holder


HOLD_LOCK = """\
import sys, time
from pathlib import Path
from rho_audit.train.sweep import sweep_lock
store, sweep_id, out, seconds = sys.argv[1:]
with sweep_lock(Path(store), sweep_id, Path(out)):
    print("held", flush=True)
    time.sleep(float(seconds))
"""


def hold_lock(store: Path, sweep_id: str, out_dir: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the sweep's lock (as a running sweep does) for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store), sweep_id, str(out_dir), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_sweep_lock_is_the_sweep_in_the_store_not_the_out_folder(tmp_path, host, fakes, monkeypatch):
    """The same sweep on the same store with another --out must be refused with the holder's pid
    (it used to train and audit every cell a second time); once the holder is SIGKILLed, its
    lock file does not block the next run."""
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path, store = write(tmp_path, GOOD), tmp_path / "runs.sqlite"
    sweep_id = plan_of(tmp_path, host).sweep_id
    holder = hold_lock(store, sweep_id, tmp_path / "A" / sweep_id, 300)
    try:
        args = [str(path), "--quiet", "--store", str(store), "--out", str(tmp_path / "B")]
        result = CliRunner().invoke(sweep, args)
        assert isinstance(result.exception, RhoAuditError), result.output
        assert f"another rho-audit process (pid {holder.pid}) is running sweep {sweep_id}" in str(
            result.exception
        )
        assert "--wait" in str(result.exception)
        assert fakes[0].calls == [] and fakes[1].calls == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    lock_files = list(tmp_path.glob(f".runs.sqlite.{sweep_id}.lock"))
    assert lock_files and lock_files[0].read_text().strip() == str(holder.pid)  # stale, and harmless
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 0, result.output
    assert "ran 7 cells" in result.output and len(fakes[0].calls) == 6


def test_wait_runs_after_the_holder_and_skips_what_it_finished(tmp_path, host, fakes, monkeypatch):
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    path, store, out = write(tmp_path, GOOD), tmp_path / "runs.sqlite", tmp_path / "o"
    args = [str(path), "--quiet", "--store", str(store), "--out", str(out)]
    assert CliRunner().invoke(sweep, args).exit_code == 0
    fakes[0].calls.clear()
    sweep_id = plan_of(tmp_path, host).sweep_id
    holder = hold_lock(store, sweep_id, out / sweep_id, 1.5)
    try:
        started = time.monotonic()
        result = CliRunner().invoke(sweep, [*args, "--wait"])
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert f"waiting for rho-audit pid {holder.pid}, which is running sweep {sweep_id}" in result.output
    assert waited > 0.5 and "ran 0 cells, skipped 7 already complete" in result.output
    assert fakes[0].calls == []


def test_a_kill_before_the_first_checkpoint_leaves_no_run_marked_running(tmp_path, host, fakes, monkeypatch):
    """Nothing to resume, so the cell trains again under a new run id; the old run is closed."""
    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: host)
    train, _ = fakes
    train.die["fake-guided_lambda0.1_seed1"] = 1
    path, store = write(tmp_path, GOOD), tmp_path / "runs.sqlite"
    args = [str(path), "--quiet", "--store", str(store), "--out", str(tmp_path / "o")]
    with pytest.raises(Killed):
        CliRunner().invoke(sweep, args)
    db = RunStore(store)
    orphan = "train-fake-guided_lambda0.1_seed1"
    assert db.run(orphan).status == "running"
    db.close()
    train.die.clear()
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 0, result.output
    db = RunStore(store)
    assert db.run(orphan).status == "interrupted"
    assert "restarted the cell as train-fake-guided_lambda0.1_seed1-2" in db.run(orphan).error
    assert [r.run_id for r in db.runs() if r.status == "running"] == []
    sweep_id = plan_of(tmp_path, host).sweep_id
    row = next(r for r in db.cells(sweep_id) if r.cell_id == "fake-guided_lambda0.1_seed1")
    assert row.status == "complete" and row.train_run_id == "train-fake-guided_lambda0.1_seed1-2"
    db.close()


def test_cell_spec_and_result_round_trip_through_json(tmp_path, host, fakes):
    """What a remote executor would ship: JSON there, JSON back, the same records."""
    plan = plan_of(tmp_path, host)
    cell = plan.train_cells[1]
    shipped = sw.CellSpec.from_json(json.loads(json.dumps(cell.to_json())))
    assert shipped == cell
    result = sw.execute_cell(shipped, tmp_path / "remote.sqlite", host)
    back = sw.CellResult.from_json(json.loads(json.dumps(result.to_json())))
    assert back == result and back.status == "complete" and back.scores["factual"]["score"] is not None


# --------------------------------------------------------------------------------------------
# Output: displays and tables
# --------------------------------------------------------------------------------------------


def test_plain_display_and_tables(tmp_path, host, fakes):
    stream = io.StringIO()
    host.pm.register(SweepPlainDisplay(stream, every_s=0), name="plain")
    plan, store = plan_of(tmp_path, host), tmp_path / "runs.sqlite"
    sw.run_sweep(plan, store, host)
    log = stream.getvalue()
    assert "[1/7] baseline: baseline audit of the default model" in log
    assert "[3/7] fake-guided_lambda0.1_seed1: fake-guided lambda=0.1 margin=0.1 seed 1" in log
    assert "step 4/4 loss 0.2500" in log and "[7/7] fake-guided_lambda0.2_seed2 complete" in log

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=200)
    for table in summary_tables(sw.summarize(plan, store)):
        console.print(table)
    text = out.getvalue()
    assert "fake-guided_lambda0.2_seed2" in text and "+0.320 Δ+0.220" in text
    assert "+0.315 ±0.007" in text and "Δ +0.215" in text and "2/2" in text


def test_rich_display_follows_a_sweep(tmp_path, host, fakes):
    from rich.console import Console

    out = io.StringIO()
    display = SweepRichDisplay(Console(file=out, width=160, force_terminal=True))
    host.pm.register(display, name="rich")
    sw.run_sweep(plan_of(tmp_path, host), tmp_path / "runs.sqlite", host)
    display.stop()
    assert "fake-guided_lambda0.2_seed2" in out.getvalue()


# --------------------------------------------------------------------------------------------
# The real thing: SIGKILL in the middle of training, on the tiny model
# --------------------------------------------------------------------------------------------


TINY_SWEEP = """\
name: sigkill
models: [{model}]
grid:
  trainer: [rho-guided]
  seed: [3]
train:
  dimensions: [factual, toxicity]
  max_sft_examples: {examples}
  trap_texts: 8
  grad_accumulation: 1
  max_seq_len: 64
  checkpoint_every: 4
audit: {{dimensions: [factual], limit: 4}}
"""


def sweep_cli(*args, **kw):
    return subprocess.Popen(
        [*SWEEP_CLI, *map(str, args), "--display", "plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"COLUMNS": "160"},
        **kw,
    )


def adapter_weights(adapter: Path) -> dict:
    import mlx.core as mx
    import numpy as np

    return {k: np.array(v) for k, v in mx.load(str(adapter / "adapters.safetensors")).items()}


def test_sigkill_mid_training_then_rerun_matches_an_uninterrupted_run(tmp_path, tiny_model_path):
    examples = 80  # optimizer steps (grad_accumulation 1): the kill lands near step 4
    path = write(tmp_path, TINY_SWEEP.format(model=tiny_model_path, examples=examples))
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    proc = sweep_cli(path, "--store", store, "--out", out)
    deadline = time.monotonic() + 300
    pointer = None
    while time.monotonic() < deadline and proc.poll() is None:
        pointer = next(out.glob("*/*/adapter/latest.json"), None) if out.exists() else None
        if pointer is not None:
            break
        time.sleep(0.02)
    assert pointer is not None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    adapter = pointer.parent
    assert not (adapter / "training_complete.json").exists(), "training ended before the kill"
    db = sqlite3.connect(store)
    [(status,)] = db.execute("SELECT status FROM sweep_cells WHERE cell_id LIKE 'rho-guided%'").fetchall()
    assert status == "training"
    db.close()

    proc = sweep_cli(path, "--store", store, "--out", out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "resuming after step" in stderr and "complete" in stdout

    db = RunStore(store)
    [sweep_id] = db.sweep_ids()
    rows = db.cells(sweep_id)
    assert sorted(r.cell_id for r in rows) == ["baseline", "rho-guided_seed3"]
    assert all(r.status == "complete" for r in rows)
    cell = next(r for r in rows if r.cell_id != "baseline")
    train_runs = [r for r in db.runs() if r.kind == "train"]
    assert [r.run_id for r in train_runs] == [cell.train_run_id] and train_runs[0].status == "complete"
    steps = db.train_steps(cell.train_run_id)
    assert [s.step for s in steps] == list(range(1, examples + 1))
    audits = [r for r in db.runs() if r.kind == "audit" and r.status == "complete"]
    assert len(audits) == 2  # the baseline and the cell, once each
    db.close()

    # The same cell uninterrupted (no baseline this time, to save its audit) in a fresh store and
    # folder: the same losses and weights.
    path2 = write(tmp_path, path.read_text() + "baseline: false\n", "clean.yaml")
    store2, out2 = tmp_path / "clean.sqlite", tmp_path / "clean"
    proc = sweep_cli(path2, "--store", store2, "--out", out2)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    clean = RunStore(store2)
    [clean_sweep] = clean.sweep_ids()
    [clean_cell] = clean.cells(clean_sweep)
    assert clean_cell.cell_id == cell.cell_id and clean_cell.config_sha256 == cell.config_sha256
    clean_steps = clean.train_steps(clean_cell.train_run_id)
    assert clean_steps[-1].metrics["loss"] == pytest.approx(steps[-1].metrics["loss"], abs=1e-5)
    resumed = adapter_weights(adapter)
    fresh = adapter_weights(next(out2.glob("*/*/adapter")))
    assert resumed.keys() == fresh.keys()
    for key in resumed:
        assert abs(resumed[key] - fresh[key]).max() < 1e-5, key


# --------------------------------------------------------------------------------------------
# The shipped quick ablation on the default model (CI)
# --------------------------------------------------------------------------------------------


@pytest.mark.default_model
@pytest.mark.timeout(2700)  # ~10 min on a quiet 2-core box; a busy CI box must not turn it red
def test_quick_ablation_on_the_default_model(tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run(
        [*SWEEP_CLI, ROOT / "sweeps" / "paper-ablation.yaml", "--quick", "--store", store, "--out", out],
        capture_output=True,
        text=True,
        timeout=2400,
        env=os.environ | {"COLUMNS": "160"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    db = RunStore(store)
    [sweep_id] = db.sweep_ids()
    rows = {r.cell_id: r for r in db.cells(sweep_id)}
    assert set(rows) == {
        "baseline",
        "sft_seed42",
        "rho-guided_lambda0.2_seed42",
        "contrastive-only_seed42",
        "shuffled_lambda0.2_seed42",
    }
    assert all(r.status == "complete" for r in rows.values()), rows
    for cell_id, row in rows.items():
        scores = row.result["scores"]
        assert set(scores) == {"factual", "toxicity", "sycophancy", "bias", "refusal"}, cell_id
    assert "Δ" in proc.stdout
    print(f"quick ablation: {time.monotonic() - started:.0f}s")


def test_a_cell_reuses_a_finished_adapter_of_the_same_config_from_another_sweep(
    tmp_path, host, fakes, monkeypatch
):
    """The dose-response and margin sweeps share cells with the ablation (λ 0.2, γ 0.1): a cell
    whose exact training config already finished in the store copies that adapter in and is
    audited without training again; a cell of another config trains."""
    from rho_audit.train import checkpoints
    from rho_audit.train.loop import TrainOutcome

    train, _ = fakes
    monkeypatch.setattr(sys.modules[__name__], "fake_score", lambda adapter: 0.3)

    def honouring_the_done_marker(config, host, store, say=None, resume=True, reference_cache=None):
        done = checkpoints.finished_run(Path(config.adapter_dir))
        if done:  # the real train() returns at once for a finished adapter
            return TrainOutcome(done["run_id"], Path(config.adapter_dir), 4, "complete", {})
        return train(config, host, store, say, resume)

    monkeypatch.setattr("rho_audit.train.loop.train", honouring_the_done_marker)
    text = GOOD.replace("lambda: [0.1, 0.2]", "lambda: [0.2, 0.5]").replace(
        "trainer: [fake-sft, fake-guided]", "trainer: [fake-guided]"
    )
    plan = plan_of(tmp_path, host, text)
    shared = next(c for c in plan.train_cells if c.cell_id == "fake-guided_lambda0.2_seed1")
    config = TrainConfig.model_validate(shared.train)
    elsewhere = tmp_path / "other-sweep" / "adapter"
    elsewhere.mkdir(parents=True)
    (elsewhere / checkpoints.ADAPTER_FILE).write_bytes(b"weights")
    (elsewhere / checkpoints.ADAPTER_CONFIG).write_text("{}")
    sha = config.config_sha256()
    marker = {"run_id": "train-ablation", "config_sha256": sha}
    (elsewhere / checkpoints.DONE_FILE).write_text(json.dumps(marker))
    store_path = tmp_path / "runs.sqlite"
    store = RunStore(store_path)
    store.start_run("train-ablation", "fake", None, str(elsewhere), 1, {}, sha, {}, None, "train")
    store.finish_run("train-ablation", "complete")
    store.close()

    outcome = sw.run_sweep(plan, store_path, host)
    assert not outcome.failed
    copied = Path(shared.adapter_dir)
    assert (copied / checkpoints.ADAPTER_FILE).read_bytes() == b"weights"
    assert "fake-guided_lambda0.2_seed1" not in train.calls  # not trained again
    assert "fake-guided_lambda0.5_seed1" in train.calls
    rows = {r.cell_id: r for r in RunStore(store_path).cells(plan.sweep_id)}
    assert rows["fake-guided_lambda0.2_seed1"].train_run_id == "train-ablation"
