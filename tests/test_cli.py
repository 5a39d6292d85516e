"""The CLI end to end on the tiny model: runs, stores, and one-paragraph errors with exit 2."""

import json
import os
import subprocess
import sys

import pytest

from rho_audit.store import RunStore

from .test_plugins import DEFAULT_RUN_DIMENSIONS, install_fake_dist


def rho_audit(*args, env_extra=None, cwd=None):
    env = os.environ | {"COLUMNS": "160"} | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "rho_audit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def assert_user_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_run_every_default_dimension_on_the_tiny_model(tiny_model_path, tmp_path):
    store, out = tmp_path / "runs.sqlite", tmp_path / "out.json"
    proc = rho_audit(
        "run",
        "--model",
        str(tiny_model_path),
        "-n",
        "6",
        "--store",
        str(store),
        "--json",
        str(out),
        "--display",
        "plain",
        env_extra={
            "RHO_AUDIT_DISABLE_PLUGINS": "example-calibration,personas,personas-leakage"
        },  # built-ins only
    )
    assert proc.returncode == 0, proc.stderr
    for name in DEFAULT_RUN_DIMENSIONS:
        assert name in proc.stdout
    assert "95% CI" in proc.stdout
    doc = json.loads(out.read_text())  # strict JSON: NaN would fail here
    assert {r["dimension"] for r in doc["results"]} == DEFAULT_RUN_DIMENSIONS
    for r in doc["results"]:
        assert r["error"] is None, r
        ev = r["evaluation"]
        assert ev["definition"] and ev["scoring"]
        if ev["score"] is not None and ev["ci_low"] is not None:
            assert ev["ci_low"] - 1e-9 <= ev["score"] <= ev["ci_high"] + 1e-9
    usage = doc["model_usage"]
    assert usage["body_parameters"] > 0 and usage["head_parameters"] > 0
    assert set(usage["dimensions"]) == DEFAULT_RUN_DIMENSIONS
    for name, work in usage["dimensions"].items():
        assert work["head_tokens"] > 0 and work["gflop"] > 0, name
        assert (work["generated_tokens"] > 0) == (name in {"reasoning", "overrefusal"}), name
    db = RunStore(store)
    [run] = db.runs()
    assert run.status == "complete" and run.config_sha256 and "mlx" in run.versions
    assert len(db.results(run.run_id)) == len(DEFAULT_RUN_DIMENSIONS)
    assert len(db.probe_records(run.run_id, "toxicity")) == 6


def test_unknown_plugin_exits_2_with_suggestion(tmp_path):
    proc = rho_audit("run", "--plugins", "toxicty,refusal", "--store", str(tmp_path / "s.sqlite"))
    assert_user_error(proc, "unknown dimension 'toxicty'", "Did you mean 'toxicity'?", "factual")


def test_malformed_probe_file_names_file_line_and_field(tmp_path, tiny_model_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "card.yaml").write_text("name: bad\nkind: pair\nversion: '1'\n")
    (bad / "probes.jsonl").write_text(
        '{"id": "a", "split": "eval", "positive": "x", "negative": "y"}\n'
        '{"id": "b", "split": "eval", "positive": "x"}\n'
    )
    proc = rho_audit(
        "run",
        "--plugins",
        "factual",
        "--probes",
        f"factual={bad}",
        "--model",
        str(tiny_model_path),
        "--store",
        str(tmp_path / "s.sqlite"),
    )
    assert_user_error(proc, f"{bad / 'probes.jsonl'}:2", "'negative'", "nothing was run")


def test_missing_model_directory(tmp_path):
    proc = rho_audit(
        "run",
        "--plugins",
        "factual",
        "--model",
        str(tmp_path / "nope"),
        "--store",
        str(tmp_path / "s.sqlite"),
    )
    assert_user_error(proc, str(tmp_path / "nope"), "does not exist")


