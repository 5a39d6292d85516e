"""A 4-cell sweep run by the local executor and by Ray on this machine: Ray's overhead per cell.

Both executors run the same 4 cells (sft, seeds 1-4, on rho-audit's tiny test model: --steps
optimizer steps of training, then a factual audit of --limit probes), each into a fresh store and
out folder, in this order: local, then Ray. Ray starts here (``ray.init(num_cpus=--cpus)``) and
runs with ``--cpus-per-cell`` equal to its CPUs, so one cell at a time, as the local executor
does: the difference is Ray's own cost (worker processes that import rho-audit and MLX, payloads
out, scratch stores and their runs back, the driver's import), not parallelism. ``--parallel``
adds a third run with one CPU per cell (as many cells at once as CPUs).

Printed: wall seconds of each sweep and per cell, the start of Ray (``ray.init``) on its own,
and Ray's overhead per cell, (Ray sweep - local sweep) / 4, with the ratio Ray / local: for the
first Ray sweep (its worker processes start and import rho-audit and MLX) and, with --rounds 2
or more, for the later ones (workers already warm; median). The rounds alternate the executors,
so on a box shared with other jobs a burst of load falls on both.

    python bench/sweep_executors.py [--steps 20] [--limit 8] [--cpus 2] [--rounds 1] [--parallel]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """\
name: bench-executors-{tag}
models: [{model}]
baseline: false
grid:
  trainer: [sft]
  seed: [1, 2, 3, 4]
train:
  dimensions: [factual, toxicity]
  max_sft_examples: {steps}
  trap_texts: 8
  grad_accumulation: 1
  max_seq_len: 64
  checkpoint_every: 1000
audit: {{dimensions: [factual], limit: {limit}}}
"""
CELLS = 4


def one_sweep(work: Path, model: Path, tag: str, args: argparse.Namespace, executor: object | None) -> float:
    from rho_audit.plugins import load_host
    from rho_audit.train.sweep import plan_sweep, run_sweep

    folder = work / tag
    folder.mkdir(parents=True)
    path = folder / "sweep.yaml"
    path.write_text(SWEEP.format(tag=tag, model=model, steps=args.steps, limit=args.limit), encoding="utf-8")
    host = load_host()
    plan = plan_sweep(path, host, out=folder / "out")
    started = time.perf_counter()
    outcome = run_sweep(plan, folder / "runs.sqlite", host, executor)
    elapsed = time.perf_counter() - started
    if outcome.failed or len(outcome.ran) != CELLS:
        raise SystemExit(f"{tag}: {len(outcome.ran)} cells ran, failed: {[r.error for r in outcome.failed]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per cell")
    parser.add_argument("--limit", type=int, default=8, help="probes per audit")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--parallel", action="store_true", help="also Ray with 1 CPU per cell")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    import ray

    import rho_audit.model  # noqa: F401  (loads the fast BLAS before mlx)
    from rho_audit.api import ExecutorSettings
    from rho_audit.plugins import load_host
    from rho_audit.testing import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    model = build_tiny_model(work / "tiny-model")
    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR", _node_ip_address="127.0.0.1")
    ray_start = time.perf_counter() - started
    executor = load_host().executor("ray")
    times: dict[str, list[float]] = {"local": [], "ray": [], "ray parallel": []}
    for i in range(args.rounds):
        times["local"].append(one_sweep(work, model, f"local-{i}", args, None))
        serial = executor(ExecutorSettings(cpus_per_cell=float(args.cpus)))
        times["ray"].append(one_sweep(work, model, f"ray-{i}", args, serial))
        if args.parallel:
            times["ray parallel"].append(
                one_sweep(work, model, f"par-{i}", args, executor(ExecutorSettings()))
            )
        print(
            f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items() if v),
            file=sys.stderr,
        )
    ray.shutdown()

    local = statistics.median(times["local"])
    cold = times["ray"][0]  # the first sweep: Ray starts worker processes that import rho-audit and MLX
    warm = statistics.median(times["ray"][1:]) if args.rounds > 1 else None
    print(
        f"4-cell sweep, tiny model, {args.steps} steps + {args.limit}-probe audit per cell, "
        f"{args.rounds} round(s), one cell at a time"
    )
    print(f"ray.init (local Ray, {args.cpus} CPUs): {ray_start:.1f} s once per sweep, not in the times below")
    print(f"local executor:            {local:6.1f} s  {local / CELLS:5.2f} s/cell (median of {args.rounds})")
    rows = [("Ray, first sweep", cold)] + ([("Ray, warm workers", warm)] if warm is not None else [])
    for name, value in rows:
        overhead = (value - local) / CELLS
        print(
            f"{name + ':':<26} {value:6.1f} s  {value / CELLS:5.2f} s/cell; overhead {overhead:+.2f} s/cell, "
            f"Ray / local {value / local:.2f}x"
        )
    if times["ray parallel"]:
        par = statistics.median(times["ray parallel"])
        print(f"Ray, 1 CPU per cell:       {par:6.1f} s  {par / CELLS:5.2f} s/cell (median, in parallel)")
    if args.json:
        doc = {"times_s": times, "ray_init_s": ray_start, "cells": CELLS, "steps": args.steps}
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
