"""Counting, budgeting and retrying an LLM judge's requests.

* **Budget** (:class:`Meter`): ``--judge-max-calls`` counts requests sent (retries included),
  ``--judge-max-usd`` the estimated cost so far. Once either is reached no request is sent
  (:class:`BudgetExhausted`); requests already in flight may finish, so the USD limit can be passed
  by at most ``concurrency`` requests.
* **Retries** (:func:`call_with_retries`): exponential backoff with jitter, or exactly the server's
  ``retry-after`` when it sends one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class BudgetExhausted(Exception):
    """Raised instead of sending a request once the run's judge budget is spent."""


@dataclass
class Meter:
    """A judge's calls, tokens and cost in one run, and the run's budget. Thread-safe."""

    max_usd: float | None = None
    max_calls: int | None = None
    calls: int = 0
    retries: int = 0
    malformed_retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: False when a call's price is unknown, so ``cost_usd`` understates the spend.
    cost_known: bool = True
    cache_hits: int = 0
    judged: int = 0
    unparseable: int = 0
    skipped_budget: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def exhausted(self) -> str | None:
        """Why no further request may be sent, or None."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            return f"judge budget reached: {self.calls} calls (--judge-max-calls {self.max_calls})"
        if self.max_usd is not None and self.cost_usd >= self.max_usd:
            return f"judge budget reached: ${self.cost_usd:.4f} (--judge-max-usd {self.max_usd:g})"
        return None

    def take_call(self) -> None:
        """Reserve one request, or raise :class:`BudgetExhausted`."""
        with self._lock:
            reason = self.exhausted()
            if reason:
                raise BudgetExhausted(reason)
            self.calls += 1

    def add(self, **counts: float) -> None:
        """Add to named counters, e.g. ``add(input_tokens=120, cost_usd=0.0004)``."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, Any]:
        """The counters and the budget, as one consistent dict."""
        with self._lock:
            return {
                k: v for k, v in self.__dict__.items() if not k.startswith("_") and not k.startswith("max_")
            } | {"max_usd": self.max_usd, "max_calls": self.max_calls}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt k waits ``min(cap, base·2^k)·U(0.5, 1)`` seconds,
    or the server's ``retry-after`` (up to ``max_retry_after``) when it gives one."""

    max_retries: int = 4
    base_s: float = 1.0
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry ``attempt`` (0-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after_s)
        return min(self.cap_s, self.base_s * 2**attempt) * rng.uniform(0.5, 1.0)


#: ``classify(error) -> (retryable, retry_after_seconds)``.
Classifier = Callable[[BaseException], tuple[bool, float | None]]


def call_with_retries(
    send: Callable[[], T],
    classify: Classifier,
    meter: Meter,
    policy: RetryPolicy,
    sleep: Callable[[float], Any] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """``send()`` until it succeeds, a non-retryable error, or ``policy.max_retries`` retries.

    Each attempt takes one call from ``meter`` first, so a retry is paid like any request and a
    spent budget stops retries too (:class:`BudgetExhausted`).
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        meter.take_call()
        try:
            return send()
        except Exception as err:
            retryable, retry_after = classify(err)
            if not retryable or attempt >= policy.max_retries:
                raise
            delay = policy.delay(attempt, retry_after, rng)
            log.info("judge request failed (%s); retry %d in %.2fs", type(err).__name__, attempt + 1, delay)
            meter.add(retries=1)
            sleep(delay)
            attempt += 1


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    try:
        return float(headers["retry-after-ms"]) / 1000
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
