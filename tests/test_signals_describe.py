"""``describe`` on arrays (the vectorised path: every fired candle of one kind at once)
gives, element for element, exactly what it gives on one candle's floats (the step
path): same direction, strength and evidence, down to NaN, zero ranges and -0.0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.signals import DETECTOR_NAMES, default_signal_config
from engine.signals.detector import compute_values
from engine.signals.registry import build as build_strategies
from tests.test_signals_detector import random_walk

SPECIAL = np.array([math.nan, 0.0, -0.0, 1e-300, -1e-12, 1.0, 2.0])


def value_columns(seed: int, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every key any strategy reads, as random columns with special values mixed in."""
    config = default_signal_config().with_detectors(DETECTOR_NAMES)
    strategies = build_strategies(config)
    values, prev = compute_values(random_walk(seed, 300, 50.0), config, strategies)
    rng = np.random.default_rng(seed)

    def column(a: np.ndarray) -> np.ndarray:
        base = rng.choice(a[~np.isnan(a)], n) * rng.choice([1.0, 0.999, 1.001, -1.0], n)
        special = rng.random(n) < 0.25
        return np.where(special, rng.choice(SPECIAL, n), base)

    return {k: column(a) for k, a in values.items()}, {k: column(a) for k, a in prev.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_describe_on_arrays_matches_describe_on_floats(seed: int) -> None:
    v, p = value_columns(seed, 400)
    strategies = build_strategies(default_signal_config().with_detectors(DETECTOR_NAMES))
    assert [s.name for s in strategies] == list(DETECTOR_NAMES)  # every detector
    for strategy in strategies:
        for kind in range(len(strategy.kinds)):
            with np.errstate(all="ignore"):
                direction, strength, evidence = strategy.describe(kind, v, p)
            for j in range(400):
                one = strategy.describe(
                    kind,
                    {k: float(a[j]) for k, a in v.items()},
                    {k: float(a[j]) for k, a in p.items()},
                )
                d = direction if not isinstance(direction, list) else direction[j]
                s = strength[j] if isinstance(strength, np.ndarray) else strength
                e = {
                    k: (x[j].item() if isinstance(x, np.ndarray) else x)
                    for k, x in evidence.items()
                }
                assert (d, repr(float(s)), repr(e)) == (one[0], repr(one[1]), repr(one[2]))
                assert type(one[1]) is float