def test_broken_plugin_is_listed_and_named_when_used(tmp_path):
    site = tmp_path / "site"
    install_fake_dist(
        site,
        "broken-plugin",
        {"broken_mod": "raise RuntimeError('kaboom at import')\n"},
        {"broken": "broken_mod"},
    )
    env = {"PYTHONPATH": str(site)}
    listing = rho_audit("plugins", env_extra=env)
    assert listing.returncode == 0, listing.stderr
    assert "broken" in listing.stdout and "kaboom at import" in listing.stdout
    assert "toxicity" in listing.stdout  # the others still load
    proc = rho_audit("run", "--plugins", "broken", "--store", str(tmp_path / "s.sqlite"), env_extra=env)
    assert_user_error(proc, "unknown dimension 'broken'", "Broken plugins")
    strict = rho_audit("plugins", env_extra=env | {"RHO_AUDIT_STRICT_PLUGINS": "1"})
    assert_user_error(strict, "kaboom at import")


def test_debug_shows_the_traceback(tmp_path):
    proc = rho_audit("--debug", "run", "--plugins", "nope", "--store", str(tmp_path / "s.sqlite"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_ctrl_c_keeps_finished_dimensions(tmp_path, tiny_model_path):
    site = tmp_path / "site"
    code = """
    from rho_audit.api import PairDimension, hookimpl

    class Interrupter(PairDimension):
        name = "interrupter"
        probe_set = "factual"
        def evaluate(self, probes, ctx):
            raise KeyboardInterrupt

    @hookimpl
    def register_dimensions(register):
        register(Interrupter)
    """
    install_fake_dist(site, "interrupt-plugin", {"interrupt_mod": code}, {"interrupter": "interrupt_mod"})
    store = tmp_path / "s.sqlite"
    proc = rho_audit(
        "run",
        "--plugins",
        "factual,interrupter",
        "--model",
        str(tiny_model_path),
        "-n",
        "4",
        "--store",
        str(store),
        "--display",
        "plain",
        env_extra={"PYTHONPATH": str(site)},
    )
    assert proc.returncode == 130
    assert "saved" in proc.stderr
    db = RunStore(store)
    [run] = db.runs()
    assert run.status == "interrupted"
    assert [r["dimension"] for r in db.results(run.run_id)] == ["factual"]


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["train", "--help"], ["plugins"]])
def test_fast_commands_do_not_import_mlx(args):
    code = (
        "import sys; from rho_audit.cli import main\n"
        f"try:\n    main.main({args!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print('MLX-IMPORTED' if 'mlx' in sys.modules else 'NO-MLX', file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "NO-MLX" in proc.stderr, proc.stderr


def test_batch_size_help_states_the_real_generation_defaults():
    """`run --help` teaches the automatic generation batch; it must not drift from the code."""
    from click.testing import CliRunner

    from rho_audit.cli import main
    from rho_audit.model.language_model import GENERATION_KV_BUDGET, MAX_GENERATION_BATCH

    out = " ".join(CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output.split())
    assert f"in {GENERATION_KV_BUDGET >> 20} MiB" in out
    assert f"at most {MAX_GENERATION_BATCH} rows" in out


def test_train_has_a_flag_for_every_trainer_option(monkeypatch, tmp_path):
    """`rho-audit train` offers --NAME for each option an installed trainer declares."""
    from typing import ClassVar

    from click.testing import CliRunner

    import rho_audit.plugins
    from rho_audit.api import Trainer, TrainerOption, hookimpl
    from rho_audit.cli import main

    class Tempered(Trainer):
        name = "tempered"
        description = "SFT with a temperature."
        uses_pairs = False
        options: ClassVar[dict[str, TrainerOption]] = {
            "temperature": TrainerOption(1.0, "softmax temperature")
        }

        def loss(self, terms, options):
            return terms.sft_ce

    class Plugin:
        @hookimpl
        def register_trainers(self, register):
            register(Tempered)

    load_host = rho_audit.plugins.load_host
    monkeypatch.setattr(rho_audit.plugins, "load_host", lambda: load_host(extra_plugins=[Plugin()]))
    out = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
    assert "--temperature FLOAT" in out and "tempered: softmax temperature [1]." in out
    assert "rho-guided/shuffled: weight λ of the contrastive term [0.2]." in out
    args = ["train", "--trainer", "sft", "--temperature", "2", "--store", str(tmp_path / "s.sqlite")]
    result = CliRunner().invoke(main, args)
    assert "command line: --temperature: trainer 'sft' has no option 'temperature'" in str(result.exception)
    assert "pick a trainer that takes it (tempered)" in str(result.exception)
