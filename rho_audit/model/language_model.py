"""The model: load an MLX model (plus optional LoRA adapter), score continuations and generate.

Templates
    ``chat``: a prompt is the user turn, the continuation the assistant reply (the tokenizer's
    chat template). ``raw``: prompt + newline + continuation as plain text. A bare statement
    (no prompt) is always plain text after a document-start token. A persona's system prompt
    (:attr:`LanguageModel.system_prompt`) is the system turn before the user's (chat), else the
    first paragraph of the prompt; a bare statement does not get it.

Scoring runs in :mod:`rho_audit.model.scoring`; generation, greedy or sampled
(:mod:`rho_audit.model.sampling`), in :mod:`rho_audit.model.decoding` (Llama and Qwen2 layouts)
or mlx-lm's ``BatchGenerator``; hidden states in :mod:`rho_audit.model.activations`.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from rho_audit.api.context import CountProgress, Score, ScoreRequest, Template
from rho_audit.api.errors import ModelError, RhoAuditError
from rho_audit.api.inference import GREEDY, HiddenPositions, Layer, Sampling
from rho_audit.model import activations, decoding, scoring
from rho_audit.model.cpu_kernels import numpy_kernels
from rho_audit.model.decoding import common_prefix_length
from rho_audit.model.layout import body_and_head
from rho_audit.model.memory import bounded_buffer_cache, mapped_large_buffers, release_memory
from rho_audit.model.sampling import RowSampler
from rho_audit.model.scoring import DEFAULT_BATCH_TOKENS, ScoreRow

#: Prompts prefilled together; at most this many rows decode together.
DEFAULT_PREFILL_BATCH = 8
MAX_GENERATION_BATCH = 96
#: Memory the KV caches of a generation batch may take (auto batch size), across its streams.
#: A larger budget (more rows per batch) decodes faster but raised the full default-model
#: audit's peak memory too close to its 2 GiB target.
GENERATION_KV_BUDGET = 768 * 2**20
#: Share of ``max_tokens`` a batch's rows are admitted for (auto batch size). The caches grow as
#: answers lengthen and rows whose answer ended leave, so the rows still decoding hold the
#: memory; a batch that would still outgrow the budget sets rows aside for a later batch. The
#: default model's reasoning answers average 79 of 96 tokens but, as short ones end early, its
#: caches peak at 65 % of the up-front reservation.
EXPECTED_ANSWER_SHARE = 0.5


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


#: Encodings kept per tokenizer before the memo starts over (a few probe sets and an SFT corpus
#: fit many times over).
MAX_CACHED_ENCODINGS = 200_000
_ENCODINGS: dict[str, dict[str, tuple[int, ...]]] = {}


def _encodings_for(tokenizer_dir: Path) -> dict[str, tuple[int, ...]]:
    """The memo of one tokenizer, shared by every LanguageModel loaded from the same folder (an
    adapter does not change the tokenizer)."""
    return _ENCODINGS.setdefault(str(Path(tokenizer_dir).resolve()), {})


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
        self._encodings = _encodings_for(path)
        #: A control text put before every prompt (and bare text) the model is asked about: the
        #: ``<SAFE>`` tag of an adapter trained with conditional fine-tuning (see :func:`control_prefix_of`).
        self.control_prefix: str | None = control_prefix_of(adapter) if adapter else None
        #: A persona's system prompt (``rho-audit run --persona``): the system turn before every
        #: prompt (chat template) or its first paragraph (raw), in scoring and generation alike. A
        #: bare statement has no turn to put it before and is scored as it is (as trainers do).
        self.system_prompt: str | None = None
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

    def format_prompt(self, prompt: str, template: Template, control: str | None = None) -> str:
        """The prompt as the model reads it; ``control`` (default: :attr:`control_prefix`) goes
        before the user's text."""
        prompt = _controlled(prompt, control or self.control_prefix)
        if template == "chat":
            return self.tokenizer.apply_chat_template(
                [*self._system_messages(), {"role": "user", "content": prompt}],
                add_generation_prompt=True,
                tokenize=False,
            )
        return (f"{self.system_prompt}\n\n" if self.system_prompt else "") + prompt + "\n"

    def _system_messages(self) -> list[dict[str, str]]:
        """The persona's system turn, if any, as chat-template messages."""
        return [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []

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
        """Token ids of ``text`` (no special tokens), memoised per tokenizer: a sweep audits the
        same probe texts after every cell, each time with a freshly loaded model."""
        ids = self._encodings.get(text)
        if ids is None:
            if len(self._encodings) >= MAX_CACHED_ENCODINGS:
                self._encodings.clear()
            ids = self._encodings[text] = tuple(self.tokenizer.encode(text, add_special_tokens=False))
        return list(ids)

    def _context_ids(
        self, prompt: str | None, template: Template, control: str | None = None
    ) -> tuple[int, ...]:
        control = control or self.control_prefix
        if prompt is None:  # a bare text: the control text (if any) is its unscored first line
            return (self.document_start, *(self.encode(control + "\n") if control else ()))
        return tuple(self.encode(self.format_prompt(prompt, template, control)))

    def pair_tokens(
        self,
        prompt: str | None,
        continuation: str,
        template: Template,
        history: Sequence[tuple[str, str]] = (),
        control: str | None = None,
    ) -> tuple[list[int], list[int]]:
        """(context, continuation) token ids exactly as :meth:`score` sees them, so a trainer
        optimises the quantity the audit measures. ``history``: earlier turns (a raw template
        puts their texts before the prompt); ``control``: as for :meth:`format_prompt`."""
        if history and prompt is not None:
            if template != "chat":
                prompt = "\n\n".join([*(c for _, c in history), prompt])
                return list(self._context_ids(prompt, template, control)), self.encode(continuation)
            prompt = _controlled(prompt, control or self.control_prefix)
            messages = [
                *self._system_messages(),
                *({"role": r, "content": c} for r, c in history),
                {"role": "user", "content": prompt},
            ]
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return self.encode(text), self.encode(continuation)
        return list(self._context_ids(prompt, template, control)), self.encode(continuation)

    # -- scoring ---------------------------------------------------------------------------

    def score(
        self,
        requests: Sequence[ScoreRequest],
        template: Template = "chat",
        progress: CountProgress | None = None,
    ) -> list[Score]:
        """Log-probability of each continuation given its prompt, batched (see :mod:`.scoring`)."""
        self._evaluate_parameters()
        results: list[Score | None] = [None] * len(requests)
        rows: list[ScoreRow] = []
        contexts: dict[str | None, tuple[int, ...]] = {}
        for i, req in enumerate(requests):
            if req.prompt not in contexts:
                contexts[req.prompt] = self._context_ids(req.prompt, template)
            cont = tuple(self.encode(req.continuation))
            if not cont:
                results[i] = Score(None, None, 0, "continuation encodes to zero tokens")
                continue
            rows.append(ScoreRow(i, contexts[req.prompt], cont))
        prefix_of = scoring.prefix_groups(self.model, (r.context for r in rows))
        rows = scoring.padding_order(rows, prefix_of)
        self._count_scoring_work(rows)
        done = len(requests) - len(rows)
        with numpy_kernels(self.model), bounded_buffer_cache():
            batches = scoring.make_batches(rows, prefix_of, self.batch_tokens, self.batch_size)
            states = {t: scoring.shared_prefix(self.model, t) for t in set(prefix_of.values()) if t}
            prefixes = [states.get(prefix_of[batch[0].context]) for batch in batches]
            for batch, scores in scoring.score_batches(self.model, batches, prefixes, self.scoring_workers):
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

    def _count_scoring_work(self, rows: Sequence[ScoreRow]) -> None:
        # Each distinct context token position once: a token shared with another context's
        # prefix is not counted again (the nodes of the contexts' token trie).
        distinct = sorted(set(r.context for r in rows))
        previous = [(), *distinct][:-1]
        self.usage.body_tokens += sum(
            len(c) - common_prefix_length([c, before]) for before, c in zip(previous, distinct, strict=True)
        )
        # A continuation's last token is predicted, never fed; its first is predicted by the context.
        self.usage.body_tokens += sum(len(r.continuation) - 1 for r in rows)
        self.usage.head_tokens += sum(len(r.continuation) for r in rows)

    def parameter_counts(self) -> tuple[int, int]:
        """(body, head) parameters: those every position runs through, and the vocabulary
        projection's (tied or not). The input embedding is a lookup, not a matmul: left out.
        Counts stored values, so a quantized model's are approximate."""
        from mlx.utils import tree_flatten

        vocab = self.model.model.embed_tokens.weight.shape if body_and_head(self.model) else None
        total = sum(v.size for _, v in tree_flatten(self.model.parameters()))
        head = vocab[0] * vocab[1] if vocab else 0
        tied = getattr(getattr(self.model, "args", None), "tie_word_embeddings", False)
        return total - head * (1 if tied else 2), head

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int,
        template: Template = "chat",
        progress: CountProgress | None = None,
        batch_size: int | None = None,
        sampling: Sampling | None = None,
    ) -> list[str]:
        """Greedy completions of ``prompts`` (deterministic), token for token what mlx-lm's
        one-prompt ``generate`` gives; with ``sampling``, one completion per prompt drawn as it
        says (its ``n`` must be 1: :meth:`sample` returns several per prompt).

        Llama and Qwen2 layouts decode in :func:`rho_audit.model.decoding.greedy_decode` (batches of
        ``batch_size`` rows, sorted by prompt length); other architectures in one mlx-lm
        ``BatchGenerator`` (continuous batching: a row that ends makes room for the next prompt).
        """
        sampling = sampling or GREEDY
        if sampling.n != 1:
            raise RhoAuditError(
                f"generate() returns one completion per prompt, but Sampling(n={sampling.n}) asks for "
                "several: call sample(), which returns a list of n completions per prompt."
            )
        completions = self.sample(prompts, max_tokens, sampling, template, progress, batch_size)
        return [texts[0] for texts in completions]

    def sample(
        self,
        prompts: Sequence[str],
        max_tokens: int,
        sampling: Sampling,
        template: Template = "chat",
        progress: CountProgress | None = None,
        batch_size: int | None = None,
    ) -> list[list[str]]:
        """``sampling.n`` completions of each prompt (a list per prompt, in completion-index order),
        decoded in the same batches as :meth:`generate`'s; ``progress`` counts completions.

        Completion ``j`` of a prompt draws from a random stream keyed by ``sampling.seed`` (None:
        0), the prompt's token ids as the model reads them and ``j`` (see
        :mod:`rho_audit.model.sampling`): the same seed gives the same completions whatever the
        other prompts, their order or the batch size. Greedy sampling decodes each prompt once.
        """
        encoded = [self.encode(self.format_prompt(p, template)) for p in prompts]
        if not encoded:
            return []
        if sampling.greedy:  # every completion is the greedy one
            answers = self._decode_rows(encoded, max_tokens, progress, batch_size, None)
            return [[self.tokenizer.decode(a)] * sampling.n for a in answers]
        n = sampling.n
        rows = [e for e in encoded for _ in range(n)]
        sampler = RowSampler(sampling, rows, [j for _ in encoded for j in range(n)])
        answers = self._decode_rows(rows, max_tokens, progress, batch_size, sampler)
        texts = [self.tokenizer.decode(a) for a in answers]
        return [texts[i : i + n] for i in range(0, len(texts), n)]

    def _decode_rows(
        self,
        encoded: list[list[int]],
        max_tokens: int,
        progress: CountProgress | None,
        batch_size: int | None,
        sampler: RowSampler | None,
    ) -> list[list[int]]:
        """The answer token ids of each encoded prompt (a row): greedy, or drawn by ``sampler``."""
        self._evaluate_parameters()
        split = body_and_head(self.model) if decoding.supports(self.model) else None
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
            return self._decode(encoded, max_tokens, rows, report, sampler)
        return self._greedy_decode(split, encoded, max_tokens, rows, workers, report, kv_budget, sampler)

    def generation_batch_size(self, sequence_length: int, exact: bool = True, streams: int = 1) -> int:
        """Rows decoded together on each of ``streams`` streams: as many as keep all their KV
        caches within ``GENERATION_KV_BUDGET``, at most ``MAX_GENERATION_BATCH``. ``exact``:
        caches hold ``sequence_length`` positions (:mod:`rho_audit.model.decoding`); else mlx-lm's
        grow in steps of 256. Larger batches decode faster per token on every backend."""
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
        sampler: RowSampler | None = None,
    ) -> list[list[int]]:
        """Greedy (or ``sampler``'s) token ids for each prompt from
        :func:`rho_audit.model.decoding.greedy_decode`, on CPU two batches at a time (one stream and
        a one-thread BLAS each, as in scoring)."""
        body, head = split
        with bounded_buffer_cache(), mapped_large_buffers(), numpy_kernels(self.model) as numpy_attention:
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
                after_batch=release_memory,
                kv_budget=kv_budget,
                split_prefix=numpy_attention,
                choose=sampler,
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
        self,
        encoded: list[list[int]],
        max_tokens: int,
        batch_size: int,
        on_finish: Callable[[], object],
        sampler: RowSampler | None = None,
    ) -> list[list[int]]:
        """Greedy (or ``sampler``'s) token ids for each prompt from one mlx-lm ``BatchGenerator``
        on the current stream."""
        from mlx_lm.generate import BatchGenerator

        generator = BatchGenerator(
            self.model,
            stop_tokens=[[t] for t in self.tokenizer.eos_token_ids],
            completion_batch_size=batch_size,
            prefill_batch_size=min(batch_size, DEFAULT_PREFILL_BATCH),
            stream=mx.default_stream(mx.default_device()),
        )
        # Every decode step has new shapes (the caches grow): the buffer cache must be bounded.
        with bounded_buffer_cache(), numpy_kernels(self.model):
            try:
                samplers = sampler.mlx_lm_samplers() if sampler is not None else None
                uids = generator.insert(encoded, [max_tokens] * len(encoded), samplers=samplers)
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

    # -- hidden states ---------------------------------------------------------------------

    def hidden_states(
        self,
        texts: Sequence[str | ScoreRequest],
        layer: Layer = "middle",
        positions: HiddenPositions = "last",
        template: Template = "chat",
        batch_size: int | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Float32 activations of each text at ``layer`` (the residual stream after that block;
        see :data:`rho_audit.api.inference.Layer`), in batches.

        A text is a prompt (``str``), read as :meth:`generate` puts it to the model (template,
        persona, control prefix), or a :class:`ScoreRequest`, read as :meth:`score` reads it
        (context, then continuation). ``positions`` (:data:`rho_audit.api.inference.HiddenPositions`):
        ``"last"``, ``"last_prompt"`` or ``"mean"`` give one (hidden,) vector per text, stacked
        into a (texts, hidden) array; ``"all"`` gives a list of (positions, hidden) arrays.
        """
        index = activations.resolve_layer(self.model, layer, self.model_id)
        activations.check_positions(positions)
        rows: list[activations.TokenText] = []
        for i, text in enumerate(texts):
            if isinstance(text, str):
                ids = self._context_ids(text, template)
                rows.append(activations.TokenText(ids, len(ids), 0))
            elif isinstance(text, ScoreRequest):
                context = self._context_ids(text.prompt, template)
                continuation = self.encode(text.continuation)
                if not continuation:
                    raise RhoAuditError(
                        f"hidden_states: text {i}'s continuation {text.continuation!r} encodes to no "
                        "tokens. Pass its prompt alone (a str) for the prompt's states."
                    )
                rows.append(activations.TokenText((*context, *continuation), len(context), len(context)))
            else:
                raise RhoAuditError(
                    f"hidden_states: text {i} is a {type(text).__name__}; pass a prompt (str) or a "
                    "ScoreRequest."
                )
        self._evaluate_parameters()
        rows_per_batch = batch_size or self.batch_size or activations.MAX_ROWS
        return activations.read(self.model, rows, index, positions, self.batch_tokens, rows_per_batch)


def _controlled(prompt: str, control: str | None) -> str:
    return f"{control} {prompt}" if control else prompt


def control_prefix_of(adapter: Path) -> str | None:
    """The control text an adapter's training asks audits to put before every prompt
    (``rho_audit.audit_prefix`` in its ``adapter_config.json``: conditional fine-tuning's ``<SAFE>``)."""
    import json

    try:
        config = json.loads((Path(adapter) / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return None
    prefix = (config.get("rho_audit") or {}).get("audit_prefix") if isinstance(config, dict) else None
    return prefix if isinstance(prefix, str) and prefix else None


def _default_workers() -> int:
    if mx.default_device() != mx.cpu:
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 else 1
