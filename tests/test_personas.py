"""Personas: the API record, persona files, the model's system turn, ``run --persona`` end to end
(a persona and a dimension registered by a plugin defined here, not in plugins/), the run config
and card, and the sweep's ``personas:`` axis."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rho_audit import api
from rho_audit.api import GenerationDimension, PairDimension, Persona, hookimpl
from rho_audit.api.errors import PluginError
from rho_audit.audit.runner import AuditConfig, run_audit
from rho_audit.model.language_model import LanguageModel
from rho_audit.plugins import load_host
from rho_audit.probesets.persona_files import PersonaFileError, load_persona_file
from rho_audit.store import RunStore
from tests.test_sweep import GOOD, FakeTrainers, fakes, plan_of, problems_of, write  # noqa: F401

PIRATE = Persona("pirate", "You are Captain Flint, a pirate. Speak like one.", category="fictional")
CHEF = Persona("chef", "You are a French chef who answers every question about food.")


# -- the record ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"name": "Pirate", "system_prompt": "x"}, "lowercase letters, digits and hyphens"),
        ({"name": "old_sailor", "system_prompt": "x"}, "lowercase letters, digits and hyphens"),
        ({"name": "", "system_prompt": "x"}, "lowercase letters"),
        ({"name": "pirate", "system_prompt": "  "}, "system_prompt must be non-empty"),
        ({"name": "pirate", "system_prompt": "x", "category": ""}, "category must be non-empty"),
    ],
)
def test_a_bad_persona_says_what_to_fix(kwargs, says):
    with pytest.raises(ValueError, match=says):
        Persona(**kwargs)


def test_a_persona_is_a_system_turn_and_a_config_record():
    assert PIRATE.turn() == ("system", PIRATE.system_prompt)
    assert PIRATE.to_json() == {
        "name": "pirate",
        "system_prompt": PIRATE.system_prompt,
        "category": "fictional",
    }
    assert "category" not in CHEF.to_json()  # only when set


# -- persona files -------------------------------------------------------------------------------


def test_jsonl_and_yaml_files_load_in_file_order(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps(PIRATE.to_json()) + "\n\n" + json.dumps(CHEF.to_json()) + "\n")
    assert load_persona_file(jsonl) == (PIRATE, CHEF)
    listed = tmp_path / "p.yaml"
    listed.write_text(
        "- name: pirate\n  system_prompt: You are Captain Flint, a pirate. Speak like one.\n"
        "  category: fictional\n- {name: chef, system_prompt: 'You are a French chef who answers every "
        "question about food.'}\n"
    )
    assert load_persona_file(listed) == (PIRATE, CHEF)
    keyed = tmp_path / "k.yml"
    keyed.write_text("personas:\n  - name: chef\n    system_prompt: " + CHEF.system_prompt + "\n")
    assert load_persona_file(keyed) == (CHEF,)


def test_file_errors_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"name": "pirate", "system_prompt": "Arr."}),
        json.dumps({"name": "Bad Name", "system_prompt": "x"}),
        json.dumps({"name": "chef"}),
        json.dumps({"name": "pirate", "system_prompt": "Again."}),
        json.dumps({"name": "x", "system-prompt": "typo"}),
        "{not json",
        json.dumps({"name": "y", "system_prompt": 3}),
    ]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(PersonaFileError) as info:
        load_persona_file(bad)
    text = str(info.value)
    assert f"{bad}:2: name: persona name 'Bad Name'" in text
    assert f"{bad}:3: system_prompt: required field is missing" in text
    assert f"{bad}:4: name: duplicate persona 'pirate' (first on line 1)" in text
    assert f"{bad}:5: system-prompt: unknown field" in text and f"{bad}:5: system_prompt: required" in text
    assert f"{bad}:6: not valid JSON" in text
    assert f"{bad}:7: system_prompt: must be non-empty text (got 3)" in text

    yaml_file = tmp_path / "bad.yaml"
    yaml_file.write_text(
        "- name: pirate\n  system_prompt: Arr.\n- name: chef\n  category: 7\n  system_prompt: ''\n"
    )
    with pytest.raises(PersonaFileError) as info:
        load_persona_file(yaml_file)
    text = str(info.value)
    assert f"{yaml_file}:4: category: must be non-empty text (got 7)" in text
    assert f"{yaml_file}:5: system_prompt: must be non-empty text (got '')" in text

    for name, content, says in [
        ("dup.yaml", "- name: a\n  name: b\n  system_prompt: x\n", ":2: name: duplicate key"),
        ("syntax.yaml", "- name: [a\n", "not valid YAML"),
        ("scalar.yaml", "just text\n", ":1: expected a list of personas"),
        ("empty.jsonl", "\n", ":1: the file holds no personas"),
        ("notes.txt", "x", "ends in .jsonl, .yaml or .yml"),
    ]:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(PersonaFileError, match=says):
            load_persona_file(path)


# -- the model's system turn ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return LanguageModel.load(tiny_model_path, "tiny")


def test_the_system_turn_comes_before_the_user_turn_in_both_templates(lm):
    lm.system_prompt = None
    plain_chat, plain_raw = lm.format_prompt("Q?", "chat"), lm.format_prompt("Q?", "raw")
    bare = lm.pair_tokens(None, "A statement.", "chat")
    lm.system_prompt = PIRATE.system_prompt
    try:
        chat = lm.format_prompt("Q?", "chat")
        assert chat.startswith(f"<|im_start|>system\n{PIRATE.system_prompt}<|im_end|>\n")
        assert chat.endswith(plain_chat)
        assert lm.format_prompt("Q?", "raw") == f"{PIRATE.system_prompt}\n\n{plain_raw}"
        # Scoring and training share pair_tokens: the persona's turn leads any earlier turns.
        context, _ = lm.pair_tokens("Q?", "A.", "chat", (("assistant", "Earlier."),))
        decoded = lm.tokenizer.decode(context)
        assert decoded.index(PIRATE.system_prompt) < decoded.index("Earlier.") < decoded.index("Q?")
        raw, _ = lm.pair_tokens("Q?", "A.", "raw", (("user", "Earlier."),))
        assert lm.tokenizer.decode(raw).startswith(f"{PIRATE.system_prompt}\n\nEarlier.\n\nQ?")
        assert lm.pair_tokens(None, "A statement.", "chat") == bare  # a bare statement is unchanged
    finally:
        lm.system_prompt = None
    assert lm.format_prompt("Q?", "chat") == plain_chat


# -- run --persona end to end --------------------------------------------------------------------

PROMPTED = [
    {
        "id": f"q{i}",
        "split": "eval",
        "prompt": f"Question {i}?",
        "positive": f"Yes {i}.",
        "negative": f"No {i}.",
    }
    for i in range(4)
]
BARE = [{"id": f"b{i}", "split": "eval", "positive": f"Wet {i}.", "negative": f"Dry {i}."} for i in range(4)]


#: The entry points of the in-repo persona package, kept out of these host tests.
PERSONA_PACKAGE = "personas,personas-leakage"


def _probe_set(folder: Path, name: str, kind: str, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "card.yaml").write_text(f"name: {name}\nkind: {kind}\nversion: '1'\n")
    (folder / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def persona_host(tmp_path_factory):
    """A third party's plugin, defined here: a persona, two pair dimensions (prompted, bare) and a
    generation dimension, each with its own probe set."""
    root = tmp_path_factory.mktemp("persona-plugin")
    sets = {
        "prompted": _probe_set(root / "prompted", "prompted", "pair", PROMPTED),
        "bare": _probe_set(root / "bare", "bare", "pair", BARE),
        "asked": _probe_set(
            root / "asked",
            "asked",
            "generation",
            [{"id": f"g{i}", "split": "eval", "prompt": f"Tell me about ships {i}."} for i in range(2)],
        ),
    }

    class Prompted(PairDimension):
        name = "prompted"

    class Bare(PairDimension):
        name = "bare"

    class Asked(GenerationDimension):
        name = "asked"
        max_tokens = 3

    class Plugin:
        @hookimpl
        def register_personas(self, register):
            register(PIRATE)

        @hookimpl
        def register_dimensions(self, register):
            for cls in (Prompted, Bare, Asked):
                register(cls)

        @hookimpl
        def register_probe_sets(self, register):
            for name, folder in sets.items():
                register(name, folder)

    # The host's own test: an installed persona package (packages/rho-audit-personas registers a
    # `pirate` too) would clash with this module's personas, so its entry points are left out.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RHO_AUDIT_DISABLE_PLUGINS", PERSONA_PACKAGE)
        return load_host(extra_plugins=[Plugin()])


@pytest.fixture(scope="module")
def persona_runs(tiny_model_path, tmp_path_factory, persona_host):
    """The same audit without and with the plugin's persona, every text the model encoded recorded."""
    store = tmp_path_factory.mktemp("runs") / "runs.sqlite"
    encoded: dict[str | None, list[str]] = {}
    original = LanguageModel.encode

    def spy(self, text):
        encoded.setdefault(self.system_prompt, []).append(text)
        return original(self, text)

    patch = pytest.MonkeyPatch()
    patch.setattr(LanguageModel, "encode", spy)
    try:
        outcomes = {}
        for persona in (None, "pirate"):
            resolved = persona_host.resolve_personas(persona)[0] if persona else None
            config = AuditConfig(
                model=str(tiny_model_path),
                dimensions=("prompted", "bare", "asked"),
                store=store,
                persona=resolved,
                json_out=store.parent / f"{persona}.json",
            )
            outcomes[persona] = run_audit(config, persona_host)
    finally:
        patch.undo()
    return store, outcomes, encoded


