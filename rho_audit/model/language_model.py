"""The model layer: load an MLX model (plus optional LoRA adapter), score and generate in batches.

Teacher-forced scoring
    ``score(requests)`` returns, for each (prompt, continuation) request, the summed and mean
    log-probability of the continuation tokens and their count. Requests are grouped by their
    context token ids; each distinct context is run once (left-padded into a ``BatchKVCache``)
    and its cache rows are gathered for every continuation that shares it, the way
    ``mlx_lm/evaluate.py`` reuses a context. Continuations are right-padded, which is exact
    under a causal mask (a real token never attends to a later pad), and left padding of the
    contexts is masked by the cache. Rows are sorted by length to cut padding.

Templates
    ``chat``: a prompt is the user turn, the continuation the assistant reply (the tokenizer's
    chat template). ``raw``: prompt + newline + continuation as plain text. A bare statement
    (no prompt) is always plain text after a document-start token.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from rho_audit.api.context import CountProgress, Score, ScoreRequest, Template
from rho_audit.api.errors import ModelError
from rho_audit.model.blas import ensure_fast_blas, single_threaded_blas

ensure_fast_blas()  # must precede the first `import mlx.core` (see rho_audit.model.blas)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from rho_audit.model import decoding  # noqa: E402
from rho_audit.model.cpu_kernels import numpy_kernels  # noqa: E402
from rho_audit.model.decoding import common_prefix_length as _common_prefix_length  # noqa: E402

#: Each distinct context's token ids -> the shared prefix it is scored after (see ``_prefix_groups``).
_PrefixGroups = dict[tuple[int, ...], tuple[int, ...]]

#: Cap on continuation tokens per batch: bounds the (rows × tokens × vocab) logits buffer.
DEFAULT_BATCH_TOKENS = 2048
DEFAULT_MAX_ROWS = 64
#: Positions projected onto the vocabulary at once (bounds the logits buffer to ~50 MB).
LOGIT_CHUNK = 256
#: Positions a scoring KV cache grows by (mlx-lm's default, 256, is sized for generation).
CACHE_STEP = 16
#: A shared context prefix shorter than this is not worth a separate pass.
MIN_SHARED_PREFIX = 4
#: Prompts prefilled together; at most this many rows decode together.
DEFAULT_PREFILL_BATCH = 8
MAX_GENERATION_BATCH = 96
#: Memory the KV caches of a generation batch may take (auto batch size), across its streams.
#: 768 MiB: the full default-model audit peaked at 1.61 GiB RSS. 1024 MiB (72 reasoning rows
#: per batch instead of 48) decoded the 288 reasoning prompts alone in 148 s instead of ~181 s,
#: identical answers, but the full audit then peaked at 1.98 GiB: too close to the 2 GiB target.
GENERATION_KV_BUDGET = 768 * 2**20
#: Share of ``max_tokens`` a batch's rows are admitted for (auto batch size). The caches grow as
#: answers lengthen and rows whose answer ended leave, so the rows still decoding hold the
#: memory; a batch that would still outgrow the budget sets rows aside for a later batch. The
#: default model's reasoning answers average 79 of 96 tokens but, as short ones end early, its
#: caches peak at 65 % of the up-front reservation.
EXPECTED_ANSWER_SHARE = 0.5
#: Freed buffers MLX may keep for reuse while scoring or generating.
BUFFER_CACHE_LIMIT = 64 * 2**20


@dataclass
class ComputeUsage:
    """Tokens a model has run, counted without padding or recomputation: the work any engine
    must do for the same scores and answers. Times ``2 × parameters`` it gives the FLOPs that
    bound a run from below (:meth:`gflop`), whatever the batching."""

    #: Positions run through the transformer body (distinct contexts, once each; continuations).
    body_tokens: int = 0
    #: Positions projected onto the vocabulary (scored continuation tokens; generated tokens).
    head_tokens: int = 0
    #: Tokens generated (part of both counts above).
    generated_tokens: int = 0

    def gflop(self, body_parameters: int, head_parameters: int) -> float:
        """Matmul GFLOPs of that work (2 per parameter per token; attention's are left out)."""
        return 2 * (self.body_tokens * body_parameters + self.head_tokens * head_parameters) / 1e9

    def __sub__(self, other: ComputeUsage) -> ComputeUsage:
        return ComputeUsage(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class _Row:
    index: int
    context: tuple[int, ...]
    continuation: tuple[int, ...]


class LanguageModel:
    """An MLX causal LM with its tokenizer, ready to score and generate."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_id: str,
        path: Path,
        adapter: Path | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        scoring_workers: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.path = path
        self.adapter = adapter
        self.batch_tokens = batch_tokens
        #: Rows per scoring and generation batch; None: automatic (see :meth:`generation_batch_size`).
        self.batch_size = batch_size
        #: Batches scored (and decoded) at once; >1 only on a multi-core CPU, where MLX runs
        #: most ops on one thread per stream (on a GPU one stream already fills the device).
        self.scoring_workers = scoring_workers if scoring_workers is not None else _default_workers()
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.document_start = self._document_start_token()
        #: Work done so far (see :class:`ComputeUsage`); callers diff it around a task.
        self.usage = ComputeUsage()

    @classmethod
    def load(cls, path: Path, model_id: str, adapter: Path | None = None, **kw: Any) -> LanguageModel:
        from mlx_lm import load

        if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelError(
                f"adapter directory {adapter} has no adapter_config.json. Pass the folder that "
                "mlx-lm's LoRA training wrote (it holds adapter_config.json and adapters.safetensors)."
            )
        from rho_audit.model.paths import check_model_files, describe_load_error

        check_model_files(Path(path), Path(adapter) if adapter else None)
        try:
            model, tokenizer = load(str(path), adapter_path=str(adapter) if adapter else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as err:
            # a config.json that does not fit the weights, a broken tokenizer file, unreadable weights
            raise ModelError(describe_load_error(Path(path), err)) from None
        return cls(model, tokenizer, model_id, Path(path), Path(adapter) if adapter else None, **kw)

    # -- templates -------------------------------------------------------------------------

    def resolve_template(self, template: str) -> Template:
        """``auto`` → chat when the tokenizer has a chat template, else raw."""
        if template == "auto":
            return "chat" if self.has_chat_template else "raw"
        if template == "chat" and not self.has_chat_template:
            raise ModelError(
                f"--template chat: the tokenizer of {self.model_id} has no chat template. "
                "Use --template raw (or auto)."
            )
        return template  # type: ignore[return-value]

    def format_prompt(self, prompt: str, template: Template) -> str:
        if template == "chat":
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
        return prompt + "\n"

    def _document_start_token(self) -> int:
        # A bare statement needs one token of context so its first token is scored too. Like
        # lm-evaluation-harness we use BOS, else EOS, but prefer an explicit end-of-text token:
        # chat models often set BOS to a chat marker such as <|im_start|>.
        vocab = self.tokenizer.get_vocab()
        for candidate in ("<|endoftext|>", "</s>", "<|end_of_text|>"):
            if candidate in vocab:
                return vocab[candidate]
        for attr in ("bos_token_id", "eos_token_id"):
            token = getattr(self.tokenizer, attr, None)
            if token is not None:
                return int(token)
        raise ModelError(f"tokenizer of {self.model_id} has no BOS/EOS token to start a document")

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _context_ids(self, prompt: str | None, template: Template) -> tuple[int, ...]:
        if prompt is None:
            return (self.document_start,)
        return tuple(self.encode(self.format_prompt(prompt, template)))

    def pair_tokens(
        self,
        prompt: str | None,
        continuation: str,
        template: Template,
        history: Sequence[tuple[str, str]] = (),
    ) -> tuple[list[int], list[int]]:
        """(context, continuation) token ids exactly as :meth:`score` sees them, so a trainer
        optimises the quantity the audit measures. ``history``: earlier chat turns."""
        if history and prompt is not None and template == "chat":
            messages = [{"role": r, "content": c} for r, c in history] + [{"role": "user", "content": prompt}]
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return self.encode(text), self.encode(continuation)
        return list(self._context_ids(prompt, template)), self.encode(continuation)

    # -- scoring ---------------------------------------------------------------------------

    def score(
        self,
        requests: Sequence[ScoreRequest],
        template: Template = "chat",
        progress: CountProgress | None = None,
    ) -> list[Score]:
        """Log-probability of each continuation given its prompt, batched (see module doc)."""
        self._evaluate_parameters()
        results: list[Score | None] = [None] * len(requests)
        rows: list[_Row] = []
        contexts: dict[str | None, tuple[int, ...]] = {}
        for i, req in enumerate(requests):
            if req.prompt not in contexts:
                contexts[req.prompt] = self._context_ids(req.prompt, template)
            cont = tuple(self.encode(req.continuation))
            if not cont:
                results[i] = Score(None, None, 0, "continuation encodes to zero tokens")
                continue
            rows.append(_Row(i, contexts[req.prompt], cont))
        prefix_of = self._prefix_groups(r.context for r in rows)
        rows = _padding_order(rows, prefix_of)
        self._count_scoring_work(rows)
        done = len(requests) - len(rows)
        with numpy_kernels(self.model), _bounded_buffer_cache():
            batches = self._batches(rows, prefix_of)
            states = {t: self._prefix_states(t) for t in set(prefix_of.values()) if t}
            prefixes = [states.get(prefix_of[batch[0].context]) for batch in batches]
            for batch, scores in self._run_batches(batches, prefixes):
                for row, score in zip(batch, scores, strict=True):
                    results[row.index] = score
                done += len(batch)
                if progress:
                    progress(done, len(requests))
        return [r for r in results if r is not None]

    def _evaluate_parameters(self) -> None:
        """Compute any parameter still lazy (an adapter's weights as mlx-lm loads them, LoRA
        factors just initialised) on this thread's stream. A worker thread cannot evaluate a
        graph recorded on another thread's stream ("There is no Stream(cpu, 0) in current
        thread"), and scoring and decoding run on worker threads. A no-op once evaluated."""
        mx.eval(self.model.parameters())

    def _count_scoring_work(self, rows: Sequence[_Row]) -> None:
        # Each distinct context token position once: a token shared with another context's
        # prefix is not counted again (the nodes of the contexts' token trie).
        distinct = sorted(set(r.context for r in rows))
        previous = [(), *distinct][:-1]
        self.usage.body_tokens += sum(
            len(c) - _common_prefix_length([c, before]) for before, c in zip(previous, distinct, strict=True)
        )
        # A continuation's last token is predicted, never fed; its first is predicted by the context.
        self.usage.body_tokens += sum(len(r.continuation) - 1 for r in rows)
        self.usage.head_tokens += sum(len(r.continuation) for r in rows)

    def parameter_counts(self) -> tuple[int, int]:
        """(body, head) parameters: those every position runs through, and the vocabulary
        projection's (tied or not). The input embedding is a lookup, not a matmul: left out.
        Counts stored values, so a quantized model's are approximate."""
        from mlx.utils import tree_flatten

        vocab = self.model.model.embed_tokens.weight.shape if self._split() else None
        total = sum(v.size for _, v in tree_flatten(self.model.parameters()))
        head = vocab[0] * vocab[1] if vocab else 0
        tied = getattr(getattr(self.model, "args", None), "tie_word_embeddings", False)
        return total - head * (1 if tied else 2), head

    def _run_batches(
        self, batches: list[list[_Row]], prefixes: list[_Prefix | None]
    ) -> Iterator[tuple[list[_Row], list[Score]]]:
        """Score batches, on CPU two at a time: one MLX stream per worker thread and a
        one-thread BLAS (see :func:`rho_audit.model.blas.single_threaded_blas`). Yields in completion
        order; every batch's numbers are the same whichever worker scores it."""
        workers = min(self.scoring_workers, len(batches))
        if workers < 2:
            for batch, prefix in zip(batches, prefixes, strict=True):
                yield batch, self._score_batch(batch, prefix)
            return
        local = threading.local()

        def score_on_own_stream(batch: list[_Row], prefix: _Prefix | None) -> list[Score]:
            if not hasattr(local, "stream"):
                local.stream = mx.new_stream(mx.cpu)
            with mx.stream(local.stream):
                return self._score_batch(batch, prefix)

        with single_threaded_blas() as single, ThreadPoolExecutor(workers if single else 1) as pool:
            # Costliest first, so that the streams finish together (longest-processing-time order).
            jobs = sorted(zip(batches, prefixes, strict=True), key=lambda job: -_padded_tokens(job[0]))
            pending = {pool.submit(score_on_own_stream, batch, prefix): batch for batch, prefix in jobs}
            try:
                for future in as_completed(pending):
                    yield pending[future], future.result()
            finally:
                for future in pending:
                    future.cancel()

    def _prefix_groups(self, contexts: Iterable[tuple[int, ...]]) -> _PrefixGroups:
        """Each distinct context's shared prefix: the token prefix common to all contexts that
        begin with the same :data:`MIN_SHARED_PREFIX` tokens (a chat template's system turn:
        24 of SmolLM2's ~50 context tokens), run once per call instead of once per context;
        ``()`` for a context that shares none (a bare statement's one token). Every context
        keeps at least one token of its own, whose position yields the logits of the
        continuation's first token."""
        if self._split() is None:  # the prefix's states are fed to the body alone
            return dict.fromkeys(contexts, ())
        groups: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
        for context in dict.fromkeys(contexts):
            groups.setdefault(context[:MIN_SHARED_PREFIX], []).append(context)
        prefix_of: _PrefixGroups = {}
        for members in groups.values():
            length = min(_common_prefix_length(members), min(map(len, members)) - 1)
            shared = members[0][:length] if len(members) > 1 and length >= MIN_SHARED_PREFIX else ()
            prefix_of.update(dict.fromkeys(members, shared))
        return prefix_of

    def _prefix_states(self, tokens: tuple[int, ...]) -> _Prefix:
        body = self._split()[0]  # only called where the model has the body/head layout
        return _Prefix(tokens, decoding.prefix_states(self.model, body, list(tokens)))

    def _batches(self, rows: list[_Row], prefix_of: _PrefixGroups) -> list[list[_Row]]:
        """Consecutive rows within the size limits; a batch's contexts share one prefix group."""
        batches: list[list[_Row]] = []
        current: list[_Row] = []
        longest = 0
        for row in rows:
            length = len(row.context) + len(row.continuation)
            if current and (
                max(longest, length) * (len(current) + 1) > self.batch_tokens
                or len(current) >= (self.batch_size or DEFAULT_MAX_ROWS)
                or prefix_of[row.context] != prefix_of[current[0].context]
            ):
                batches.append(current)
                current, longest = [], 0
            current.append(row)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def _context_cache(
        self, distinct: list[tuple[int, ...]], prefix: _Prefix | None
    ) -> tuple[mx.array, list]:
        """Left-padded context tokens still to run, and a ``BatchKVCache`` per layer that already
        holds the shared prefix where one is given.

        Row i is laid out as ``[pad_i][prefix][own suffix_i]`` so all rows end together. The
        cache receives the first ``len(prefix)`` columns of that layout (the prefix's states
        shifted right by pad_i, i.e. zeros then its first ``len - pad_i`` states), the model
        runs the rest; a row therefore recomputes only the last ``pad_i`` prefix tokens.
        """
        from mlx_lm.models.cache import BatchKVCache

        skip = (
            len(prefix.tokens)
            if prefix is not None and all(c[: len(prefix.tokens)] == prefix.tokens for c in distinct)
            else 0
        )
        width = max(len(c) for c in distinct)
        left_pad = [width - len(c) for c in distinct]
        rows = [[0] * p + list(c) for p, c in zip(left_pad, distinct, strict=True)]
        cache = [BatchKVCache(left_pad) for _ in self.model.layers]
        for layer in cache:
            # mlx-lm grows a cache 256 positions at a time; scoring knows its lengths, and 256
            # spare positions per row of a 64-row batch would hold ~750 MB for the default model.
            layer.step = CACHE_STEP
        if skip:
            # Source index into [zeros(skip) ; prefix states] for each cached column of each row.
            index = mx.array(
                [[max(0, skip + col - p) if col >= p else 0 for col in range(skip)] for p in left_pad]
            )
            for layer, (keys, values) in zip(cache, prefix.states, strict=True):
                layer.keys = _shifted(keys, index)
                layer.values = _shifted(values, index)
                layer.offset = layer.offset + skip
                layer._idx = skip
        return mx.array([r[skip:] for r in rows]), cache

    def _score_batch(self, rows: list[_Row], prefix: _Prefix | None = None) -> list[Score]:
        distinct = list(dict.fromkeys(r.context for r in rows))
        position = {ctx: i for i, ctx in enumerate(distinct)}
        ctx_tokens, cache = self._context_cache(distinct, prefix)
        split = self._split()
        if split is None:
            return self._score_batch_full_logits(rows, position, ctx_tokens, cache)
        body, head = split
        ctx_last = body(ctx_tokens, cache=cache)[:, -1:, :]

        # One cache row per continuation, gathered from its context's row.
        take = mx.array([position[r.context] for r in rows])
        _gather_rows(cache, take)

        cont_len = max(len(r.continuation) for r in rows)
        inputs = [list(r.continuation[:-1]) + [0] * (cont_len - len(r.continuation)) for r in rows]
        hidden = ctx_last[take]
        if cont_len > 1:
            hidden = mx.concatenate([hidden, body(mx.array(inputs), cache=cache)], axis=1)
        # The vocabulary projection and log-softmax only at real continuation positions.
        flat = np.concatenate([i * cont_len + np.arange(len(r.continuation)) for i, r in enumerate(rows)])
        hidden = hidden.reshape(-1, hidden.shape[-1])[mx.array(flat)]
        targets = np.concatenate([r.continuation for r in rows])
        logprobs = _token_logprobs(
            (head(hidden[i : i + LOGIT_CHUNK]) for i in range(0, len(flat), LOGIT_CHUNK)), targets
        )
        return _row_scores(rows, logprobs)

    def _score_batch_full_logits(
        self, rows: list[_Row], position: dict[tuple[int, ...], int], ctx_tokens: mx.array, cache: list
    ) -> list[Score]:
        """Models without the mlx-lm body/head layout: full forward, gather the needed logits."""
        ctx_logits = self.model(ctx_tokens, cache=cache)[:, -1:, :]
        take = mx.array([position[r.context] for r in rows])
        _gather_rows(cache, take)
        cont_len = max(len(r.continuation) for r in rows)
        inputs = [list(r.continuation[:-1]) + [0] * (cont_len - len(r.continuation)) for r in rows]
        logits = ctx_logits[take]
        if cont_len > 1:
            logits = mx.concatenate([logits, self.model(mx.array(inputs), cache=cache)], axis=1)
        flat = np.concatenate([i * cont_len + np.arange(len(r.continuation)) for i, r in enumerate(rows)])
        logits = logits.reshape(-1, logits.shape[-1])[mx.array(flat)]
        targets = np.concatenate([r.continuation for r in rows])
        chunks = (logits[i : i + LOGIT_CHUNK] for i in range(0, len(flat), LOGIT_CHUNK))
        return _row_scores(rows, _token_logprobs(chunks, targets))

    def _split(self) -> tuple[Any, Any] | None:
        """(body, head) of an mlx-lm model: ``model.model`` returns the final hidden states,
        ``lm_head`` (or the tied embedding) projects them. None for other layouts."""
        body = getattr(self.model, "model", None)
        args = getattr(self.model, "args", None)
        head = getattr(self.model, "lm_head", None)
        if head is None and body is not None and getattr(args, "tie_word_embeddings", False):
            head = body.embed_tokens.as_linear
        if body is None or head is None or not callable(body):
            return None
        return body, head

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int,
        template: Template = "chat",
        progress: CountProgress | None = None,
        batch_size: int | None = None,
    ) -> list[str]:
        """Greedy completions of ``prompts`` (deterministic), token for token what mlx-lm's
        one-prompt ``generate`` gives.

        Llama and Qwen2 layouts decode in :func:`rho_audit.model.decoding.greedy_decode` (batches of
        ``batch_size`` rows, sorted by prompt length); other architectures in one mlx-lm
        ``BatchGenerator`` (continuous batching: a row that ends makes room for the next prompt).
        """
        encoded = [self.encode(self.format_prompt(p, template)) for p in prompts]
        if not encoded:
            return []
        self._evaluate_parameters()
        split = self._split() if decoding.supports(self.model) else None
        workers = self.scoring_workers if split is not None else 1
        rows = batch_size or self.batch_size
        kv_budget = None
        if split is not None:
            # Rows are admitted for an answer of EXPECTED_ANSWER_SHARE of max_tokens; the
            # caches grow past that, within the budget (see decoding.greedy_decode).
            prefix = len(decoding.shared_prefix(encoded)) if len(encoded) > 1 else 0
            expected = max(map(len, encoded)) - prefix + math.ceil(max_tokens * EXPECTED_ANSWER_SHARE)
            rows = rows or self.generation_batch_size(expected, exact=True, streams=workers)
            kv_budget = None if batch_size or self.batch_size else GENERATION_KV_BUDGET // workers
        else:
            longest = max(map(len, encoded)) + max_tokens
            rows = rows or self.generation_batch_size(longest, exact=False)
        count = 0
        lock = threading.Lock()

        def report() -> None:  # called from the decoding threads
            nonlocal count
            with lock:
                count += 1
                if progress:
                    progress(count, len(encoded))

        if split is None:
            answers = self._decode(encoded, max_tokens, rows, report)
        else:
            answers = self._greedy_decode(split, encoded, max_tokens, rows, workers, report, kv_budget)
        return [self.tokenizer.decode(t) for t in answers]

    def generation_batch_size(self, sequence_length: int, exact: bool = True, streams: int = 1) -> int:
        """Rows decoded together on each of ``streams`` streams: as many as keep all their KV
        caches within ``GENERATION_KV_BUDGET``, at most ``MAX_GENERATION_BATCH``. ``exact``:
        caches hold ``sequence_length`` positions (:mod:`rho_audit.model.decoding`); else mlx-lm's
        grow in steps of 256. Larger batches decode faster per token on every backend (2-core
        CPU, one stream: 10.3 ms a token at 16 rows, 8.1 at 48)."""
        args = getattr(self.model, "args", None)
        heads = getattr(args, "num_attention_heads", None)
        kv_heads = getattr(args, "num_key_value_heads", None) or heads
        head_dim = getattr(args, "head_dim", None) or (
            getattr(args, "hidden_size", 0) // heads if heads else None
        )
        if not kv_heads or not head_dim:
            return DEFAULT_PREFILL_BATCH * 2
        positions = sequence_length if exact else -(-sequence_length // 256) * 256
        per_row = len(self.model.layers) * 2 * kv_heads * head_dim * 4 * positions
        return max(1, min(MAX_GENERATION_BATCH, GENERATION_KV_BUDGET // per_row // streams))

    def _greedy_decode(
        self,
        split: tuple[Any, Any],
        encoded: list[list[int]],
        max_tokens: int,
        batch_size: int,
        workers: int,
        on_finish: Callable[[], object],
        kv_budget: int | None = None,
    ) -> list[list[int]]:
        """Greedy token ids for each prompt from :func:`rho_audit.model.decoding.greedy_decode`, on CPU
        two batches at a time (one stream and a one-thread BLAS each, as in scoring: 1.44x one
        stream of the same rows, 96 reasoning prompts)."""
        body, head = split
        with _bounded_buffer_cache(), _mapped_large_buffers(), numpy_kernels(self.model) as numpy_attention:
            answers = decoding.greedy_decode(
                self.model,
                body,
                head,
                encoded,
                max_tokens,
                set(self.tokenizer.eos_token_ids),
                batch_size,
                on_finish,
                workers=workers,
                after_batch=_release_memory,
                kv_budget=kv_budget,
                split_prefix=numpy_attention,
            )
        prefix = len(decoding.shared_prefix(encoded)) if len(encoded) > 1 else 0
        generated = sum(len(a) + (len(a) < max_tokens) for a in answers)
        # The shared prefix runs once; each prompt feeds its tokens, and all its answer's
        # tokens (the stop token included) but the last.
        self.usage.body_tokens += prefix + sum(len(e) - prefix for e in encoded) - len(encoded) + generated
        self.usage.head_tokens += generated
        self.usage.generated_tokens += generated
        return answers

    def _decode(
        self, encoded: list[list[int]], max_tokens: int, batch_size: int, on_finish: Callable[[], object]
    ) -> list[list[int]]:
        """Greedy token ids for each prompt from one mlx-lm ``BatchGenerator`` on the current stream."""
        from mlx_lm.generate import BatchGenerator

        generator = BatchGenerator(
            self.model,
            stop_tokens=[[t] for t in self.tokenizer.eos_token_ids],
            completion_batch_size=batch_size,
            prefill_batch_size=min(batch_size, DEFAULT_PREFILL_BATCH),
            stream=mx.default_stream(mx.default_device()),
        )
        # Every decode step has new shapes (the caches grow): the buffer cache must be bounded.
        with _bounded_buffer_cache(), numpy_kernels(self.model):
            try:
                uids = generator.insert(encoded, [max_tokens] * len(encoded))
                # Each prompt feeds its tokens and all its answer's but the last (see below).
                self.usage.body_tokens += sum(map(len, encoded)) - len(encoded)
                tokens: dict[int, list[int]] = {uid: [] for uid in uids}
                while responses := generator.next_generated():
                    for r in responses:
                        self.usage.generated_tokens += 1
                        self.usage.body_tokens += 1
                        self.usage.head_tokens += 1
                        if r.finish_reason != "stop":
                            tokens[r.uid].append(r.token)
                        if r.finish_reason is not None:
                            on_finish()
            finally:
                generator.close()
        return [tokens[uid] for uid in uids]


@contextmanager
def _bounded_buffer_cache() -> Iterator[None]:
    """Bound MLX's cache of freed buffers for the block, then hand them all back.

    Every scoring batch and every decode step has new shapes, so an unbounded cache keeps a
    buffer of each size it ever freed: gigabytes over an audit. Reuse within a size still hits.
    """
    previous = mx.set_cache_limit(BUFFER_CACHE_LIMIT)
    try:
        yield
    finally:
        mx.set_cache_limit(previous)
        mx.clear_cache()
        _trim_heap()


#: glibc's ``mallopt`` parameter for the size from which ``malloc`` maps memory of its own.
_M_MMAP_THRESHOLD = -3


@contextmanager
def _mapped_large_buffers() -> Iterator[None]:
    """Within the block, glibc serves allocations of 1 MB and more with mmap and gives them
    back to the system when freed (glibc only; elsewhere a no-op).

    Decoding frees and reallocates KV caches of a few MB per layer as batches grow and shrink;
    kept in glibc's arenas, those pages stayed resident (the over-refusal prompts alone peaked
    at 1635 MB RSS, 1501 MB with this, in the same time). Afterwards the threshold stays fixed
    at glibc's dynamic maximum, 32 MB, where the default settles after its first large free.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    try:
        yield
    finally:
        mallopt(_M_MMAP_THRESHOLD, 32 << 20)


def _release_memory() -> None:
    """Hand MLX's cached buffers and the C heap's free pages back to the system: between
    generation batches, whose KV caches (tens of MB per layer) are freed and reallocated."""
    mx.clear_cache()
    _trim_heap()


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc only; elsewhere a no-op).

    MLX and NumPy free their buffers with ``free``; glibc keeps the freed pages of buffers under
    its (adaptive, up to 32 MB) mmap threshold in its arenas, so a scoring call left ~400 MB
    resident that the next dimension could not reuse. A fixed 1 MB threshold would avoid it
    but cost 25 % of scoring time in page faults, so the heap is trimmed between calls instead.
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _padding_order(rows: list[_Row], prefix_of: _PrefixGroups) -> list[_Row]:
    """Rows ordered so that consecutive ones pad little against each other in a batch.

    A batch runs each distinct context once (left-padded to the longest) and every
    continuation once (right-padded to the longest), so rows are grouped by context, groups
    sorted by their shared prefix (a batch runs one), their longest continuation, then their
    context length. On the built-in probe sets this runs 27 % fewer padded tokens than sorting
    rows by total length, which also split the rows of one context (a pair's two answers)
    across batches.
    """
    groups: dict[tuple[int, ...], list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.context, []).append(row)
    order = sorted(
        groups.items(),
        key=lambda g: (prefix_of[g[0]], max(len(r.continuation) for r in g[1]), len(g[0]), g[0]),
    )
    return [row for _, group in order for row in sorted(group, key=lambda r: len(r.continuation))]


def _padded_tokens(batch: Sequence[_Row]) -> int:
    """Positions a batch runs: its distinct contexts left-padded, its continuations right-padded."""
    contexts = {r.context for r in batch}
    return len(contexts) * max(map(len, contexts)) + len(batch) * max(len(r.continuation) for r in batch)


def _gather_rows(cache: list, take: mx.array) -> None:
    """One cache row per continuation, gathered from its context's row (filled columns only)."""
    for layer in cache:
        layer.keys = layer.keys[take, :, : layer._idx, :]
        layer.values = layer.values[take, :, : layer._idx, :]
        layer.offset = layer.offset[take]
        layer.left_padding = layer.left_padding[take]


def _default_workers() -> int:
    if mx.default_device() != mx.cpu:
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1


@dataclass(frozen=True)
class _Prefix:
    tokens: tuple[int, ...]
    #: (keys, values) per layer, each (1, kv_heads, len(tokens), head_dim).
    states: list[tuple[mx.array, mx.array]]


def _shifted(states: mx.array, index: mx.array) -> mx.array:
    """Per row i, columns ``[zeros ; states]`` picked by ``index[i]`` (see ``_context_cache``)."""
    padded = mx.concatenate([mx.zeros_like(states), states], axis=2)[0]
    return mx.take(padded, index, axis=1).transpose(1, 0, 2, 3)


def _token_logprobs(logit_chunks: Iterable[mx.array], targets: np.ndarray) -> np.ndarray:
    """log p(target) at each position, from logits that arrive in chunks of positions.

    The log-softmax runs in NumPy: its vectorised exp is ~5x faster than MLX's on CPU, and its
    pairwise float32 sum over the 49K vocabulary is accurate to ~1e-7 (a float64 sum took 3.7x
    as long). It works in place in MLX's own buffer of the chunk, which nothing else reads: a
    copy out of it cost a third of the NumPy time. The next chunk's projection is queued on
    MLX's stream first, so the matmul and the exp overlap.
    """
    out = np.empty(len(targets), dtype=np.float64)
    chunks = iter(logit_chunks)
    current = next(chunks, None)
    if current is not None:
        mx.async_eval(current)
    start = 0
    while current is not None:
        following = next(chunks, None)
        if following is not None:
            mx.async_eval(following)
        logits = np.asarray(current.astype(mx.float32))  # a view, no copy
        if not logits.flags.writeable:  # a backend that exports its buffer read-only
            logits = logits.copy()
        n = len(logits)
        picked = logits[np.arange(n), targets[start : start + n]].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        np.subtract(logits, top, out=logits)
        np.exp(logits, out=logits)
        total = logits.sum(axis=1).astype(np.float64)
        out[start : start + n] = picked - top[:, 0] - np.log(total)
        start += n
        current = following
    return out


def _row_scores(rows: Sequence[_Row], token_logprobs: np.ndarray) -> list[Score]:
    scores, start = [], 0
    for row in rows:
        n = len(row.continuation)
        total = float(token_logprobs[start : start + n].sum())
        scores.append(Score(total, total / n, n))
        start += n
    return scores
