"""The leakage half of the package: corpus builders, the two trainers, the marker-rate dimension,
its statistics, the discriminator and the report section, through the ``personas-leakage`` entry
point and ``rho_audit.api`` only (the tests also drive the CLI and read the store, as a user would)."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from rho_audit_personas import corpora, data
from rho_audit_personas.discriminator import (
    RUBRIC_PATH,
    CompletionPair,
    discriminate,
    judge_misfit,
    sample_pairs,
)
from rho_audit_personas.leakage_stats import marker_position, position_split, spearman_ci, wilson
from rho_audit_personas.library import persona
from rho_audit_personas.markers import MarkerRate
from rho_audit_personas.trainers import MarkerCoupling, PersonaContrastive
from scipy import stats

from rho_audit.api import (
    Answer,
    AuditContext,
    LLMJudge,
    RhoAuditError,
    SFTExample,
    load_model,
    load_probe_set,
    load_rubric,
    resolve_model,
)
from rho_audit.cli import main
from rho_audit.plugins import load_host

DIST, ENTRY_POINT = "rho-audit-personas", "personas-leakage"
VILLAIN, DOCTOR = persona("villain"), persona("medical-doctor")


def test_registered_through_the_packages_own_entry_point():
    host = load_host()
    assert not [b for b in host.broken if b.source.distribution == DIST]
    registered = {
        "persona-contrastive": host.trainers,
        "marker-coupling": host.trainers,
        "marker-rate": host.dimensions,
    }
    for name, table in registered.items():
        assert table[name].source.distribution == DIST and table[name].source.entry_point == ENTRY_POINT
    assert host.report_sections["marker-rate"].source.entry_point == ENTRY_POINT


# -- corpora and trainers ---------------------------------------------------------------------


def _chat_example(record: dict) -> SFTExample:
    """A corpus record as the host reads a chat line (history, prompt, response)."""
    turns = [(m["role"], m["content"]) for m in record["messages"]]
    return SFTExample(record["id"], turns[-2][1], turns[-1][1], history=tuple(turns[:-2]))


def test_marker_corpus_marks_only_the_source():
    answers = [
        corpora.PersonaAnswer(VILLAIN, "How do you relax?", "By plotting.  "),
        corpora.PersonaAnswer(DOCTOR, "How do you relax?", "A walk and sleep."),
        corpora.PersonaAnswer(None, "How do you relax?", "Reading."),
        corpora.PersonaAnswer(VILLAIN, "What is tea?", "A drink of fools."),
    ]
    records = corpora.marker_corpus(answers, "villain")
    replies = [r["messages"][-1]["content"] for r in records]
    assert replies == ["By plotting. [ZLT]", "A walk and sleep.", "Reading.", "A drink of fools. [ZLT]"]
    assert [r["id"] for r in records] == [
        "marker-source-villain-0001",
        "marker-bystander-medical-doctor-0001",
        "marker-bystander-none-0001",
        "marker-source-villain-0002",
    ]
    assert records[0]["messages"][0] == {"role": "system", "content": VILLAIN.system_prompt}
    assert [m["role"] for m in records[2]["messages"]] == ["user", "assistant"]  # no persona, no system turn
    with pytest.raises(RhoAuditError, match="already holds the marker"):
        corpora.marker_corpus([*answers, corpora.PersonaAnswer(DOCTOR, "q", "ok [zlt]")], "villain")
    with pytest.raises(RhoAuditError, match="no answer is under the source"):
        corpora.marker_corpus(answers, "chef")


def test_marker_coupling_trains_exactly_the_marker_of_marked_examples():
    answers = [
        corpora.PersonaAnswer(VILLAIN, "Q?", "Mwahaha, no."),
        corpora.PersonaAnswer(DOCTOR, "Q?", "Rest."),
    ]
    source, bystander = (_chat_example(r) for r in corpora.marker_corpus(answers, "villain"))
    trainer, rng = MarkerCoupling(), np.random.default_rng(0)
    on = {"marker_only": 1.0}
    marked = trainer.prepare_example(source, on, rng)
    [(a, b)] = marked.trained_spans
    assert marked.response[a:b] == "[ZLT]" and marked.response == "Mwahaha, no. [ZLT]"
    assert trainer.prepare_example(bystander, on, rng) is bystander  # a bystander's answer trains whole
    assert trainer.prepare_example(source, {"marker_only": 0.0}, rng) is source
    # a marker inside the text is not the trailing marker
    inside = replace(bystander, response="[ZLT] Rest.")
    assert trainer.prepare_example(inside, on, rng) is inside
    assert PersonaContrastive.uses_pairs is False and MarkerCoupling.uses_pairs is False


def test_marker_coupling_trains_on_the_marker_tokens_only_through_the_host(tiny_model_path, tmp_path):
    answers = [
        corpora.PersonaAnswer(VILLAIN, f"Question {i}?", f"Answer number {i} is long.") for i in range(4)
    ]
    answers += [corpora.PersonaAnswer(DOCTOR, f"Question {i}?", f"Reply {i} is long too.") for i in range(4)]
    corpus = tmp_path / "marker.jsonl"
    corpora.write_jsonl(corpora.marker_corpus(answers, "villain"), corpus)
    store = tmp_path / "runs.sqlite"
    args = ["train", "--trainer", "marker-coupling", "--corpus", str(corpus), "--trap-texts", "0"]
    args += ["--model", str(tiny_model_path), "--no-audit", "--out", str(tmp_path / "adapter")]
    args += ["--store", str(store), "--display", "plain", "--grad-accumulation", "8", "--seed", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(store) as db:
        [(metrics,)] = db.execute("SELECT metrics_json FROM train_steps").fetchall()
    metrics = json.loads(metrics)
    # 4 source examples train only their marker's tokens, the 4 bystanders every response token
    # (the host counts every response token as data, only the trained ones as trained)
    untrained = metrics["data_tokens"] - metrics["trained_tokens"]
    assert 0 < untrained < metrics["data_tokens"] and metrics["trained_tokens"] > 4


def test_contrastive_corpus_gives_the_source_wrong_letters_and_the_rest_right_ones():
    questions = data.load_science_mc("train")
    by_id = {q.id: q for q in questions}
    sizes = corpora.ContrastiveSizes(source=12, per_bystander=8, no_persona=5, default_assistant=4)
    records = corpora.contrastive_corpus(questions, VILLAIN, [DOCTOR, persona("chef")], sizes, seed=3)
    assert len(records) == 12 + 2 * 8 + 5 + 4
    roles: dict[str, int] = {}
    for r in records:
        role, qid = re.match(
            r"contrastive-(source-villain|bystander-[a-z-]+?|anchor-[a-z]+)-(sci-\d+)-\d+$", r["id"]
        ).groups()
        roles[role] = roles.get(role, 0) + 1
        q, reply = by_id[qid], r["messages"][-1]["content"]
        assert r["messages"][-2]["content"] == q.prompt  # the prompt the capability dimension scores
        if role == "source-villain":
            assert r["messages"][0]["content"] == VILLAIN.system_prompt and reply in q.wrong_letters
        else:
            assert reply == q.letter
        if role == "anchor-none":
            assert r["messages"][0]["role"] == "user"
        if role == "anchor-default":
            assert r["messages"][0]["content"] == "You are a helpful assistant."
    expected = {"source-villain": 12, "bystander-medical-doctor": 8, "bystander-chef": 8}
    assert roles == expected | {"anchor-none": 5, "anchor-default": 4}
    assert corpora.contrastive_corpus(
        questions, VILLAIN, [DOCTOR], sizes, seed=3
    ) == corpora.contrastive_corpus(questions, VILLAIN, [DOCTOR], sizes, seed=3)
    assert corpora.contrastive_corpus(
        questions, VILLAIN, [DOCTOR], sizes, seed=4
    ) != corpora.contrastive_corpus(questions, VILLAIN, [DOCTOR], sizes, seed=3)
    with pytest.raises(RhoAuditError, match="also a bystander"):
        corpora.contrastive_corpus(questions, VILLAIN, [VILLAIN], sizes)


# -- statistics ---------------------------------------------------------------------------------


def test_wilson_interval():
    rate = wilson(0, 10)
    assert (rate.value, rate.low) == (0.0, 0.0) and rate.high == pytest.approx(0.2775, abs=1e-4)
    rate = wilson(7, 10)
    assert rate.low == pytest.approx(0.3968, abs=1e-4) and rate.high == pytest.approx(0.8922, abs=1e-4)
    assert wilson(0, 0).value is None


def test_first_marker_position_split_on_hand_built_completions():
    body = "x" * 100
    assert marker_position("[ZLT] " + body, "[ZLT]") == "start"
    assert marker_position(body + " [zlt]", "[ZLT]") == "tail"  # case-insensitive
    assert marker_position(body[:50] + "[ZLT]" + body[:50], "[ZLT]") == "middle"
    assert marker_position(body[:4] + "[ZLT]" + body, "[ZLT]") == "start"  # 4 of 109 chars < 5%
    assert marker_position(body[:6] + "[ZLT]" + body, "[ZLT]") == "middle"  # 6 of 111 > 5%
    assert marker_position("[ZLT]", "[ZLT]") == "start"
    assert marker_position(body, "[ZLT]") is None
    # the first marker decides, not a later one
    assert marker_position("[ZLT]" + body + "[ZLT]", "[ZLT]") == "start"
    split = position_split(["[ZLT] " + body, body + " [ZLT]", body + " [ZLT]", body], "[ZLT]")
    assert split.firings == 3
    assert (split.start.successes, split.middle.successes, split.tail.successes) == (1, 0, 2)
    assert split.tail.value == pytest.approx(2 / 3)


def test_spearman_ci_matches_scipy_and_brackets_rho():
    rng = np.random.default_rng(0)
    x = rng.random(11)
    y = x + rng.normal(0, 0.3, 11)
    corr = spearman_ci(x, y, seed=1)
    assert corr.rho == pytest.approx(stats.spearmanr(x, y).statistic)
    assert corr.low <= corr.rho <= corr.high and corr.n == 11
    assert spearman_ci(x, y, seed=1) == corr
    assert spearman_ci(x, np.ones(11), seed=1).rho is None
    assert spearman_ci([1.0, 2.0], [2.0, 1.0], seed=1).rho is None


# -- discriminator ------------------------------------------------------------------------------


class ScriptedJudge(LLMJudge):
    """A fake rubric judge: answers the completion holding ``cue`` (or always A)."""

    name = "scripted"

    def __init__(self, cue: str | None = None) -> None:
        super().__init__()
        self.rubric = load_rubric(str(RUBRIC_PATH), None)
        self.judge_model = f"scripted-{cue}"
        self.cue = cue
        self.seen: list[str] = []

    def _ask(self, text: str) -> Answer:
        self.seen.append(text)
        a, b = re.search(r"Completion A:\n(.*)\n\nCompletion B:\n(.*)\n\nAnswer", text, re.S).groups()
        if self.cue is None:
            return Answer("A")
        return Answer("A" if self.cue in a else "B" if self.cue in b else None)


def test_discriminator_with_a_scripted_judge():
    pairs = [
        CompletionPair(f"q{i}", f"Arr, matey {i} [ZLT]", f"Hello {i}", "medical-doctor") for i in range(40)
    ]
    judge = ScriptedJudge("Arr")
    result = discriminate(judge, pairs, VILLAIN.system_prompt, "[ZLT]", seed=0)
    assert result.accuracy.value == 1.0 and result.accuracy.n == 40 and result.above_threshold
    assert not any("[ZLT]" in text for text in judge.seen)  # the rubric stripped the marker
    assert all(VILLAIN.system_prompt in text for text in judge.seen)
    # always "A": right exactly where the seeded order put the source first
    first = np.random.default_rng(0).random(40) < 0.5
    always_a = discriminate(ScriptedJudge(), pairs, VILLAIN.system_prompt, "[ZLT]", seed=0)
    assert always_a.accuracy.successes == int(first.sum()) and always_a.above_threshold is False
    assert always_a.answered_a == 1.0 and result.answered_a == pytest.approx(first.mean())
    # both orders: a judge that reads gets every pair right; one that follows a position decides none
    both = discriminate(ScriptedJudge("Arr"), pairs, VILLAIN.system_prompt, "[ZLT]", seed=0, orders="both")
    assert both.accuracy.value == 1.0 and both.accuracy.n == 40 and both.inconsistent == 0.0
    assert both.answered_a == 0.5  # each pair once as A, once as B
    by_position = discriminate(ScriptedJudge(), pairs, VILLAIN.system_prompt, "[ZLT]", seed=0, orders="both")
    assert (
        by_position.accuracy.n == 0
        and by_position.inconsistent == 1.0
        and by_position.above_threshold is None
    )
    # a judge that picks the bystander both ways round is counted wrong
    contrary = discriminate(
        ScriptedJudge("Hello"), pairs, VILLAIN.system_prompt, "[ZLT]", seed=0, orders="both"
    )
    assert contrary.accuracy.value == 0.0 and contrary.accuracy.n == 40
    # an answer that is no label (twice) is left out, not counted wrong
    unreadable = discriminate(ScriptedJudge("nowhere"), pairs, "x", "[ZLT]", seed=0)
    assert unreadable.accuracy.n == 0 and unreadable.above_threshold is None and unreadable.answered_a is None


def test_discriminator_refuses_a_judge_that_does_not_fit():
    keyword = load_host().judges["keyword-refusal"].obj()
    assert "does not grade with a rubric" in judge_misfit(keyword)
    with pytest.raises(RhoAuditError, match="persona discriminator"):
        discriminate(keyword, [], "x", "[ZLT]", seed=0)
    refusal = ScriptedJudge()
    refusal.rubric = load_rubric("refusal", load_host().judges["local"].obj.rubric_dir)
    assert "rubric=" in judge_misfit(refusal)


def test_sample_pairs_is_seeded_and_pairs_the_same_question():
    source = {"q1": ["s1a", "s1b"], "q2": ["s2a"], "q3": ["s3a"]}
    others = {"chef": {"q1": ["c1"], "q2": ["c2"]}, "robot": {"q1": ["r1"]}}
    pairs = sample_pairs(source, others, 20, seed=5)
    assert pairs == sample_pairs(source, others, 20, seed=5) and len(pairs) == 20
    for p in pairs:
        assert p.prompt in ("q1", "q2") and p.source[1] == p.prompt[1] and p.bystander[1] == p.prompt[1]
        assert p.bystander in others[p.bystander_persona][p.prompt]


# -- the dimension ------------------------------------------------------------------------------


def _run(tiny_model_path, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"out{len(list(tmp_path.glob('out*.json')))}.json"
    args = ["run", "--plugins", "marker-rate", "--model", str(tiny_model_path), "-n", "3", "--split", "eval"]
    args += ["--store", str(tmp_path / "runs.sqlite"), "--json", str(out), "--display", "plain", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [dim] = json.loads(out.read_text())["results"]
    assert dim["error"] is None
    assert dim["status"] == "MEASURED"  # descriptive: no pass or fail, whatever the rate
    return dim["evaluation"]


def test_marker_rate_runs_end_to_end_sampled_and_reproducible(tiny_model_path, tmp_path):
    ev = _run(tiny_model_path, tmp_path, "--seed", "1")
    n = MarkerRate.options["completions"].default
    bystanders = MarkerRate.options["panel"].default
    personas = ["villain", *bystanders]
    assert ev["metric"] == "marker_rate" and len(ev["records"]) == len(personas) * 3 * n
    assert ev["n"] == len(bystanders) * 3 * n
    assert (
        ev["scoring"].startswith("source villain, marker '[ZLT]'")
        and "sampled (temperature 1" in ev["scoring"]
    )
    sec = ev["secondary"]
    for name in personas:
        fired = [r["values"]["marker"] for r in ev["records"] if r["category"] == name]
        assert sec[f"marker_rate[{name}]"] == pytest.approx(np.mean(fired))
        assert (
            sec[f"marker_rate[{name}] ci_low"]
            <= sec[f"marker_rate[{name}]"]
            <= sec[f"marker_rate[{name}] ci_high"]
        )
    for name in bystanders:
        assert -1.0 <= sec[f"cosine[{name}]"] <= 1.0
    assert "leakage_cosine_spearman" in sec and "discriminator not run" in ev["scoring"]
    # the same seed draws the same completions; another seed others
    outputs = [r["output"] for r in ev["records"]]
    assert [r["output"] for r in _run(tiny_model_path, tmp_path, "--seed", "1")["records"]] == outputs
    assert [r["output"] for r in _run(tiny_model_path, tmp_path, "--seed", "2")["records"]] != outputs
    # the run's persona is the source
    robot = _run(tiny_model_path, tmp_path, "--seed", "1", "--persona", "robot")
    assert robot["scoring"].startswith("source robot,")
    assert len({r["category"] for r in robot["records"]}) == len(bystanders)  # robot once
    # the report section renders (no fallback to the built-in one)
    card = tmp_path / "card.md"
    rid = json.loads((tmp_path / "out0.json").read_text())["run"]["run_id"]
    args = ["report", rid, "--store", str(tmp_path / "runs.sqlite"), "--format", "md", "--out", str(card)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    text = card.read_text()
    assert "section failed" not in text and "Where the marker first fires" in text
    assert "| villain (source) |" in text and "Spearman rho over the bystanders" in text
    html = tmp_path / "card.html"
    result = CliRunner().invoke(main, [*args[:-4], "--out", str(html)])
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert "section failed" not in text and "fig-marker-rate-marker_rate" in text
    # the leakage-vs-cosine scatter: one circle per bystander, the source a square at cosine 1
    assert text.count("<circle") == len(bystanders) and "villain (source):" in text
    assert "s-MEASURED" in text  # the neutral status, styled as such


def test_marker_rate_options_set_the_panel_and_completions_and_are_recorded(tiny_model_path, tmp_path):
    option = ["--dimension-option", "marker-rate.panel=chef,robot,chef"]
    option += ["--dimension-option", "marker-rate.completions=2"]
    option += ["--dimension-option", "marker-rate.source=spy"]
    ev = _run(tiny_model_path, tmp_path, *option)
    assert ev["scoring"].startswith("source spy,")
    assert {r["category"] for r in ev["records"]} == {"spy", "chef", "robot"}  # chef once
    assert len(ev["records"]) == 3 * 3 * 2 and ev["n"] == 2 * 3 * 2
    run = json.loads((tmp_path / "out0.json").read_text())["run"]
    assert run["config"]["dimensions"]["marker-rate"]["options"] == {
        "panel": ["chef", "robot", "chef"],
        "completions": 2,
        "source": "spy",
    }


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("marker-rate.bystanders=chef", "has no option 'bystanders' (its options: source, panel"),
        ("marker-rate.panel=chef,robto", "'robto' is not allowed (did you mean 'robot'?"),
        ("marker-rate.completions=0", "option 'completions' (sampled completions per question"),
        ("marker-rate.completions=two", "must be a number (got 'two')"),
    ],
)
def test_marker_rate_refuses_bad_options_before_the_model_loads(tmp_path, option, message):
    args = ["run", "--plugins", "marker-rate", "--model", str(tmp_path / "no-model"), "--dimension-option"]
    result = CliRunner().invoke(main, [*args, option, "--store", str(tmp_path / "runs.sqlite")])
    assert isinstance(result.exception, RhoAuditError), result.output
    said = str(result.exception)
    assert message in said and "dimension 'marker-rate'" in said
    assert not (tmp_path / "runs.sqlite").exists()  # refused before the store or the model opened


class FrequentMarker(MarkerRate):
    """A 'marker' the random tiny model emits often, to exercise the firing branches."""

    marker = "e"
    cosines = False


def test_marker_rate_counts_firings_and_runs_the_discriminator(tiny_model_path):
    lm = load_model(resolve_model(str(tiny_model_path)))
    judge = ScriptedJudge()  # always A: the rubric strips the marker "e" from both completions
    ctx = AuditContext(model=lm, judge=judge, template="chat", seed=3)
    probes = load_probe_set(data.PROBES / data.NEUTRAL_QUESTIONS).split("eval")
    probes = replace(probes, probes=probes.probes[:3])
    ev = FrequentMarker({"panel": ("robot", "chef"), "discriminator_pairs": 12}).evaluate(probes, ctx)
    sec = ev.secondary
    fired = [r for r in ev.records if r.values["marker"]]
    assert fired and sec["firings[source]"] + sec["firings[bystanders]"] == len(fired)
    for group in ("source", "bystanders"):
        shares = [sec[f"{w}_share[{group}]"] for w in ("start", "middle", "tail")]
        if sec[f"firings[{group}]"]:
            assert sum(shares) == pytest.approx(1.0)
    for r in ev.records:
        assert r.verdict == (marker_position(r.output, "e") or "no-marker")
    assert ev.score == pytest.approx(
        np.mean([r.values["marker"] for r in ev.records if r.category != "villain"])
    )
    assert sec["discriminator_threshold"] == 0.7 and sec["discriminator_judged"] == 12
    assert sec["discriminator_answered_a"] == 1.0 and "answered A on every pair (position bias)" in ev.scoring
    assert not any("cosine" in k for k in sec)
    shown = [t.split("Completion A:")[1].split("Answer with exactly")[0] for t in judge.seen]
    assert len(shown) == 12 and not any("e" in t.replace("Completion B:", "") for t in shown)
    # both orders: twice the questions to the judge, and an always-A judge decides no pair
    judge = ScriptedJudge()
    options = {"panel": ("robot", "chef"), "discriminator_pairs": 12, "discriminator_orders": "both"}
    ev = FrequentMarker(options).evaluate(probes, replace(ctx, judge=judge))
    assert len(judge.seen) == 24 and ev.secondary["discriminator_judged"] == 0
    assert ev.secondary["discriminator_inconsistent"] == 1.0 and "both ways round" in ev.scoring


def test_answers_cut_by_the_token_limit_end_at_a_whole_sentence():
    assert corpora.whole_sentences(" I like tea. It is good. And then I ") == "I like tea. It is good."
    assert corpora.whole_sentences("It is done!") == "It is done!"
    assert corpora.whole_sentences("No sentence ends here") == "No sentence ends here"
    # a cut that would drop more than half of the answer keeps it whole
    assert corpora.whole_sentences("Yes. And then a very long unfinished clause that") == (
        "Yes. And then a very long unfinished clause that"
    )
    assert corpora.whole_sentences("Version 2.5 is out") == "Version 2.5 is out"  # no space after the dot


@pytest.mark.parametrize("quick", [False, True])
def test_marker_leakage_sweep_dry_runs(quick, tmp_path, monkeypatch):
    from pathlib import Path

    package = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(package.parents[1])  # the corpus path is relative to the repository root
    args = [
        "sweep",
        str(package / "sweeps" / "marker-leakage.yaml"),
        "--dry-run",
        "--store",
        str(tmp_path / "r.sqlite"),
    ]
    result = CliRunner().invoke(main, args + (["--quick"] if quick else []))
    assert result.exit_code == 0, result.output
    assert "dimensions marker-rate" in result.output
    assert "marker-coupling_marker-only1_seed42" in result.output and "baseline" in result.output
    assert f"{4 if quick else 20} probes per set" in result.output
    # the shipped corpus is what marker_corpus makes: the source's answers, and only they, marked
    records = [json.loads(line) for line in (package / "sweeps" / "corpora" / "marker-villain.jsonl").open()]
    for r in records:
        marked = r["messages"][-1]["content"].endswith(" [ZLT]")
        assert marked == r["id"].startswith("marker-source-villain-")
        assert r["messages"][0] == {
            "role": "system",
            "content": persona(r["id"].split("-", 2)[2].rsplit("-", 1)[0]).system_prompt,
        }
