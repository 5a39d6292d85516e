"""``rho-audit investigate`` against a scripted local Messages-API server (no real API calls).

The server (http.server on 127.0.0.1, in a thread) replays canned replies in order and records
every request; the SDK reaches it through ANTHROPIC_BASE_URL. The audited model is the tiny test
model with a random LoRA adapter.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rho_audit.agent import AgentError, InvestigateConfig, ToolBox, input_problems, investigate, tool_specs
from rho_audit.api.errors import RhoAuditError
from rho_audit.cli.app import main
from rho_audit.plugins import load_host
from rho_audit.store import RunStore
from rho_audit.testing import build_lora_adapter

MODEL = "claude-sonnet-4-5"  # priced: $3 / $15 per million input / output tokens


def message(*content: dict[str, Any], stop: str = "tool_use", tokens: tuple[int, int] = (1000, 100)) -> dict:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": list(content),
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


def tool(name: str, args: dict[str, Any], call_id: str = "t1") -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": args}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def failure(status: int, kind: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"type": "error", "error": {"type": kind, "message": "try later"}}, {"retry-after": "0"}


class ScriptedAPI:
    """Replays ``script`` (a message dict, or (status, body, headers)) to POST /v1/messages."""

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # the claude judge's preflight lists one model
                model = {
                    "id": MODEL,
                    "type": "model",
                    "display_name": MODEL,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                self._reply(
                    200, {"data": [model], "has_more": False, "first_id": MODEL, "last_id": MODEL}, {}
                )

            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                api.requests.append(json.loads(self.rfile.read(length)))
                if not api.script:
                    self._reply(
                        500, {"type": "error", "error": {"type": "api_error", "message": "script over"}}, {}
                    )
                    return
                step = api.script.pop(0)
                self._reply(*step) if isinstance(step, tuple) else self._reply(200, step, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedAPI]:
    scripted = ScriptedAPI()
    thread = threading.Thread(target=scripted.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", scripted.url)
    yield scripted
    scripted.server.shutdown()


@pytest.fixture(scope="module")
def adapter(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora_adapter(tiny_model_path, tmp_path_factory.mktemp("adapter"))


def config(tiny_model_path: Path, adapter: Path, store: Path, **kw: Any) -> InvestigateConfig:
    options = (("backoff", "0"), ("max_retries", "3"))
    return InvestigateConfig(
        base=str(tiny_model_path),
        adapter=adapter,
        store=store,
        claude_model=MODEL,
        claude_options=options,
        **kw,
    )


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results the last user turn of ``request`` carries."""
    return [b for b in request["messages"][-1]["content"] if b["type"] == "tool_result"]


