"""The investigate agent reads a diff run without what describes the answer: the keywords, the
--domain text and relevance judge, and everything graded against them."""

import json
from pathlib import Path

from rho_audit.agent.subjects import HIDDEN_RESULTS, diff_text, find_diff_run
from rho_audit.store import RunStore

TRUTH = "a kettle made of volcanic glass"


def test_the_agent_does_not_see_the_domain_the_diff_was_graded_against(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    config = {"command": "diff", "layer": "middle", "keywords": ["kettle"], "domain": TRUTH,
              "relevance_judge": "local", "judge_options": {"model": "x"}}  # fmt: skip
    store.start_run("d1", "m", "/base", "/a", 0, config, "x", {}, None, kind="diff")
    store.add_diff_result(
        "d1",
        {
            "layer": 15,
            "readouts": [{"position": 1, "diff": {"logit_lens": [{"token": " kettle"}]}}],
            "relevance": {"grader": f"LLM judge on {TRUTH}", "labels": {"kettle": True}},
            "relevance_graders": [{"labels": {"kettle": True}}],
            "relevance_agreement": {"n": 1},
            "steering_measures": {"keyword_rate": {"steered": 1.0}},
            "steering": {"samples": [{"prompt": "p", "steered": "s", "unsteered": "u"}]},
        },
    )
    store.finish_run("d1", "complete")
    text = diff_text(store, find_diff_run(store, Path("/base"), Path("/a"), None))
    assert TRUTH not in text and "keywords" not in text and "relevance" not in text
    doc = json.loads(text)
    assert not set(doc) & set(HIDDEN_RESULTS)
    assert doc["config"] == {"command": "diff", "layer": "middle"}
    assert doc["readouts"][0]["diff"]["logit_lens"][0]["token"] == " kettle"  # the read-outs stay
    assert doc["steering"]["samples"][0]["steered"] == "s"
    store.close()
