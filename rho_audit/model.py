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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rho_audit.blas import ensure_fast_blas
from rho_audit.errors import ModelError

ensure_fast_blas()  # must precede the first `import mlx.core` (see rho_audit.blas)

import mlx.core as mx  # noqa: E402

Template = Literal["chat", "raw"]
ProgressFn = Callable[[int, int], None]

#: Cap on continuation tokens per batch: bounds the (rows × tokens × vocab) logits buffer.
DEFAULT_BATCH_TOKENS = 2048
DEFAULT_MAX_ROWS = 64


@dataclass(frozen=True)
class ScoreRequest:
    """Score ``continuation`` after ``prompt`` (None: a bare statement)."""

    prompt: str | None
    continuation: str


@dataclass(frozen=True)
class Score:
    sum_logprob: float | None
    mean_logprob: float | None
    n_tokens: int
    error: str | None = None


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
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.path = path
        self.adapter = adapter
        self.batch_tokens = batch_tokens
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.document_start = self._document_start_token()

    @classmethod
    def load(cls, path: Path, model_id: str, adapter: Path | None = None, **kw: Any) -> LanguageModel:
        from mlx_lm import load

        if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelError(
                f"adapter directory {adapter} has no adapter_config.json. Pass the folder that "
                "mlx-lm's LoRA training wrote (it holds adapter_config.json and adapters.safetensors)."
            )
        try:
            model, tokenizer = load(str(path), adapter_path=str(adapter) if adapter else None)
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(
                f"could not load the model at {path}: {err}. Check that the folder holds a "
                "Hugging Face-format model (config.json, *.safetensors, tokenizer files)."
            ) from None
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
        progress: ProgressFn | None = None,
    ) -> list[Score]:
        """Log-probability of each continuation given its prompt, batched (see module doc)."""
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
        rows.sort(key=lambda r: (len(r.context) + len(r.continuation), r.context))
        done = len(requests) - len(rows)
        for batch in self._batches(rows):
            for row, score in zip(batch, self._score_batch(batch), strict=True):
                results[row.index] = score
            done += len(batch)
            if progress:
                progress(done, len(requests))
        return [r for r in results if r is not None]

    def _batches(self, rows: list[_Row]) -> list[list[_Row]]:
        batches: list[list[_Row]] = []
        current: list[_Row] = []
        longest = 0
        for row in rows:
            length = len(row.context) + len(row.continuation)
            if current and (
                max(longest, length) * (len(current) + 1) > self.batch_tokens
                or len(current) >= DEFAULT_MAX_ROWS
            ):
                batches.append(current)
                current, longest = [], 0
            current.append(row)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def _score_batch(self, rows: list[_Row]) -> list[Score]:
        from mlx_lm.models.cache import BatchKVCache

        distinct = list(dict.fromkeys(r.context for r in rows))
        position = {ctx: i for i, ctx in enumerate(distinct)}
        ctx_len = max(len(c) for c in distinct)
        left_pad = [ctx_len - len(c) for c in distinct]
        ctx_tokens = mx.array([[0] * p + list(c) for p, c in zip(left_pad, distinct, strict=True)])
        cache = [BatchKVCache(left_pad) for _ in self.model.layers]
        ctx_logits = self._last_position_logits(ctx_tokens, cache)

        # One cache row per continuation, gathered from its context's row.
        take = mx.array([position[r.context] for r in rows])
        for layer in cache:
            layer.keys = layer.keys[take]
            layer.values = layer.values[take]
            layer.offset = layer.offset[take]
            layer.left_padding = layer.left_padding[take]

        cont_len = max(len(r.continuation) for r in rows)
        lengths = mx.array([len(r.continuation) for r in rows])
        targets = mx.array([list(r.continuation) + [0] * (cont_len - len(r.continuation)) for r in rows])
        cont_logits = self.model(targets[:, :-1], cache=cache) if cont_len > 1 else None
        first = ctx_logits[take][:, None, :]
        logits = first if cont_logits is None else mx.concatenate([first, cont_logits], axis=1)
        logits = logits.astype(mx.float32)
        picked = mx.take_along_axis(logits, targets[..., None], axis=-1).squeeze(-1)
        token_logprobs = picked - _logsumexp(logits)
        mask = mx.arange(cont_len)[None, :] < lengths[:, None]
        sums = mx.where(mask, token_logprobs, 0.0).sum(axis=-1)
        mx.eval(sums)
        out = []
        for row, total in zip(rows, sums.tolist(), strict=True):
            n = len(row.continuation)
            out.append(Score(total, total / n, n))
        return out

    def _last_position_logits(self, tokens: mx.array, cache: list[Any]) -> mx.array:
        """Logits of the last position only: the context pass needs nothing else, and the
        vocabulary projection of every context token would cost ~20% of the forward.

        Uses the mlx-lm layout (``model.model`` body + ``lm_head`` or tied embeddings) when the
        architecture has it, and the full forward otherwise.
        """
        body = getattr(self.model, "model", None)
        args = getattr(self.model, "args", None)
        head = getattr(self.model, "lm_head", None)
        if head is None and body is not None and getattr(args, "tie_word_embeddings", False):
            head = body.embed_tokens.as_linear
        if body is None or head is None or not callable(body):
            return self.model(tokens, cache=cache)[:, -1, :]
        return head(body(tokens, cache=cache)[:, -1:, :])[:, 0, :]

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int,
        template: Template = "chat",
        progress: ProgressFn | None = None,
        batch_size: int = 16,
    ) -> list[str]:
        """Greedy completions of ``prompts`` (deterministic), generated in batches."""
        from mlx_lm.generate import batch_generate

        encoded = [self.encode(self.format_prompt(p, template)) for p in prompts]
        outputs: list[str] = []
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            response = batch_generate(self.model, self.tokenizer, chunk, max_tokens=max_tokens)
            outputs.extend(response.texts)
            if progress:
                progress(len(outputs), len(prompts))
        return outputs


def _logsumexp(logits: mx.array, block: int = 128) -> mx.array:
    """log-sum-exp over the vocabulary with a two-level sum.

    MLX's CPU reduction adds one value after another in float32, which over a 49K vocabulary
    costs ~3e-4 nats per token; summing blocks of 128 first brings it to ~1e-6.
    """
    top = logits.max(axis=-1, keepdims=True)
    shifted = mx.exp(logits - top)
    vocab = shifted.shape[-1]
    pad = (-vocab) % block
    if pad:
        shifted = mx.pad(shifted, [(0, 0)] * (shifted.ndim - 1) + [(0, pad)])
    blocks = shifted.reshape(*shifted.shape[:-1], -1, block).sum(axis=-1).sum(axis=-1)
    return top.squeeze(-1) + mx.log(blocks)
