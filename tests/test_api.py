"""The plugin API (``rho_audit.api``): importable without MLX, Textual or an SDK, documented, and
enough on its own to write a plugin that runs."""

import ast
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import rho_audit.api as api
from rho_audit.audit.runner import AuditConfig, run_audit
from rho_audit.plugins import load_host

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("mlx", "mlx.core", "mlx_lm", "textual", "anthropic")


def test_every_public_name_imports_without_mlx_textual_or_an_sdk():
    code = textwrap.dedent(
        f"""
        import sys
        for name in {HEAVY!r}:
            sys.modules[name] = None  # any import of it raises ImportError
        import rho_audit.api
        from rho_audit.api import *  # noqa: F403
        missing = [n for n in rho_audit.api.__all__ if getattr(rho_audit.api, n, None) is None]
        print("missing:", missing)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "missing: []" in proc.stdout


def _undocumented(path: Path) -> list[str]:
    """Public classes, functions and methods defined in ``path`` without a docstring of their own."""
    found = []

    def visit(body, prefix=""):
        for node in body:
            if not isinstance(node, ast.ClassDef | ast.FunctionDef) or node.name.startswith("_"):
                continue
            if ast.get_docstring(node) is None and "overload" not in ast.unparse(node.decorator_list):
                found.append(f"{path.name}:{prefix}{node.name}")
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{node.name}.")

    visit(ast.parse(path.read_text()).body)
    return found


def test_every_public_definition_in_the_api_has_a_docstring():
    modules = sorted((ROOT / "rho_audit" / "api").glob("*.py"))
    assert all(ast.get_docstring(ast.parse(m.read_text())) for m in modules)
    assert [name for m in modules for name in _undocumented(m)] == []


def _rho_audit_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return {m for m in modules if m == "rho_audit" or m.startswith("rho_audit.")}


def test_built_in_plugins_and_the_example_import_only_the_api():
    files = [*ROOT.glob("plugins/**/*.py"), *ROOT.glob("examples/*/*/**/*.py")]
    files = [f for f in files if "/tests/" not in f.as_posix()]
    assert len(files) > 10
    outside = {f.relative_to(ROOT).as_posix(): _rho_audit_imports(f) - {"rho_audit.api"} for f in files}
    assert {f: m for f, m in outside.items() if m} == {}


def test_the_old_hookspecs_module_still_offers_the_documented_api():
    from rho_audit.hookspecs import Judge, PairDimension, Thresholds, Trainer, hookimpl

    assert PairDimension is api.PairDimension and Thresholds is api.Thresholds
    assert Judge is api.Judge and Trainer is api.Trainer and hookimpl is api.hookimpl


PLUGIN = '''
"""A plugin written only against rho_audit.api."""

from pathlib import Path

from rho_audit.api import GenerationDimension, Judge, PairDimension, Verdict, hookimpl

PROBES = Path(__file__).parent / "api-only-pairs"
EVENTS = []


class ApiOnlyPairs(PairDimension):
    name = "api-only-pairs"
    description = "Pairs read from a probe set this plugin ships."


class ApiOnlyAnswers(GenerationDimension):
    name = "api-only-answers"
    probe_set = "overrefusal"
    max_tokens = 4


class Agreeable(Judge):
    name = "agreeable"
    description = "Labels every reply complied."

    def judge(self, items):
        return [Verdict("complied", self.judge_id) for _ in items]


@hookimpl
def register_dimensions(register):
    register(ApiOnlyPairs)
    register(ApiOnlyAnswers)


@hookimpl
def register_judges(register):
    register(Agreeable)


@hookimpl
def register_probe_sets(register):
    register("api-only-pairs", PROBES)


@hookimpl
def run_event(event):
    EVENTS.append(event.kind)
'''


def _write_plugin(folder: Path):
    probes = folder / "api-only-pairs"
    probes.mkdir(parents=True)
    (probes / "card.yaml").write_text("name: api-only-pairs\nkind: pair\nversion: '1'\n")
    rows = [
        {"id": f"p{i}", "split": "eval", "positive": f"Wet {i}.", "negative": f"Dry {i}."} for i in range(6)
    ]
    (probes / "probes.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = folder / "api_only_plugin.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location("api_only_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert _rho_audit_imports(path) == {"rho_audit.api"}
    return module


def test_a_plugin_written_only_against_the_api_runs(tiny_model_path, tmp_path):
    plugin = _write_plugin(tmp_path / "plugin")
    host = load_host(extra_plugins=[plugin])
    assert not host.broken
    assert {"api-only-pairs", "api-only-answers"} <= set(host.dimensions)
    assert "agreeable" in host.judges and "api-only-pairs" in host.probe_sets

    config = AuditConfig(
        model=str(tiny_model_path),
        dimensions=("api-only-pairs", "api-only-answers"),
        judge="agreeable",
        limit=4,  # -n 4
        store=tmp_path / "runs.sqlite",
    )
    outcome = run_audit(config, host)
    assert outcome.status == "complete"
    assert outcome.judge_usage is None  # a rule-based judge costs nothing
    by_name = {r.dimension: r for r in outcome.results}
    assert set(by_name) == {"api-only-pairs", "api-only-answers"}
    for result in by_name.values():
        assert result.error is None and result.evaluation.n == 4
        assert not [r for r in result.evaluation.records if r.error]
    assert by_name["api-only-pairs"].evaluation.metric == "rank_biserial"
    assert by_name["api-only-answers"].evaluation.score == 1.0  # every reply "complied"
    assert plugin.EVENTS[0] == "model_loading" and plugin.EVENTS[-1] == "run_finished"
