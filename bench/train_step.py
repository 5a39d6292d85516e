"""Time per optimizer step: our ``sft`` and ``rho-guided`` trainers next to mlx-lm's own LoRA trainer.

All runs happen in one process, one after another, on the same model (the bundled default, or
--model) with the same LoRA setup: rank 8, scale 2.0 (our alpha 16 / rank 8), keys
self_attn.q_proj/k_proj/o_proj on every layer, AdamW lr 2e-4, batch size 1, gradient
accumulation 4. One optimizer step = 4 micro-steps of one sequence each.

Identical SFT tokens. The texts of rho-audit's shipped corpus ("prompt\\nresponse", in file order)
are concatenated with blank lines into chunks, and each chunk is cut to exactly --seq-len tokens
exactly as our loop tokenizes a bare-text SFT example: document-start token + the text's tokens,
truncated to --seq-len. Our trainers get those chunks as ``SFTExample(prompt=None, ...)``; mlx-lm
gets the very same token ids (offset 0: every target is trained, as ours does for a bare text).
So each step is 4 x seq-len tokens in every run, --seq-len - 1 predicted targets per sequence.

Our trainers run through the real loop (``training._Loop``: the same code ``rho-audit train``
runs) with a plan built from these chunks; s/step is the loop's own per-step ``seconds`` metric
(read back from the run store: data preparation, forward/backward, clipping, update and the
loss read-backs; not the store write or the events). mlx-lm runs ``mlx_lm.tuner.trainer.train``
with ``grad_accumulation_steps=4``; its s/step is the wall time between consecutive optimizer-step
reports. The first optimizer step of each run (graph compilation, allocation) is excluded.
Next to wall time the table gives process CPU seconds (all threads) per step, measured between
consecutive step reports: on a shared box, where other jobs take cores for a while, it is the
steadier figure for comparing the trainers (OpenBLAS threads that spin while waiting still
count, so it is not immune either).

On top of the SFT sequence, every micro-step of our loop also draws one contrast pair per
dimension (4 dimensions -> 8 short rows). The loop packs the SFT sequence and those rows into one
sequence, a pair's two rows sharing its prompt, and runs one forward/backward per micro-step
(``rho_audit.train.packing``). ``rho-guided`` trains on the pairs; ``sft`` forwards them once per
optimizer step (one packed pass of the pair rows) to log the contrastive loss. The "sft, no pairs"
row (``pairs_per_dimension=0``) is plain SFT: it isolates the loop itself. tokens/s counts the SFT
tokens only (4 x seq-len per step, identical in every run), so it is the SFT throughput; the pair
rows are shown in their own column (rows, and the tokens they add to the packed sequence).

The last line is the target of issue 20: a rho-guided step costs at most 1.5x a plain SFT
step, the median s/step of "rho-guided" over that of "sft, no pairs" (PASS/FAIL). ``--rounds N``
runs those two N times, alternating, and pools their steps: on a shared box a burst of other work
then falls on both instead of on one. s/step is the median over the measured steps.

With ``--objectives`` the six-objectives trainers follow, each on the same batches as ``sft``
(same SFT chunks, same pair draws), and a line per objective gives its s/step over sft's. dpo and
kl-sft need the frozen base model's numbers for every row: they run twice, the first run (the
"cold" row) computing and caching them, the second reading them back, as every later seed of a
sweep does; the issue-21 goal is that the cached run costs at most 1.5x an sft step.

    python bench/train_step.py [--steps 8] [--model PATH] [--seq-len 256] [--rounds 1]
                               [--only-ratio] [--skip-no-pairs] [--objectives]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# No mlx import at module level: ensure_fast_blas() must run before the first `import mlx.core`.
from rho_audit.model.blas import ensure_fast_blas
from rho_audit.model.paths import resolve_model
from rho_audit.plugins import load_host
from rho_audit.store import RunStore
from rho_audit.train.batches import TrainingTokenizer
from rho_audit.train.config import TrainConfig, TrainingPlan, contrast_pairs, resolve_trainer
from rho_audit.train.corpus import SFTExample, load_builtin_corpus
from rho_audit.train.loop import TrainingLoop, new_run_id
from rho_audit.train.packing import pack_rows

GRAD_ACCUMULATION = 4
#: Issue 20: a rho-guided optimizer step costs at most this many plain SFT steps.
RHO_GUIDED_RATIO = 1.5
#: Issue 21: with the base model's numbers cached, a dpo or kl-sft step costs at most this many
#: ``sft`` steps on the same batch.
REFERENCE_RATIO = 1.5
#: The six-objectives trainers besides sft; those with a frozen reference are timed twice, the
#: first run filling the reference cache (its row says "cold").
OBJECTIVES = ("dpo", "orpo", "kl-sft", "cft", "inoculation")
REFERENCE_OBJECTIVES = ("dpo", "kl-sft")


@dataclass
class Result:
    name: str
    seconds: list[float]  # wall time of each measured optimizer step (warm-up excluded)
    cpu_steps: list[float]  # process CPU time of each measured step
    pair_shapes: list[tuple[int, int]] = field(
        default_factory=list
    )  # (pair rows, their tokens) per micro-step

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu(self) -> float:
        """Process CPU seconds (all threads) per measured step: steadier than wall time on a busy box."""
        return statistics.median(self.cpu_steps)

    def pooled(self, other: Result) -> Result:
        """This run's steps and another run's of the same trainer, as one result."""
        return Result(
            self.name,
            self.seconds + other.seconds,
            self.cpu_steps + other.cpu_steps,
            self.pair_shapes + other.pair_shapes,
        )


def cpu_steps(marks: list[float]) -> list[float]:
    """CPU seconds of each step after the first, from the CPU clock read at the end of every step."""
    return [b - a for a, b in itertools.pairwise(marks)]


# -- data ---------------------------------------------------------------------------------------


def sft_chunks(lm: Any, n: int, seq_len: int) -> tuple[list[SFTExample], list[list[int]]]:
    """``n`` bare-text examples of exactly ``seq_len`` tokens each, and those token ids."""
    tok = TrainingTokenizer(lm, lm.resolve_template("auto"), seq_len)
    texts = [f"{ex.prompt}\n{ex.response}" if ex.prompt else ex.response for ex in load_builtin_corpus()]
    examples: list[SFTExample] = []
    token_rows: list[list[int]] = []
    cursor = 0
    while len(examples) < n:
        parts: list[str] = []
        while True:
            parts.append(texts[cursor % len(texts)])
            cursor += 1
            example = SFTExample(f"bench-chunk-{len(examples)}", None, "\n\n".join(parts), "bench")
            context, continuation = tok.example(example)
            seq = (context + continuation)[:seq_len]
            if len(seq) == seq_len:
                break
        examples.append(example)
        token_rows.append(seq)
    return examples, token_rows


# -- our loop -----------------------------------------------------------------------------------


class _RecordingLoop(TrainingLoop):
    """The real loop, noting each micro-step's contrast pairs: (rows, the tokens they add to the
    packed sequence)."""

    pair_shapes: list[tuple[int, int]]

    def _micro_batches(self, step, tok, pair_rng):
        for batch in super()._micro_batches(step, tok, pair_rng):
            if batch.pairs and step > 1:
                rows = batch.pair_rows()
                if self.packed:
                    added = int(pack_rows(rows, batch.max_len).tokens.shape[1])
                else:  # separate padded batches
                    added = sum(int(b.tokens.size) for b in batch.pair_batches())
                self.pair_shapes.append((len(rows), added))
            yield batch


def run_ours(
    label: str,
    trainer_name: str,
    examples: list[SFTExample],
    steps: int,
    args: argparse.Namespace,
    work: Path,
    pairs_per_dimension: int = 1,
) -> Result:
    host = load_host()
    config = TrainConfig(
        trainer=trainer_name,
        model=args.model,
        adapter_dir=work / label.replace(" ", "-").replace(",", ""),
        trap_texts=0,
        max_seq_len=args.seq_len,
        grad_accumulation=GRAD_ACCUMULATION,
        pairs_per_dimension=pairs_per_dimension,
        checkpoint_every=10**6,  # only the final one, after the timed steps
    )
    trainer, options = resolve_trainer(host, config)
    pairs = contrast_pairs(host, config.dimensions)
    plan = TrainingPlan(list(examples), pairs, len(examples), steps)
    store = RunStore(work / "bench.sqlite")
    run_id = new_run_id() + "-" + label.replace(" ", "-").replace(",", "")

    cpu_marks: list[float] = []

    def say(event: Any) -> None:
        if event.kind == "train_step":
            cpu_marks.append(time.process_time())
            print(
                f"  {label}: step {event.done}/{event.total} {event.metrics['seconds']:.2f}s", file=sys.stderr
            )

    loop = _RecordingLoop(
        config, host, store, say, trainer, options, plan, run_id, config.config_sha256(), None
    )
    loop.pair_shapes = []
    loop.run()
    seconds = [row.metrics["seconds"] for row in store.train_steps(run_id)][1:]
    store.close()
    return Result(label, seconds, cpu_steps(cpu_marks), loop.pair_shapes)


# -- mlx-lm -------------------------------------------------------------------------------------


def run_mlx_lm(
    lm: Any, token_rows: list[list[int]], steps: int, args: argparse.Namespace, work: Path
) -> Result:
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.trainer import TrainingArgs, train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    defaults = TrainConfig()
    model = lm.model
    mx.random.seed(defaults.seed)
    model.freeze()
    lora = {
        "rank": defaults.lora_rank,
        "scale": defaults.lora_alpha / defaults.lora_rank,
        "dropout": 0.0,
        "keys": list(defaults.lora_keys),
    }
    linear_to_lora_layers(model, len(model.layers), lora)
    optimizer = optim.AdamW(learning_rate=defaults.learning_rate, weight_decay=defaults.weight_decay)

    class Clock(TrainingCallback):
        def __init__(self) -> None:
            self.marks: list[float] = []
            self.cpu_marks: list[float] = []

        def on_train_loss_report(self, train_info: dict) -> None:
            self.marks.append(time.perf_counter())
            self.cpu_marks.append(time.process_time())
            print(
                f"  mlx-lm: step {len(self.marks)}/{steps} loss {train_info['train_loss']:.3f}",
                file=sys.stderr,
            )

    clock = Clock()
    training_args = TrainingArgs(
        batch_size=1,
        iters=steps * GRAD_ACCUMULATION,  # mlx-lm counts micro-batches
        steps_per_report=GRAD_ACCUMULATION,  # one report per optimizer update
        steps_per_eval=10**9,
        steps_per_save=10**9,
        max_seq_length=args.seq_len,
        adapter_file=str(work / "mlx-lm-adapters.safetensors"),
        grad_accumulation_steps=GRAD_ACCUMULATION,
    )
    dataset = [(row, 0) for row in token_rows]  # (tokens, offset): every target is trained
    with contextlib.redirect_stdout(io.StringIO()):  # its Rich progress display
        train(model, optimizer, dataset, None, training_args, training_callback=clock)
    seconds = [b - a for a, b in zip(clock.marks, clock.marks[1:], strict=False)]
    return Result("mlx-lm", seconds, cpu_steps(clock.cpu_marks))


# -- report -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=8, help="measured optimizer steps per trainer")
    parser.add_argument("--model", default=None, help="model (default: the bundled default model)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per SFT sequence")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of 'sft, no pairs' and 'rho-guided', alternating"
    )
    parser.add_argument("--skip-no-pairs", action="store_true", help="leave out the 'sft, no pairs' row")
    parser.add_argument(
        "--only-ratio", action="store_true", help="only 'sft, no pairs' and 'rho-guided' (no mlx-lm, no sft)"
    )
    parser.add_argument(
        "--objectives",
        action="store_true",
        help="also time dpo, orpo, kl-sft, cft and inoculation against sft on the same batches",
    )
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    if args.only_ratio and args.objectives:
        parser.error("--objectives are timed against the 'sft' row, which --only-ratio leaves out")
    if args.only_ratio and args.skip_no_pairs:
        parser.error("--only-ratio needs the 'sft, no pairs' row")

    ensure_fast_blas()  # before anything imports mlx
    import mlx.core as mx

    from rho_audit.model.language_model import LanguageModel

    resolved = resolve_model(args.model, progress=print)
    steps = args.steps + 1  # + one warm-up step, excluded
    lm = LanguageModel.load(resolved.path, resolved.model_id)
    examples, token_rows = sft_chunks(lm, steps * GRAD_ACCUMULATION, args.seq_len)
    tokens_per_step = GRAD_ACCUMULATION * args.seq_len
    print(
        f"model {resolved.model_id}; {args.steps} measured optimizer steps (+1 warm-up) per trainer and "
        f"round, {args.rounds} round(s); {GRAD_ACCUMULATION} micro-steps x 1 sequence x {args.seq_len} "
        f"tokens = {tokens_per_step} SFT tokens per step, identical ids in every run"
    )

    results: dict[str, Result] = {}

    def measure(label: str, trainer: str, pairs_per_dimension: int = 1) -> None:
        run = run_ours(label, trainer, examples, steps, args, work, pairs_per_dimension)
        results[label] = results[label].pooled(run) if label in results else run
        mx.clear_cache()

    with tempfile.TemporaryDirectory(prefix="rho-bench-train-") as tmp:
        work = Path(tmp)
        if not args.only_ratio:
            results["mlx-lm"] = run_mlx_lm(lm, token_rows, steps, args, work)
        del lm
        mx.clear_cache()
        for _ in range(args.rounds):
            if not args.skip_no_pairs:
                measure("sft, no pairs", "sft", pairs_per_dimension=0)
            measure("rho-guided", "rho-guided")
        if not args.only_ratio:
            measure("sft", "sft")
        if args.objectives:
            for name in OBJECTIVES:
                if name in REFERENCE_OBJECTIVES:  # fills work/.reference-cache for the timed run
                    measure(f"{name} (cold)", name)
                measure(name, name)

    base = results.get("mlx-lm")
    head = f"{'trainer':<16}{'s/step':>8}{'min':>8}{'max':>8}{'tokens/s':>10}{'vs mlx-lm':>11}"
    head += f"{'cpu s/step':>12}{'cpu vs mlx-lm':>15}  pair rows/step"
    print(head)
    print("-" * len(head))
    order = ["mlx-lm", "sft, no pairs", "sft", "rho-guided"]
    order += [f"{n}{cold}" for n in OBJECTIVES for cold in (" (cold)", "")]
    for r in sorted(results.values(), key=lambda r: order.index(r.name)):
        if r.pair_shapes:
            rows = sum(n for n, _ in r.pair_shapes) / len(r.pair_shapes) * GRAD_ACCUMULATION
            added = statistics.fmean(t for _, t in r.pair_shapes) * GRAD_ACCUMULATION
            pairs = f"{rows:.0f}, +{added:.0f} tokens"
        else:
            pairs = "-"
        versus = f"{r.median / base.median:>10.2f}x" if base else f"{'-':>11}"
        cpu_versus = f"{r.cpu / base.cpu:>14.2f}x" if base else f"{'-':>15}"
        print(
            f"{r.name:<16}{r.median:>8.2f}{min(r.seconds):>8.2f}{max(r.seconds):>8.2f}"
            f"{tokens_per_step / r.median:>10.0f}{versus}{r.cpu:>12.2f}{cpu_versus}  {pairs}"
        )
    print(
        "s/step: wall, median over the measured steps; tokens/s: SFT tokens only (wall); 'vs mlx-lm': "
        "ratio of s/step.\ncpu s/step: process CPU time (all threads) per measured step (median), the "
        "steadier figure when other jobs share the cores."
    )
    if "sft, no pairs" in results:
        guided, plain = results["rho-guided"], results["sft, no pairs"]
        ratio = guided.median / plain.median
        print(
            f"rho-guided / sft, no pairs: {ratio:.2f}x wall (cpu {guided.cpu / plain.cpu:.2f}x), "
            f"goal <= {RHO_GUIDED_RATIO:g}x: {'PASS' if ratio <= RHO_GUIDED_RATIO else 'FAIL'}"
        )
    if args.objectives:
        sft = results["sft"]
        for name in [n for n in order if n in results and n.split(" ")[0] in OBJECTIVES]:
            r = results[name]
            line = f"{name} / sft: {r.median / sft.median:.2f}x wall (cpu {r.cpu / sft.cpu:.2f}x)"
            if name in REFERENCE_OBJECTIVES:
                ratio = r.median / sft.median
                line += f", reference cached, goal <= {REFERENCE_RATIO:g}x: "
                line += "PASS" if ratio <= REFERENCE_RATIO else "FAIL"
            print(line)


if __name__ == "__main__":
    main()
