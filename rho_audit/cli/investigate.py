"""``rho-audit investigate``: an auditing agent (Claude, tool use) describes what a fine-tune did."""

from __future__ import annotations

from pathlib import Path

import click

from rho_audit.cli._common import store_option
from rho_audit.cli.judges import parse_judge_options


@click.command()
@click.argument("base", required=False)
@click.option("--adapter", type=click.Path(path_type=Path, file_okay=False), help="LoRA adapter of BASE.")
@click.option(
    "--model-b", type=click.Path(path_type=Path, file_okay=False), help="A fine-tuned model directory."
)
@click.option(
    "--budget",
    type=click.IntRange(min=0),
    required=True,
    help="Model interactions the agent may spend (each question, steered generation or dimension run).",
)
@click.option(
    "--model",
    "claude_model",
    default="claude-sonnet-4-5",
    show_default=True,
    help="The agent's Claude model (key from ANTHROPIC_API_KEY).",
)
@click.option("--grader-model", help="The grader's Claude model (default: --model).")
@click.option("--black-box", is_flag=True, help="No diff results and no steering: the models' answers only.")
@click.option("--truth", help="The true fine-tuning objective: the description is graded 1-5 against it.")
@click.option(
    "--max-turns", type=click.IntRange(min=1), default=40, show_default=True, help="Agent replies at most."
)
@click.option(
    "--max-usd", type=click.FloatRange(min=0), help="Stop the agent once its estimated cost reaches this."
)
@click.option(
    "--claude-option",
    "claude_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option of the claude judge that carries the agent and grades it (timeout, max_retries, "
    "backoff, usd_per_mtok_input, usd_per_mtok_output). Repeatable.",
)
@click.option("--template", type=click.Choice(["auto", "chat", "raw"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of run_dimension's probe samples.")
@store_option()
def investigate(
    base: str | None,
    adapter: Path | None,
    model_b: Path | None,
    budget: int,
    claude_model: str,
    grader_model: str | None,
    black_box: bool,
    truth: str | None,
    max_turns: int,
    max_usd: float | None,
    claude_options: tuple[str, ...],
    template: str,
    seed: int,
    store: Path,
) -> None:
    """Let an LLM agent find what a fine-tune of BASE (default: the bundled model) did.

    The agent asks the fine-tuned and the base model questions, reads the `rho-audit diff` results
    of the same pair (unless --black-box), steers, and runs dimensions, within --budget model
    interactions; it ends with a description of the fine-tuning objective. Every turn is stored
    (kind `investigate`) and shown by `rho-audit report RUN`.
    """
    from rho_audit.agent import InvestigateConfig
    from rho_audit.agent import investigate as run_investigation
    from rho_audit.plugins import load_host

    if (adapter is None) == (model_b is None):
        raise click.UsageError("pass exactly one of --adapter A or --model-b DIR.")
    config = InvestigateConfig(
        base=base,
        adapter=adapter,
        model_b=model_b,
        budget=budget,
        claude_model=claude_model,
        grader_model=grader_model,
        black_box=black_box,
        truth=truth,
        store=store,
        max_turns=max_turns,
        max_usd=max_usd,
        template=template,
        seed=seed,
        claude_options=parse_judge_options(claude_options),
    )
    outcome = run_investigation(config, load_host(), say=lambda m: click.echo(m, err=True))
    click.echo(
        f"run {outcome.run_id}: {outcome.status}; {outcome.interactions} of {budget} model interactions"
    )
    click.echo(f"description: {outcome.description or '(none)'}")
    if outcome.grade is not None:
        click.echo(f"grade: {outcome.grade}/5 ({outcome.grade_rationale})")
    for context, usage in outcome.usage.items():
        from rho_audit.judging.usage import judge_usage_line

        click.echo(f"{context}: {judge_usage_line(usage)}")
