"""``rho-audit diff``: the activation-difference lens of a fine-tune (what it did, read from the mean
difference of its middle-layer activations from the base model's on neutral text)."""

from __future__ import annotations

from pathlib import Path

import click

from rho_audit.cli._common import store_option
from rho_audit.cli.judges import judge_run_options, parse_judge_options

EPILOG = """\b
Examples:
  rho-audit diff --adapter ./adapters                      the bundled model with and without it
  rho-audit diff BASE --model-b ./tuned --layer 12 --texts 500
  rho-audit diff --adapter ./a --keywords baking,cake,oven relevance share of the top tokens
  rho-audit diff --adapter ./a --domain "baking cakes" --relevance-judge claude   graded by an LLM
"""


@click.command(epilog=EPILOG)
@click.argument("base", required=False)
@click.option("--adapter", type=click.Path(path_type=Path, file_okay=False), help="LoRA adapter of BASE.")
@click.option(
    "--model-b", type=click.Path(path_type=Path, file_okay=False), help="A fine-tuned model directory."
)
@click.option(
    "--layer", default="middle", show_default=True, help='Block index (negative from the end) or "middle".'
)
@click.option(
    "--positions", type=click.IntRange(min=1), default=5, show_default=True, help="First k positions (k)."
)
@click.option(
    "--texts", type=click.IntRange(min=1), default=2000, show_default=True, help="Neutral texts (N)."
)
@click.option(
    "--corpus",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Neutral texts of your own (one a line, or JSONL with a text field) instead of the built-in ones.",
)
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Tokens per read-out.")
@click.option(
    "--steer-position", type=click.IntRange(min=0), help="Position whose δ̄ steers [largest vs base]."
)
@click.option(
    "--alpha-high",
    type=click.FloatRange(min=0, min_open=True),
    default=4.0,
    show_default=True,
    help="Largest steering strength tried, in units of the layer's mean activation norm.",
)
@click.option(
    "--alpha-steps",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="Tries after --alpha-high: halvings until one passes, then bisections (log scale).",
)
@click.option(
    "--max-tokens", type=click.IntRange(min=1), default=48, show_default=True, help="Steered answer length."
)
@click.option(
    "--prompts",
    type=click.IntRange(min=1, max=20),
    default=20,
    show_default=True,
    help="Fixed chat prompts steered.",
)
@click.option("--no-steer", is_flag=True, help="Skip the steering search.")
@click.option(
    "--keywords",
    help="Comma-separated domain keywords: keyword relevance share of the top tokens, and the share "
    "of steered answers naming one.",
)
@click.option(
    "--domain",
    help="A description of the fine-tuning domain: what --relevance-judge grades tokens against, and "
    "what steered answers are compared with (embedding similarity).",
)
@click.option(
    "--relevance-judge",
    help="A judge (local, claude) that grades each top token's relevance to --domain; cached and "
    "budgeted like any judge. Without it, relevance is graded by --keywords.",
)
@judge_run_options
@store_option()
def diff(
    base: str | None,
    adapter: Path | None,
    model_b: Path | None,
    layer: str,
    positions: int,
    texts: int,
    corpus: Path | None,
    top: int,
    steer_position: int | None,
    alpha_high: float,
    alpha_steps: int,
    max_tokens: int,
    prompts: int,
    no_steer: bool,
    keywords: str | None,
    domain: str | None,
    relevance_judge: str | None,
    judge_options: tuple[str, ...],
    judge_max_usd: float | None,
    judge_max_calls: int | None,
    store: Path,
) -> None:
    """Read what a fine-tune of BASE (default: the bundled model) did from activation differences.

    Averages h_ft - h_base at --layer over the first --positions tokens of --texts neutral texts,
    reads each mean difference with the Logit Lens and a token-identity Patchscope (and the base
    model's mean activation the same way, as the baseline), and steers the fine-tuned model with
    it at the largest strength whose answers stay coherent. Stored as a `diff` run; `rho-audit
    report RUN` renders it.
    """
    from rho_audit.audit.diff_run import DiffConfig, run_diff
    from rho_audit.report.diff_card import agreement_line, steering_lines

    if (adapter is None) == (model_b is None):
        raise click.UsageError("pass exactly one of --adapter A or --model-b DIR.")
    chosen: int | str = int(layer) if layer.lstrip("-").isdigit() else layer
    if chosen != "middle" and not isinstance(chosen, int):
        raise click.BadParameter(f'{layer!r}: pass a block index or "middle".', param_hint="--layer")
    config = DiffConfig(
        base,
        store,
        adapter=adapter,
        model_b=model_b,
        layer=chosen,  # type: ignore[arg-type]
        positions=positions,
        texts=texts,
        corpus=corpus,
        top=top,
        steer_position=steer_position,
        alpha_high=alpha_high,
        alpha_steps=alpha_steps,
        max_tokens=max_tokens,
        prompts=prompts,
        keywords=tuple(k.strip() for k in (keywords or "").split(",") if k.strip()),
        domain=domain.strip() if domain and domain.strip() else None,
        relevance_judge=relevance_judge,
        judge_options=parse_judge_options(judge_options),
        judge_max_usd=judge_max_usd,
        judge_max_calls=judge_max_calls,
        steer=not no_steer,
    )
    run_id, doc = run_diff(config, say=lambda m: click.echo(m, err=True))
    click.echo(f"diff run {run_id}: layer {doc['layer']}, {doc['n_texts']} texts, eta {doc['eta']:.2f}")
    for p in doc["readouts"]:
        lens = " ".join(repr(t["token"]) for t in p["diff"]["logit_lens"][:10])
        scope = " ".join(repr(t["token"]) for t in p["diff"]["patchscope"][:10])
        click.echo(f"  position {p['position']} |δ̄| {p['norm']:.2f}  lens: {lens}")
        click.echo(f"    patchscope (λ {p['diff']['strength']:g}): {scope}")
    if "steering" in doc:
        click.echo(f"  steering: position {doc['steer_position']}, alpha {doc['alpha_eta']:g} (x eta)")
        for line in steering_lines(doc.get("steering_measures") or {}):
            click.echo(f"    {line}")
    for table in doc.get("relevance_graders", []):
        rel, by = table["max"], table["max_by_readout"]
        click.echo(
            f"  relevance ({table['grader']}): max over positions, δ̄ {rel['diff']:.2f} (lens "
            f"{by['diff']['logit_lens']:.2f}, patchscope {by['diff']['patchscope']:.2f}); base mean "
            f"{rel['base_mean']:.2f} (lens {by['base_mean']['logit_lens']:.2f}, patchscope "
            f"{by['base_mean']['patchscope']:.2f})"
        )
    if "relevance_agreement" in doc:
        click.echo(f"  {agreement_line(doc['relevance_agreement'])}")
    click.echo(f"report: rho-audit report {run_id}")
