"""``rho-audit run``: audit a model (and adapter) on the installed dimensions, into the run store."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rho_audit.cli._common import display_option, make_display, print_table, stdout_console, store_option
from rho_audit.cli.judges import judge_run_options, parse_judge_options

if TYPE_CHECKING:
    from rho_audit.api.personas import Persona
    from rho_audit.audit.runner import ProbeChoice
    from rho_audit.plugins import PluginHost


def _split_names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise click.BadParameter("give at least one dimension name, e.g. --plugins toxicity,refusal")
    return names


def _parse_probe_choices(items: tuple[str, ...]) -> tuple[ProbeChoice, ...]:
    from rho_audit.audit.runner import ProbeChoice

    choices = []
    for item in items:
        name, sep, source = item.partition("=")
        if sep and (not name.strip() or not source.strip()):
            raise click.BadParameter(
                f"{item!r}: expected SET or DIMENSION=SET, e.g. ood-clinical or factual=./my-probes",
                param_hint="--probes",
            )
        choices.append(ProbeChoice(source.strip(), name.strip()) if sep else ProbeChoice(item.strip()))
    return tuple(choices)


@click.command()
@click.option(
    "--plugins",
    "-p",
    "plugins",
    metavar="NAMES",
    help="Comma list of dimensions to run (default: all installed). See `rho-audit plugins`.",
)
@click.option(
    "--model",
    "-m",
    metavar="MODEL",
    help="Local HF-format model dir, a .gguf file, or a Hugging Face repo id. "
    "Default: the bundled SmolLM2-135M-Instruct.",
)
@click.option("--adapter", type=click.Path(path_type=Path), help="LoRA adapter directory (mlx-lm format).")
@click.option(
    "--judge",
    default="keyword-refusal",
    show_default=True,
    help="Judge for generation dimensions: keyword-refusal, claude (needs ANTHROPIC_API_KEY), local "
    "(an MLX model), or any installed judge.",
)
@judge_run_options
@click.option(
    "--template",
    type=click.Choice(["auto", "chat", "raw"]),
    default="auto",
    show_default=True,
    help="How prompts are fed: the tokenizer's chat template, or raw text. auto = chat when available.",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=2),
    help="Score a seeded random subset of N probes per dimension.",
)
@click.option(
    "--split",
    type=click.Choice(["all", "train", "eval"]),
    default="all",
    show_default=True,
    help="Which probe split to score (trainers use train; audit after training on eval).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for sub-sampling and bootstrap CIs."
)
@store_option()
@click.option(
    "--json", "json_out", type=click.Path(path_type=Path), help="Also write the whole result as JSON."
)
@click.option(
    "--probes",
    "probe_choices",
    multiple=True,
    metavar="[DIM=]SET",
    help="Score a probe set by name (see `rho-audit probes list`) or folder. SET alone runs it with "
    "the dimension its card names (only those, unless --plugins is given); DIM=SET replaces "
    "DIM's default set. Repeatable.",
)
@click.option(
    "--batch-tokens", type=click.IntRange(min=64), help="Tokens per scoring batch (memory vs speed)."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Rows per scoring and generation batch. Default: automatic (generation admits rows for "
    "half their answer tokens, its KV caches growing in 768 MiB across its streams, at most 96 rows; "
    "scoring at most 64 rows within --batch-tokens).",
)
@click.option(
    "--persona",
    "persona_choices",
    multiple=True,
    metavar="NAME|FILE",
    help="Audit the model under a persona: a registered name (see `rho-audit plugins`) or a persona "
    "file (.jsonl or .yaml records with name, system_prompt, optional category). Its system prompt is "
    "the system turn of every prompt, scored and generated; bare statements are scored without it. "
    "Each persona is a run of its own (a FILE with several: one run each, in file order). Repeatable.",
)
@click.option(
    "--dimension-option",
    "dimension_options",
    multiple=True,
    metavar="NAME.KEY=VALUE",
    help="Set an option a dimension declares, e.g. persona-capability.panel=villain,spy (a list is "
    "comma-separated). `rho-audit plugins` lists the dimensions; an unknown key is refused with the "
    "dimension's options. Recorded in the run's config. Repeatable.",
)
@display_option()
def run(
    plugins: str | None,
    model: str | None,
    adapter: Path | None,
    judge: str,
    judge_options: tuple[str, ...],
    judge_max_usd: float | None,
    judge_max_calls: int | None,
    template: str,
    limit: int | None,
    split: str,
    seed: int,
    store: Path,
    json_out: Path | None,
    probe_choices: tuple[str, ...],
    batch_tokens: int | None,
    batch_size: int | None,
    persona_choices: tuple[str, ...],
    dimension_options: tuple[str, ...],
    display: str,
) -> None:
    """Run an audit and print per-dimension scores with 95% confidence intervals.

    Pair dimensions report rho, the rank-biserial correlation between the model's confidence
    and the behavioural label (0 = chance, < 0 = the model prefers the undesired text).
    Generation dimensions report a rate. Each finished dimension is saved to --store at once,
    so Ctrl-C keeps what was done.
    """
    from rho_audit.audit.runner import AuditConfig, run_audit
    from rho_audit.display.live import results_table
    from rho_audit.plugins import load_host

    config = AuditConfig(
        model=model,
        adapter=str(adapter) if adapter else None,
        dimensions=_split_names(plugins),
        judge=judge,
        judge_options=parse_judge_options(judge_options),
        judge_max_usd=judge_max_usd,
        judge_max_calls=judge_max_calls,
        template=template,
        seed=seed,
        limit=limit,
        split=split,
        store=store,
        json_out=json_out,
        batch_tokens=batch_tokens,
        batch_size=batch_size,
        probe_choices=_parse_probe_choices(probe_choices),
    )
    host = load_host()
    config = replace(config, dimension_options=parse_dimension_options(host, dimension_options))
    personas = _resolve_personas(host, persona_choices)  # every name and file checked before any run
    shown = make_display(display)
    if shown is not None:
        host.pm.register(shown, name="rho-audit-display")
    console = stdout_console()
    failed: dict[str, list[str]] = {}  # cause -> dimensions, so a shared cause is said once
    for persona in personas or (None,):
        out = _json_path(json_out, persona.name if persona and len(personas) > 1 else None)
        outcome = run_audit(replace(config, persona=persona, json_out=out), host)
        title = f"{outcome.model_id} — run {outcome.run_id}" + (
            f" — persona {persona.name}" if persona else ""
        )
        print_table(results_table(outcome.results, title=title), console)
        console.print(f"saved to {outcome.store} (run {outcome.run_id})" + (f"; JSON: {out}" if out else ""))
        if outcome.judge_usage:
            from rho_audit.judging.usage import judge_usage_line

            console.print(f"judge {outcome.judge_usage['judge_id']}: {judge_usage_line(outcome.judge_usage)}")
        for result in outcome.results:
            if result.status == "ERROR":
                label = f"{result.dimension} (persona {persona.name})" if persona else result.dimension
                failed.setdefault(result.error or "nothing was scored", []).append(label)
    for cause, names in failed.items():
        click.secho(f"error: {', '.join(names)}: {cause}", fg="red", err=True)
    if failed:
        sys.exit(1)  # finished dimensions are saved; a dimension in ERROR makes the run fail


def parse_dimension_options(host: PluginHost, items: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--dimension-option NAME.KEY=VALUE`` items as {dimension: {key: value}}, each value read
    the way its declared option reads command-line text (the run checks the values before the
    model loads, so a key the dimension lacks is reported with the dimension's options)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, text = item.partition("=")
        name, dot, key = target.strip().rpartition(".")
        if not (sep and dot and name and key):
            raise click.BadParameter(
                f"{item!r}: expected NAME.KEY=VALUE, e.g. persona-capability.panel=villain,spy",
                param_hint="--dimension-option",
            )
        if key in out.get(name, {}):
            raise click.BadParameter(f"{name}.{key} is set twice; keep one", param_hint="--dimension-option")
        registered = host.dimensions.get(name)
        option = registered.obj.options.get(key) if registered is not None else None
        out.setdefault(name, {})[key] = option.parse(text.strip()) if option is not None else text.strip()
    return out


def _resolve_personas(host: PluginHost, choices: tuple[str, ...]) -> tuple[Persona, ...]:
    """The personas of every ``--persona`` (a name, or a file's records), each name once."""
    personas: dict[str, Persona] = {}
    for choice in choices:
        for persona in host.resolve_personas(choice.strip()):
            if persona.name in personas and personas[persona.name] != persona:
                raise click.BadParameter(
                    f"two personas are named {persona.name!r} (in {choice!r} and an earlier --persona); "
                    "rename one, so each run says which it used.",
                    param_hint="--persona",
                )
            personas[persona.name] = persona
    return tuple(personas.values())


def _json_path(json_out: Path | None, persona: str | None) -> Path | None:
    """``--json`` as given, or with several personas ``NAME.PERSONA.json`` (one file per run)."""
    if json_out is None or persona is None:
        return json_out
    return json_out.with_name(f"{json_out.stem}.{persona}{json_out.suffix}")
