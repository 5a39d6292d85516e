"""``rho-audit judges``: compare judges on the outputs of a stored run; the ``run`` judge flags."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from rho_audit.api.errors import RhoAuditError
from rho_audit.cli._common import print_table, stdout_console, store_option

#: What ``judges agree`` shows for the disagreements of each pair of judges, by default.
SHOW_DISAGREEMENTS = 5


def judge_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--judge-option``, ``--judge-max-usd`` and ``--judge-max-calls`` (for ``run`` and ``agree``)."""
    command = click.option(
        "--judge-max-calls",
        type=click.IntRange(min=0),
        help="Stop calling an LLM judge after N requests (retries count); the rest are marked "
        "skipped_budget. Cached verdicts are free.",
    )(command)
    command = click.option(
        "--judge-max-usd",
        type=click.FloatRange(min=0),
        help="Stop calling an LLM judge once its estimated cost reaches this many USD; the rest are "
        "marked skipped_budget.",
    )(command)
    return click.option(
        "--judge-option",
        "judge_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="A judge option, e.g. model=claude-haiku-4-5, rubric=honesty, concurrency=8, timeout=30 "
        "(see the judge's module docs). Repeatable. For `judges agree`, prefix the judge: "
        "claude.model=...",
    )(command)


def parse_judge_options(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{item!r}: expected KEY=VALUE, e.g. model=claude-haiku-4-5", param_hint="--judge-option"
            )
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


@click.group()
def judges() -> None:
    """LLM judges: compare judges on the same outputs (`rho-audit judges agree`).

    \b
    Judges: keyword-refusal (a phrase lexicon), claude (Messages API; key from ANTHROPIC_API_KEY,
    endpoint from ANTHROPIC_BASE_URL), local (an MLX model scored on the label tokens).
    LLM verdicts are cached in the run store, so comparing again costs nothing.
    """


@dataclass(frozen=True)
class JudgedOutput:
    dimension: str
    probe_id: str
    prompt: str
    response: str


