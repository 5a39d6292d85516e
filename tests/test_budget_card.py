"""The sweep card's token-budget study: when the grid varies ``budget_tokens``, each dimension's
score against the budget, one line per objective (trainer and its other settings) with 95%
t-intervals over seeds, the untrained baseline as a reference line, and the same numbers as a
table.

The store is built by hand with the helpers of test_reports.py (2 trainers × 3 budgets × 2 seeds
and a baseline, one cell failed), so every expected number is worked out below.
"""

from __future__ import annotations

import math
import subprocess
import xml.etree.ElementTree as ET

import pytest

from rho_audit.report.budget import token_label
from rho_audit.report.render import render, write_report
from rho_audit.report.sweep_card import build_sweep_card
from rho_audit.store import RunStore
from tests.test_reports import (
    ablation_store,
    add_cell,
    assert_valid_markdown,
    chromium_binary,
    dose_store,
    parse_html,
)

SWEEP = "objectives-budget-1"
NS = "{http://www.w3.org/2000/svg}"
BASELINE = {"factual": 0.603, "toxicity": 0.145}
SEEDS = (42, 123)
BUDGETS = (25_000, 50_000, 100_000)
#: (trainer, budget) -> per seed (factual, toxicity); None: the cell failed.
SCORES = {
    ("sft", 25_000): ((0.612, 0.131), (0.598, 0.151)),
    ("sft", 50_000): ((0.640, 0.120), (0.630, 0.160)),
    ("sft", 100_000): ((0.655, 0.101), (0.671, 0.139)),
    ("rho-guided", 25_000): ((0.625, 0.210), (0.617, 0.236)),
    ("rho-guided", 50_000): ((0.660, 0.301), (0.648, 0.333)),
    ("rho-guided", 100_000): ((0.702, 0.420), None),
}
#: The t quantile of a two-seed interval (1 degree of freedom) has a closed form: tan(0.475 π).
T_1DF = math.tan(0.475 * math.pi)


def budget_store(path):
    store = RunStore(path)
    add_cell(store, SWEEP, "baseline", "baseline", None, None, {}, BASELINE, 0)
    n = 1
    for (trainer, budget), per_seed in SCORES.items():
        grid = {"budget_tokens": budget} | ({"lambda": 0.2} if trainer == "rho-guided" else {})
        condition = f"{trainer}_budget{budget}"
        for seed, values in zip(SEEDS, per_seed, strict=True):
            scores = dict(zip(BASELINE, values or (0.0, 0.0), strict=True))
            status = "complete" if values else "failed"
            cell = f"{condition}_seed{seed}"
            add_cell(store, SWEEP, cell, "train", trainer, seed, grid, scores, n, condition, status=status)
            n += 1
    return store


def expected(trainer, budget, dim):
    """(mean, half-width of the 95% t-interval, n) worked out from SCORES."""
    values = [v[list(BASELINE).index(dim)] for v in SCORES[(trainer, budget)] if v]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None, 1
    return mean, T_1DF * abs(values[0] - values[1]) / 2, 2  # se of two values = |a − b| / 2


def test_token_labels():
    assert [token_label(x) for x in (800, 25_000, 100_000, 1_500_000)] == ["800", "25k", "100k", "1.5M"]


def test_budget_study_lines_are_objectives_with_t_intervals(tmp_path):
    card = build_sweep_card(budget_store(tmp_path / "runs.sqlite"), SWEEP)
    [study] = card.splits[0].budget
    assert study.objectives == ("sft", "rho-guided λ=0.2") and study.budgets == BUDGETS
    assert study.baseline == BASELINE and study.model == ""
    assert [(lv.objective, lv.budget) for lv in study.levels] == [
        (o, b) for o in study.objectives for b in BUDGETS
    ]
    for lv in study.levels:
        for dim in BASELINE:
            mean, half, n = expected(lv.condition.trainer, lv.budget, dim)
            assert lv.scores[dim].n == n and lv.scores[dim].mean == pytest.approx(mean)
            assert lv.half_ci[dim] == (pytest.approx(half) if half is not None else None)
    # budget_tokens has no dose-response per trainer; the cards says where it went instead
    assert card.splits[0].dose == ()
    assert any("token budget has its own section" in line for line in card.not_shown)
    assert any(s.name == "mean ± 95% CI" for s in card.statistics)
    # a sweep without a budget axis has no study and no new statistic
    plain = build_sweep_card(ablation_store(tmp_path / "plain.sqlite"), "paper-ablation-0123abcd")
    assert plain.splits[0].budget == () and not any(s.name == "mean ± 95% CI" for s in plain.statistics)