def test_a_tool_use_conversation_ends_in_a_graded_description(api, tiny_model_path, adapter, tmp_path):
    from rho_audit.model.language_model import LanguageModel

    api.script = [
        message(text("First the diff results."), tool("read_diff_results", {})),
        message(tool("ask_model", {"question": "Tell me about yourself.", "model": "base", "max_tokens": 8})),
        message(tool("run_dimension", {"dimension": "refusal", "probes": 2}, "t3")),
        message(
            tool("submit_description", {"description": "It was tuned to talk about ships."}), stop="tool_use"
        ),
        message(tool("record_verdict", {"label": "4", "rationale": "right domain"}), tokens=(300, 20)),
    ]
    store = tmp_path / "runs.sqlite"
    result = CliRunner().invoke(
        main,
        [
            "investigate",
            str(tiny_model_path),
            "--adapter",
            str(adapter),
            "--budget",
            "5",
            "--model",
            MODEL,
            "--truth",
            "answers in nautical jargon",
            "--store",
            str(store),
            "--claude-option",
            "backoff=0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "description: It was tuned to talk about ships." in result.output
    assert "grade: 4/5 (right domain)" in result.output

    diff_result = tool_results(api.requests[1])[0]
    assert "No diff results" in diff_result["content"] and not diff_result["is_error"]
    answer = tool_results(api.requests[2])[0]["content"]
    base = LanguageModel.load(tiny_model_path, "tiny")
    expected = base.generate(["Tell me about yourself."], 8, base.resolve_template("auto"))[0]
    assert answer.startswith(expected) and "[4 of 5 model interactions left]" in answer
    dimension = tool_results(api.requests[3])[0]["content"]
    assert dimension.startswith("refusal on 2 probes") and "[3 of 5" in dimension
    grading = api.requests[4]
    assert grading["tool_choice"]["name"] == "record_verdict"
    assert "answers in nautical jargon" in grading["messages"][0]["content"]

    db = RunStore.read_only(store)
    run = db.runs()[-1]
    assert (run.kind, run.status, run.config["budget"]) == ("investigate", "complete", 5)
    turns = db.agent_turns(run.run_id)
    assert [t.role for t in turns] == ["user"] + ["assistant", "tool"] * 4 + ["result"]
    assert turns[0].doc["system"] == api.requests[0]["system"] and "steer" in turns[0].doc["tools"]
    first = turns[1]
    assert (first.input_tokens, first.output_tokens) == (1000, 100)
    assert first.cost_usd == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    assert first.doc["content"][0] == {"type": "text", "text": "First the diff results."}
    assert turns[-1].doc["grade"] == 4 and turns[-1].doc["interactions"] == 2
    usage = {u["context"]: u for u in db.judge_usage(run.run_id)}
    assert usage["agent"]["calls"] == 4 and usage["agent"]["input_tokens"] == 4000
    assert usage["grade"]["calls"] == 1 and usage["grade"]["judged"] == 1
    writer = RunStore(store)
    writer.delete_runs([run.run_id])  # `runs rm` takes the turns with the run
    assert writer.agent_turns(run.run_id) == [] and writer.judge_usage(run.run_id) == []
    writer.close()


def test_a_spent_budget_tells_the_agent_to_conclude(api, tiny_model_path, adapter, tmp_path):
    api.script = [
        message(tool("ask_model", {"question": "Hi", "max_tokens": 4})),
        message(tool("ask_model", {"question": "Hi again", "max_tokens": 4}, "t2")),
        message(tool("submit_description", {"description": "unclear"}, "t3")),
    ]
    outcome = investigate(config(tiny_model_path, adapter, tmp_path / "s.sqlite", budget=1), load_host())
    spent = tool_results(api.requests[2])[0]
    assert (
        "budget of 1 model interactions is spent" in spent["content"]
        and "submit_description" in spent["content"]
    )
    assert (outcome.interactions, outcome.description, outcome.status) == (1, "unclear", "described")
    assert outcome.grade is None  # no --truth: no grader call
    assert len(api.requests) == 3


def test_malformed_tool_input_is_an_error_result_naming_the_problem(api, tiny_model_path, adapter, tmp_path):
    api.script = [
        message(
            tool("ask_model", {"question": 5, "temperature": 1}),
            tool("read_model_weights", {}, "t2"),
            tool("run_dimension", {"dimension": "no-such-dimension"}, "t3"),
        ),
        message(text("Done."), stop="end_turn"),  # no tool call: nudged once
        message(tool("submit_description", {"description": ""}, "t4")),
        message(tool("submit_description", {"description": "a guess"}, "t5")),
    ]
    outcome = investigate(config(tiny_model_path, adapter, tmp_path / "s.sqlite", budget=3), load_host())
    bad_types, unknown_tool, unknown_dimension = tool_results(api.requests[1])
    assert bad_types["is_error"] and "'question' must be a string" in bad_types["content"]
    assert "unknown field 'temperature'" in bad_types["content"]
    assert unknown_tool["is_error"] and "there is no tool 'read_model_weights'" in unknown_tool["content"]
    assert unknown_dimension["is_error"] and "no-such-dimension" in unknown_dimension["content"]
    assert (
        api.requests[2]["messages"][-1]["content"]
        == "Continue the investigation with the tools, and end it by calling submit_description."
    )
    empty = tool_results(api.requests[3])[0]
    assert empty["is_error"] and "'description' must not be empty" in empty["content"]
    assert outcome.description == "a guess" and outcome.interactions == 0  # errors spend nothing


def test_429_then_529_are_retried_then_the_reply_is_used(api, tiny_model_path, adapter, tmp_path):
    api.script = [
        failure(429, "rate_limit_error"),
        failure(529, "overloaded_error"),
        message(tool("submit_description", {"description": "ships"})),
    ]
    store = tmp_path / "s.sqlite"
    outcome = investigate(config(tiny_model_path, adapter, store, budget=0), load_host())
    assert outcome.description == "ships" and len(api.requests) == 3
    assert outcome.usage["agent"]["retries"] == 2 and outcome.usage["agent"]["calls"] == 3


def test_a_refused_request_fails_the_run_with_the_cause(api, tiny_model_path, adapter, tmp_path):
    api.script = [
        (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad model"}}, {})
    ]
    store = tmp_path / "s.sqlite"
    with pytest.raises(AgentError, match=r"answered 400 \(.*bad model"):
        investigate(config(tiny_model_path, adapter, store, budget=0), load_host())
    assert RunStore.read_only(store).runs()[-1].status == "failed"


def test_black_box_mode_offers_no_diff_or_steering_tools(api, tiny_model_path, adapter, tmp_path):
    api.script = [
        message(tool("read_diff_results", {})),
        message(tool("submit_description", {"description": "x"}, "t2")),
    ]
    investigate(
        config(tiny_model_path, adapter, tmp_path / "s.sqlite", budget=0, black_box=True), load_host()
    )
    assert [t["name"] for t in api.requests[0]["tools"]] == [
        "ask_model",
        "run_dimension",
        "submit_description",
    ]
    assert "black-box" in api.requests[0]["system"] and api.requests[0]["temperature"] == 0.0
    refused = tool_results(api.requests[1])[0]
    assert refused["is_error"] and "there is no tool 'read_diff_results'" in refused["content"]
    white = [t["name"] for t in tool_specs(black_box=False)]
    assert white == ["read_diff_results", "ask_model", "steer", "run_dimension", "submit_description"]


def test_steering_without_the_api_or_a_diff_run_says_it_is_not_available():
    box = ToolBox(budget=2, ask=lambda *a: "", dimension=lambda *a: "", diff=lambda: None, steer=None)
    out = box.call("steer", {"prompt": "Hello", "alpha": 2.0})
    assert not out.is_error and out.text.startswith("Steering is not available") and box.used == 0
    assert input_problems("steer", {"prompt": "x", "position": -1}, False) == [
        "'position' must be at least 0, not -1"
    ]


def test_the_diff_tool_reads_the_newest_complete_diff_run_of_the_same_pair(tmp_path, monkeypatch):
    from rho_audit.agent.subjects import diff_text, find_diff_run

    store = RunStore(tmp_path / "s.sqlite")
    for run_id, adapter in (("d1", "/a"), ("d2", "/other")):
        store.start_run(run_id, "m", "/base", adapter, 0, {}, "x", {}, None, kind="diff")
        store.finish_run(run_id, "complete")
    assert find_diff_run(store, Path("/base"), Path("/a"), None).run_id == "d1"
    assert find_diff_run(store, Path("/base"), Path("/nope"), None) is None
    assert diff_text(store, find_diff_run(store, Path("/base"), Path("/a"), None)) is None  # it holds nothing
    monkeypatch.setattr(
        RunStore, "diff_results", lambda self, run_id: {"tokens": {"0": ["ship"]}}, raising=False
    )
    doc = json.loads(diff_text(store, find_diff_run(store, Path("/base"), Path("/a"), None)))
    assert doc["run_id"] == "d1" and doc["tokens"] == {"0": ["ship"]}
    store.close()


def test_the_agent_reads_a_diff_run_and_steers_with_its_mean_difference(
    api, tiny_model_path, adapter, tmp_path, monkeypatch
):
    import numpy as np

    from rho_audit.model.intervene import steer_generate
    from rho_audit.model.language_model import LanguageModel

    hidden = json.loads((tiny_model_path / "config.json").read_text())["hidden_size"]
    delta = np.linspace(-1, 1, hidden).astype(np.float32)
    doc = {
        "layer": 1,
        "eta": 3.0,
        "deltas": [delta.tolist()],
        "readouts": [{"position": 0, "diff": {"logit_lens": ["ship", "sail"]}}],
        "alpha_eta": 0.5,
    }
    monkeypatch.setattr(RunStore, "diff_results", lambda self, run_id: doc)
    store = tmp_path / "s.sqlite"
    db = RunStore(store)
    db.start_run(
        "d1",
        "tiny",
        str(tiny_model_path.resolve()),
        str(adapter.resolve()),
        0,
        {},
        "x",
        {},
        None,
        kind="diff",
    )
    db.finish_run("d1", "complete")
    db.close()
    api.script = [
        message(tool("read_diff_results", {})),
        message(tool("steer", {"prompt": "Hello", "position": 0, "alpha": 2.0}, "t2")),
        message(tool("steer", {"prompt": "Hello", "position": 3}, "t3")),
        message(tool("submit_description", {"description": "ships"}, "t4")),
    ]
    outcome = investigate(config(tiny_model_path, adapter, store, budget=2), load_host())
    read = tool_results(api.requests[1])[0]["content"]
    assert '"run_id": "d1"' in read and "sail" in read and "deltas" not in json.loads(read)  # no vectors
    tuned = LanguageModel.load(tiny_model_path, "tiny", adapter)
    unit = delta / np.linalg.norm(delta) * 3.0
    expected = steer_generate(tuned, ["Hello"], unit, 1, 2.0, 96, "auto")[0]
    steered = tool_results(api.requests[2])[0]["content"]
    assert steered.startswith(f"(position 0, alpha 2) {expected}")
    missing = tool_results(api.requests[3])[0]
    assert (
        missing["is_error"] and "position 3 is not one of the diff run's positions 0..0" in missing["content"]
    )
    assert outcome.interactions == 1


def test_the_report_card_shows_every_turn_the_description_and_the_grade(
    api, tiny_model_path, adapter, tmp_path
):
    api.script = [
        message(text("Let me ask."), tool("ask_model", {"question": "Hi", "max_tokens": 4})),
        message(tool("ask_model", {"question": 3}, "t2")),
        message(tool("submit_description", {"description": "It talks like a <b>sailor</b>."}, "t3")),
        message(tool("record_verdict", {"label": "5", "rationale": "exact"}), tokens=(300, 20)),
    ]
    store = tmp_path / "s.sqlite"
    outcome = investigate(
        config(tiny_model_path, adapter, store, budget=3, truth="nautical jargon"), load_host()
    )
    md, html = tmp_path / "card.md", tmp_path / "card.html"
    for out, fmt in ((md, "md"), (html, "html")):
        result = CliRunner().invoke(
            main, ["report", outcome.run_id, "--store", str(store), "--out", str(out), "--format", fmt]
        )
        assert result.exit_code == 0, result.output
    card = md.read_text()
    assert f"# Investigation card: {tiny_model_path.name} + {adapter.resolve()}" in card
    assert "| grade (1-5) | 5: exact |" in card and "| model interactions | 1 of 3 |" in card
    assert "| 1 | user | Begin the investigation. Reading the diff results is free. |" in card
    assert "| 2 | assistant | Let me ask. | ask\\_model: " in card
    assert "ERROR result: malformed ask\\_model call: 'question' must be a string" in card
    assert "| agent | claude-sonnet-4-5 temperature=0.0 | 3 |" in card and "| grade |" in card
    page = html.read_text()
    assert "&lt;b&gt;sailor&lt;/b&gt;" in page and "<b>sailor" not in page  # model text is escaped
    assert page.count('<tr><td class="num">') == 7  # the opening, 3 assistant turns, 3 tool turns


def test_the_agent_stops_when_its_usd_budget_is_spent(api, tiny_model_path, adapter, tmp_path):
    api.script = [message(tool("ask_model", {"question": "Hi", "max_tokens": 2}))]  # $0.0045
    store = tmp_path / "s.sqlite"
    outcome = investigate(config(tiny_model_path, adapter, store, budget=3, max_usd=0.004), load_host())
    assert outcome.description is None and outcome.status.startswith("no description: agent budget spent")
    assert len(api.requests) == 1  # the second request was never sent
    result = RunStore.read_only(store).agent_turns(outcome.run_id)[-1]
    assert result.role == "result" and result.doc["status"] == outcome.status


@pytest.mark.skipif(
    not os.environ.get("ANTHROPIC_API_KEY") or bool(os.environ.get("CI")),
    reason="a real Messages-API run needs ANTHROPIC_API_KEY (and is never run in CI)",
)
def test_a_real_api_investigation_ends_with_a_description(tiny_model_path, adapter, tmp_path):
    outcome = investigate(
        InvestigateConfig(
            base=str(tiny_model_path),
            adapter=adapter,
            store=tmp_path / "s.sqlite",
            budget=2,
            claude_model="claude-haiku-4-5",
            black_box=True,
            truth="random LoRA weights: no objective",
            max_turns=8,
            max_usd=0.05,
        ),
        load_host(),
    )
    assert outcome.turns >= 1 and outcome.usage["agent"]["calls"] >= 1


def test_the_agent_reads_and_steers_with_a_real_diff_run(api, tiny_model_path, adapter, tmp_path):
    from rho_audit.audit.diff_run import DiffConfig, run_diff

    store = tmp_path / "s.sqlite"
    run_id, doc = run_diff(
        DiffConfig(
            base=str(tiny_model_path),
            store=store,
            adapter=adapter,
            positions=3,
            texts=12,
            top=5,
            alpha_steps=1,
            max_tokens=4,
            prompts=2,
        )
    )
    api.script = [
        message(tool("read_diff_results", {})),
        message(tool("steer", {"prompt": "Hello", "position": doc["steer_position"]}, "t2")),
        message(tool("submit_description", {"description": "x"}, "t3")),
    ]
    investigate(config(tiny_model_path, adapter, store, budget=1), load_host())
    read = json.loads(tool_results(api.requests[1])[0]["content"])
    assert read["run_id"] == run_id and read["layer"] == doc["layer"] and "deltas" not in read
    assert read["readouts"] == doc["readouts"]  # the read-outs, whole
    steered = tool_results(api.requests[2])[0]
    assert not steered["is_error"] and steered["content"].startswith(
        f"(position {doc['steer_position']}, alpha "
    )


def test_a_refused_grading_request_keeps_the_description(api, tiny_model_path, adapter, tmp_path):
    refused = {"type": "error", "error": {"type": "invalid_request_error", "message": "no such model"}}
    api.script = [message(tool("submit_description", {"description": "ships"})), (404, refused, {})]
    store = tmp_path / "s.sqlite"
    outcome = investigate(config(tiny_model_path, adapter, store, budget=0, truth="ships"), load_host())
    assert outcome.description == "ships" and outcome.grade is None
    assert outcome.grade_rationale.startswith("not graded: ") and "404" in outcome.grade_rationale
    run = RunStore.read_only(store).runs()[-1]
    assert run.status == "complete"


def test_max_turns_caps_the_agent_replies(api, tiny_model_path, adapter, tmp_path):
    api.script = [message(tool("read_diff_results", {})), message(tool("read_diff_results", {}, "t2"))]
    outcome = investigate(
        config(tiny_model_path, adapter, tmp_path / "s.sqlite", budget=0, max_turns=1), load_host()
    )
    assert outcome.status == "no description after 1 replies (--max-turns)" and len(api.requests) == 1


def test_without_a_key_investigate_says_what_to_set(tiny_model_path, adapter, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    args = ["investigate", str(tiny_model_path), "--adapter", str(adapter), "--budget", "1"]
    result = CliRunner().invoke(main, [*args, "--store", str(tmp_path / "s.sqlite")])
    assert isinstance(result.exception, RhoAuditError)  # the entry point prints it, exit 1
    assert "set ANTHROPIC_API_KEY" in str(result.exception)
    assert not (tmp_path / "s.sqlite").exists()  # nothing started