@judges.command()
@click.option("--judges", "names", required=True, metavar="A,B", help="Comma list of two or more judges.")
@click.option("--run", "run_id", required=True, metavar="RUN", help="Run id (a unique prefix is enough).")
@store_option()
@click.option("--dimension", "dimensions", multiple=True, help="Only these dimensions (repeatable).")
@judge_run_options
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=SHOW_DISAGREEMENTS,
    show_default=True,
    help="Disagreements listed per pair of judges.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def agree(
    names: str,
    run_id: str,
    store: Path,
    dimensions: tuple[str, ...],
    judge_options: tuple[str, ...],
    judge_max_usd: float | None,
    judge_max_calls: int | None,
    show: int,
    as_json: bool,
) -> None:
    """How often judges agree on a run's generated outputs: Cohen's kappa and confusion matrix.

    Every judge labels every judged output of RUN (the prompts come from the run's probe sets);
    items where a judge gave no verdict (error, unparseable, skipped_budget) are left out and
    counted. With a `refused` label, the refused-vs-not kappa (what answer rates count) is shown
    too. The budget flags apply to each LLM judge.

    \b
      rho-audit judges agree --judges keyword-refusal,claude --run 20250101-120000-abc123
    """
    from rho_audit.api import NON_VERDICTS, JudgeItem
    from rho_audit.judging.agreement import agreement
    from rho_audit.judging.preflight import configure_judge
    from rho_audit.judging.usage import judge_usage_line
    from rho_audit.plugins import load_host
    from rho_audit.store import RunStore, StoreNotWritable, unwritable_reason

    judge_names = [n.strip() for n in names.split(",") if n.strip()]
    if len(set(judge_names)) < 2:
        raise click.BadParameter(
            "name two or more different judges, e.g. keyword-refusal,claude", param_hint="--judges"
        )
    if not store.is_file():
        raise RhoAuditError(f"no run store at {store}. Pass --store PATH.")
    host = load_host()
    for name in judge_names:
        host.judge(name)  # a typo fails before anything is judged
    options = _options_per_judge(parse_judge_options(judge_options), judge_names)
    try:
        runs = RunStore(store)
    except StoreNotWritable:  # judge it anyway: cached verdicts are read, new ones are not kept
        runs = RunStore.read_only(store)
        if not as_json:
            click.secho(
                f"warning: cannot write {store} ({unwritable_reason(store)}); new verdicts are not "
                "cached in it",
                fg="yellow",
                err=True,
            )
    try:
        run = runs.run(run_id)
        for name in judge_names:  # the run's own judge keeps the run's options unless given
            if name == run.config.get("judge") and not options[name]:
                options[name] = dict(run.config.get("judge_options") or {})
        items = _judged_outputs(runs, run, host, set(dimensions))
        say = (lambda m: None) if as_json else (lambda m: click.secho(f"warning: {m}", fg="yellow", err=True))
        labels: dict[str, list[Any]] = {}
        declared: dict[str, tuple[str, ...]] = {}
        usage: dict[str, dict[str, Any]] = {}
        for name in judge_names:
            judge = host.judge(name).obj(**options[name])
            configure_judge(judge, judge_max_usd, judge_max_calls, say)
            judge.attach(runs, run.run_id, context="agree")
            judge.progress = None if as_json else _progress(name)
            labels[name] = judge.judge([JudgeItem(i.prompt, i.response) for i in items])
            declared[name] = tuple(judge.labels)
            judge_usage = judge.usage()
            if judge_usage is not None:
                usage[name] = judge_usage
    finally:
        runs.close()

    pairs = []
    for a, b in itertools.combinations(judge_names, 2):
        kept = [
            k
            for k in range(len(items))
            if labels[a][k].label not in NON_VERDICTS
            and labels[b][k].label not in NON_VERDICTS
            and not labels[a][k].error
            and not labels[b][k].error
        ]
        la, lb = [labels[a][k].label for k in kept], [labels[b][k].label for k in kept]
        stats = agreement(la, lb, [*declared[a], *declared[b]])
        refused = None
        if "refused" in set(la) | set(lb):
            refused = agreement(_refused_or_not(la), _refused_or_not(lb)).kappa
        excluded = {
            name: _count_labels([v for v in labels[name] if v.label in NON_VERDICTS or v.error])
            for name in (a, b)
        }
        disagreements = [
            {
                "dimension": items[k].dimension,
                "probe_id": items[k].probe_id,
                a: labels[a][k].label,
                b: labels[b][k].label,
                "response": items[k].response,
            }
            for k in kept
            if labels[a][k].label != labels[b][k].label
        ]
        pairs.append(
            {
                "judges": [a, b],
                "n": stats.n,
                "excluded": excluded,
                "labels": list(stats.labels),
                "confusion": [list(row) for row in stats.confusion],
                "observed_agreement": stats.observed,
                "kappa": stats.kappa,
                "kappa_refused_vs_not": refused,
                "disagreements": disagreements,
            }
        )
    if as_json:
        doc = {"run_id": run.run_id, "items": len(items), "pairs": pairs, "judge_usage": usage}
        click.echo(json.dumps(doc, indent=2))
        return
    _print_agreement(run.run_id, items, pairs, show)
    for name, row in usage.items():
        click.echo(f"judge {name}: {judge_usage_line(row)}")


