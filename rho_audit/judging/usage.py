"""How an LLM judge's usage (calls, tokens, cost) is shown on displays and report cards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def judge_usage_line(usage: Mapping[str, Any]) -> str:
    """One line for displays and report cards."""
    cost = f"${usage.get('cost_usd', 0.0):.4f}"
    if not usage.get("cost_known", True):
        cost += " (some calls unpriced)"
    return (
        f"{usage.get('calls', 0)} calls, {usage.get('input_tokens', 0)} input + "
        f"{usage.get('output_tokens', 0)} output tokens, est. {cost}; {usage.get('cache_hits', 0)} cache "
        f"hits, {usage.get('skipped_budget', 0)} skipped (budget), {usage.get('unparseable', 0)} "
        f"unparseable, {usage.get('errors', 0)} failed"
    )
