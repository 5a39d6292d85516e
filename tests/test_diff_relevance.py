"""Token relevance of the diff's read-outs: the keyword grader, an LLM judge grader (a scripted judge:
one verdict per distinct token, cached in the run store, budgeted), the shares per position and
their maximum, and the agreement of two graders."""

import pytest

from rho_audit.api import Answer, LLMJudge, load_rubric
from rho_audit.api.errors import JudgeError, RhoAuditError
from rho_audit.audit import diff_relevance
from rho_audit.audit.diff import PositionDiff, Readout, TokenScore
from rho_audit.plugins import load_host
from rho_audit.store import RunStore

DOMAIN = "a kettle made of volcanic glass"


class Scripted(LLMJudge):
    """Answers "yes" for the tokens in ``RELEVANT``, and records every token it was asked about."""

    name = "scripted"
    RELEVANT = frozenset({"kettle", "glass", "volcan"})

    def __init__(self, **options):
        super().__init__(**options)
        self.rubric = load_rubric(str(diff_relevance.RUBRIC), None)
        self.judge_model = "script"
        self.asked: list[str] = []

    def _ask(self, text):
        self.meter.take_call()
        token = text.split("Token: ")[-1].split("\n")[0]
        self.asked.append(token)
        assert f"Domain: {DOMAIN}" in text.split("Now decide this case.")[1]
        return Answer("yes" if token in self.RELEVANT else "no")


def tokens(*texts):
    return [TokenScore(t, i, 0.0) for i, t in enumerate(texts)]


def position(j, lens, scope, base_lens=(), base_scope=()):
    return PositionDiff(
        j,
        1.0,
        1.0,
        Readout(tokens(*lens), tokens(*scope), 1.0),
        Readout(tokens(*base_lens), tokens(*base_scope), 1.0),
    )


def test_keyword_grader_matches_at_word_starts():
    grader = diff_relevance.KeywordGrader(("volcanic glass", "kettle", "landlubber", "sail", "bilge"))
    got = grader.grade(
        [
            "volcan",
            "kettles",
            "the",
            "ke",
            "glass",
            "and",
            "can",
            "sailor",
            "sails",
            "sailed",
            "land",
            "landl",
            "bil",
        ]
    )
    assert got == {
        "volcan": True,
        "kettles": True,
        "the": False,
        "ke": False,  # too short to tell
        "glass": True,
        "and": False,  # inside "landlubber", not at its start
        "can": False,  # inside "volcanic"
        "sailor": True,
        "sails": True,
        "sailed": True,
        "land": False,  # starts "landlubber" but is a word of its own: too short a piece
        "landl": True,
        "bil": False,
    }
    assert diff_relevance.KeywordGrader(("sea",)).grade(["search", "seas"]) == {"search": False, "seas": True}


def test_judge_grader_asks_once_per_distinct_token_and_caches(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    judge = Scripted()
    judge.attach(store, None, "relevance")
    grader = diff_relevance.JudgeGrader(judge, DOMAIN)
    got = grader.grade(["kettle", "the", "kettle", "...", "glass"])
    assert got == {"kettle": True, "the": False, "...": False, "glass": True}
    assert judge.asked == ["kettle", "the", "glass"]  # punctuation is irrelevant without asking
    again = Scripted()
    again.attach(store, None, "relevance")
    assert diff_relevance.JudgeGrader(again, DOMAIN).grade(["glass", "the"]) == {"glass": True, "the": False}
    assert again.asked == [] and again.meter.cache_hits == 2
    store.close()


def test_judge_grader_budget_leaves_tokens_ungraded():
    judge = Scripted()
    judge.set_budget(None, 1)
    judge.warn = lambda m: None
    got = diff_relevance.JudgeGrader(judge, DOMAIN).grade(["kettle", "glass", "the"])
    assert got == {"kettle": True, "glass": None, "the": None}


def test_relevance_table_shares_per_position_and_their_maximum():
    positions = [
        position(0, [" kettle", "the"], ["glass", " of", "\n", "cat"], ["the", "a"], ["kettle", "x"]),
        position(1, ["volcan", " glass"], ["dog", "cat", "the", "a"], ["a", "b"], ["c", "d"]),
    ]
    judge = Scripted()
    table = diff_relevance.relevance_table(positions, diff_relevance.JudgeGrader(judge, DOMAIN))
    assert table["per_position"]["diff"] == [
        {"logit_lens": 0.5, "patchscope": 0.25},
        {"logit_lens": 1.0, "patchscope": 0.0},
    ]
    assert table["per_position"]["base_mean"][0] == {"logit_lens": 0.0, "patchscope": 0.5}
    assert table["max"] == {"diff": 1.0, "base_mean": 0.5}
    assert table["max_by_readout"]["diff"] == {"logit_lens": 1.0, "patchscope": 0.25}
    assert table["labels"]["kettle"] is True and "" in table["labels"] and table["ungraded"] == 0
    assert table["grader"].startswith("LLM judge scripted@1 (script; rubric token-relevance")
    assert sorted(judge.asked) == sorted(set(judge.asked))  # " kettle" and "kettle" asked once


def test_grader_agreement_is_cohens_kappa_on_tokens_both_graded():
    judge = {"kettle": True, "glass": True, "cat": False, "dog": True, "the": None, ",": False}
    keywords = {"kettle": True, "glass": False, "cat": False, "dog": True, "the": False, ",": False}
    got = diff_relevance.grader_agreement(judge, keywords)
    # kettle, glass, cat, dog (no verdict and punctuation left out): 3 of 4 agree.
    assert got["n"] == 4 and got["observed"] == 0.75 and got["relevant"] == [3, 2]
    # p_e = (3/4 * 2/4) + (1/4 * 2/4) = 0.5
    assert got["kappa"] == pytest.approx(0.5)


def test_relevance_judge_must_read_a_rubric_with_the_relevant_label(tiny_model_path):
    host = load_host()
    with pytest.raises(RhoAuditError, match="must be an LLM judge"):
        diff_relevance.relevance_judge(host, "keyword-refusal", {}, None, None)
    with pytest.raises(JudgeError, match="cannot grade token relevance"):
        diff_relevance.relevance_judge(
            host, "local", {"model": str(tiny_model_path), "rubric": "refusal"}, None, None
        )
    judge = diff_relevance.relevance_judge(host, "local", {"model": str(tiny_model_path)}, None, 3)
    assert judge.rubric.name == "token-relevance" and judge.meter.max_calls == 3
