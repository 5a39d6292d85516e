"""Every performance target of rho-audit, measured next to its reference in one run, as one table.

    python bench/run_all.py [--model PATH] [--quick] [--skip-audit] [--skip-train] [--train-only]
                            [--json PATH] [--probes-per-set 24] [--gen-prompts 16] [--train-steps 4]
                            [--train-rounds 2] [--audit-limit N]

Prints the environment, then one row per target: the measured figure, the reference measured in
the same run (never a number remembered from another day or box), the goal and PASS/FAIL (INFO for
figures the issue only asks to report). Exit code 1 when any PASS/FAIL row fails or a section
crashes. Progress lines go to stderr, the environment and the table to stdout. The full run takes
many minutes on a 2-core box; ``--quick`` is a smoke run at tiny sizes whose speed verdicts mean
nothing (batching cannot pay off on 4 texts).

Targets and how each is measured
--------------------------------
1. Teacher-forced scoring: the batched engine (``LanguageModel.score``: pairs that share a prompt
   get one context pass) >= 4x the one-text-at-a-time path (``bench/audit_throughput.py``'s
   ``score_one_at_a_time``: one full forward per text), on the real probe sets (factual, toxicity,
   sycophancy, refusal, deception, bias; ``--probes-per-set`` probes of each, default 24) with the
   default model and its auto template. Both paths are warmed up on a few requests, then each
   scores all requests once; the figure is the ratio of wall times. A second row checks that they
   agree: max over texts of |batched sum log-prob - single| / continuation tokens <= 1e-4 nats.
2. Generation: batched greedy decoding (``LanguageModel.generate`` with its default batch size)
   >= 4x sequential decoding with mlx-lm's own ``mlx_lm.generate.generate``, one prompt at a time
   (greedy: its default sampler) on the same prompt token ids (``lm.encode(lm.format_prompt(...))``).
   Prompts: the first ``--gen-prompts`` (default 16) of the ``overrefusal`` set (64 new tokens) and
   of the ``reasoning`` set with ``rho_audit.audit.scoring.NUMERIC_INSTRUCTION`` appended (96 new tokens).
   A second row counts prompts whose outputs differ: both paths stop at an end-of-sequence token
   and leave it out of the text, and both return decoded text, so the texts are compared as returned.
3. Full eight-dimension audit of the default model (the eight built-in dimensions, named with
   ``--plugins`` so that a third-party dimension installed in the environment is not run; full
   probe sets) in a subprocess, ``python -m rho_audit.cli run --display none``: wall time <= 300 s
   and peak RSS <= 2 GiB (``ru_maxrss`` of that child, from ``os.wait4``). The model is converted
   before, so its one-time conversion is not counted; that conversion is timed on its own, in a
   subprocess with a fresh empty ``RHO_AUDIT_CACHE_DIR`` (an INFO row; it includes interpreter
   start-up). The reference column shows the audit's slowest dimension (``elapsed_s`` in its
   JSON). A missing or crashed dimension fails the row. ``--skip-audit`` skips all this;
   ``--audit-limit N`` smoke-tests it on N probes per dimension (``-n N``), its rows then INFO.
   An INFO row gives the audit's compute floor: the matmul FLOPs of the tokens the model counted
   during the audit (``ComputeUsage`` in its JSON: each distinct context once, no padding, every
   prompt and generated token) divided by the matmul peak of section 5. No engine can run this
   audit on this box faster than that.
4. Training step (rho-guided, seq 256) <= 1.2x mlx-lm's own LoRA training step on the same batch,
   and a rho-guided step <= 1.5x a plain SFT step (issue 20). Reuses ``bench/train_step.py``: the
   same LoRA setup and SFT token ids (4 micro-steps x 1 sequence x 256 tokens per optimizer step)
   for mlx-lm's trainer and for our loop (``TrainingLoop``, what ``rho-audit train`` runs). The
   first PASS/FAIL row compares our loop with ``pairs_per_dimension=0`` (rho-guided's SFT part:
   plain SFT through the same loop) with mlx-lm; the second compares rho-guided (one contrast pair
   per dimension per micro-step, packed with the SFT sequence into one forward/backward) with that
   plain SFT step, the extra in seconds and as a fraction next to it. Figures are the median wall
   s/step over the measured steps. The no-pairs and rho-guided runs alternate ``--train-rounds``
   times (default 2) and their steps are pooled, so a burst of other work on a shared box falls on
   both. ``--train-steps`` measured steps per run (default 4), each run's first step
   (compilation, allocation) excluded. ``--skip-train`` skips the section; ``--train-only`` runs
   it alone (no matmul peak, scoring, generation or audit).
5. Hardware utilisation (INFO): achieved GFLOP/s of the batched scoring path, 2 x parameters x
   tokens / seconds, counted by the model (``LanguageModel.usage``): the body's parameters (all
   but the embedding lookup) for each distinct context token once and each continuation token but
   the last, plus the vocabulary projection's for each scored token. Padding, recomputation and
   attention FLOPs are not counted, so this is the useful work. Against the sustained rate of
   MLX's fp32 square matmul on this box (the better of 1024² and 2048², 12 products timed
   together), measured once before the sections and used by this row and the audit floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

from rho_audit.api.context import Template
from rho_audit.audit.scoring import NUMERIC_INSTRUCTION

# rho_audit.model loads a fast BLAS before anything imports mlx, so it must come before any mlx import:
# no module here imports mlx at import time (the functions below import it when they run).
from rho_audit.model.blas import ensure_fast_blas
from rho_audit.model.language_model import LanguageModel
from rho_audit.model.paths import resolve_model
from rho_audit.plugins import load_host
from rho_audit.probesets.schema import load_probe_set

sys.path.insert(0, str(Path(__file__).parent))  # bench/ is no package

from _common import (
    FAIL,
    INFO,
    NONE,
    Row,
    environment,
    exit_code,
    format_table,
    matmul_peak,
    max_rss_bytes,
    progress,
    run_section,
    verdict,
)
from audit_throughput import probe_requests, score_one_at_a_time
from train_step import GRAD_ACCUMULATION, RHO_GUIDED_RATIO, run_mlx_lm, run_ours, sft_chunks

ROOT = Path(__file__).resolve().parents[1]

SCORING_SPEEDUP = 4.0
AGREEMENT_NATS = 1e-4
GENERATION_SPEEDUP = 4.0
AUDIT_SECONDS = 300.0
# The eight built-in dimensions, named: "all installed" would also run any third-party dimension in the
# environment (the examples/ package adds a ninth, example-calibration, when it is installed).
AUDIT_DIMENSIONS = (
    "factual",
    "toxicity",
    "sycophancy",
    "bias",
    "reasoning",
    "refusal",
    "deception",
    "overrefusal",
)
AUDIT_RSS_BYTES = 2 * 1024**3
TRAIN_RATIO = 1.2
TRAIN_SEQ_LEN = 256
GEN_MAX_TOKENS = {"overrefusal": 64, "reasoning": 96}

# (full run, --quick) sizes; an explicit flag wins over both.
SIZES = {"probes_per_set": (24, 4), "gen_prompts": (16, 2), "train_steps": (4, 2), "train_rounds": (2, 1)}
QUICK_GEN_MAX_TOKENS = 8


# -- 1 + 5: scoring and hardware utilisation ---------------------------------------------------


def scoring_rows(
    lm: LanguageModel, template: Template, probes_per_set: int, peak: tuple[float, int]
) -> list[Row]:

    requests = probe_requests(probes_per_set)
    contexts = {r.prompt for r in requests}
    context_tokens = sum(len(lm._context_ids(p, template)) for p in contexts)
    continuation_tokens = sum(len(lm.encode(r.continuation)) for r in requests)
    progress(
        f"scoring: {len(requests)} texts, {len(contexts)} distinct prompts, {context_tokens} context + "
        f"{continuation_tokens} continuation tokens"
    )

    warm = requests[:8]
    lm.score(warm, template)
    score_one_at_a_time(lm, warm, template)
    before = replace(lm.usage)
    start = time.perf_counter()
    batched = lm.score(requests, template)
    t_batched = time.perf_counter() - start
    batched_usage = lm.usage - before
    progress(f"scoring: batched engine {t_batched:.2f} s")
    start = time.perf_counter()
    single = score_one_at_a_time(lm, requests, template)
    t_single = time.perf_counter() - start
    progress(f"scoring: one at a time {t_single:.2f} s")

    speedup = t_single / t_batched
    worst = max(
        abs(b.sum_logprob - s) / b.n_tokens
        for b, s in zip(batched, single, strict=True)
        if b.sum_logprob is not None and b.n_tokens
    )
    n = len(requests)
    rows = [
        Row(
            "teacher-forced scoring: batched engine vs one text at a time",
            f"{speedup:.2f}× ({n / t_batched:.1f} texts/s)",
            f"{n / t_single:.1f} texts/s one at a time",
            f"≥ {SCORING_SPEEDUP:g}×",
            verdict(speedup >= SCORING_SPEEDUP),
            {"texts": n, "batched_s": t_batched, "single_s": t_single, "speedup": speedup},
        ),
        Row(
            "scoring agrees with one-at-a-time path",
            f"{worst:.1e} nats/token max",
            "one-at-a-time log-probs",
            f"≤ {AGREEMENT_NATS:.0e}",
            verdict(worst <= AGREEMENT_NATS),
            {"max_abs_diff_per_token": worst},
        ),
    ]

    # 5: hardware utilisation of the batched scoring path.
    work = batched_usage
    achieved = work.gflop(*lm.parameter_counts()) / t_batched
    peak, peak_n = peak
    rows.append(
        Row(
            "hardware utilisation: scoring path GFLOP/s vs matmul peak",
            f"{achieved:.1f} GFLOP/s ({achieved / peak:.0%} of peak)",
            f"{peak:.1f} GFLOP/s (fp32 {peak_n}² matmul)",
            "report",
            INFO,
            {
                "parameters": lm.parameter_counts(),
                "body_tokens": work.body_tokens,
                "head_tokens": work.head_tokens,
                "achieved_gflops": achieved,
                "peak_gflops": peak,
                "peak_matmul_n": peak_n,
            },
        )
    )
    return rows


# -- 2: generation ------------------------------------------------------------------------------


def generation_prompts(n: int) -> dict[str, list[str]]:
    host = load_host()
    overrefusal = load_probe_set(host.probe_set_path("overrefusal")).probes[:n]
    reasoning = load_probe_set(host.probe_set_path("reasoning")).probes[:n]
    return {
        "overrefusal": [p.prompt for p in overrefusal],
        "reasoning": [p.prompt + NUMERIC_INSTRUCTION for p in reasoning],
    }


def generation_rows(lm: LanguageModel, template: Template, n_prompts: int, quick: bool) -> list[Row]:
    from mlx_lm.generate import generate as mlx_generate

    groups = generation_prompts(n_prompts)
    max_tokens = {name: QUICK_GEN_MAX_TOKENS if quick else GEN_MAX_TOKENS[name] for name in groups}

    def sequential(prompts: list[str], limit: int) -> list[str]:
        # mlx-lm's own loop, one prompt at a time; greedy is its default sampler. It stops at an
        # end-of-sequence token and leaves it out of the text, as LanguageModel.generate does,
        # so the two return comparable text without normalising.
        return [
            mlx_generate(lm.model, lm.tokenizer, ids, max_tokens=limit, verbose=False)
            for ids in (lm.encode(lm.format_prompt(p, template)) for p in prompts)
        ]

    warm = groups["overrefusal"][:2]
    lm.generate(warm, 4, template)
    sequential(warm, 4)

    t_batched = t_sequential = 0.0
    batched: list[str] = []
    reference: list[str] = []
    for name, prompts in groups.items():
        start = time.perf_counter()
        batched += lm.generate(prompts, max_tokens[name], template)
        t_batched += time.perf_counter() - start
        start = time.perf_counter()
        reference += sequential(prompts, max_tokens[name])
        t_sequential += time.perf_counter() - start
        progress(f"generation: {name}, {len(prompts)} prompts x {max_tokens[name]} tokens done")

    differ = [i for i, (a, b) in enumerate(zip(batched, reference, strict=True)) if a != b]
    for i in differ[:3]:
        progress(f"generation: prompt {i} differs")
        print(f"  batched    {batched[i]!r}\n  sequential {reference[i]!r}", file=sys.stderr)
    speedup = t_sequential / t_batched
    n = len(batched)
    return [
        Row(
            "generation: batched greedy vs sequential (mlx-lm generate)",
            f"{speedup:.2f}× ({t_batched:.1f} s batched)",
            f"{t_sequential:.1f} s sequential",
            f"≥ {GENERATION_SPEEDUP:g}×",
            verdict(speedup >= GENERATION_SPEEDUP),
            {"prompts": n, "max_tokens": max_tokens, "batched_s": t_batched, "sequential_s": t_sequential},
        ),
        Row(
            "batched generation identical to sequential",
            f"{len(differ)}/{n} prompts differ",
            "mlx-lm generate, one at a time",
            "0 differ",
            verdict(not differ),
            {"differ": differ},
        ),
    ]


# -- 3: the full audit --------------------------------------------------------------------------


def _child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def audit_rows(model: str | None, peak: tuple[float, int], limit: int | None = None) -> list[Row]:
    """The audit rows; ``limit`` (``-n``: probes per dimension) makes a smoke run whose rows are INFO."""
    rows: list[Row] = []
    subset = f" (-n {limit} subset, not the target)" if limit else ""
    with tempfile.TemporaryDirectory(prefix="rho-bench-audit-") as tmp:
        work = Path(tmp)
        cmd = [sys.executable, "-m", "rho_audit.cli", "run", "--display", "none"]
        cmd += ["--plugins", ",".join(AUDIT_DIMENSIONS)]
        cmd += ["--store", str(work / "runs.sqlite"), "--json", str(work / "audit.json")]
        cmd += ["--model", model] if model else []
        cmd += ["-n", str(limit)] if limit else []
        progress(f"audit: {' '.join(cmd[1:])}")
        with open(work / "audit.log", "wb") as log:
            start = time.perf_counter()
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=_child_env())
            # os.wait4 gives this child's own rusage. resource.getrusage(RUSAGE_CHILDREN) would be
            # the maximum over every child this process has waited for, the conversion one included.
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            child.returncode = os.waitstatus_to_exitcode(status)
        rss = max_rss_bytes(usage.ru_maxrss)
        goal = f"≤ {AUDIT_SECONDS:.0f} s"
        if child.returncode != 0:
            tail = (work / "audit.log").read_text(errors="replace").splitlines()[-30:]
            progress("audit: failed; last lines of its output:\n" + "\n".join(tail))
            failed = f"exit code {child.returncode}"
            rows.append(Row("full eight-dimension audit" + subset, failed, NONE, goal, FAIL))
        else:
            results = json.loads((work / "audit.json").read_text())["results"]
            crashed = [r["dimension"] for r in results if r["status"] == "ERROR"]
            if crashed:
                progress(f"audit: dimensions that crashed: {', '.join(crashed)}")
            # A missing or crashed dimension makes a fast audit meaningless: FAIL.
            complete = {r["dimension"] for r in results} == set(AUDIT_DIMENSIONS) and not crashed
            slowest = max(results, key=lambda r: r["elapsed_s"], default=None)
            reference = NONE
            if slowest is not None:
                reference = f"slowest dimension: {slowest['dimension']} {slowest['elapsed_s']:.0f} s"
            target = f"full audit ({len(results)} dimensions, {len(crashed)} crashed), conversion excluded"
            rows.append(
                Row(
                    target + subset,
                    f"{wall:.0f} s wall",
                    reference,
                    goal,
                    INFO if limit else verdict(wall <= AUDIT_SECONDS and complete),
                    {
                        "wall_s": wall,
                        "dimensions": {r["dimension"]: r["elapsed_s"] for r in results},
                        "statuses": {r["dimension"]: r["status"] for r in results},
                    },
                )
            )
            usage = json.loads((work / "audit.json").read_text())["model_usage"]
            rows.append(compute_floor_row(usage, results, wall, peak, subset))
        rows.append(
            Row(
                "full audit peak RSS" + subset,
                f"{rss / 1024**3:.2f} GiB",
                NONE,
                f"≤ {AUDIT_RSS_BYTES / 1024**3:.0f} GiB",
                INFO if limit else verdict(rss <= AUDIT_RSS_BYTES),
                {"peak_rss_bytes": rss},
            )
        )

    progress("audit: timing a first conversion of the model into an empty cache")
    with tempfile.TemporaryDirectory(prefix="rho-bench-cache-") as cache:
        code = f"from rho_audit.model.paths import resolve_model; resolve_model({model!r})"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=_child_env(RHO_AUDIT_CACHE_DIR=cache),
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        progress(f"conversion failed:\n{proc.stderr[-2000:]}")
    measured = f"{seconds:.1f} s" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    rows.append(
        Row(
            "first model conversion (not part of the audit target)",
            measured,
            NONE,
            NONE,
            INFO,
            {"seconds": seconds, "returncode": proc.returncode},
        )
    )
    return rows


def compute_floor_row(
    usage: dict, results: list[dict], wall: float, peak: tuple[float, int], subset: str
) -> Row:
    """How long the audit's matmuls alone take at this box's matmul peak: the work is what the
    model counted (``ComputeUsage``: distinct contexts once, no padding, generated tokens), so
    no batching of the same audit can beat this floor on this box."""
    peak, peak_n = peak
    dims = usage["dimensions"]
    gflop = sum(d["gflop"] for d in dims.values())
    elapsed = {r["dimension"]: r["elapsed_s"] for r in results}
    return Row(
        "audit compute floor: its matmul FLOPs at the matmul peak" + subset,
        f"{gflop / peak:.0f} s ({gflop / 1000:.1f} TFLOP; audit ran {gflop / wall:.1f} GFLOP/s)",
        f"{peak:.1f} GFLOP/s (fp32 {peak_n}² matmul)",
        "report",
        INFO,
        {
            "floor_s": gflop / peak,
            "gflop": gflop,
            "peak_gflops": peak,
            "dimensions": {
                name: {**d, "floor_s": d["gflop"] / peak, "gflops": d["gflop"] / elapsed[name]}
                for name, d in dims.items()
                if elapsed.get(name)
            },
        },
    )


# -- 4: training step ---------------------------------------------------------------------------


def train_rows(model: str | None, path: Path, model_id: str, measured_steps: int, rounds: int) -> list[Row]:
    """mlx-lm's LoRA trainer, then our loop without pairs and rho-guided, alternating (train_step.py)."""
    settings = argparse.Namespace(model=model, seq_len=TRAIN_SEQ_LEN)
    return _train_rows(settings, path, model_id, measured_steps, rounds)


