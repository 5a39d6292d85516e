"""The investigation card: one ``rho-audit investigate`` run, from the store's ``agent_turns``.

It shows the agent's description of the fine-tuning objective and its grade against the truth,
then every turn: the agent's text and tool calls with their tokens and estimated cost, and the
tool results (errors marked), then the agent's and grader's usage as judge usage rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rho_audit.report.audit_card import judge_usage_rows
from rho_audit.report.gather import finite_number, run_header
from rho_audit.report.records import Figure, JudgeUsage, RunHeader
from rho_audit.store import AgentTurn, RunStore

#: Characters of one tool result or input shown on the card.
MAX_SHOWN = 2_000


@dataclass(frozen=True)
class ToolCallRow:
    """A tool call (name, input as JSON) or a tool result (text; ``is_error`` marks errors)."""

    name: str
    text: str
    is_error: bool = False


@dataclass(frozen=True)
class TurnRow:
    """One turn: an assistant message (text, tool calls, tokens, cost), tool results, or a nudge."""

    turn: int
    role: str
    text: str
    calls: tuple[ToolCallRow, ...]
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    budget_left: int | None


@dataclass(frozen=True)
class InvestigationCard:
    """The card of one investigation; ``kind`` names its templates (``investigation.*.j2``)."""

    title: str
    header: RunHeader
    budget: int | None
    agent_model: str
    grader_model: str
    black_box: bool
    truth: str | None
    status: str
    description: str | None
    grade: int | None
    grade_rationale: str
    interactions: int | None
    turns: tuple[TurnRow, ...]
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    judge_usage: tuple[JudgeUsage, ...] = ()
    figures: tuple[Figure, ...] = ()
    kind: str = "investigation"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def turn_row(turn: AgentTurn) -> TurnRow:
    """A stored turn as the card shows it."""
    texts: list[str] = []
    calls: list[ToolCallRow] = []
    for block in turn.doc.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            shown = json.dumps(block.get("input"), ensure_ascii=False, default=str)
            calls.append(ToolCallRow(str(block.get("name", "?")), _clip(shown)))
        elif block.get("type") == "tool_result":
            calls.append(
                ToolCallRow("result", _clip(str(block.get("content", ""))), bool(block.get("is_error")))
            )
    left = turn.doc.get("budget_left")
    return TurnRow(
        turn.turn,
        turn.role,
        _clip("\n".join(texts)),
        tuple(calls),
        turn.input_tokens,
        turn.output_tokens,
        finite_number(turn.cost_usd),
        left if isinstance(left, int) else None,
    )


def build_investigation_card(store: RunStore, run_id: str) -> InvestigationCard:
    """The card of investigation ``run_id`` (a run of kind ``investigate``)."""
    run = store.run(run_id)
    turns = store.agent_turns(run.run_id)
    result: dict[str, Any] = next((t.doc for t in reversed(turns) if t.role == "result"), {})
    rows = tuple(turn_row(t) for t in turns if t.role != "result")
    costs = [r.cost_usd for r in rows if r.role == "assistant"]
    cfg = run.config
    grade = result.get("grade")
    interactions = result.get("interactions")
    return InvestigationCard(
        title=f"Investigation card: {run.model_id}" + (f" + {cfg['adapter']}" if cfg.get("adapter") else ""),
        header=run_header(run),
        budget=cfg.get("budget"),
        agent_model=str(cfg.get("agent_model", "?")),
        grader_model=str(cfg.get("grader_model", "?")),
        black_box=bool(cfg.get("black_box")),
        truth=cfg.get("truth"),
        status=str(result.get("status") or run.status),
        description=result.get("description"),
        grade=grade if isinstance(grade, int) else None,
        grade_rationale=str(result.get("grade_rationale") or ""),
        interactions=interactions if isinstance(interactions, int) else None,
        turns=rows,
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        judge_usage=judge_usage_rows(store, run.run_id),
    )
