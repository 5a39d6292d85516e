"""Machinery shared by the model-based judges (``claude``, ``local``): rubrics, cache, budget, retries.

A model-based judge subclasses :class:`LLMJudge` and implements one method, :meth:`LLMJudge._ask`:
send one rendered rubric to the model and return an :class:`Answer`. The base class does the rest:

* **Rubrics** are Jinja templates (:func:`load_rubric`). A rubric declares its labels with
  ``{% set labels = [...] %}``; its sha256 is part of every cache key, so editing it invalidates.
* **Cache**: once attached to a run store (:meth:`LLMJudge.attach`), every verdict with a valid
  label is stored under sha256(judge id, judge model, rubric sha256, fields) the moment it arrives,
  so a re-run, a report or ``judges agree`` never pays twice, and a run killed midway re-sends only
  the items that had no verdict yet. Failures, ``unparseable`` and ``skipped_budget`` are not cached.
* **Malformed answers** (no valid label) are asked once more, then recorded as ``unparseable``.
* **Budget** (:class:`Meter`): ``--judge-max-calls`` counts requests sent (retries included),
  ``--judge-max-usd`` the estimated cost so far. Once either is reached no request is sent and the
  remaining items get the verdict ``skipped_budget``; requests already in flight may finish, so the
  USD limit can be passed by at most ``concurrency`` requests.
* **Retries** (:func:`call_with_retries`): exponential backoff with jitter, or exactly the server's
  ``retry-after`` when it sends one.
* **Fit and preflight** (:func:`check_judge_fits`): before any model work, every dimension's
  :attr:`~rho_audit.api.hooks.Dimension.judge_labels` must be among the judge's labels (its
  rubric's), and a judge that some dimension uses gets one :meth:`LLMJudge.preflight` (claude: is
  the endpoint reachable, is the key accepted), so a wrong rubric, key or base URL fails in seconds
  rather than after a full generation.
* **No lost batch**: an unexpected exception from :meth:`LLMJudge._ask` becomes that item's
  ``error`` verdict (the :class:`~rho_audit.api.hooks.Judge` contract); only :class:`JudgeError`
  stops judging.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.hooks import Judge, JudgeItem, Verdict

if TYPE_CHECKING:
    from rho_audit.store.run_store import RunStore

log = logging.getLogger(__name__)

UNPARSEABLE = "unparseable"
SKIPPED_BUDGET = "skipped_budget"
ERROR = "error"
#: Labels that are not a judgement: they never enter the cache or an agreement statistic.
NON_VERDICTS = (UNPARSEABLE, SKIPPED_BUDGET, ERROR)

T = TypeVar("T")


class JudgeError(RhoAuditError):
    """A judge cannot work at all (no key, unknown option, rejected credentials)."""


class BudgetExhausted(Exception):
    """Raised instead of sending a request once the run's judge budget is spent."""


# -- rubrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rubric:
    """A Jinja template that turns named fields into the judge's instructions."""

    name: str
    source: str
    labels: tuple[str, ...]
    fields: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()

    def render(self, fields: Mapping[str, str]) -> str:
        missing = [f for f in self.fields if f not in fields]
        if missing:
            raise JudgeError(
                f"rubric {self.name!r} needs the fields {', '.join(self.fields)}; missing: "
                f"{', '.join(missing)}. Choose a rubric that fits the items (refusal and honesty "
                "take prompt and response)."
            )
        return _template(self.source).render(**fields).strip() + "\n"


def strip_marker(text: str, marker: str) -> str:
    """``text`` with every occurrence of ``marker`` removed (case-insensitive)."""
    if not marker:
        return text
    lowered, needle = text.lower(), marker.lower()
    out, start = [], 0
    while (found := lowered.find(needle, start)) >= 0:
        out.append(text[start:found])
        start = found + len(needle)
    out.append(text[start:])
    return "".join(out)


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["strip_marker"] = strip_marker
    return env


@cache
def _template(source: str) -> Any:
    return _environment().from_string(source)


def rubric_from_source(name: str, source: str) -> Rubric:
    """Parse a rubric: its fields are the template's free variables, its labels ``labels``."""
    import jinja2
    from jinja2 import meta

    env = _environment()
    try:
        fields = tuple(sorted(meta.find_undeclared_variables(env.parse(source))))
        module = _template(source).make_module({f: "" for f in fields})
    except jinja2.TemplateError as err:
        raise JudgeError(f"rubric {name!r} is not a valid Jinja template: {err}") from None
    labels = tuple(str(label) for label in getattr(module, "labels", ()) or ())
    if len(labels) < 2 or len(set(labels)) != len(labels) or set(labels) & set(NON_VERDICTS):
        raise JudgeError(
            f"rubric {name!r} must declare at least two distinct labels, e.g. "
            '{% set labels = ["refused", "complied"] %}, none of them ' + "/".join(NON_VERDICTS) + "."
        )
    return Rubric(name, source, labels, fields)