def _train_rows(
    settings: argparse.Namespace, path: Path, model_id: str, measured_steps: int, rounds: int
) -> list[Row]:
    import mlx.core as mx

    steps = measured_steps + 1  # + the first step, excluded
    with tempfile.TemporaryDirectory(prefix="rho-bench-train-") as tmp:
        work = Path(tmp)
        lm = LanguageModel.load(path, model_id)  # run_mlx_lm turns this copy into a LoRA model
        examples, token_rows = sft_chunks(lm, steps * GRAD_ACCUMULATION, TRAIN_SEQ_LEN)
        progress(f"train: mlx-lm, {steps} steps")
        theirs = run_mlx_lm(lm, token_rows, steps, settings, work)
        del lm
        mx.clear_cache()
        plain = guided = None
        for n in range(1, rounds + 1):
            progress(f"train: our loop without pairs, {steps} steps (round {n}/{rounds})")
            run = run_ours("sft, no pairs", "sft", examples, steps, settings, work, pairs_per_dimension=0)
            plain = plain.pooled(run) if plain else run
            mx.clear_cache()
            progress(f"train: rho-guided, {steps} steps (round {n}/{rounds})")
            run = run_ours("rho-guided", "rho-guided", examples, steps, settings, work)
            guided = guided.pooled(run) if guided else run
            mx.clear_cache()

    ratio = plain.median / theirs.median
    guided_ratio = guided.median / plain.median
    extra = guided.median - plain.median

    def spread(seconds: list[float]) -> str:
        return f"{min(seconds):.2f}-{max(seconds):.2f}" if len(seconds) > 1 else f"{seconds[0]:.2f}"

    return [
        Row(
            "training step: our loop (rho-guided's SFT part) vs mlx-lm",
            f"{plain.median:.2f} s/step ({ratio:.2f}×)",
            f"{theirs.median:.2f} s/step mlx-lm",
            f"≤ {TRAIN_RATIO:g}×",
            verdict(ratio <= TRAIN_RATIO),
            {
                "seq_len": TRAIN_SEQ_LEN,
                "measured_steps": measured_steps,
                "rounds": rounds,
                "ours_s_per_step": plain.seconds,
                "mlx_lm_s_per_step": theirs.seconds,
                "ours_cpu_s_per_step": plain.cpu,
                "mlx_lm_cpu_s_per_step": theirs.cpu,
                "ratio": ratio,
                "cpu_ratio": plain.cpu / theirs.cpu,
                "ranges": {"ours": spread(plain.seconds), "mlx_lm": spread(theirs.seconds)},
            },
        ),
        Row(
            "rho-guided step vs SFT step (contrast pairs packed in)",
            f"{guided.median:.2f} s/step ({guided_ratio:.2f}×, +{extra / plain.median:.0%})",
            f"{plain.median:.2f} s/step without pairs",
            f"≤ {RHO_GUIDED_RATIO:g}×",
            verdict(guided_ratio <= RHO_GUIDED_RATIO),
            {
                "rho_guided_s_per_step": guided.seconds,
                "sft_no_pairs_s_per_step": plain.seconds,
                "ratio": guided_ratio,
                "cpu_ratio": guided.cpu / plain.cpu,
                "extra_s_per_step": extra,
                "extra_fraction": extra / plain.median,
                "rho_guided_vs_mlx_lm": guided.median / theirs.median,
                "ranges": {"rho_guided": spread(guided.seconds), "sft_no_pairs": spread(plain.seconds)},
                "pair_rows_per_micro_step": statistics.fmean(rows for rows, _ in guided.pair_shapes)
                if guided.pair_shapes
                else None,
                "pair_tokens_per_micro_step": statistics.fmean(t for _, t in guided.pair_shapes)
                if guided.pair_shapes
                else None,
            },
        ),
    ]


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model (default: the bundled default model)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, no audit")
    parser.add_argument("--probes-per-set", type=int, help="scoring: probes of each set (default 24)")
    parser.add_argument("--gen-prompts", type=int, help="generation: prompts of each set (default 16)")
    parser.add_argument("--train-steps", type=int, help="training: measured steps per run (default 4)")
    parser.add_argument(
        "--train-rounds", type=int, help="training: alternating runs of SFT and rho-guided (default 2)"
    )
    parser.add_argument("--skip-audit", action="store_true", help="skip the full audit (it takes minutes)")
    parser.add_argument("--skip-train", action="store_true", help="skip the training-step comparison")
    parser.add_argument("--train-only", action="store_true", help="only the training-step section")
    parser.add_argument(
        "--audit-limit",
        type=int,
        metavar="N",
        help="smoke-test the audit section on N probes per dimension (its rows become INFO); "
        "with --quick, runs the audit section, which --quick otherwise skips",
    )
    parser.add_argument("--json", type=Path, help="also write the rows (and the environment) as JSON")
    args = parser.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.audit_limit is not None and args.audit_limit < 2:
        parser.error("--audit-limit must be at least 2 (rho-audit run -n takes N >= 2)")
    if args.quick and args.audit_limit is None:
        args.skip_audit = True
    if args.train_only and args.skip_train:
        parser.error("--train-only and --skip-train exclude each other")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment(
        ensure_fast_blas()
    )  # already loaded by rho_audit.model.language_model: this returns its path
    print("environment")
    for key, value in env.items():
        print(f"  {key:<20}{value}")
    if args.quick:
        print("  (--quick: smoke-test sizes; the speed verdicts mean nothing at these sizes)")
    sys.stdout.flush()

    resolved = resolve_model(args.model, progress=progress)  # converts once, before anything is timed
    train = partial(
        train_rows, args.model, resolved.path, resolved.model_id, args.train_steps, args.train_rounds
    )
    rows: list[Row] = []
    if args.train_only:
        print(f"  {'model':<20}{resolved.model_id} ({resolved.path})", flush=True)
        return _finish(args, env, rows, lambda: run_section("train", train, rows))
    lm = LanguageModel.load(resolved.path, resolved.model_id)
    template = lm.resolve_template("auto")
    print(f"  {'model':<20}{resolved.model_id} ({resolved.path}), template {template}", flush=True)

    progress("measuring the sustained fp32 matmul peak")
    peak = matmul_peak((1024, 2048), repeats=4 if args.quick else 12)
    progress(f"matmul peak {peak[0]:.1f} GFLOP/s at {peak[1]}²")

    def sections() -> None:
        nonlocal lm
        run_section("scoring", partial(scoring_rows, lm, template, args.probes_per_set, peak), rows)
        run_section("generation", partial(generation_rows, lm, template, args.gen_prompts, args.quick), rows)
        del lm  # the training section loads its own copies
        if not args.skip_train:
            run_section("train", train, rows)
        if not args.skip_audit:
            run_section("audit", partial(audit_rows, args.model, peak, args.audit_limit), rows)

    return _finish(args, env, rows, sections)


def _finish(args: argparse.Namespace, env: dict, rows: list[Row], sections: Callable[[], None]) -> int:
    """Run the sections, then print the table (and write the JSON); the exit code."""
    try:
        sections()
    except KeyboardInterrupt:
        print("\ninterrupted: the rows measured so far", file=sys.stderr)
        print(format_table(rows))
        return 130

    print()
    print(format_table(rows))
    code = exit_code(rows)
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        doc = {"environment": env, "settings": settings, "rows": [asdict(r) for r in rows], "exit_code": code}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        print(f"rows written to {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
