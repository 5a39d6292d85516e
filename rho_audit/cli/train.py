"""``rho-audit train``: fine-tune with a trainer plugin, audit before and after, print deltas."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rho_audit._util.defaults import DEFAULT_ADAPTERS
from rho_audit.api.errors import RhoAuditError
from rho_audit.cli._common import display_option, make_display, print_table, store_option

if TYPE_CHECKING:
    import yaml
    from pydantic import ValidationError

    from rho_audit.api import TrainerOption
    from rho_audit.audit.runner import AuditOutcome
    from rho_audit.plugins import PluginHost
    from rho_audit.train.config import TrainConfig

EPILOG = """\b
Examples:
  rho-audit train --trainer rho-guided --lambda 0.2 --seed 42
  rho-audit train --trainer sft --max-sft-examples 64 --out runs/sft-quick
  rho-audit train --config train.yaml --resume      # continue an interrupted run
  rho-audit train --init-adapter runs/sft-quick --trainer rho-guided   # go on from an adapter
  rho-audit run --adapter runs/sft-quick --split eval
\b
Defaults follow the paper (§3.3): LoRA rank 8, alpha 16 on q/k/o projections, lr 2e-4,
AdamW weight decay 0.01, 10% linear warm-up then linear decay, gradient accumulation 4,
clipping 1.0, 1 epoch, max sequence length 256, one contrast pair per dimension per micro-step
from the train split of factual, toxicity, sycophancy and bias.
"""


@dataclass(frozen=True)
class HyperFlag:
    """A ``--flag`` for a training hyper-parameter (optional; unset keeps TrainConfig's default)."""

    flag: str
    field: str  # of TrainConfig
    type: type
    help: str


HYPER_FLAGS: tuple[HyperFlag, ...] = (
    HyperFlag("--lora-rank", "lora_rank", int, "LoRA rank [8]"),
    HyperFlag("--lora-alpha", "lora_alpha", float, "LoRA alpha [16]"),
    HyperFlag("--lora-layers", "lora_layers", int, "LoRA on the last N layers [all]"),
    HyperFlag("--lr", "learning_rate", float, "peak learning rate [2e-4]"),
    HyperFlag("--weight-decay", "weight_decay", float, "AdamW weight decay [0.01]"),
    HyperFlag("--warmup", "warmup_fraction", float, "share of steps in linear warm-up [0.1]"),
    HyperFlag("--grad-accumulation", "grad_accumulation", int, "micro-steps per optimizer step [4]"),
    HyperFlag("--grad-clip", "grad_clip", float, "gradient-norm clip [1.0]"),
    HyperFlag("--epochs", "epochs", int, "passes over the SFT corpus [1]"),
    HyperFlag(
        "--budget-tokens",
        "budget_tokens",
        int,
        "stop once the SFT stream has passed N response tokens, cycling the data as needed (replaces "
        "--epochs; every objective then takes the same steps on the same data) [off]",
    ),
    HyperFlag("--max-seq-len", "max_seq_len", int, "tokens per sequence [256]"),
    HyperFlag(
        "--pairs-per-dimension", "pairs_per_dimension", int, "contrast pairs per dimension per micro-step [1]"
    ),
    HyperFlag("--max-sft-examples", "max_sft_examples", int, "use only the first N shuffled SFT texts [all]"),
    HyperFlag("--trap-texts", "trap_texts", int, "behavioural-trap texts from train positives [200]"),
    HyperFlag("--checkpoint-every", "checkpoint_every", int, "optimizer steps between checkpoints [25]"),
)


#: Where a trainer option's value is in the command's keyword arguments: ``--lambda`` fills
#: ``option_lambda`` (a bare ``lambda`` is not a Python name).
OPTION_PARAM_PREFIX = "option_"
#: The plugin host that :class:`TrainCommand` loaded for its flags, kept for the command itself.
HOST_KEY = "rho_audit.host"


def _hyper_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for hyper in reversed(HYPER_FLAGS):
        func = click.option(hyper.flag, hyper.field, type=hyper.type, help=hyper.help)(func)
    return func


class TrainCommand(click.Command):
    """``train``, with a ``--NAME`` flag for each option the installed trainers declare.

    The flags are made when ``train`` itself is parsed or its help is shown, not at import: listing
    the trainers loads every plugin, which ``rho-audit --help`` and the other commands skip.
    """

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        host = _host(ctx, required=False)
        if host is None:  # a plugin error: train's body loads the plugins again and reports it
            return params
        taken = {flag for param in params for flag in param.opts}
        after = next(i for i, param in enumerate(params) if param.name == "trainer") + 1
        return [*params[:after], *trainer_option_params(host, taken), *params[after:]]


def trainer_option_params(host: PluginHost, taken: Collection[str] = ()) -> list[click.Option]:
    """One float ``--NAME`` per trainer option name, its help naming the trainers that take it.

    A name that is not a Python identifier or that another flag already uses gets no flag; a
    ``--config`` file's ``options:`` still sets it. Ranges are checked later, by the trainer's
    declaration, so the error names where a value was set (flag or file line).
    """
    declared: dict[str, dict[TrainerOption, list[str]]] = {}
    for reg in host.trainers.values():
        for name, option in getattr(reg.obj, "options", {}).items():
            declared.setdefault(name, {}).setdefault(option, []).append(reg.name)
    params = []
    for name, options in declared.items():
        if not name.isidentifier() or f"--{name}" in taken:
            continue
        text = "; ".join(
            f"{'/'.join(trainers)}: {option.help} [{option.default:g}]"
            for option, trainers in options.items()
        )
        params.append(click.Option([f"--{name}", OPTION_PARAM_PREFIX + name], type=float, help=text + "."))
    return params


def _host(ctx: click.Context, required: bool = True) -> PluginHost | None:
    """The plugin host, loaded once per command line (for the flags, then for the command)."""
    from rho_audit.plugins import load_host

    if HOST_KEY not in ctx.meta:
        try:
            ctx.meta[HOST_KEY] = load_host()
        except RhoAuditError:
            if required:
                raise
            return None
    return ctx.meta[HOST_KEY]


def trainer_flag_values(kw: dict[str, Any]) -> dict[str, float]:
    """The trainer options given as flags, by option name."""
    return {
        key.removeprefix(OPTION_PARAM_PREFIX): value
        for key, value in kw.items()
        if key.startswith(OPTION_PARAM_PREFIX) and value is not None
    }


@click.command(cls=TrainCommand, epilog=EPILOG)
@click.option(
    "--trainer", "-t", help="Objective: sft, rho-guided, contrastive-only, shuffled, or a plugin's."
)
@click.option("--seed", type=int, help="Seeds data order, pair draws, LoRA init, mlx/numpy/random [0].")
@click.option("--model", "-m", help="Base model (as for `rho-audit run`). Default: the bundled model.")
@click.option("--dimensions", help="Comma list of trainable dimensions to draw contrast pairs from.")
@click.option(
    "--corpus",
    type=click.Path(exists=True, path_type=Path),
    help="Your SFT corpus: JSONL, Alpaca (instruction/input/output) or chat (messages).",
)
@click.option(
    "--preferences",
    type=click.Path(exists=True, path_type=Path),
    help="Preference pairs of your own: JSONL with prompt, chosen, rejected per line (used by pair "
    "objectives such as dpo and orpo; drawn like a dimension's contrast pairs).",
)
@click.option(
    "--init-adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Start from this LoRA adapter's weights (an adapter folder, mlx-lm layout) instead of a fresh "
    "LoRA; its rank, alpha, projections and layers must be the run's. The reference of dpo/kl-sft "
    "stays the base model.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, path_type=Path),
    help="YAML with any of the settings (flags given on the command line win).",
)
@_hyper_options
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Adapter folder [rho-audit-runs/adapters/<trainer>-seed<N>-<hash>].",
)
@click.option(
    "--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint."
)
@click.option(
    "--audit/--no-audit",
    default=True,
    show_default=True,
    help="Audit the base model and the adapter on the eval split and print the deltas.",
)
@click.option("--audit-dimensions", help="Dimensions to audit [the trained ones plus refusal].")
@click.option(
    "-n", "--audit-limit", type=click.IntRange(min=2), help="Audit a seeded subset of N probes each."
)
@store_option("SQLite run store (training steps and audits).")
@display_option()
def train(**kw: Any) -> None:
    """Fine-tune the model with LoRA and a trainer objective, then show what it changed.

    Every optimizer step's SFT loss, contrastive loss, share of active pairs, learning rate,
    gradient norm and tokens/s go to the run store and the display. The adapter is written in
    mlx-lm's format (adapters.safetensors + adapter_config.json): use it with
    `rho-audit run --adapter DIR` or `mlx_lm.generate --adapter-path DIR`.
    """
    from rho_audit.audit.runner import emit
    from rho_audit.store import RunStore
    from rho_audit.train.config import check_config
    from rho_audit.train.loop import train as run_training

    config = build_config(kw)
    host = _host(click.get_current_context())
    # Every setting is checked before the base model is audited or loaded: a wrong option
    # must not cost a minute of auditing first.
    _check_options(kw, config, host)
    check_config(host, config)
    audit_dims = _audit_dimensions(kw["audit_dimensions"], config.dimensions, host)
    shown = make_display(kw["display"])
    if shown is not None:
        host.pm.register(shown, name="rho-audit-display")
    before = _audit(kw, config, None, audit_dims, host) if kw["audit"] else None
    store = RunStore(kw["store"])
    try:
        outcome = run_training(config, host, store, say=lambda e: emit(host, e), resume=kw["resume"])
    finally:
        store.close()
    click.echo(f"adapter: {outcome.adapter_dir} (training run {outcome.run_id}, {outcome.steps} steps)")
    if before is not None:
        after = _audit(kw, config, outcome.adapter_dir, audit_dims, host)
        _print_deltas(before, after)