def test_budget_figure_per_dimension_on_a_log_axis_with_the_baseline(tmp_path):
    card = build_sweep_card(budget_store(tmp_path / "runs.sqlite"), SWEEP)
    [study] = card.splits[0].budget
    assert [f.name for f in study.figures] == ["budget-factual", "budget-toxicity"]
    fig = study.figures[1]
    root = ET.fromstring(fig.standalone)
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert {"25k", "50k", "100k"} <= set(texts)  # a tick at each budget of the grid
    assert "sft" in texts and "rho-guided λ=0.2" in texts and "untrained baseline (0.145)" in texts
    lines = [pl.get("points").split() for pl in root.iter(f"{NS}polyline")]
    assert len(lines) == 2 and all(len(pts) == 3 for pts in lines)  # two objectives × three budgets
    xs = [[float(p.split(",")[0]) for p in pts] for pts in lines]
    for x in xs:  # log scale: each doubling of the budget is the same distance
        assert x[1] - x[0] == pytest.approx(x[2] - x[1], abs=0.15)
    ys = [[float(p.split(",")[1]) for p in pts] for pts in lines]
    # pixels per score unit, from the lowest and the highest mean; every mean sits on that scale
    means = [[expected(t, b, "toxicity")[0] for b in BUDGETS] for t in ("sft", "rho-guided")]
    points = sorted(
        (m, y) for line, mean in zip(ys, means, strict=True) for y, m in zip(line, mean, strict=True)
    )
    (m_lo, y_lo), (m_hi, y_hi) = points[0], points[-1]
    k = (y_lo - y_hi) / (m_hi - m_lo)
    for m, y in points:
        assert y_lo - y == pytest.approx(k * (m - m_lo), abs=0.3)
    # whiskers: the 95% t-interval, none for the one-seed point (rho-guided at 100k)
    whiskers = [
        el
        for el in root.iter(f"{NS}line")
        if el.get("stroke-width") == "1.3" and el.get("x1") == el.get("x2") and el.get("y1") != el.get("y2")
    ]
    assert len(whiskers) == 5
    for w in whiskers:
        series = next(i for i, x in enumerate(xs) if float(w.get("x1")) in x)
        budget = BUDGETS[xs[series].index(float(w.get("x1")))]
        half = expected(("sft", "rho-guided")[series], budget, "toxicity")[1]
        assert abs(float(w.get("y1")) - float(w.get("y2"))) == pytest.approx(2 * half * k, abs=0.3)
    # the baseline: a dotted line across the plot at its score
    dotted = [el for el in root.iter(f"{NS}line") if el.get("stroke-dasharray") == "1 3"]
    [ref] = [el for el in dotted if float(el.get("x2")) - float(el.get("x1")) > 100]  # not the legend's
    ref_y = float(ref.get("y1"))
    assert ref_y == float(ref.get("y2"))
    assert y_lo - ref_y == pytest.approx(k * (BASELINE["toxicity"] - m_lo), abs=0.3)
    assert "95% t-interval" in fig.caption and "untrained base model" in fig.caption


def test_budget_table_in_markdown_and_html(tmp_path):
    card = build_sweep_card(budget_store(tmp_path / "runs.sqlite"), SWEEP)
    rendered = render(card, "md", figure_prefix="b-")
    md = rendered.text
    assert_valid_markdown(md)
    assert "## Token budget\n" in md
    assert {"b-budget-factual.svg", "b-budget-toxicity.svg"} <= set(rendered.figures)
    # worked by hand: sft at 25k, factual (0.612 + 0.598) / 2 = 0.605, half-width
    # tan(0.475π) × 0.014 / 2 = 0.0889; toxicity 0.141, 12.706 × 0.010 = 0.127
    assert "| untrained baseline | 0 | +0.603 | +0.145 |" in md
    assert "| sft | 25,000 | +0.605 ± 0.089 (n=2) | +0.141 ± 0.127 (n=2) |" in md
    assert "| rho-guided λ=0.2 | 50,000 | +0.654 ± 0.076 (n=2) | +0.317 ± 0.203 (n=2) |" in md
    assert "| rho-guided λ=0.2 | 100,000 | +0.702 (n=1) | +0.420 (n=1) |" in md
    assert md.index("## Token budget") < md.index("## Ablation contrasts")

    html = render(card, "html").text
    parsed = parse_html(html)
    ids = [a["id"] for _, a in parsed.tags if "id" in a]
    assert len(ids) == len(set(ids))
    assert {"budget", "budget-table", "fig-budget-factual", "fig-budget-toxicity"} <= set(ids)
    assert html.count("<table") == html.count("</table>")
    text = "".join(parsed.text)
    assert "+0.605 ± 0.089 (n=2)" in text and "untrained baseline (0.603)" in text


