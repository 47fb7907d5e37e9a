"""Statistics of an experiment's results, stated in plain words.

- ``summary``: per configuration, a metric over its out-of-sample windows (every window
  when the experiment has no walk-forward split): mean, median, worst, best, share of
  windows above zero.
- ``compare``: two configurations over the windows both ran (paired by instrument set
  and window): how often A beat B, the mean difference with a percentile bootstrap
  confidence interval over windows, and a two-sided p-value from the paired sign-flip
  randomisation test (exact up to 16 windows, 20,000 random flips beyond).
- ``stability``: for each grid parameter, the metric at each of its values (averaged
  over everything else): a robust parameter gives similar numbers across its values.
- ``walk_forward``: per fold, the configuration best in-sample and how it did out of sample.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.errors import TapedeckError

BOOTSTRAP_RESAMPLES = 10_000
EXACT_FLIPS_UP_TO = 16
RANDOM_FLIPS = 20_000
ALPHA = 0.05


class StatsError(TapedeckError):
    """A statistic asked of results that cannot give it (unknown configuration, ...)."""


def bootstrap_ci(
    values: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 1 - ALPHA,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    means = x[idx].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


def sign_flip_p(values: Sequence[float], *, seed: int = 0) -> float:
    """Two-sided p-value of "the mean difference is zero" for paired differences: the
    share of sign flips whose |mean| is at least the observed one."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return math.nan
    observed = abs(x.mean())
    if n <= EXACT_FLIPS_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(RANDOM_FLIPS, n))
    flipped = np.abs((signs * x).mean(axis=1))
    # a tolerance so that ties with the observed value count (floating-point noise)
    return float(np.mean(flipped >= observed - 1e-12 * max(1.0, observed)))


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    metric: str
    windows: int
    wins: int  # windows where A > B
    mean_diff: float
    ci: tuple[float, float]
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA and not (self.ci[0] <= 0 <= self.ci[1])

    def sentence(self, scope: str = "out-of-sample") -> str:
        unit = "%" if self.metric.endswith("_pct") else ""
        what = "return" if self.metric == "total_return_pct" else self.metric.replace("_", " ")

        def num(v: float) -> str:
            return f"{v:+.2f}{unit}".replace("-", "−")

        verdict = (
            f"significant at {ALPHA:g} (p = {self.p_value:.3f})"
            if self.significant
            else f"not significant (p = {self.p_value:.2f})"
        )
        return (
            f"{self.a} beat {self.b} in {self.wins} of {self.windows} {scope} windows; "
            f"mean {what} difference {num(self.mean_diff)} "
            f"[{num(self.ci[0])}, {num(self.ci[1])}]: {verdict}"
        )


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    if "error" in frame:
        frame = frame[frame["error"].fillna("") == ""]
    return frame


def evaluation_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The out-of-sample rows (or all rows when there are none) and their scope's name."""
    frame = _ok(frame)
    oos = frame[frame["role"] == "oos"]
    if len(oos):
        return oos, "out-of-sample"
    return frame, "backtest"


def resolve_config(frame: pd.DataFrame, name: str) -> str:
    """A configuration id from its full id or a unique prefix (``momentum@rules``)."""
    ids = list(dict.fromkeys(frame["config"]))
    if name in ids:
        return name
    matches = [i for i in ids if i.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise StatsError(f"no configuration {name!r} in the results (there are {len(ids)})")
    shown = ", ".join(matches[:4]) + (" ..." if len(matches) > 4 else "")
    raise StatsError(f"{name!r} names {len(matches)} configurations ({shown}): give one")


def compare(
    frame: pd.DataFrame, a: str, b: str, metric: str = "total_return_pct", *, seed: int = 0
) -> tuple[Comparison, str]:
    """A against B on the windows both ran; the comparison and its scope's name."""
    rows, scope = evaluation_rows(frame)
    a, b = resolve_config(frame, a), resolve_config(frame, b)
    if metric not in rows:
        raise StatsError(f"no metric {metric!r} in the results")
    key = ["instruments", "window"]
    left = rows[rows["config"] == a].set_index(key)[metric]
    right = rows[rows["config"] == b].set_index(key)[metric]
    both = pd.concat([left.rename("a"), right.rename("b")], axis=1, join="inner").dropna()
    if both.empty:
        raise StatsError(f"{a} and {b} share no finished {scope} window")
    diff = (both["a"] - both["b"]).to_numpy(dtype=np.float64)
    return (
        Comparison(
            a,
            b,
            metric,
            len(diff),
            int((diff > 0).sum()),
            float(diff.mean()),
            bootstrap_ci(diff, seed=seed),
            sign_flip_p(diff, seed=seed),
        ),
        scope,
    )


def summary(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per configuration: each metric's mean, median, min and max over the evaluation
    windows, the windows counted and the share with a positive return."""
    rows, _ = evaluation_rows(frame)
    out = []
    for config, group in rows.groupby("config", sort=False):
        rec: dict[str, object] = {"config": config, "windows": len(group)}
        for m in metrics:
            if m not in group:
                continue
            v = group[m].astype(float)
            rec[f"{m} mean"] = v.mean()
            rec[f"{m} median"] = v.median()
            rec[f"{m} min"] = v.min()
            rec[f"{m} max"] = v.max()
        if "total_return_pct" in group:
            rec["positive"] = float((group["total_return_pct"] > 0).mean())
        out.append(rec)
    return pd.DataFrame(out)


def stability(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """For each grid parameter and value: the metric's mean and spread over the
    evaluation windows of every configuration with that value."""
    rows, _ = evaluation_rows(frame)
    out = []
    for col in [c for c in rows.columns if c.startswith("param.")]:
        for value, group in rows.groupby(col, sort=True):
            v = group[metric].astype(float)
            out.append(
                {
                    "parameter": col.removeprefix("param."),
                    "value": value,
                    "cells": len(group),
                    f"{metric} mean": v.mean(),
                    f"{metric} std": v.std(ddof=1) if len(v) > 1 else math.nan,
                    "positive": float((v > 0).mean()),
                }
            )
    return pd.DataFrame(out)


def walk_forward(frame: pd.DataFrame, objective: str, metric: str) -> pd.DataFrame:
    """Per instrument set and fold: the configuration with the best in-sample
    ``objective`` and its out-of-sample ``metric`` (what walk-forward optimisation
    would have earned)."""
    frame = _ok(frame)
    ins = frame[frame["role"] == "is"]
    oos = frame[frame["role"] == "oos"]
    out = []
    for (inst, fold), group in ins.groupby(["instruments", "fold"], sort=True):
        scored = group.dropna(subset=[objective])
        if scored.empty:
            continue
        best = scored.sort_values([objective, "config"], ascending=[False, True]).iloc[0]
        match = oos[
            (oos["instruments"] == inst) & (oos["fold"] == fold) & (oos["config"] == best["config"])
        ]
        out.append(
            {
                "instruments": inst,
                "fold": int(fold),
                "best in-sample": best["config"],
                f"is {objective}": best[objective],
                f"oos {metric}": float(match[metric].iloc[0]) if len(match) else math.nan,
            }
        )
    return pd.DataFrame(out)