def build_config(kw: dict[str, Any]) -> TrainConfig:
    """YAML file, then flags; the default --out names the trainer, seed and config hash."""
    import yaml
    from pydantic import ValidationError

    from rho_audit._util.yaml_errors import yaml_error_message
    from rho_audit.probesets.schema import decode_utf8
    from rho_audit.train.config import TrainConfig

    data: dict[str, Any] = {}
    root = None
    if kw.get("config_file"):
        text = decode_utf8(kw["config_file"], kw["config_file"].read_bytes())
        try:
            root, data = yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise RhoAuditError(
                f"{yaml_error_message(kw['config_file'], err)}. Nothing was trained."
            ) from None
        except RecursionError:
            raise RhoAuditError(f"{kw['config_file']}: YAML nested too deeply; keep settings flat.") from None
        if not isinstance(data, dict):
            raise RhoAuditError(f"{kw['config_file']}:1: expected a mapping of training settings")
    for key in ("trainer", "seed", "model", "corpus", "preferences", "init_adapter"):
        if kw.get(key) is not None:
            data[key] = kw[key]
    if kw.get("dimensions"):
        data["dimensions"] = [d.strip() for d in kw["dimensions"].split(",") if d.strip()]
    options = data.get("options") or {}
    if not isinstance(options, dict):  # only a --config file can set options to something else
        from rho_audit.train.sweep import line_of

        raise RhoAuditError(
            f"{kw['config_file']}:{line_of(root, ('options',))}: options: expected a mapping of trainer "
            "options, e.g. {lambda: 0.2, margin: 0.1}"
        )
    data["options"] = {**options, **trainer_flag_values(kw)}
    for hyper in HYPER_FLAGS:
        if kw.get(hyper.field) is not None:
            data[hyper.field] = kw[hyper.field]
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as err:
        raise RhoAuditError(_describe_errors(err, kw.get("config_file"), root)) from None
    if kw.get("out"):
        return config.model_copy(update={"adapter_dir": kw["out"]})
    if "adapter_dir" not in data:
        name = f"{config.trainer}-seed{config.seed}-{config.config_sha256()[:8]}"
        return config.model_copy(update={"adapter_dir": DEFAULT_ADAPTERS / name})
    return config


