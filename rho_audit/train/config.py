"""What a training run is: its settings (:class:`TrainConfig`, the paper's §3.3 defaults), the
trainer and options they resolve to, and the data plan they determine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rho_audit._util.defaults import DEFAULT_ADAPTERS
from rho_audit.api.errors import PluginError, RhoAuditError
from rho_audit.api.trainers import Trainer
from rho_audit.plugins import PluginHost, unknown_name_message
from rho_audit.probesets.schema import ContrastPair, load_probe_set
from rho_audit.train.corpus import SFTExample, load_builtin_corpus, load_corpus, trap_examples
from rho_audit.train.init_adapter import check_shape, model_layer_count, weights_sha256
from rho_audit.train.preferences import DIMENSION as PREFERENCES_GROUP
from rho_audit.train.preferences import load_preferences

PAPER_DIMENSIONS = ["factual", "toxicity", "sycophancy", "bias"]
#: TrainConfig fields that joined after the first stored runs (see ``config_sha256``).
UNHASHED_WHEN_UNSET = ("preferences", "budget_tokens", "init_adapter")


class TrainConfig(BaseModel):
    """Everything that determines a training run. Defaults are the paper's §3.3 table."""

    model_config = ConfigDict(extra="forbid")

    trainer: str = "rho-guided"
    model: str | None = None
    adapter_dir: Path = DEFAULT_ADAPTERS / "latest"
    dimensions: list[str] = Field(default_factory=lambda: list(PAPER_DIMENSIONS))
    corpus: Path | None = None
    #: Preference pairs of your own (JSONL ``prompt``/``chosen``/``rejected``), drawn like a
    #: dimension's contrast pairs (group ``preferences``) by objectives that train on pairs.
    preferences: Path | None = None
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
    #: Stop once the SFT data stream has passed this many response tokens (cycling the data as
    #: often as needed); every objective then takes the same steps on the same data, and the
    #: schedule spans exactly those steps.
    budget_tokens: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(25, ge=1)
    template: str = "auto"
    #: Start from this LoRA adapter's weights (mlx-lm layout; its LoRA shape must be the run's)
    #: instead of a fresh LoRA. A reference model stays the base model (see
    #: :mod:`rho_audit.train.init_adapter`); the hash holds the adapter's weights, not its path.
    init_adapter: Path | None = None

    def config_sha256(self) -> str:
        """Hash of every setting that changes the result (the output folder does not)."""
        data = self.model_dump(mode="json", exclude={"adapter_dir", "checkpoint_every"})
        # Settings added after runs were stored are left out while unset, so those runs' hashes
        # (resume, adapter reuse, sweep ids) stay what they were.
        for key in UNHASHED_WHEN_UNSET:
            if data.get(key) is None:
                data.pop(key, None)
        if self.init_adapter is not None:  # what it starts from, wherever that folder now lies
            data["init_adapter"] = weights_sha256(self.init_adapter)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainingPlan:
    """The data of a run, fully determined by the config (so a resume rebuilds it exactly)."""

    examples: list[SFTExample]
    pairs: dict[str, list[ContrastPair]]
    micro_steps: int
    total_steps: int


def resolve_trainer(host: PluginHost, config: TrainConfig) -> tuple[Trainer, dict[str, float]]:
    """The trainer instance and its options with defaults filled; an unknown option, or a value
    outside the option's declared range, is an error."""
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
    options and their ranges, the dimensions' contrast pairs, the corpus and preference files, the
    init adapter and its LoRA shape, and the model path.
    ``rho-audit train`` calls it before it audits or trains anything."""
    from rho_audit.model.paths import check_model

    resolve_trainer(host, config)
    contrast_pairs(host, config.dimensions)
    if config.corpus:
        load_corpus(config.corpus)
    if config.preferences:
        load_preferences(config.preferences)
    check_model(config.model)
    check_init_adapter(config)


def check_init_adapter(config: TrainConfig) -> None:
    """Refuse an init adapter that is not an adapter folder, or whose LoRA shape is not the run's
    (its layers are compared when the model's folder tells its depth without loading it)."""
    from rho_audit.model.paths import check_model

    if config.init_adapter is not None:
        check_shape(config, model_layer_count(config.model, check_model(config.model)))


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


def build_plan(host: PluginHost, config: TrainConfig) -> TrainingPlan:
    pairs = contrast_pairs(host, config.dimensions)
    rng = np.random.default_rng([config.seed, 1])  # data stream, separate from the pair stream
    corpus = load_corpus(config.corpus) if config.corpus else load_builtin_corpus()
    all_pairs = [p for dim in sorted(pairs) for p in pairs[dim]]
    examples = corpus + trap_examples(all_pairs, config.trap_texts, rng)
    if config.preferences:  # drawn like a dimension's pairs; never trap texts (the user chose them)
        pairs[PREFERENCES_GROUP] = load_preferences(config.preferences)
    order = rng.permutation(len(examples))
    examples = [examples[i] for i in order]
    if config.max_sft_examples:
        examples = examples[: config.max_sft_examples]
    micro = len(examples) * config.epochs
    total = max(1, micro // config.grad_accumulation)
    return TrainingPlan(examples, pairs, total * config.grad_accumulation, total)
