"""The plugin host: discovery, isolation of broken plugins, allow/deny lists, clashes, hook docs."""

import inspect
import textwrap
from pathlib import Path

import pytest

from rho_audit import api
from rho_audit.api import hooks
from rho_audit.api.errors import PluginError
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
    "dark-triad",
    "jailbreak",
    "labelled",
    "truthfulness",
}
#: The built-ins a run that names no dimensions includes (jailbreak is costly; labelled has no set).
DEFAULT_RUN_DIMENSIONS = BUILTIN_DIMENSIONS - {"jailbreak", "labelled"}
#: The built-ins that ship a probe set of their own name.
OWN_SET_DIMENSIONS = BUILTIN_DIMENSIONS - {"labelled"}


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
from rho_audit.api import PairDimension, hookimpl

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
    code = "from rho_audit.api import hookimpl\n@hookimpl\ndef register_dimension(register):\n    pass\n"
    install_fake_dist(fake_site, "typo-plugin", {"typo_mod": code}, {"typo": "typo_mod"})
    host = load_host()
    [broken] = host.broken
    assert "register_dimension" in broken.error
    assert "rho_audit/api/hooks.py" in broken.error


def test_name_clash_refuses_both_lists_both_and_keeps_the_rest(fake_site, monkeypatch):
    """A third party's ``toxicity`` (same entry-point name as the built-in, as it would be)."""
    install_fake_dist(
        fake_site,
        "clash-plugin",
        {"clash_mod": GOOD_DIMENSION.format(name="toxicity")},
        {"toxicity": "clash_mod"},
    )
    host = load_host()
    assert "toxicity" not in host.dimensions
    assert BUILTIN_DIMENSIONS - {"toxicity"} <= set(host.dimensions)
    refused = [b for b in host.broken if (b.kind, b.name) == ("dimension", "toxicity")]
    assert {b.source.distribution for b in refused} == {"rho-audit", "clash-plugin"}
    for b in refused:
        assert "rho-audit" in b.error and "clash-plugin" in b.error
        assert "RHO_AUDIT_DISABLE_PLUGINS=" in b.error
    # asking for it says why it is missing, naming both packages
    with pytest.raises(PluginError, match="registered by both") as info:
        host.select_dimensions(["toxicity"])
    assert "clash-plugin" in str(info.value)
    assert host.select_dimensions(["factual"])[0].name == "factual"

    # the fix the message offers works: disable the third party's entry point by distribution
    monkeypatch.setenv("RHO_AUDIT_DISABLE_PLUGINS", "clash-plugin:toxicity")
    host = load_host()
    assert host.dimensions["toxicity"].source.distribution == "rho-audit" and not host.broken

    monkeypatch.delenv("RHO_AUDIT_DISABLE_PLUGINS")
    monkeypatch.setenv("RHO_AUDIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="clash-plugin"):
        load_host().dimensions  # noqa: B018


def test_registering_an_instance_is_one_broken_entry(fake_site, monkeypatch):
    code = GOOD_DIMENSION.format(name="inst").replace("register(Good)", "register(Good())")
    code += "\nclass Fine(PairDimension):\n    name = 'fine'\n\n"
    code = code.replace("    register(Good())", "    register(Good())\n    register(Fine)")
    install_fake_dist(fake_site, "inst-plugin", {"inst_mod": code}, {"inst": "inst_mod"})
    host = load_host()
    assert "fine" in host.dimensions and "inst" not in host.dimensions  # the rest still registers
    [broken] = host.broken
    assert broken.source.distribution == "inst-plugin"
    assert "register the class itself" in broken.error and "register(Good)" in broken.error
    host.dimensions  # noqa: B018 - collected once: still one entry
    assert len(host.broken) == 1

    monkeypatch.setenv("RHO_AUDIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="register the class itself"):
        load_host().dimensions  # noqa: B018


class _Plain:
    name = "plain"


def _registering(hook: str, *args):
    """An in-process plugin whose ``hook`` calls ``register(*args)``."""

    class Plugin:
        pass

    def impl(self, register):
        register(*args)

    impl.__name__ = hook
    setattr(Plugin, hook, api.hookimpl(impl))
    return Plugin()


def _classes(base, name):
    return type(name.title().replace("-", ""), (base,), {"name": name})


@pytest.mark.parametrize(
    ("registry", "hook", "make"),
    [
        ("dimensions", "register_dimensions", lambda n: (_classes(api.PairDimension, n),)),
        ("judges", "register_judges", lambda n: (_classes(api.Judge, n),)),
        ("trainers", "register_trainers", lambda n: (_classes(api.Trainer, n),)),
        ("executors", "register_executors", lambda n: (_classes(api.Executor, n),)),
        ("probe_sets", "register_probe_sets", lambda n: (n, Path("/nowhere") / n)),
        ("report_sections", "register_report_sections", lambda n: (n, Path("/nowhere") / n)),
        ("attacks", "register_attacks", lambda n: (api.Attack(n, "An attack.", template="{request}"),)),
        ("personas", "register_personas", lambda n: (api.Persona(n, "You are someone."),)),
    ],
)
def test_every_registry_refuses_clashes_and_keeps_the_rest(registry, hook, make, monkeypatch):
    plugins = [_registering(hook, *make("twice")), _registering(hook, *make("twice"))]
    plugins.append(_registering(hook, *make("once")))
    host = load_host(plugins)
    found = getattr(host, registry)
    assert "twice" not in found and "once" in found
    refused = [b for b in host.broken if b.name == "twice"]
    assert len(refused) == 2 and all("refuses it" in b.error for b in refused)

    monkeypatch.setenv("RHO_AUDIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="twice"):
        getattr(load_host(plugins), registry)


@pytest.mark.parametrize(
    ("registry", "hook", "args", "says"),
    [
        ("judges", "register_judges", (_Plain(),), "register the class itself"),
        ("trainers", "register_trainers", (_Plain,), "not a subclass of rho_audit.api.Trainer"),
        ("dimensions", "register_dimensions", (api.PairDimension,), "has no `name`"),
        ("probe_sets", "register_probe_sets", ("only-a-name",), "register(name, folder)"),
        ("report_sections", "register_report_sections", ("factual", 3), "pass a path"),
        ("attacks", "register_attacks", ("dan", "{request}"), "call register(Attack(name"),
        ("attacks", "register_attacks", (api.Attack("none", "x", template="{request}"),), "control's name"),
        ("personas", "register_personas", ("pirate", "You are a pirate."), "call register(Persona(name"),
    ],
)
def test_a_registration_that_breaks_the_contract_is_one_broken_entry(registry, hook, args, says):
    host = load_host([_registering(hook, *args)])
    getattr(host, registry)
    [broken] = [b for b in host.broken if b.source.distribution == "(registered in-process)"]
    assert says in broken.error


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


HOOKS = [name for name, fn in inspect.getmembers(hooks, inspect.isfunction) if hasattr(fn, "rho_audit_spec")]


def test_every_hook_is_documented_with_its_parameters():
    assert set(HOOKS) >= {"register_dimensions", "register_judges", "register_trainers", "run_event"}
    for name in HOOKS:
        fn = getattr(hooks, name)
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in (fn.__doc__ or ""), f"{name} lacks :param {param}:"


def test_every_hook_has_a_test():
    """datasette's meta-test: each hook named in rho_audit.api.hooks has a test_hook_<name> below."""
    for name in HOOKS:
        assert f"test_hook_{name}" in globals(), name


def test_hook_register_dimensions():
    assert load_host().dimensions["bias"].obj.probe_kind == "choice"


def test_hook_register_judges():
    assert load_host().judges["keyword-refusal"].obj.name == "keyword-refusal"


def test_hook_register_trainers(fake_site):
    code = """
    from rho_audit.api import Trainer, hookimpl
    class T(Trainer):
        name = "demo-trainer"
    @hookimpl
    def register_trainers(register):
        register(T)
    """
    install_fake_dist(fake_site, "trainer-plugin", {"trainer_mod": code}, {"trainer": "trainer_mod"})
    host = load_host()
    assert host.trainers["demo-trainer"].source.distribution == "trainer-plugin"


def test_hook_register_executors(fake_site):
    """A third party's sweep executor is registered beside the built-in local and ray ones."""
    code = """
    from rho_audit.api import Executor, hookimpl
    class Slurm(Executor):
        name = "slurm"
        def run(self, jobs, session):
            pass
    @hookimpl
    def register_executors(register):
        register(Slurm)
    """
    install_fake_dist(fake_site, "executor-plugin", {"executor_mod": code}, {"slurm": "executor_mod"})
    host = load_host()
    assert host.executors["slurm"].source.distribution == "executor-plugin"
    assert {"local", "ray"} <= set(host.executors) and host.executor("slurm").name == "slurm"


def test_hook_register_probe_sets():
    host = load_host()
    assert (host.probe_set_path("factual") / "card.yaml").is_file()


def test_hook_register_report_sections(tmp_path):
    from rho_audit.report.render import SectionTemplates

    class Sections:
        @api.hookimpl
        def register_report_sections(self, register):
            register("factual", tmp_path)

    (tmp_path / "factual.md.j2").write_text("custom section", encoding="utf-8")
    sections = SectionTemplates.from_host(load_host([Sections()]))
    assert sections.template_for("factual", "md") == "plugin-factual/factual.md.j2"
    assert sections.template_for("factual", "html") is None  # the built-in section is used


def test_hook_register_attacks(fake_site):
    """A third party's attack is registered beside the built-ins and reaches the attack dimension."""
    code = """
    from rho_audit.api import Attack, hookimpl
    GRANDMA = Attack("grandma", "Sentimental role-play.", template="Grandma used to tell me: {request}")
    @hookimpl
    def register_attacks(register):
        register(GRANDMA)
    """
    install_fake_dist(fake_site, "attack-plugin", {"attack_mod": code}, {"grandma": "attack_mod"})
    host = load_host()
    assert host.attacks["grandma"].source.distribution == "attack-plugin"
    assert {"dan", "happy-to-help", "role-play", "wikipedia", "rot13"} <= set(host.attacks)
    assert host.attacks["grandma"].obj.apply("Q?") == "Grandma used to tell me: Q?"


def test_hook_register_personas(fake_site):
    """A third party's persona is registered by name, and audits can be put under it."""
    code = """
    from rho_audit.api import Persona, hookimpl
    PIRATE = Persona("pirate", "You are a pirate captain.", category="fictional")
    @hookimpl
    def register_personas(register):
        register(PIRATE)
    """
    install_fake_dist(fake_site, "persona-plugin", {"persona_mod": code}, {"pirate": "persona_mod"})
    host = load_host()
    assert host.personas["pirate"].source.distribution == "persona-plugin"
    [persona] = host.resolve_personas("pirate")
    assert persona.system_prompt == "You are a pirate captain." and persona.category == "fictional"


def test_hook_run_event():
    from rho_audit.api.events import RunEvent
    from rho_audit.audit.runner import emit

    seen = []

    class Observer:
        @api.hookimpl
        def run_event(self, event):
            seen.append(event.kind)

    class Crashing:
        @api.hookimpl
        def run_event(self, event):
            raise RuntimeError("observer bug")

    host = load_host([Observer(), Crashing()])
    emit(host, RunEvent("warning", "r1", message="hi"))  # the crashing observer is only logged
    assert seen == ["warning"]


# -- through the CLI: a real installed distribution (dist-info + entry_points.txt on PYTHONPATH) --

CLASH_AND_INSTANCE = """
from rho_audit.api import Judge, PairDimension, hookimpl

class ThirdPartyToxicity(PairDimension):
    name = "toxicity"
    probe_set = "toxicity"

class Picky(Judge):
    name = "picky"

@hookimpl
def register_dimensions(register):
    register(ThirdPartyToxicity)

@hookimpl
def register_judges(register):
    register(Picky())
"""


def _rho_audit(*args, site, env_extra=None):
    import os
    import subprocess
    import sys

    env = os.environ | {"PYTHONPATH": str(site)} | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "rho_audit.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture
def clash_site(tmp_path):
    """A third-party package whose `toxicity` entry point clashes with the built-in one and whose
    judge is registered as an instance."""
    site = tmp_path / "site"
    install_fake_dist(site, "acme-toxicity", {"acme_tox": CLASH_AND_INSTANCE}, {"toxicity": "acme_tox"})
    return site


def test_cli_plugins_lists_a_clash_and_an_instance_as_broken_and_exits_0(clash_site):
    import json

    listing = _rho_audit("plugins", site=clash_site)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()]  # stdout is a pipe: plain rows
    assert rows[0] == ["kind", "name", "provided by", "entry point", "description"]
    broken = [row for row in rows if row[0] == "broken"]
    clash = [row for row in broken if row[1] == "toxicity"]
    assert {row[2].split()[0] for row in clash} == {"rho-audit", "acme-toxicity"}
    assert all("registered by both" in row[4] for row in clash)
    [instance] = [row for row in broken if row[1] == "picky"]
    assert "register the class itself" in instance[4] and instance[3] == "toxicity"
    assert ["dimension", "factual"] == rows[[r[1] for r in rows].index("factual")][:2]  # the rest loads
    assert not any(row[:2] == ["dimension", "toxicity"] for row in rows)  # refused, not offered

    doc = json.loads(_rho_audit("plugins", "--json", site=clash_site).stdout)
    broken = doc["broken"]
    clash = [b for b in broken if "'toxicity'" in b["error"]]
    assert {b["distribution"] for b in clash} == {"rho-audit", "acme-toxicity"}
    for b in clash:
        assert "rho-audit" in b["error"] and "acme-toxicity" in b["error"]
    [instance] = [b for b in broken if "register the class itself" in b["error"]]
    assert instance["distribution"] == "acme-toxicity" and "register(Picky)" in instance["error"]
    assert instance["refused"] == {"kind": "judge", "name": "picky"}
    assert len(broken) == 3
    kinds = {(p["kind"], p["name"]) for p in doc["plugins"]}
    assert ("dimension", "factual") in kinds and ("dimension", "toxicity") not in kinds

    strict = _rho_audit("plugins", site=clash_site, env_extra={"RHO_AUDIT_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert "acme-toxicity" in strict.stderr and "RHO_AUDIT_STRICT_PLUGINS" in strict.stderr


def test_cli_run_of_an_unrelated_dimension_works_beside_a_clash(clash_site, tiny_model_path, tmp_path):
    store = tmp_path / "runs.sqlite"
    base = ("run", "--model", str(tiny_model_path), "-n", "4", "--store", str(store), "--display", "none")
    ok = _rho_audit(*base, "--plugins", "factual", site=clash_site)
    assert ok.returncode == 0, ok.stderr
    assert any(line.startswith("factual\t") for line in ok.stdout.splitlines()), ok.stdout

    refused = _rho_audit(*base, "--plugins", "toxicity", site=clash_site)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "registered by both" in refused.stderr and "acme-toxicity" in refused.stderr

    strict = _rho_audit(
        *base, "--plugins", "factual", site=clash_site, env_extra={"RHO_AUDIT_STRICT_PLUGINS": "1"}
    )
    assert strict.returncode == 2 and "acme-toxicity" in strict.stderr and "Traceback" not in strict.stderr
