"""LoRA fine-tuning on MLX with pluggable objectives, seeded end to end and resumable.

The host owns the loop so every objective (``Trainer`` plugin) is trained the same way:

- data: the SFT corpus (shipped general corpus or a user JSONL) plus behavioural-trap texts
  from the ``train`` split, shuffled by the seed; one SFT example per micro-step;
- contrast pairs: ``pairs_per_dimension`` drawn per selected trainable dimension per micro-step
  from that dimension's ``train`` split (stratified, as in the paper's "1 per behaviour");
- optimisation: AdamW, linear warm-up then linear decay, gradient accumulation, clipping;
- logging: per optimizer step, metrics averaged over its micro-steps, to ``run_event`` and the
  run store;
- checkpoints: LoRA weights, optimizer state and RNG state every ``checkpoint_every`` steps,
  written to a fresh folder and then pointed to by an atomically replaced ``latest.json``, so
  a kill at any instant leaves a loadable checkpoint.

The per-token cross-entropy of a continuation is computed on exactly the tokens the audit
scores (``LanguageModel.pair_tokens``), so the quantity trained is the quantity measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rho_audit.api.errors import PluginError, RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.trainers import LossTerms, Trainer
from rho_audit.model.blas import ensure_fast_blas
from rho_audit.plugins import PluginHost
from rho_audit.probesets.schema import ContrastPair, load_probe_set
from rho_audit.store import RunStore
from rho_audit.train.corpus import SFTExample, load_builtin_corpus, load_corpus, trap_examples

ensure_fast_blas()  # before any `import mlx.core` below: the reference BLAS is ~35x slower

PAPER_DIMENSIONS = ["factual", "toxicity", "sycophancy", "bias"]
DEFAULT_LOGGED_MARGIN = 0.1
ADAPTER_FILE = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
DONE_FILE = "training_complete.json"
CHECKPOINT_POINTER = "latest.json"


class TrainConfig(BaseModel):
    """Everything that determines a training run. Defaults are the paper's §3.3 table."""

    model_config = ConfigDict(extra="forbid")

    trainer: str = "rho-guided"
    model: str | None = None
    adapter_dir: Path = Path("rho-audit-runs/adapters/latest")
    dimensions: list[str] = Field(default_factory=lambda: list(PAPER_DIMENSIONS))
    corpus: Path | None = None
    trap_texts: int = Field(200, ge=0)
    options: dict[str, float] = Field(default_factory=dict)
    seed: int = Field(0, ge=0)
    lora_rank: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_keys: list[str] = Field(
        default_factory=lambda: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj"]
    )
    lora_layers: int | None = Field(None, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    grad_accumulation: int = Field(4, ge=1)
    grad_clip: float = Field(1.0, gt=0)
    epochs: int = Field(1, ge=1)
    max_seq_len: int = Field(256, ge=16)
    pairs_per_dimension: int = Field(1, ge=0)
    max_sft_examples: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(25, ge=1)
    template: str = "auto"

    def config_sha256(self) -> str:
        """Hash of every setting that changes the result (the output folder does not)."""
        data = self.model_dump(mode="json", exclude={"adapter_dir", "checkpoint_every"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainOutcome:
    run_id: str
    adapter_dir: Path
    steps: int
    status: str
    final_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class _Plan:
    """The data of a run, fully determined by the config (so a resume rebuilds it exactly)."""

    examples: list[SFTExample]
    pairs: dict[str, list[ContrastPair]]
    micro_steps: int
    total_steps: int


# -- setup ------------------------------------------------------------------------------------


def resolve_trainer(host: PluginHost, config: TrainConfig) -> tuple[Trainer, dict[str, float]]:
    """The trainer instance and its options with defaults filled; an unknown option, or a value
    outside the option's declared range, is an error."""
    from rho_audit.plugins import unknown_name_message

    if config.trainer not in host.trainers:
        raise PluginError(unknown_name_message("trainer", config.trainer, host.trainers, host.broken))
    trainer: Trainer = host.trainers[config.trainer].obj()
    problems = option_problems(host, config)
    if problems:
        raise RhoAuditError("; ".join(f"--{name}: {problem}" for name, problem in problems) + ".")
    options = {k: float(config.options.get(k, opt.default)) for k, opt in trainer.options.items()}
    return trainer, options


def option_problems(host: PluginHost, config: TrainConfig) -> list[tuple[str, str]]:
    """``(option, what is wrong)`` for each of ``config.options`` that its (known) trainer does
    not take, or whose value lies outside the range the trainer declares for it."""
    trainer = host.trainers[config.trainer].obj
    problems = []
    for name, value in config.options.items():
        option = trainer.options.get(name)
        if option is None:
            known = ", ".join(trainer.options) or "none"
            takers = sorted(n for n, reg in host.trainers.items() if name in getattr(reg.obj, "options", {}))
            fix = f", or pick a trainer that takes it ({', '.join(takers)})" if takers else ""
            problems.append(
                (
                    name,
                    f"trainer {trainer.name!r} has no option {name!r} (its options: {known}); drop it{fix}",
                )
            )
        elif problem := option.problem(value):
            problems.append((name, f"{problem}; it is {trainer.name}'s {option.help}"))
    return problems


def check_config(host: PluginHost, config: TrainConfig) -> None:
    """Everything about ``config`` that can be checked without loading the model: the trainer, its
    options and their ranges, the dimensions' contrast pairs, the corpus file and the model path.
    ``rho-audit train`` calls it before it audits or trains anything."""
    from rho_audit.model.paths import check_model

    resolve_trainer(host, config)
    contrast_pairs(host, config.dimensions)
    if config.corpus:
        load_corpus(config.corpus)
    check_model(config.model)


def contrast_pairs(host: PluginHost, dimensions: Sequence[str]) -> dict[str, list[ContrastPair]]:
    """``train``-split contrast pairs of each selected dimension, via the plugin's own method."""
    pairs: dict[str, list[ContrastPair]] = {}
    for reg in host.select_dimensions(dimensions):
        cls = reg.obj
        probes = load_probe_set(host.probe_set_path(cls.probe_set_name()))
        if not cls.trainable or getattr(probes.card, "trainable", True) is False:
            trainable = [n for n, r in host.dimensions.items() if r.obj.trainable]
            raise RhoAuditError(
                f"dimension {cls.name!r} yields no contrast pairs for training (trainable dimensions: "
                f"{', '.join(trainable)}). Drop it from --dimensions."
            )
        found = [replace(p, dimension=cls.name) for p in cls().contrast_pairs(probes.split("train"))]
        if not found:
            raise RhoAuditError(f"dimension {cls.name!r} has no contrast pairs in its train split.")
        pairs[cls.name] = found
    return pairs


def build_plan(host: PluginHost, config: TrainConfig) -> _Plan:
    pairs = contrast_pairs(host, config.dimensions)
    rng = np.random.default_rng([config.seed, 1])  # data stream, separate from the pair stream
    corpus = load_corpus(config.corpus) if config.corpus else load_builtin_corpus()
    all_pairs = [p for dim in sorted(pairs) for p in pairs[dim]]
    examples = corpus + trap_examples(all_pairs, config.trap_texts, rng)
    order = rng.permutation(len(examples))
    examples = [examples[i] for i in order]
    if config.max_sft_examples:
        examples = examples[: config.max_sft_examples]
    micro = len(examples) * config.epochs
    total = max(1, micro // config.grad_accumulation)
    return _Plan(examples, pairs, total * config.grad_accumulation, total)


def learning_rate_schedule(config: TrainConfig, total_steps: int) -> Callable[[Any], Any]:
    """Linear warm-up over ``warmup_fraction`` of the steps, then linear decay to zero."""
    import mlx.optimizers as optim

    warmup = round(config.warmup_fraction * total_steps)
    decay = optim.linear_schedule(config.learning_rate, 0.0, max(1, total_steps - warmup))
    if warmup == 0:
        return decay
    return optim.join_schedules([optim.linear_schedule(0.0, config.learning_rate, warmup), decay], [warmup])


# -- tokens and losses ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    tokens: Any  # [rows, length] int32, right-padded
    mask: Any  # [rows, length - 1] float32: 1 on predicted target tokens that are scored
    n_tokens: int
    start: int  # first target position scored in any row: logits before it are never needed


def _batch(rows: Sequence[tuple[Sequence[int], Sequence[int]]], max_len: int) -> _Batch:
    """Right-padded (context + continuation) rows with a mask on the continuation targets."""
    import mlx.core as mx

    seqs, masks = [], []
    for context, continuation in rows:
        # Over-long rows lose context from the left first, so the response is still trained.
        keep = max(1, min(len(context), max_len - len(continuation)))
        context = list(context)[-keep:]
        seq = (context + list(continuation))[:max_len]
        n_cont = max(0, len(seq) - len(context))
        seqs.append(seq)
        masks.append([0.0] * (len(seq) - 1 - n_cont) + [1.0] * n_cont)
    width = max(len(s) for s in seqs)
    tokens = [s + [0] * (width - len(s)) for s in seqs]
    mask = [m + [0.0] * (width - 1 - len(m)) for m in masks]
    start = min((m.index(1.0) for m in masks if 1.0 in m), default=0)
    return _Batch(
        mx.array(tokens, dtype=mx.int32),
        mx.array(mask, dtype=mx.float32),
        int(sum(map(sum, masks))),
        start,
    )


def _per_row_ce(model: Any, batch: _Batch) -> Any:
    """Mean cross-entropy per row over its masked target tokens.

    The vocabulary projection is ~20% of the forward and a chat prompt is mostly unscored
    context, so with the mlx-lm layout (``model.model`` body + head) only positions from
    ``batch.start`` on are projected.
    """
    import mlx.core as mx
    import mlx.nn as nn

    inputs, targets, mask = batch.tokens[:, :-1], batch.tokens[:, 1:], batch.mask
    body, head = _body_and_head(model)
    if body is None:
        logits = model(inputs)
    else:
        logits = head(body(inputs)[:, batch.start :])
        targets, mask = targets[:, batch.start :], mask[:, batch.start :]
    ce = nn.losses.cross_entropy(logits.astype(mx.float32), targets, reduction="none") * mask
    return ce.sum(axis=1) / mx.maximum(mask.sum(axis=1), 1.0)


def _body_and_head(model: Any) -> tuple[Any, Any]:
    body = getattr(model, "model", None)
    head = getattr(model, "lm_head", None)
    args = getattr(model, "args", None)
    if head is None and body is not None and getattr(args, "tie_word_embeddings", False):
        head = body.embed_tokens.as_linear
    if body is None or head is None or not callable(body):
        return None, None
    return body, head


def _pair_ce(model: Any, batches: Sequence[_Batch]) -> Any:
    """Per-row CE of the pair rows, one batch per dimension (their lengths differ by 5-10x, so
    one padded batch would be mostly padding); rows stay in (positive, negative) order."""
    import mlx.core as mx

    return mx.concatenate([_per_row_ce(model, b) for b in batches])


class _Tokenizer:
    """Turns SFT examples and contrast pairs into (context, continuation) token ids."""

    def __init__(self, lm: Any, template: str, max_len: int) -> None:
        self.lm, self.template, self.max_len = lm, template, max_len
        self._cache: dict[tuple, tuple[list[int], list[int]]] = {}

    def example(self, ex: SFTExample) -> tuple[list[int], list[int]]:
        key = ("sft", ex.id, ex.prompt, ex.response)
        if key not in self._cache:
            context, continuation = self.lm.pair_tokens(ex.prompt, ex.response, self.template, ex.history)
            eos = self.lm.tokenizer.eos_token_id
            self._cache[key] = (context, continuation + ([eos] if eos is not None else []))
        return self._cache[key]

    def pair(self, pair: ContrastPair) -> list[tuple[list[int], list[int]]]:
        return [
            self.lm.pair_tokens(pair.prompt, text, self.template) for text in (pair.positive, pair.negative)
        ]


# -- the run ----------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    host: PluginHost,
    store: RunStore,
    say: Callable[[RunEvent], None] | None = None,
    resume: bool = True,
) -> TrainOutcome:
    """Train into ``config.adapter_dir``, or resume the interrupted run of the same config there,
    or return at once when that run already finished. ``resume=False`` refuses to continue a
    checkpoint (the CLI asks for ``--resume`` explicitly)."""
    say = say or (lambda event: None)
    out = Path(config.adapter_dir)
    sha = config.config_sha256()
    finished = _read_json(out / DONE_FILE)
    if finished:
        _check_same_config(out, finished, sha)
        return TrainOutcome(finished["run_id"], out, finished["steps"], "complete", finished["final_metrics"])
    trainer, options = resolve_trainer(host, config)
    plan = build_plan(host, config)
    checkpoint = _latest_checkpoint(out)
    if checkpoint:
        _check_same_config(out, checkpoint, sha)
        if not resume:
            raise RhoAuditError(
                f"{out} holds an interrupted run of this config (step {checkpoint['step']}). Add --resume "
                "to continue it, or choose another --out."
            )
    run_id = checkpoint["run_id"] if checkpoint else _new_run_id()
    return _Loop(config, host, store, say, trainer, options, plan, run_id, sha, checkpoint).run()


class _Loop:
    def __init__(self, config, host, store, say, trainer, options, plan, run_id, sha, checkpoint) -> None:
        self.config, self.host, self.store, self.say = config, host, store, say
        self.trainer, self.options, self.plan = trainer, options, plan
        self.run_id, self.sha, self.checkpoint = run_id, sha, checkpoint
        self.out = Path(config.adapter_dir)
        self.margin = options.get("margin", DEFAULT_LOGGED_MARGIN)

    def run(self) -> TrainOutcome:
        import mlx.core as mx
        import mlx.nn as nn
        import mlx.optimizers as optim
        from mlx.utils import tree_flatten, tree_map, tree_unflatten

        from rho_audit.audit.runner import git_revision, package_versions
        from rho_audit.model.language_model import LanguageModel
        from rho_audit.model.paths import resolve_model

        cfg = self.config
        random.seed(cfg.seed)
        mx.random.seed(cfg.seed)  # LoRA's A matrices are drawn from mlx.random
        resolved = resolve_model(cfg.model)
        lm = LanguageModel.load(resolved.path, resolved.model_id, None)
        template = lm.resolve_template(cfg.template)
        model = lm.model
        lora_layers = self._add_lora(model)
        self.schedule = learning_rate_schedule(cfg, self.plan.total_steps)
        optimizer = optim.AdamW(learning_rate=self.schedule, weight_decay=cfg.weight_decay)
        optimizer.init(model.trainable_parameters())
        pair_rng = np.random.default_rng([cfg.seed, 2])
        start_step = 0
        if self.checkpoint:
            start_step = self._restore(model, optimizer, pair_rng, tree_unflatten)
        self.store.start_run(
            self.run_id,
            resolved.model_id,
            str(resolved.path),
            str(self.out),
            cfg.seed,
            cfg.model_dump(mode="json"),
            self.sha,
            package_versions(),
            git_revision(),
            "train",
        )
        tok = _Tokenizer(lm, template, cfg.max_seq_len)

        def loss_fn(model: Any, sft: _Batch, pairs: list[_Batch]):
            sft_ce = _per_row_ce(model, sft).mean()
            if pairs:
                ce = _pair_ce(model, pairs)
                terms = LossTerms(sft_ce, ce[0::2], ce[1::2])
            else:
                empty = mx.zeros((0,))
                terms = LossTerms(sft_ce, empty, empty)
            hinge = terms.hinge(self.margin)
            return self.trainer.loss(terms, self.options), sft_ce, hinge

        value_and_grad = nn.value_and_grad(model, loss_fn)
        self.say(
            RunEvent(
                "train_started",
                self.run_id,
                done=start_step,
                total=self.plan.total_steps,
                message=f"{cfg.trainer} on {resolved.model_id}, {lora_layers} LoRA layers",
            )
        )
        metrics: dict[str, float] = {}
        try:
            for step in range(start_step + 1, self.plan.total_steps + 1):
                metrics = self._step(
                    step, model, optimizer, value_and_grad, tok, pair_rng, tree_map, optim, mx
                )
                self.store.add_train_step(self.run_id, step, metrics)
                self.say(
                    RunEvent(
                        "train_step",
                        self.run_id,
                        done=step,
                        total=self.plan.total_steps,
                        unit="steps",
                        metrics=metrics,
                    )
                )
                if step % cfg.checkpoint_every == 0 or step == self.plan.total_steps:
                    self._save_checkpoint(step, model, optimizer, pair_rng, tree_flatten, mx)
                    self.say(
                        RunEvent("checkpoint_saved", self.run_id, done=step, total=self.plan.total_steps)
                    )
        except KeyboardInterrupt:
            self.store.finish_run(self.run_id, "interrupted", "interrupted; resume with the same command")
            raise
        except BaseException as err:
            self.store.finish_run(self.run_id, "failed", f"{type(err).__name__}: {err}")
            raise
        if not metrics:
            stored = self.store.train_steps(self.run_id)
            metrics = stored[-1].metrics if stored else {}
        final = {k: v for k, v in metrics.items() if k != "step"}
        self._write_adapter(model, lora_layers, tree_flatten, mx, final)
        self.store.finish_run(self.run_id, "complete")
        self.say(
            RunEvent(
                "train_finished",
                self.run_id,
                done=self.plan.total_steps,
                total=self.plan.total_steps,
                message=str(self.out),
                metrics=final,
            )
        )
        return TrainOutcome(self.run_id, self.out, self.plan.total_steps, "complete", final)

    def _add_lora(self, model: Any) -> int:
        from mlx_lm.tuner.utils import linear_to_lora_layers

        n_layers = len(model.layers)
        layers = min(self.config.lora_layers or n_layers, n_layers)
        model.freeze()
        linear_to_lora_layers(model, layers, self._lora_parameters())
        return layers

    def _lora_parameters(self) -> dict[str, Any]:
        cfg = self.config
        # mlx-lm's LoRA takes scale = alpha / rank (the PEFT convention for alpha).
        return {
            "rank": cfg.lora_rank,
            "scale": cfg.lora_alpha / cfg.lora_rank,
            "dropout": 0.0,
            "keys": list(cfg.lora_keys),
        }

    def _micro_batches(self, step: int, tok: _Tokenizer, pair_rng: np.random.Generator):
        cfg = self.config
        for k in range(cfg.grad_accumulation):
            index = ((step - 1) * cfg.grad_accumulation + k) % len(self.plan.examples)
            sft = _batch([tok.example(self.plan.examples[index])], cfg.max_seq_len)
            drawn = []
            for dim in sorted(self.plan.pairs):
                pool = self.plan.pairs[dim]
                drawn += [pool[i] for i in pair_rng.integers(len(pool), size=cfg.pairs_per_dimension)]
            drawn = self.trainer.prepare_pairs(drawn, pair_rng)
            by_dimension: dict[str, list] = {}
            for p in drawn:
                by_dimension.setdefault(p.dimension, []).extend(tok.pair(p))
            yield sft, [_batch(rows, cfg.max_seq_len) for rows in by_dimension.values()]

    def _step(self, step, model, optimizer, value_and_grad, tok, pair_rng, tree_map, optim, mx):
        cfg = self.config
        started = time.perf_counter()
        grads_sum = None
        losses, sft_losses, hinges, tokens = [], [], [], 0
        uses_pairs = self.trainer.uses_pairs
        for k, (sft, pairs) in enumerate(self._micro_batches(step, tok, pair_rng)):
            (loss, sft_ce, hinge), grads = value_and_grad(model, sft, pairs if uses_pairs else [])
            if not uses_pairs and k == 0 and pairs:
                # Logged only, for comparison with pair objectives: one micro-step's pairs.
                ce = _pair_ce(model, pairs)
                hinge = mx.maximum(ce[0::2] - ce[1::2] + self.margin, 0.0)
            grads_sum = grads if grads_sum is None else tree_map(lambda a, b: a + b, grads_sum, grads)
            mx.eval(loss, grads_sum, hinge)
            losses.append(loss.item())
            sft_losses.append(sft_ce.item())
            hinges += hinge.tolist()
            tokens += sft.n_tokens + (sum(b.n_tokens for b in pairs) if uses_pairs else 0)
        grads = tree_map(lambda g: g / cfg.grad_accumulation, grads_sum)
        grads, grad_norm = optim.clip_grad_norm(grads, cfg.grad_clip)
        # MLX evaluates the schedule at the update count before incrementing it: this step's lr.
        lr = float(self.schedule(mx.array(step - 1)).item())
        optimizer.update(model, grads)
        mx.eval(model.trainable_parameters(), optimizer.state)
        elapsed = time.perf_counter() - started
        return {
            "loss": float(np.mean(losses)),
            "sft_loss": float(np.mean(sft_losses)),
            "contrastive_loss": float(np.mean(hinges)) if hinges else 0.0,
            "active_share": float(np.mean([h > 0 for h in hinges])) if hinges else 0.0,
            "lr": lr,
            "grad_norm": float(grad_norm.item()),
            "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
            "seconds": elapsed,
        }

    # -- checkpoints ---------------------------------------------------------------------------

    def _save_checkpoint(self, step, model, optimizer, pair_rng, tree_flatten, mx) -> None:
        folder = self.out / f"checkpoint-{step:06d}"
        tmp = self.out / f".tmp-checkpoint-{step:06d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        mx.save_safetensors(str(tmp / ADAPTER_FILE), dict(tree_flatten(model.trainable_parameters())))
        mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
        state = {
            "run_id": self.run_id,
            "config_sha256": self.sha,
            "step": step,
            "pair_rng": pair_rng.bit_generator.state,
        }
        (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        _atomic_write_json(self.out / CHECKPOINT_POINTER, {**state, "folder": folder.name})
        for old in self.out.glob("checkpoint-*"):  # keep only the one the pointer names
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)

    def _restore(self, model, optimizer, pair_rng, tree_unflatten) -> int:
        import mlx.core as mx

        folder = self.out / self.checkpoint["folder"]
        model.load_weights(list(mx.load(str(folder / ADAPTER_FILE)).items()), strict=False)
        optimizer.state = tree_unflatten(list(mx.load(str(folder / "optimizer.safetensors")).items()))
        pair_rng.bit_generator.state = self.checkpoint["pair_rng"]
        return int(self.checkpoint["step"])

    def _write_adapter(self, model, lora_layers, tree_flatten, mx, final: dict[str, float]) -> None:
        """mlx-lm's adapter layout, each file replaced atomically; the done-marker goes last."""
        tmp = self.out / f".tmp-{ADAPTER_FILE}"
        mx.save_safetensors(str(tmp), dict(tree_flatten(model.trainable_parameters())))
        os.replace(tmp, self.out / ADAPTER_FILE)
        adapter_config = {
            "fine_tune_type": "lora",
            "num_layers": lora_layers,
            "lora_parameters": self._lora_parameters(),
            "rho_audit": {
                "trainer": self.config.trainer,
                "options": self.options,
                "config": self.config.model_dump(mode="json"),
                "config_sha256": self.sha,
            },
        }
        _atomic_write_json(self.out / ADAPTER_CONFIG, adapter_config)
        _atomic_write_json(
            self.out / DONE_FILE,
            {
                "run_id": self.run_id,
                "config_sha256": self.sha,
                "steps": self.plan.total_steps,
                "final_metrics": final,
            },
        )


def _latest_checkpoint(out: Path) -> dict[str, Any] | None:
    pointer = _read_json(out / CHECKPOINT_POINTER)
    if pointer and (out / pointer["folder"] / ADAPTER_FILE).is_file():
        return pointer
    return None


def _check_same_config(out: Path, state: dict[str, Any], sha: str) -> None:
    if state.get("config_sha256") != sha:
        raise RhoAuditError(
            f"{out} holds a training run with different settings (config "
            f"{state.get('config_sha256', '?')[:12]} vs {sha[:12]}). Choose another --out folder, or "
            "delete that one to start over."
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _new_run_id() -> str:
    return "train-" + datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