def _records(outcome, dimension):
    [result] = [r for r in outcome.results if r.dimension == dimension]
    assert result.error is None
    return {r.probe_id: r for r in result.evaluation.records}


def test_every_prompt_scored_and_generated_carries_the_persona(persona_runs):
    _, outcomes, encoded = persona_runs
    assert all(o.status == "complete" for o in outcomes.values())
    texts = encoded[PIRATE.system_prompt]
    for probe in PROMPTED:  # scored contexts
        [context] = [t for t in texts if probe["prompt"] in t]
        assert context.index(PIRATE.system_prompt) < context.index(probe["prompt"])
    for i in range(2):  # generation prompts
        [prompt] = [t for t in texts if f"Tell me about ships {i}." in t]
        assert prompt.startswith(f"<|im_start|>system\n{PIRATE.system_prompt}")
    assert not any(PIRATE.system_prompt in t for t in encoded[None])
    # The persona changes what is scored after a prompt, not a bare statement.
    plain, persona = outcomes[None], outcomes["pirate"]
    assert _records(plain, "bare") == _records(persona, "bare")
    changed = _records(plain, "prompted"), _records(persona, "prompted")
    assert all(changed[0][k].values != changed[1][k].values for k in changed[0])


def test_the_run_config_records_the_persona_and_a_run_without_keeps_its_hash(persona_runs):
    store_path, outcomes, _ = persona_runs
    store = RunStore(store_path)
    try:
        plain, persona = (store.run(outcomes[k].run_id) for k in (None, "pirate"))
    finally:
        store.close()
    assert persona.config["persona"] == PIRATE.to_json()
    assert "persona" not in plain.config
    # Without the persona key the two configs are the same settings, hashed as before personas.
    assert {k: v for k, v in persona.config.items() if k != "persona"} == plain.config
    sha = hashlib.sha256(json.dumps(plain.config, sort_keys=True).encode()).hexdigest()
    assert plain.config_sha256 == sha != persona.config_sha256
    doc = json.loads((store_path.parent / "pirate.json").read_text())
    assert doc["run"]["config"]["persona"]["name"] == "pirate"