def _describe_errors(err: ValidationError, config_file: Path | None, root: yaml.Node | None) -> str:
    """One line per problem: file:line: key.path: message (flags have no line)."""
    from rho_audit.train.sweep import format_path, line_of

    lines = []
    for e in err.errors():
        path = tuple(e["loc"])
        hint = " (unknown key)" if e["type"] == "extra_forbidden" else ""
        where = "command line"
        if config_file is not None and root is not None and path and path[0] in _yaml_keys(root):
            where = f"{config_file}:{line_of(root, path)}"
        lines.append(f"{where}: {format_path(path)}: {e['msg']}{hint}")
    return "invalid training settings; nothing was trained.\n  " + "\n  ".join(lines)


def _check_options(kw: dict[str, Any], config: TrainConfig, host: PluginHost) -> None:
    """Options the trainer does not take, or values outside their declared range, each named
    where it was set: the --config file's line, or the command line (a flag wins over the file)."""
    import yaml

    from rho_audit.train.config import option_problems
    from rho_audit.train.sweep import line_of

    if config.trainer not in host.trainers:
        return  # check_config names the unknown trainer, with suggestions
    problems = option_problems(host, config)
    if not problems:
        return
    file = kw.get("config_file")
    root = yaml.compose(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader) if file else None
    flags = trainer_flag_values(kw)
    lines = []
    for name, problem in problems:
        from_flag = name in flags
        if root is not None and not from_flag:
            lines.append(f"{file}:{line_of(root, ('options', name))}: options.{name}: {problem}")
        else:
            lines.append(f"command line: --{name}: {problem}")
    raise RhoAuditError("invalid training settings; nothing was trained.\n  " + "\n  ".join(lines))