def test_budget_card_renders_in_headless_chromium(tmp_path):
    chromium = chromium_binary()
    page = tmp_path / "budget.html"
    write_report(build_sweep_card(budget_store(tmp_path / "runs.sqlite"), SWEEP), "html", page)
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert '<table id="budget-table" class="budget-table">' in dom
    assert '<figure id="fig-budget-toxicity">' in dom and "untrained baseline (0.145)" in dom


def test_each_objective_is_contrasted_with_sft_at_its_own_budget(tmp_path):
    card = build_sweep_card(budget_store(tmp_path / "runs.sqlite"), SWEEP)
    [ablation] = card.splits[0].ablations
    versus = {(x.condition, x.versus) for x in ablation.contrasts}
    conditions = {c.label: dict(c.params).get("budget_tokens") for c in ablation.conditions}
    assert versus, "no contrasts"
    for condition, reference in versus:
        assert not condition.startswith("sft")  # sft's own budgets are the references
        assert reference.startswith("sft") and conditions[condition] == conditions[reference]
    assert "the sft condition with the same settings" in ablation.figure.caption


def _with_trend(path, dimension: str) -> dict[str, float]:
    """Give every stored audit of ``dimension`` a secondary p_match (distinct per run) and name it
    in ``trend``, as dark-triad's evaluation does; returns run id -> p_match."""
    import json
    import sqlite3

    db = sqlite3.connect(path)
    query = "SELECT run_id, result_json FROM dimension_results WHERE dimension = ?"
    p_match = {}
    for i, (run_id, text) in enumerate(db.execute(query, (dimension,)).fetchall()):
        result = json.loads(text)
        p_match[run_id] = 0.4 + 0.01 * i
        result["evaluation"]["secondary"] = {"p_match": p_match[run_id]}
        result["evaluation"]["trend"] = ["p_match"]
        db.execute(
            "UPDATE dimension_results SET result_json = ? WHERE run_id = ? AND dimension = ?",
            (json.dumps(result), run_id, dimension),
        )
    db.commit()
    db.close()
    return p_match


def test_trend_figures_an_evaluation_names_get_their_own_column_and_figure(tmp_path):
    """A dimension whose evaluation lists ``trend`` (dark-triad: p_match) gets that secondary
    figure plotted against the budget next to its headline."""
    path = tmp_path / "runs.sqlite"
    budget_store(path).close()
    p_match = _with_trend(path, "toxicity")
    card = build_sweep_card(RunStore(path), SWEEP)
    [study] = card.splits[0].budget
    assert study.columns == ("factual", "toxicity", "toxicity p_match")
    assert study.baseline["toxicity p_match"] == pytest.approx(p_match["audit-baseline"])
    sft_25k = next(lv for lv in study.levels if lv.objective == "sft" and lv.budget == 25_000)
    seeds = [p_match[f"audit-sft_budget25000_seed{s}"] for s in SEEDS]
    assert sft_25k.scores["toxicity p_match"].mean == pytest.approx(sum(seeds) / 2)
    assert [f.title.split(":")[0] for f in study.figures] == list(study.columns)
    assert "| toxicity p\\_match |" in render(card, "md").text  # Markdown escapes the underscore


def test_trend_figures_join_the_dose_response_as_deltas(tmp_path):
    path = tmp_path / "dose.sqlite"
    dose_store(path).close()
    dimension = "toxicity"
    p_match = _with_trend(path, dimension)
    card = build_sweep_card(RunStore(path), "paper-dose-response-00000000")
    [dose] = [d for d in card.splits[0].dose if d.key == "lambda"]
    label = f"{dimension} p_match"
    level = dose.levels[0]
    runs = [f"audit-{level.condition.key}_seed{s}" for s in (42, 123, 456)]
    want = sum(p_match[r] - p_match["audit-baseline"] for r in runs) / 3
    assert level.condition.summary[label].mean == pytest.approx(want)
    svg = ET.fromstring(dose.figure.standalone)
    assert any(label in "".join(t.itertext()) for t in svg.iter(f"{NS}text"))
