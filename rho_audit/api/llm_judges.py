"""The base class of model-based judges (``claude``, ``local``): cache, budget, retries, concurrency.

A model-based judge subclasses :class:`LLMJudge` and implements one method, :meth:`LLMJudge._ask`:
send one rendered rubric to the model and return an :class:`Answer`. The base class does the rest:

* **Rubrics** (:mod:`rho_audit.api.rubrics`) turn an item's fields into the model's instructions.
* **Cache**: once attached to a run store (:meth:`LLMJudge.attach`), every verdict with a valid
  label is stored under sha256(judge id, judge model, rubric sha256, fields) the moment it arrives,
  so a re-run, a report or ``judges agree`` never pays twice, and a run killed midway re-sends only
  the items that had no verdict yet. Failures, ``unparseable`` and ``skipped_budget`` are not cached.
* **Malformed answers** (no valid label) are asked once more, then recorded as ``unparseable``.
* **Budget and retries** (:mod:`rho_audit.api.judge_calls`): once the budget is spent the
  remaining items get the verdict ``skipped_budget``.
* **Fit and preflight**: before any model work the host checks every dimension's
  :attr:`~rho_audit.api.dimensions.Dimension.judge_labels` against the rubric's labels, and calls
  :meth:`LLMJudge.preflight` once if a dimension uses the judge, so a wrong rubric, key or base URL
  fails in seconds rather than after a full generation.
* **No lost batch**: an unexpected exception from :meth:`LLMJudge._ask` becomes that item's
  ``error`` verdict (the :class:`~rho_audit.api.judges.Judge` contract); only
  :class:`~rho_audit.api.errors.JudgeError` stops judging.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rho_audit.api.errors import JudgeError
from rho_audit.api.judge_calls import BudgetExhausted, Meter
from rho_audit.api.judges import ERROR, SKIPPED_BUDGET, UNPARSEABLE, Judge, JudgeItem, Verdict, VerdictStore
from rho_audit.api.rubrics import Rubric

log = logging.getLogger(__name__)


def parse_options(judge: str, options: Mapping[str, Any], spec: Mapping[str, tuple[type, Any]]) -> dict:
    """Typed judge options (``--judge-option KEY=VALUE`` gives strings); unknown keys are errors."""
    unknown = sorted(set(options) - set(spec))
    if unknown:
        raise JudgeError(
            f"judge {judge!r} has no option {', '.join(unknown)}. Its options: {', '.join(sorted(spec))}."
        )
    out = {}
    for key, (kind, default) in spec.items():
        value = options.get(key, default)
        if value is not None and not isinstance(value, kind):
            try:
                value = kind(value)
            except ValueError:
                raise JudgeError(
                    f"judge {judge!r}: option {key}={value!r} is not a valid {kind.__name__}."
                ) from None
        out[key] = value
    return out


@dataclass(frozen=True)
class Answer:
    """One model answer. ``label`` None with no ``error``: the answer was malformed."""

    label: str | None
    score: float | None = None
    rationale: str = ""
    error: str | None = None


def cache_key(judge_id: str, judge_model: str, rubric_sha256: str, fields: Mapping[str, str]) -> str:
    """The key a verdict is cached under: anything that could change the verdict is part of it."""
    doc = [judge_id, judge_model, rubric_sha256, sorted(fields.items())]
    return hashlib.sha256(json.dumps(doc, ensure_ascii=False).encode()).hexdigest()


class LLMJudge(Judge):
    """A judge that asks a model with a rubric; see the module docstring. Subclasses set
    ``rubric_dir`` and implement :meth:`_ask`; they may raise :class:`JudgeError` from it to stop
    the whole run (e.g. rejected credentials)."""

    #: Folder of the rubrics this judge knows by name.
    rubric_dir: ClassVar[Path | None] = None
    #: Parallel requests; 1 runs :meth:`_ask` on the calling thread.
    concurrency: int = 1

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.meter = Meter()
        self._store: VerdictStore | None = None
        self._run_id: str | None = None
        self._context = "audit"
        self._stop = threading.Event()

    # -- what a subclass provides ---------------------------------------------------------

    rubric: Rubric
    #: The model's identity in cache keys and usage rows (name, plus anything that changes answers).
    judge_model: str

    def _ask(self, text: str) -> Answer:
        """Send one rendered rubric; take a call from ``self.meter`` per request sent."""
        raise NotImplementedError

    def check_ready(self) -> None:
        """Raise :class:`JudgeError` if the judge cannot run (called before any model work)."""

    def preflight(self) -> None:
        """Raise :class:`JudgeError` if the judge cannot answer at all (unreachable endpoint,
        rejected key). Called once before a run generates anything for it; must cost nothing
        against the run's budget. Default: nothing to check."""

    @property
    def labels(self) -> tuple[str, ...]:  # type: ignore[override]  # the rubric decides
        """The rubric's labels."""
        return self.rubric.labels

    # -- wiring -----------------------------------------------------------------------------

    def set_budget(self, max_usd: float | None, max_calls: int | None) -> None:
        """Stop sending requests once ``max_usd`` (estimated) or ``max_calls`` is reached."""
        self.meter.max_usd, self.meter.max_calls = max_usd, max_calls

    def attach(self, store: VerdictStore, run_id: str | None, context: str = "audit") -> None:
        """Cache verdicts in ``store`` and record this judge's usage under ``run_id`` (None: don't)."""
        self._store, self._run_id, self._context = store, run_id, context

    def describe(self) -> str:
        """Judge id, judge model and rubric (name and sha256 prefix)."""
        return f"{self.judge_id} ({self.judge_model}; rubric {self.rubric.name} {self.rubric.sha256[:8]})"

    # -- judging ----------------------------------------------------------------------------

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        """One verdict per item, from the cache or the model (see the module docstring)."""
        return self.judge_fields([{"prompt": i.prompt, "response": i.response} for i in items])

    def judge_fields(self, records: Sequence[Mapping[str, str]]) -> list[Verdict]:
        """One verdict per record (a mapping of the rubric's fields), in order."""
        keys = [cache_key(self.judge_id, self.judge_model, self.rubric.sha256, r) for r in records]
        cached = self._store.judge_cache_get(keys) if self._store else {}
        verdicts: dict[str, Verdict] = {k: self._cached_verdict(v) for k, v in cached.items()}
        pending = {k: r for k, r in zip(keys, records, strict=True) if k not in verdicts}  # deduplicated
        self.meter.add(cache_hits=sum(1 for k in keys if k in cached))
        texts = {k: self.rubric.render(r) for k, r in pending.items()}
        copies = Counter(keys)
        done = len(records) - len(pending)
        if self.progress:
            self.progress(done, len(records))
        warned = False
        for key, answer in self._answers(texts):
            verdicts[key] = verdict = self._verdict(answer)
            self._record(key, verdict)
            if verdict.label == SKIPPED_BUDGET and not warned:
                self.warn(f"{verdict.error}; the remaining items are marked {SKIPPED_BUDGET}")
                warned = True
            done += copies[key]
            if self.progress:
                self.progress(done, len(records))
        if self._store is not None and self._run_id is not None:
            self._store.record_judge_usage(self._run_id, self._context, self.usage())
        return [verdicts[k] for k in keys]

    def usage(self) -> dict[str, Any]:
        """This judge's identity and meter, as stored per run and shown on report cards."""
        return {
            "judge_id": self.judge_id,
            "judge_model": self.judge_model,
            "rubric": self.rubric.name,
            "rubric_sha256": self.rubric.sha256,
            **self.meter.snapshot(),
        }

    def _record(self, key: str, verdict: Verdict) -> None:
        """Count a fresh verdict and store it the moment it arrives (cache + usage)."""
        cacheable = verdict.label in self.rubric.labels and not verdict.error
        self.meter.add(
            judged=int(cacheable),
            unparseable=int(verdict.label == UNPARSEABLE),
            skipped_budget=int(verdict.label == SKIPPED_BUDGET),
            errors=int(verdict.label == ERROR),
        )
        if self._store is None:
            return
        if cacheable:
            self._store.judge_cache_put(key, self.judge_id, self.judge_model, self.rubric.sha256, verdict)
        if self._run_id is not None:
            self._store.record_judge_usage(self._run_id, self._context, self.usage())

    def _sleep(self, seconds: float) -> None:
        """Wait between retries; returns early (and stops) when judging is interrupted."""
        if self._stop.wait(seconds):
            raise BudgetExhausted("judging was stopped")

    def _answers(self, texts: Mapping[str, str]) -> Iterator[tuple[str, Answer]]:
        """(key, answer) pairs in completion order, ``concurrency`` requests at a time.

        Workers are daemon threads: after Ctrl-C or a :class:`JudgeError` nothing more is sent and
        the process exits without waiting for requests in flight.
        """
        self._stop = threading.Event()
        if self.concurrency <= 1:
            for key, text in texts.items():
                yield key, self._answer(text)
            return
        todo: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        done: queue.SimpleQueue[tuple[str, Answer | None, BaseException | None]] = queue.SimpleQueue()
        for item in texts.items():
            todo.put(item)
        stop = self._stop

        def work() -> None:
            while not stop.is_set():
                try:
                    key, text = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((key, self._answer(text), None))
                except BaseException as err:  # a JudgeError: re-raised on the calling thread
                    done.put((key, None, err))

        for _ in range(min(self.concurrency, len(texts))):
            threading.Thread(target=work, name=f"judge-{self.name}", daemon=True).start()
        received = 0
        try:
            while received < len(texts):
                try:
                    key, answer, err = done.get(timeout=0.2)  # short waits keep Ctrl-C responsive
                except queue.Empty:
                    continue
                received += 1
                if err is not None:
                    raise err
                yield key, answer
        finally:
            stop.set()  # a no-op when all is done; else it stops the workers and their retry waits

    def _answer(self, text: str) -> Answer:
        """Ask, retrying a malformed answer once; budget exhaustion becomes ``skipped_budget``."""
        try:
            if self._stop.is_set():
                raise BudgetExhausted("judging was stopped")
            answer = self._ask(text)
            if answer.label is None and answer.error is None:
                self.meter.add(malformed_retries=1)
                first = answer
                answer = self._ask(text)
                if answer.label is None and answer.error is None:
                    excerpt = (answer.rationale or first.rationale)[:200]
                    return Answer(UNPARSEABLE, error=f"judge answer unparseable twice: {excerpt!r}")
            return answer
        except BudgetExhausted as err:
            return Answer(SKIPPED_BUDGET, error=str(err))
        except JudgeError:
            raise
        except Exception as err:  # a judge's bug or an unforeseen reply: this item only, not the batch
            log.debug("judge %s failed on one item", self.judge_id, exc_info=True)
            return Answer(None, error=f"judge failed: {type(err).__name__}: {err}"[:400])

    def _verdict(self, answer: Answer) -> Verdict:
        if answer.error:
            label = answer.label if answer.label in (UNPARSEABLE, SKIPPED_BUDGET) else ERROR
            return Verdict(label, self.judge_id, None, answer.rationale, answer.error)
        if answer.label not in self.rubric.labels:  # _ask must only return rubric labels
            return Verdict(UNPARSEABLE, self.judge_id, None, "", f"label {answer.label!r} not in rubric")
        return Verdict(answer.label, self.judge_id, answer.score, answer.rationale)

    def _cached_verdict(self, row: Mapping[str, Any]) -> Verdict:
        return Verdict(row["label"], self.judge_id, row["score"], row["rationale"])