def test_the_card_shows_the_persona(persona_runs, tmp_path):
    from rho_audit.report.cards import build_card
    from rho_audit.report.render import render

    store_path, outcomes, _ = persona_runs
    store = RunStore(store_path)
    try:
        md = {k: render(build_card(store, [outcomes[k].run_id]), "md").text for k in (None, "pirate")}
        html = render(build_card(store, [outcomes["pirate"].run_id]), "html").text
    finally:
        store.close()
    assert "| persona | pirate (fictional): " in md["pirate"]
    assert "bare statements (no prompt) are scored without it" in md["pirate"]
    assert "| persona |" not in md[None]
    assert "<dt>persona</dt>" in html and "Captain Flint" in html


def test_run_cli_takes_a_name_or_a_file(tiny_model_path, tmp_path, persona_host, monkeypatch):
    from click.testing import CliRunner

    from rho_audit.cli import main

    monkeypatch.setattr("rho_audit.plugins.load_host", lambda *a, **k: persona_host)
    file = tmp_path / "mine.jsonl"
    file.write_text(json.dumps(CHEF.to_json()) + "\n")
    store = tmp_path / "s.sqlite"
    args = ["run", "--model", str(tiny_model_path), "-p", "prompted", "--store", str(store), "-n", "2"]
    args += ["--display", "none"]
    result = CliRunner().invoke(
        main, [*args, "--persona", "pirate", "--persona", str(file), "--json", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 0, result.output
    assert "persona pirate" in result.output and "persona chef" in result.output
    reader = RunStore(store)
    try:
        assert [r.config["persona"]["name"] for r in reader.runs()] == ["pirate", "chef"]
    finally:
        reader.close()
    assert (tmp_path / "o.pirate.json").is_file() and (tmp_path / "o.chef.json").is_file()
    listed = json.loads(CliRunner().invoke(main, ["plugins", "--json"]).output)["plugins"]
    assert ("persona", "pirate") in {(p["kind"], p["name"]) for p in listed}
    wrong = CliRunner().invoke(main, [*args, "--persona", "pirat"])
    assert isinstance(wrong.exception, PluginError) and "Did you mean 'pirate'?" in str(wrong.exception)


def test_an_unknown_persona_says_what_is_known(persona_host):
    with pytest.raises(PluginError, match=r"unknown persona 'pirat'.*Did you mean 'pirate'"):
        persona_host.resolve_personas("pirat")
    assert api.Persona is Persona and "register_personas" in dir(api.hooks)


# -- the sweep's personas axis -------------------------------------------------------------------

SWEEP = GOOD.replace(
    "audit: {dimensions: [factual, toxicity], limit: 10}",
    "audit: {dimensions: [factual, toxicity], limit: 10, personas: [pirate, chef]}",
)


class Personas:
    @hookimpl
    def register_personas(self, register):
        for persona in (PIRATE, CHEF, Persona("sailor", "You are an old sailor.")):
            register(persona)


@pytest.fixture
def sweep_host(monkeypatch):
    monkeypatch.setenv(
        "RHO_AUDIT_DISABLE_PLUGINS", f"trainers,six-objectives,example-calibration,{PERSONA_PACKAGE}"
    )
    return load_host(extra_plugins=[FakeTrainers(), Personas()])


def test_the_personas_axis_copies_every_cell_and_baseline_per_persona(tmp_path, sweep_host):
    from rho_audit.train.config import TrainConfig

    plan = plan_of(tmp_path, sweep_host, SWEEP)
    ids = [c.cell_id for c in plan.run_order()]
    assert ids[:4] == [
        "baseline_persona-pirate",
        "baseline_persona-chef",
        "fake-sft_persona-pirate_seed1",
        "fake-sft_persona-chef_seed1",
    ]
    assert len(ids) == 2 * 7 and len({c.config_sha256 for c in plan.cells}) == 14
    cell = next(c for c in plan.cells if c.cell_id == "fake-guided_lambda0.2_persona-chef_seed2")
    assert cell.condition == "fake-guided_lambda0.2_persona-chef"
    assert cell.model_label == "default (persona chef)"
    assert cell.audit["persona"] == "chef" and "personas" not in cell.audit
    twin = next(c for c in plan.cells if c.cell_id == "fake-guided_lambda0.2_persona-pirate_seed2")
    # One training config for both: the second cell reuses the first's adapter.
    same = [TrainConfig.model_validate(c.train).config_sha256() for c in (cell, twin)]
    assert same[0] == same[1] and cell.adapter_dir != twin.adapter_dir
    # A sweep without personas keeps its ids and hashes; adding a persona keeps the others'.
    plain = plan_of(tmp_path, sweep_host)
    assert plan_of(tmp_path, sweep_host, GOOD.replace("limit: 10}", "limit: 10, personas: null}")) == plain
    assert all("persona" not in c.audit for c in plain.cells)
    three = plan_of(tmp_path, sweep_host, SWEEP.replace("[pirate, chef]", "[pirate, chef, sailor]"))
    before = {c.cell_id: c.config_sha256 for c in plan.cells}
    after = {c.cell_id: c.config_sha256 for c in three.cells}
    assert len(after) == 21 and {k: after[k] for k in before} == before


def test_unknown_and_repeated_personas_are_named_at_their_line(tmp_path, sweep_host):
    text = SWEEP.replace("[pirate, chef]", "[pirat, chef, chef]")
    msg = problems_of(tmp_path, sweep_host, text)
    path = tmp_path / "sweep.yaml"
    assert f"{path}:9: audit.personas[0]: unknown persona 'pirat'" in msg and "did you mean 'pirate'?" in msg
    assert f"{path}:9: audit.personas[2]: repeats the value 'chef'" in msg
    empty = problems_of(tmp_path, sweep_host, SWEEP.replace("[pirate, chef]", "[]"))
    assert f"{path}:9: audit.personas:" in empty


def test_dry_run_and_run_audit_each_cell_under_its_persona(tmp_path, sweep_host, fakes, monkeypatch):  # noqa: F811
    from click.testing import CliRunner

    from rho_audit.cli.sweep import sweep
    from rho_audit.train import sweep as sw

    monkeypatch.setattr("rho_audit.plugins.load_host", lambda: sweep_host)
    path, store = write(tmp_path, SWEEP), tmp_path / "runs.sqlite"
    args = [str(path), "--dry-run", "--store", str(store), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(sweep, args)
    assert result.exit_code == 0, result.output
    assert "14 cells, 0 complete" in result.output and "fake-sft_persona-chef_seed1" in result.output
    assert "personas: pirate, chef" in result.output and not store.exists()

    seen: list[tuple[str | None, str | None]] = []
    fake_audit = fakes[1]

    def audit(config, host):  # the fake audit, recording the persona each audit ran under
        seen.append((config.adapter, config.persona.name if config.persona else None))
        return fake_audit(config, host)

    monkeypatch.setattr("rho_audit.audit.runner.run_audit", audit)
    plan = plan_of(tmp_path, sweep_host, SWEEP)
    outcome = sw.run_sweep(plan, store, sweep_host)
    assert len(outcome.ran) == 14 and not outcome.failed
    assert [p for _, p in seen] == [c.audit["persona"] for c in plan.run_order()]
    summary = sw.summarize(plan, store)
    assert set(summary.baselines) == {"default (persona pirate)", "default (persona chef)"}
    conditions = {c.condition for c in summary.conditions}
    assert {"fake-guided_lambda0.2_persona-pirate", "fake-guided_lambda0.2_persona-chef"} <= conditions


def test_the_sweep_card_compares_each_persona_with_its_own_baseline(tmp_path, sweep_host, fakes):  # noqa: F811
    from rho_audit.report.cards import build_card
    from rho_audit.report.render import render
    from rho_audit.train import sweep as sw

    plan = plan_of(tmp_path, sweep_host, SWEEP)
    store = tmp_path / "runs.sqlite"
    assert not sw.run_sweep(plan, store, sweep_host).failed
    reader = RunStore(store)
    try:
        text = render(build_card(reader, [plan.sweep_id]), "md").text
    finally:
        reader.close()
    assert "| personas | " not in text and "persona: pirate" not in text
    assert "personas: pirate, chef" in text  # the audit row names every persona of the sweep
    assert "| default (persona pirate) | +0.100 | +0.100 |" in text  # a baseline per persona
    assert "| default (persona pirate): fake-guided λ=0.2 | 2 / 2 | +0.215 ± 0.007 (n=2) |" in text


def test_the_comparison_card_names_each_runs_persona(persona_runs):
    from rho_audit.report.cards import build_card
    from rho_audit.report.render import render

    store_path, outcomes, _ = persona_runs
    store = RunStore(store_path)
    try:
        ids = [outcomes[None].run_id, outcomes["pirate"].run_id]
        md = render(build_card(store, ids), "md").text
        html = render(build_card(store, ids), "html").text
    finally:
        store.close()
    model = outcomes[None].model_id
    assert f"| {ids[1]} | {model} (persona pirate) |" in md and f"| {ids[0]} | {model} |" in md
    assert f"after: run {ids[1]}, {model} (persona pirate); before: run {ids[0]}, {model}." in md
    assert f"## {model} (persona pirate) + base model, " in md  # the section title names the persona
    assert f"{model} (persona pirate)</td>" in html
