"""Experiment statistics against cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.experiment import stats


def test_bootstrap_interval_of_a_constant_is_the_constant():
    assert stats.bootstrap_ci([0.4] * 12) == pytest.approx((0.4, 0.4))


def test_bootstrap_interval_of_plus_minus_one_is_the_binomial_answer():
    # 50 of +1 and 50 of -1: a resample's mean is (2K - 100) / 100 with K ~ Binomial(100, 1/2),
    # whose 2.5% and 97.5% quantiles are 40 and 60: the interval is exactly [-0.2, +0.2].
    values = [1.0] * 50 + [-1.0] * 50
    lo, hi = stats.bootstrap_ci(values, resamples=20_000, seed=3)
    assert (lo, hi) == pytest.approx((-0.2, 0.2))


def test_bootstrap_interval_of_normal_data_matches_the_normal_theory():
    rng = np.random.default_rng(7)
    x = rng.normal(1.0, 2.0, size=400)
    lo, hi = stats.bootstrap_ci(x, resamples=20_000)
    half = 1.96 * x.std(ddof=0) / math.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - half, abs=0.02)
    assert hi == pytest.approx(x.mean() + half, abs=0.02)


def test_sign_flip_p_value_exact_cases():
    # every difference positive: only the all-plus and all-minus flips reach the mean
    assert stats.sign_flip_p([1.0] * 5) == pytest.approx(2 / 32)
    # symmetric differences: every flip's |mean| >= 0
    assert stats.sign_flip_p([1.0, -1.0]) == 1.0
    # [3, 1]: flips give means 2, 1, -1, -2 -> |mean| >= 2 in 2 of 4
    assert stats.sign_flip_p([3.0, 1.0]) == 0.5


def _frame(a: list[float], b: list[float]) -> pd.DataFrame:
    rows = []
    for config, values in (("ai@llamacpp", a), ("ai@rules", b)):
        for i, v in enumerate(values):
            rows.append(
                {
                    "cell": f"{config}/all/f{i:02d}-oos",
                    "config": config,
                    "instruments": "all",
                    "window": f"f{i:02d}-oos",
                    "role": "oos",
                    "fold": i,
                    "total_return_pct": v,
                    "sharpe": v / 2,
                    "error": "",
                }
            )
        rows.append({**rows[-1], "window": "f00-is", "role": "is", "total_return_pct": 99.0})
    return pd.DataFrame(rows)


def test_compare_pairs_windows_and_says_it_in_words():
    frame = _frame([1.0, 2.0, -1.0, 0.5], [0.5, 0.0, 0.0, 0.5])
    cmp, scope = stats.compare(frame, "ai@llamacpp", "ai@rules")
    assert scope == "out-of-sample"
    assert cmp.windows == 4 and cmp.wins == 2  # +0.5, +2, -1, 0
    assert cmp.mean_diff == pytest.approx(0.375)
    assert cmp.p_value == pytest.approx(stats.sign_flip_p([0.5, 2.0, -1.0, 0.0]))
    text = cmp.sentence(scope)
    assert text.startswith(
        "ai@llamacpp beat ai@rules in 2 of 4 out-of-sample windows; mean return difference +0.38%"
    )
    assert text.endswith(f"not significant (p = {cmp.p_value:.2f})")


def test_a_clear_difference_is_significant():
    frame = _frame([2.0 + 0.1 * i for i in range(12)], [0.0] * 12)
    cmp, _ = stats.compare(frame, "ai@llamacpp", "ai@rules")
    assert cmp.wins == 12 and cmp.p_value == pytest.approx(2 / 4096)
    assert cmp.significant and "significant at 0.05" in cmp.sentence()


def test_compare_names_an_unknown_or_ambiguous_configuration():
    frame = _frame([1.0], [0.0])
    with pytest.raises(stats.StatsError, match="no configuration 'x'"):
        stats.compare(frame, "x", "ai@rules")
    with pytest.raises(stats.StatsError, match="names 2 configurations"):
        stats.compare(frame, "ai@", "ai@rules")


def test_stability_and_summary():
    frame = pd.DataFrame(
        {
            "config": ["a", "b", "a", "b"],
            "role": ["oos"] * 4,
            "param.stop_atr": [1.5, 3.0, 1.5, 3.0],
            "total_return_pct": [1.0, -1.0, 3.0, -3.0],
            "sharpe": [0.1, -0.1, 0.3, -0.3],
            "error": [""] * 4,
        }
    )
    table = stats.stability(frame, "total_return_pct")
    assert table["value"].tolist() == [1.5, 3.0]
    assert table["total_return_pct mean"].tolist() == [2.0, -2.0]
    assert table["positive"].tolist() == [1.0, 0.0]
    summary = stats.summary(frame, ["total_return_pct"])
    assert summary["config"].tolist() == ["a", "b"]
    assert summary["total_return_pct median"].tolist() == [2.0, -2.0]