def _yaml_keys(root: yaml.Node) -> set[str]:
    return {k.value for k, _ in getattr(root, "value", [])}


def _audit_dimensions(option: str | None, trained: list[str], host: PluginHost) -> tuple[str, ...]:
    if option:
        names = tuple(d.strip() for d in option.split(",") if d.strip())
    else:
        names = tuple(dict.fromkeys([*trained, "refusal"]))
    host.select_dimensions(names)  # unknown names fail now, not after training
    return names


def _audit(
    kw: dict[str, Any], config: TrainConfig, adapter: Path | None, dims: tuple[str, ...], host: PluginHost
) -> AuditOutcome:
    from rho_audit.audit.runner import AuditConfig, run_audit

    audit = AuditConfig(
        model=config.model,
        adapter=str(adapter) if adapter else None,
        dimensions=dims,
        seed=config.seed,
        limit=kw.get("audit_limit"),
        split="eval",
        store=kw["store"],
    )
    return run_audit(audit, host)


def _print_deltas(before: AuditOutcome, after: AuditOutcome) -> None:
    from rich.table import Table

    from rho_audit.display.live import format_number

    table = Table(title="eval split: base → adapter", header_style="bold")
    for col in ("dimension", "metric", "base", "adapter", "delta"):
        table.add_column(col, justify="left" if col in ("dimension", "metric") else "right")
    base = {r.dimension: r for r in before.results}
    for r in after.results:
        b = base.get(r.dimension)
        s0 = b.evaluation.score if b else None
        s1 = r.evaluation.score
        delta = format_number(s1 - s0 if s0 is not None and s1 is not None else None)
        table.add_row(r.dimension, r.evaluation.metric, format_number(s0), format_number(s1), delta)
    print_table(table)
