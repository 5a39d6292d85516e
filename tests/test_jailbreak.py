"""The jailbreak dimension: attacks (hook, transforms), ASR statistics, the tiny model end to end,
and the card's per-attack chart."""

from __future__ import annotations

from rho_audit.report.families import families, family_figures


def _row(secondary):
    from rho_audit.report.records import DimensionRow

    return DimensionRow(
        "jailbreak", "attack_success_rate", 0.4, 0.2, 0.6, None, None, 10, 0, "FAIL", "jailbreak", "1",
        "rho-audit", "", "", tuple(sorted(secondary.items())), None, None,
    )  # fmt: skip


def test_families_chart_every_bounded_group_and_skip_the_rest():
    secondary = {
        "asr[dan]": 0.5, "asr[dan] ci_low": 0.3, "asr[dan] ci_high": 0.7,
        "asr[none]": 0.1, "asr[none] ci_low": 0.0, "asr[none] ci_high": 0.3,
        "n[dan]": 10.0, "n[none]": 10.0,  # no CI: a table figure, not a chart
        "judge_score[dan]": 0.2, "judge_score[dan] ci_low": 0.1,  # one bound only: not charted
    }  # fmt: skip
    found = families(secondary.items())
    assert list(found) == ["asr"]
    assert [(m.group, m.value, m.low, m.high) for m in found["asr"]] == [
        ("dan", 0.5, 0.3, 0.7),
        ("none", 0.1, 0.0, 0.3),
    ]
    [figure] = family_figures([_row(secondary)])
    assert figure.name == "jailbreak-asr" and "attack success rate" in figure.title
    svg = figure.inline
    assert ">dan<" in svg and ">none<" in svg and "0.500" in svg
