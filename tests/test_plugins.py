"""The plugin host: discovery, isolation of broken plugins, allow/deny lists, clashes, hook docs."""

import inspect
import textwrap
from pathlib import Path

import pytest

from rho_audit import hookspecs
from rho_audit.errors import PluginError
from rho_audit.plugins import load_host

BUILTIN_DIMENSIONS = {
    "factual",
    "toxicity",
    "sycophancy",
    "bias",
    "reasoning",
    "refusal",
    "deception",
    "overrefusal",
}


def install_fake_dist(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """A minimal installed distribution (dist-info + modules) that importlib.metadata can see."""
    info = root / f"{dist.replace('-', '_')}-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 9.9\n")
    eps = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[rho_audit]\n{eps}\n")
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))


GOOD_DIMENSION = """
from rho_audit.hookspecs import PairDimension, hookimpl

class Good(PairDimension):
    name = "{name}"
    probe_set = "factual"

@hookimpl
def register_dimensions(register):
    register(Good)
"""


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_are_discovered_through_entry_points():
    host = load_host()
    assert set(host.dimensions) >= BUILTIN_DIMENSIONS
    assert "keyword-refusal" in host.judges
    for name in BUILTIN_DIMENSIONS:
        source = host.dimensions[name].source
        assert source.distribution == "rho-audit"
        assert source.module.startswith("rho_audit_plugins.dimensions.")


def test_broken_plugin_is_listed_and_does_not_stop_others(fake_site, monkeypatch):
    install_fake_dist(
        fake_site,
        "broken-plugin",
        {"broken_mod": "import does_not_exist_anywhere\n", "good_mod": GOOD_DIMENSION.format(name="good")},
        {"broken": "broken_mod", "good": "good_mod"},
    )
    host = load_host()
    assert "good" in host.dimensions and BUILTIN_DIMENSIONS <= set(host.dimensions)
    [broken] = host.broken
    assert broken.source.entry_point == "broken"
    assert broken.source.distribution == "broken-plugin"
    assert "does_not_exist_anywhere" in broken.error

    monkeypatch.setenv("RHO_AUDIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="broken"):
        load_host()


def test_misspelt_hook_marks_the_plugin_broken(fake_site):
    code = (
        "from rho_audit.hookspecs import hookimpl\n@hookimpl\ndef register_dimension(register):\n    pass\n"
    )
    install_fake_dist(fake_site, "typo-plugin", {"typo_mod": code}, {"typo": "typo_mod"})
    host = load_host()
    [broken] = host.broken
    assert "register_dimension" in broken.error
    assert "hookspecs" in broken.error


def test_name_clash_names_both_packages(fake_site):
    install_fake_dist(
        fake_site,
        "clash-plugin",
        {"clash_mod": GOOD_DIMENSION.format(name="factual")},
        {"clash": "clash_mod"},
    )
    with pytest.raises(PluginError) as info:
        load_host().dimensions  # noqa: B018
    assert "rho-audit" in str(info.value) and "clash-plugin" in str(info.value)


def test_registering_an_instance_is_refused(fake_site):
    code = GOOD_DIMENSION.format(name="inst").replace("register(Good)", "register(Good())")
    install_fake_dist(fake_site, "inst-plugin", {"inst_mod": code}, {"inst": "inst_mod"})
    with pytest.raises(PluginError, match="register the class itself"):
        load_host().dimensions  # noqa: B018


def test_allow_and_deny_lists(monkeypatch):
    monkeypatch.setenv("RHO_AUDIT_LOAD_PLUGINS", "factual,probe-library")
    assert set(load_host().dimensions) == {"factual"}
    monkeypatch.delenv("RHO_AUDIT_LOAD_PLUGINS")
    monkeypatch.setenv("RHO_AUDIT_DISABLE_PLUGINS", "toxicity")
    assert "toxicity" not in load_host().dimensions


def test_unknown_dimension_suggests_a_name():
    with pytest.raises(PluginError) as info:
        load_host().select_dimensions(["toxicty"])
    assert "Did you mean 'toxicity'?" in str(info.value)
    assert "factual" in str(info.value)


def test_importing_plugins_does_not_import_mlx():
    import subprocess
    import sys

    code = (
        "import sys; from rho_audit.plugins import load_host; h = load_host();"
        "h.dimensions; h.judges; h.probe_sets; print('mlx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


HOOKS = [
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "rho_audit_spec")
]


def test_every_hook_is_documented_with_its_parameters():
    assert set(HOOKS) >= {"register_dimensions", "register_judges", "register_trainers", "run_event"}
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in (fn.__doc__ or ""), f"{name} lacks :param {param}:"


def test_every_hook_has_a_test():
    """datasette's meta-test: each hook named in hookspecs has a test_hook_<name> below."""
    for name in HOOKS:
        assert f"test_hook_{name}" in globals(), name


def test_hook_register_dimensions():
    assert load_host().dimensions["bias"].obj.probe_kind == "choice"


def test_hook_register_judges():
    assert load_host().judges["keyword-refusal"].obj.name == "keyword-refusal"


def test_hook_register_trainers(fake_site):
    code = """
    from rho_audit.hookspecs import Trainer, hookimpl
    class T(Trainer):
        name = "demo-trainer"
    @hookimpl
    def register_trainers(register):
        register(T)
    """
    install_fake_dist(fake_site, "trainer-plugin", {"trainer_mod": code}, {"trainer": "trainer_mod"})
    host = load_host()
    assert host.trainers["demo-trainer"].source.distribution == "trainer-plugin"


def test_hook_register_probe_sets():
    host = load_host()
    assert (host.probe_set_path("factual") / "card.yaml").is_file()


def test_hook_register_report_sections(tmp_path):
    from rho_audit.reports import SectionTemplates

    class Sections:
        @hookspecs.hookimpl
        def register_report_sections(self, register):
            register("factual", tmp_path)

    (tmp_path / "factual.md.j2").write_text("custom section", encoding="utf-8")
    sections = SectionTemplates.from_host(load_host([Sections()]))
    assert sections.template_for("factual", "md") == "plugin-factual/factual.md.j2"
    assert sections.template_for("factual", "html") is None  # the built-in section is used


def test_hook_run_event():
    from rho_audit.events import RunEvent
    from rho_audit.runner import emit

    seen = []

    class Observer:
        @hookspecs.hookimpl
        def run_event(self, event):
            seen.append(event.kind)

    class Crashing:
        @hookspecs.hookimpl
        def run_event(self, event):
            raise RuntimeError("observer bug")

    host = load_host([Observer(), Crashing()])
    emit(host, RunEvent("warning", "r1", message="hi"))  # the crashing observer is only logged
    assert seen == ["warning"]
