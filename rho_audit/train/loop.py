"""LoRA fine-tuning on MLX with pluggable objectives, seeded end to end and resumable.

The host owns the loop so every objective (``Trainer`` plugin) is trained the same way:

- data: the SFT corpus (shipped general corpus or a user JSONL) plus behavioural-trap texts
  from the ``train`` split, shuffled by the seed; one SFT example per micro-step
  (:func:`~rho_audit.train.config.build_plan`);
- contrast pairs: ``pairs_per_dimension`` drawn per selected trainable dimension per micro-step
  from that dimension's ``train`` split (stratified, as in the paper's "1 per behaviour");
- optimisation: AdamW, linear warm-up then linear decay, gradient accumulation, clipping;
- logging: per optimizer step, metrics averaged over its micro-steps, to ``run_event`` and the
  run store;
- checkpoints: LoRA weights, optimizer state and RNG state every ``checkpoint_every`` steps
  (:mod:`rho_audit.train.checkpoints`), so a kill at any instant leaves a loadable checkpoint.

Losses are computed on exactly the tokens the audit scores (:mod:`rho_audit.train.batches`);
a micro-step's SFT row and pair rows go through the model as one packed forward/backward
(:mod:`rho_audit.train.packing`) where the model's layout allows it, else as separate batches.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.events import RunEvent
from rho_audit.api.trainers import REFERENCE_PAIRS, REFERENCE_SFT, LossTerms, Trainer
from rho_audit.plugins import PluginHost
from rho_audit.store import RunStore
from rho_audit.train.batches import TrainingTokenizer
from rho_audit.train.checkpoints import (
    check_same_config,
    finished_run,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_adapter,
)
from rho_audit.train.config import (
    TrainConfig,
    TrainingPlan,
    build_plan,
    check_init_adapter,
    resolve_trainer,
)
from rho_audit.train.init_adapter import check_shape, load_weights, weights_sha256
from rho_audit.train.packing import MicroBatch, packing_supported
from rho_audit.train.reference import ReferenceScores, as_mlx, bucketed_kl, model_identity

#: The hinge margin logged for trainers without a margin option (for comparison).
DEFAULT_LOGGED_MARGIN = 0.1
#: A token budget that would need more optimizer steps than this is refused (a typo, not a plan).
MAX_BUDGET_STEPS = 1_000_000
#: Where, next to an adapter folder, the base model's reference numbers are cached (shared by
#: every run trained into the same parent folder; a sweep shares one across its cells).
REFERENCE_CACHE = ".reference-cache"


@dataclass
class TrainOutcome:
    run_id: str
    adapter_dir: Path
    steps: int
    status: str
    final_metrics: dict[str, float] = field(default_factory=dict)


def train(
    config: TrainConfig,
    host: PluginHost,
    store: RunStore,
    say: Callable[[RunEvent], None] | None = None,
    resume: bool = True,
    reference_cache: Path | None = None,
) -> TrainOutcome:
    """Train into ``config.adapter_dir``, or resume the interrupted run of the same config there,
    or return at once when that run already finished. ``resume=False`` refuses to continue a
    checkpoint (the CLI asks for ``--resume`` explicitly). ``reference_cache``: the folder of the
    base model's cached numbers (default: :data:`REFERENCE_CACHE` next to the adapter folder)."""
    say = say or (lambda event: None)
    out = Path(config.adapter_dir)
    sha = config.config_sha256()
    finished = finished_run(out)
    if finished:
        check_same_config(out, finished, sha)
        return TrainOutcome(finished["run_id"], out, finished["steps"], "complete", finished["final_metrics"])
    trainer, options = resolve_trainer(host, config)
    check_init_adapter(config)
    plan = build_plan(host, config)
    checkpoint = latest_checkpoint(out)
    if checkpoint:
        check_same_config(out, checkpoint, sha)
        if not resume:
            raise RhoAuditError(
                f"{out} holds an interrupted run of this config (step {checkpoint['step']}). Add --resume "
                "to continue it, or choose another --out."
            )
    run_id = checkpoint["run_id"] if checkpoint else new_run_id()
    loop = TrainingLoop(config, host, store, say, trainer, options, plan, run_id, sha, checkpoint)
    if reference_cache is not None:
        loop.reference_cache = Path(reference_cache)
    return loop.run()