def load_rubric(spec: str, folder: Path | None) -> Rubric:
    """A rubric by name (``folder/NAME.j2``) or by the path of a ``.j2`` file."""
    path = Path(spec).expanduser()
    if path.suffix != ".j2" or not path.is_file():
        path = (folder or Path(".")) / f"{spec}.j2"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.j2")) if folder else []
        raise JudgeError(
            f"unknown rubric {spec!r}. Known: {', '.join(known) or 'none'}; or pass the path of a "
            "Jinja template (.j2) that sets `labels`."
        )
    return rubric_from_source(path.stem, path.read_text(encoding="utf-8"))


# -- options ---------------------------------------------------------------------------------


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


# -- budget and usage ------------------------------------------------------------------------


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
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                k: v for k, v in self.__dict__.items() if not k.startswith("_") and not k.startswith("max_")
            } | {"max_usd": self.max_usd, "max_calls": self.max_calls}


# -- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt k waits ``min(cap, base·2^k)·U(0.5, 1)`` seconds,
    or the server's ``retry-after`` (up to ``max_retry_after``) when it gives one."""

    max_retries: int = 4
    base_s: float = 1.0
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
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


# -- the base class --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One model answer. ``label`` None with no ``error``: the answer was malformed."""

    label: str | None
    score: float | None = None
    rationale: str = ""
    error: str | None = None


def cache_key(judge_id: str, judge_model: str, rubric_sha256: str, fields: Mapping[str, str]) -> str:
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
        self.progress: Callable[[int, int], None] | None = None
        self.warn: Callable[[str], None] = lambda message: log.warning("%s", message)
        self._store: RunStore | None = None
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
        return self.rubric.labels

    # -- wiring -----------------------------------------------------------------------------

    def set_budget(self, max_usd: float | None, max_calls: int | None) -> None:
        self.meter.max_usd, self.meter.max_calls = max_usd, max_calls

    def attach(self, store: RunStore, run_id: str | None, context: str = "audit") -> None:
        """Cache verdicts in ``store`` and record this judge's usage under ``run_id`` (None: don't)."""
        self._store, self._run_id, self._context = store, run_id, context

    def describe(self) -> str:
        return f"{self.judge_id} ({self.judge_model}; rubric {self.rubric.name} {self.rubric.sha256[:8]})"

    # -- judging ----------------------------------------------------------------------------

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
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


def configure_judge(
    judge: Judge, max_usd: float | None, max_calls: int | None, warn: Callable[[str], None] | None = None
) -> None:
    """Apply the run's budget and check the judge can run; a no-op for judges that are not
    :class:`LLMJudge` (their verdicts cost nothing)."""
    if isinstance(judge, LLMJudge):
        judge.set_budget(max_usd, max_calls)
        if warn is not None:
            judge.warn = warn
        judge.check_ready()


def check_judge_fits(judge: Judge, needs: Mapping[str, Sequence[str]]) -> None:
    """Before any model work: refuse a judge whose labels cannot express what a dimension
    counts, then preflight the judge once if any dimension uses it.

    ``needs`` maps each planned dimension to its ``judge_labels`` (empty: it uses no judge). A
    generation dimension counts ``refused``; with a rubric that has no such label every reply
    would silently count as answered.
    """
    labels = tuple(judge.labels)
    for dimension, needed in needs.items():
        missing = [label for label in needed if label not in labels]
        if missing:
            rubric = getattr(judge, "rubric", None)
            source = f"its rubric {rubric.name!r}" if rubric is not None else "it"
            raise JudgeError(
                f"dimension {dimension!r} counts the judge label(s) {', '.join(map(repr, missing))}, but "
                f"judge {judge.name!r} cannot give them: {source} has the labels {', '.join(labels)}. "
                "Choose a rubric that declares them (e.g. --judge-option rubric=refusal) or another judge."
            )
    if isinstance(judge, LLMJudge) and any(needs.values()):
        judge.preflight()


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


# -- agreement -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """Agreement of two judges on the items both labelled."""

    labels: tuple[str, ...]
    #: confusion[i][j]: items judge A labelled labels[i] and judge B labelled labels[j].
    confusion: tuple[tuple[int, ...], ...]
    n: int
    observed: float | None
    kappa: float | None


def agreement(labels_a: Sequence[str], labels_b: Sequence[str], labels: Sequence[str] = ()) -> Agreement:
    """Cohen's kappa, ``(p_o - p_e) / (1 - p_e)``, and the confusion matrix over ``labels`` (in that
    order; labels seen but not listed are added, sorted). Kappa is None when it is undefined (no
    items, or both judges used one and the same label throughout)."""
    import numpy as np

    labels = tuple(dict.fromkeys([*labels, *sorted(set(labels_a) | set(labels_b))]))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for a, b in zip(labels_a, labels_b, strict=True):
        matrix[index[a], index[b]] += 1
    n = int(matrix.sum())
    if n == 0:
        return Agreement(labels, tuple(map(tuple, matrix.tolist())), 0, None, None)
    observed = float(np.trace(matrix)) / n
    expected = float(matrix.sum(axis=1) @ matrix.sum(axis=0)) / n**2
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return Agreement(labels, tuple(map(tuple, matrix.tolist())), n, observed, kappa)