def _options_per_judge(pairs: Sequence[tuple[str, str]], names: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {name: {} for name in names}
    for key, value in pairs:
        judge, dot, option = key.partition(".")
        if not dot or judge not in out:
            raise click.BadParameter(
                f"{key}={value}: prefix the option with one of the judges compared, e.g. "
                f"{names[-1]}.{option or key}={value}",
                param_hint="--judge-option",
            )
        out[judge][option] = value
    return out


def _judged_outputs(runs: Any, run: Any, host: Any, only: set[str]) -> list[JudgedOutput]:
    """Every output of the run that its judge labelled, with the prompt from the run's probe set."""
    from rho_audit.audit.attacks import split_record_id
    from rho_audit.probesets.schema import load_probe_set

    items: list[JudgedOutput] = []
    planned = run.config.get("dimensions", {})
    for result in runs.results(run.run_id):
        dimension = result["dimension"]
        if only and dimension not in only:
            continue
        records = [
            r
            for r in runs.probe_records(run.run_id, dimension)
            if r.get("verdict") is not None and r.get("output") is not None
        ]
        if not records:
            continue
        set_name = planned.get(dimension, {}).get("probe_set") or result["probe_set"]
        try:
            probes = load_probe_set(host.resolve_probe_set(set_name))
        except RhoAuditError as err:
            raise RhoAuditError(
                f"the prompts of {dimension!r} come from probe set {set_name!r}, which cannot be "
                f"loaded now ({err}). Install or import that set again, then retry."
            ) from None
        if probes.version != result["probe_set_version"]:
            click.secho(
                f"warning: probe set {set_name!r} is now version {probes.version}, the run used "
                f"{result['probe_set_version']}; prompts may differ",
                fg="yellow",
                err=True,
            )
        prompts = {p.id: p.prompt for p in probes}
        for r in records:
            # An attack dimension's record is REQUEST@ATTACK, judged against the plain request.
            pid = r["probe_id"] if r["probe_id"] in prompts else split_record_id(r["probe_id"])[0]
            if pid not in prompts:
                raise RhoAuditError(
                    f"probe {r['probe_id']!r} of {dimension!r} is no longer in probe set "
                    f"{set_name!r}; its prompt is unknown."
                )
            items.append(JudgedOutput(dimension, r["probe_id"], prompts[pid], r["output"]))
    if not items:
        raise RhoAuditError(
            f"run {run.run_id} has no judged outputs{' in ' + ', '.join(sorted(only)) if only else ''}. "
            "Judges label generation dimensions such as overrefusal: rho-audit run --plugins overrefusal"
        )
    return items


def _refused_or_not(labels: Sequence[str]) -> list[str]:
    return ["refused" if label == "refused" else "not refused" for label in labels]


def _count_labels(verdicts: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.label] = counts.get(v.label, 0) + 1
    return counts


def _progress(name: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        click.echo(f"\rjudging with {name}: {done}/{total}", nl=done >= total, err=True)

    return show


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _print_agreement(
    run_id: str, items: Sequence[JudgedOutput], pairs: list[dict[str, Any]], show: int
) -> None:
    from rich.table import Table

    console = stdout_console()
    per_dim: dict[str, int] = {}
    for item in items:
        per_dim[item.dimension] = per_dim.get(item.dimension, 0) + 1
    console.print(
        f"run {run_id}: {len(items)} judged outputs ("
        + ", ".join(f"{d} {n}" for d, n in per_dim.items())
        + ")"
    )
    for pair in pairs:
        a, b = pair["judges"]
        excluded = "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
            for name, counts in pair["excluded"].items()
            if counts
        )
        console.print(
            f"\n[bold]{a} vs {b}[/]: {pair['n']} items compared"
            + (f" (left out: {excluded})" if excluded else "")
        )
        agreed = "-" if pair["observed_agreement"] is None else f"{pair['observed_agreement']:.1%}"
        line = f"agreement {agreed}, Cohen's kappa {_fmt(pair['kappa'])}"
        if pair["kappa_refused_vs_not"] is not None or "refused" in pair["labels"]:
            line += f"; refused-vs-not kappa {_fmt(pair['kappa_refused_vs_not'])}"
        console.print(line)
        console.print(f"confusion matrix: rows {a}, columns {b}")
        table = Table(header_style="bold")
        table.add_column(f"{a} \\ {b}")
        for label in pair["labels"]:
            table.add_column(label, justify="right")
        for label, row in zip(pair["labels"], pair["confusion"], strict=True):
            table.add_row(label, *[str(x) for x in row])
        print_table(table, console)
        for d in pair["disagreements"][:show]:
            text = " ".join(d["response"].split())
            console.print(
                f"  {d['dimension']}/{d['probe_id']}: {a}={d[a]}, {b}={d[b]}: "
                f"{text[:100]}{'…' if len(text) > 100 else ''}",
                markup=False,
                highlight=False,
            )
        hidden = len(pair["disagreements"]) - show
        if hidden > 0:
            console.print(f"  … {hidden} more disagreements (--show N, or --json for all)")