def learning_rate_schedule(config: TrainConfig, total_steps: int) -> Callable[[Any], Any]:
    """Linear warm-up over ``warmup_fraction`` of the steps, then linear decay to zero."""
    import mlx.optimizers as optim

    warmup = round(config.warmup_fraction * total_steps)
    decay = optim.linear_schedule(config.learning_rate, 0.0, max(1, total_steps - warmup))
    if warmup == 0:
        return decay
    return optim.join_schedules([optim.linear_schedule(0.0, config.learning_rate, warmup), decay], [warmup])


class TrainingLoop:
    """One run of :func:`train`, from its first (or resumed) step to the written adapter."""

    def __init__(
        self,
        config: TrainConfig,
        host: PluginHost,
        store: RunStore,
        say: Callable[[RunEvent], None],
        trainer: Trainer,
        options: dict[str, float],
        plan: TrainingPlan,
        run_id: str,
        sha: str,
        checkpoint: dict[str, Any] | None,
    ) -> None:
        self.config, self.host, self.store, self.say = config, host, store, say
        self.trainer, self.options, self.plan = trainer, options, plan
        self.run_id, self.sha, self.checkpoint = run_id, sha, checkpoint
        self.out = Path(config.adapter_dir)
        self.margin = options.get("margin", DEFAULT_LOGGED_MARGIN)
        self.total_steps = plan.total_steps
        self.trained_tokens = 0  # scored tokens of the rows the loss trained on
        self.data_tokens = 0  # response tokens of the SFT stream (what --budget-tokens counts)
        self.reference: ReferenceScores | None = None
        self.reference_cache = self.out.parent / REFERENCE_CACHE
        seed = config.seed
        self.examples = [
            trainer.prepare_example(ex, options, np.random.default_rng([seed, 3, i]))
            for i, ex in enumerate(plan.examples)
        ]

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
        if cfg.init_adapter is not None:  # a checkpoint's weights, restored below, replace these
            check_shape(cfg, len(model.layers))
            load_weights(model, cfg.init_adapter)
        self.packed = packing_supported(model)
        tok = TrainingTokenizer(lm, template, cfg.max_seq_len)
        if cfg.budget_tokens:
            self.total_steps = self._budget_steps(tok)
        if self.trainer.needs_reference:
            identity = model_identity(resolved.path, resolved.model_id)
            self.reference = ReferenceScores(
                model, self.packed, cfg.max_seq_len, identity, self.reference_cache
            )
        self.schedule = learning_rate_schedule(cfg, self.total_steps)
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

        def loss_fn(model: Any, batch: MicroBatch, reference: dict[str, Any]):
            terms = loss_terms(model, batch, reference, self.packed)
            kl = mx.array(0.0) if terms.sft_kl is None else terms.sft_kl
            return self.trainer.loss(terms, self.options), terms.sft_ce, terms.hinge(self.margin), kl

        value_and_grad = nn.value_and_grad(model, loss_fn)
        self.say(
            RunEvent(
                "train_started",
                self.run_id,
                done=start_step,
                total=self.total_steps,
                message=f"{cfg.trainer} on {resolved.model_id}, {lora_layers} LoRA layers",
            )
        )
        metrics: dict[str, float] = {}
        try:
            for step in range(start_step + 1, self.total_steps + 1):
                metrics = self._step(
                    step, model, optimizer, value_and_grad, tok, pair_rng, tree_map, optim, mx
                )
                self.store.add_train_step(self.run_id, step, metrics)
                self.say(
                    RunEvent(
                        "train_step",
                        self.run_id,
                        done=step,
                        total=self.total_steps,
                        unit="steps",
                        metrics=metrics,
                    )
                )
                if step % cfg.checkpoint_every == 0 or step == self.total_steps:
                    self._save_checkpoint(step, model, optimizer, pair_rng, tree_flatten)
                    self.say(RunEvent("checkpoint_saved", self.run_id, done=step, total=self.total_steps))
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
        self._write_adapter(model, lora_layers, tree_flatten, final)
        self.store.finish_run(self.run_id, "complete")
        self.say(
            RunEvent(
                "train_finished",
                self.run_id,
                done=self.total_steps,
                total=self.total_steps,
                message=str(self.out),
                metrics=final,
            )
        )
        return TrainOutcome(self.run_id, self.out, self.total_steps, "complete", final)

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

    def _micro_batches(self, step: int, tok: TrainingTokenizer, pair_rng: np.random.Generator):
        cfg = self.config
        tags = self.trainer.control_tags
        for k in range(cfg.grad_accumulation):
            index = ((step - 1) * cfg.grad_accumulation + k) % len(self.examples)
            drawn = []
            for dim in sorted(self.plan.pairs):
                pool = self.plan.pairs[dim]
                drawn += [pool[i] for i in pair_rng.integers(len(pool), size=cfg.pairs_per_dimension)]
            drawn = self.trainer.prepare_pairs(drawn, pair_rng)
            by_dimension: dict[str, list] = {}
            for p in drawn:
                by_dimension.setdefault(p.dimension, []).extend(tok.pair(p, tags))
            groups = tuple(tuple(rows) for rows in by_dimension.values())
            example = self.examples[index]
            sft = tok.example(example, tags[0] if tags else None)
            yield MicroBatch(sft, groups, cfg.max_seq_len, tok.weights(example))

    def _trained(self, batch: MicroBatch) -> MicroBatch:
        """The rows of ``batch`` the objective's loss trains on."""
        if not self.trainer.uses_pairs:
            batch = batch.without_pairs()
        if not self.trainer.uses_sft:
            batch = batch.without_sft()
        return batch

    def _budget_steps(self, tok: TrainingTokenizer) -> int:
        """Optimizer steps until the SFT data stream has passed ``budget_tokens`` response tokens.

        The budget counts the data, not the loss: every objective walks the same examples and pair
        draws for the same number of steps at a given budget (DPO, which trains on the pairs only,
        included), so objectives differ only in what their loss makes of the same data. What each
        loss trained on is logged per step as ``trained_tokens``."""
        cfg = self.config
        budget = cfg.budget_tokens or 0
        lengths = [MicroBatch(tok.example(ex), (), cfg.max_seq_len).sft_tokens() for ex in self.examples]
        if not any(lengths):
            raise RhoAuditError("--budget-tokens: the SFT examples have no response tokens to count.")
        total, micro = 0, 0
        while total < budget:
            total += lengths[micro % len(lengths)]
            micro += 1
        steps = -(-micro // cfg.grad_accumulation)  # the step holding the micro-step that crossed it
        if steps > MAX_BUDGET_STEPS:
            raise RhoAuditError(
                f"--budget-tokens {budget} would take {steps} optimizer steps; ask for fewer tokens."
            )
        return steps

    def _reference(self, batch: MicroBatch) -> dict[str, Any]:
        """The frozen base model's numbers for the rows the loss trains on (cached per row)."""
        import mlx.core as mx

        needs, found = self.trainer.needs_reference, {}
        if self.reference is None:
            return found
        if REFERENCE_PAIRS in needs and batch.pairs:
            found[REFERENCE_PAIRS] = mx.array(self.reference.pair_ce(batch.pair_rows()))
        if REFERENCE_SFT in needs and batch.sft is not None:
            found[REFERENCE_SFT] = as_mlx(
                self.reference.distribution(batch.sft, self.trainer.reference_top_k)
            )
        return found

    def _step(self, step, model, optimizer, value_and_grad, tok, pair_rng, tree_map, optim, mx):
        cfg = self.config
        started = time.perf_counter()
        grads_sum = None
        losses, sft_losses, hinges, kls, tokens, data = [], [], [], [], 0, 0
        for k, batch in enumerate(self._micro_batches(step, tok, pair_rng)):
            trained = self._trained(batch)
            (loss, sft_ce, hinge, kl), grads = value_and_grad(model, trained, self._reference(trained))
            if k == 0 and batch.pairs and not trained.pairs:
                # Logged only, for comparison with pair objectives: one micro-step's pairs.
                ce = batch.without_sft().forward(model, self.packed).pair_ce
                hinge = mx.maximum(ce[0::2] - ce[1::2] + self.margin, 0.0)
            if trained.sft is None and k == 0:
                # Likewise the SFT loss of an objective that does not train on the corpus.
                sft_ce = batch.without_pairs().forward(model, self.packed).sft_ce.mean()
            grads_sum = grads if grads_sum is None else tree_map(lambda a, b: a + b, grads_sum, grads)
            mx.eval(loss, grads_sum, hinge, sft_ce, kl)
            losses.append(loss.item())
            if trained.sft is not None or k == 0:
                sft_losses.append(sft_ce.item())
            if REFERENCE_SFT in self.trainer.needs_reference:
                kls.append(kl.item())
            hinges += hinge.tolist()
            tokens += trained.n_tokens()
            data += batch.sft_tokens()
        grads = tree_map(lambda g: g / cfg.grad_accumulation, grads_sum)
        grads, grad_norm = optim.clip_grad_norm(grads, cfg.grad_clip)
        # MLX evaluates the schedule at the update count before incrementing it: this step's lr.
        lr = float(self.schedule(mx.array(step - 1)).item())
        optimizer.update(model, grads)
        mx.eval(model.trainable_parameters(), optimizer.state)
        elapsed = time.perf_counter() - started
        self.trained_tokens += tokens
        self.data_tokens += data
        metrics = {
            "loss": float(np.mean(losses)),
            "sft_loss": float(np.mean(sft_losses)),
            "contrastive_loss": float(np.mean(hinges)) if hinges else 0.0,
            "active_share": float(np.mean([h > 0 for h in hinges])) if hinges else 0.0,
            "lr": lr,
            "grad_norm": float(grad_norm.item()),
            "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
            "data_tokens": float(self.data_tokens),
            "trained_tokens": float(self.trained_tokens),
            "seconds": elapsed,
        }
        if kls:
            metrics["kl"] = float(np.mean(kls))
        return metrics

    # -- checkpoints ---------------------------------------------------------------------------

    def _save_checkpoint(self, step, model, optimizer, pair_rng, tree_flatten) -> None:
        state = {
            "run_id": self.run_id,
            "config_sha256": self.sha,
            "step": step,
            "pair_rng": pair_rng.bit_generator.state,
            "trained_tokens": self.trained_tokens,
            "data_tokens": self.data_tokens,
        }
        adapter = dict(tree_flatten(model.trainable_parameters()))
        save_checkpoint(self.out, step, state, adapter, dict(tree_flatten(optimizer.state)))

    def _restore(self, model, optimizer, pair_rng, tree_unflatten) -> int:
        adapter, optimizer_state = load_checkpoint(self.out, self.checkpoint)
        model.load_weights(adapter, strict=False)
        optimizer.state = tree_unflatten(optimizer_state)
        pair_rng.bit_generator.state = self.checkpoint["pair_rng"]
        self.trained_tokens = int(self.checkpoint.get("trained_tokens", 0))
        self.data_tokens = int(self.checkpoint.get("data_tokens", 0))
        return int(self.checkpoint["step"])

    def _write_adapter(self, model, lora_layers, tree_flatten, final: dict[str, float]) -> None:
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
        if self.config.init_adapter is not None:
            adapter_config["rho_audit"]["init_adapter"] = {
                "path": str(self.config.init_adapter),
                "weights_sha256": weights_sha256(self.config.init_adapter),
            }
        tags = self.trainer.control_tags
        if tags:  # audits of this adapter put the desired-behaviour tag before every prompt
            adapter_config["rho_audit"]["audit_prefix"] = tags[0]
            adapter_config["rho_audit"]["control_tags"] = {"tags": list(tags), "mode": "text"}
        done = {
            "run_id": self.run_id,
            "config_sha256": self.sha,
            "steps": self.total_steps,
            "final_metrics": final,
        }
        write_adapter(self.out, dict(tree_flatten(model.trainable_parameters())), adapter_config, done)


def loss_terms(model: Any, batch: MicroBatch, reference: dict[str, Any], packed: bool) -> LossTerms:
    """One micro-step's :class:`LossTerms`: ``batch``'s rows through ``model``, with the base
    model's numbers for them (``reference``: what :meth:`TrainingLoop._reference` found)."""
    import mlx.core as mx

    wants_kl = REFERENCE_SFT in reference
    out = batch.forward(model, packed, sft_logprobs=wants_kl)
    tokens = mx.array(batch.pair_tokens(), dtype=mx.float32)
    ref_ce = reference.get(REFERENCE_PAIRS)
    return LossTerms(
        out.sft_ce.mean() if batch.sft else mx.array(0.0),
        out.pair_ce[0::2],
        out.pair_ce[1::2],
        tokens_positive=tokens[0::2],
        tokens_negative=tokens[1::2],
        reference_ce_positive=None if ref_ce is None else ref_ce[0::2],
        reference_ce_negative=None if ref_ce is None else ref_ce[1::2],
        sft_kl=bucketed_kl(out.sft_logprobs, reference[REFERENCE_SFT]) if wants_kl else None,
    )


def new_run_id() -> str:
    return "train-" + datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
