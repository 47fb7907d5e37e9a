"""The stochastic-cross detector (engine/signals/detectors/stoch.py): exact candles on a
hand-built case, the documented rule re-implemented over TA-Lib's STOCH as an oracle on
real data, both execution paths equal, no lookahead, and not in the default set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import talib

from engine.cli import main
from engine.data import load_many, select
from engine.signals import SignalDetector, default_signal_config, detect_series
from engine.signals.detectors.stoch import StochConfig, StochCross
from engine.types import Direction, InstrumentSeries
from tests.test_signals_detector import assert_same_signals, make_series
from tests.test_signals_rules import fire

# %K and %D by hand: the gap K - D is -5 -10 -8 -4 -1 +4 +9 +25 +25 +7 -2 -15 -20 +5
K = [50.0, 30.0, 12.0, 8.0, 9.0, 15.0, 25.0, 60.0, 85.0, 92.0, 88.0, 70.0, 40.0, 45.0]
D = [55.0, 40.0, 20.0, 12.0, 10.0, 11.0, 16.0, 35.0, 60.0, 85.0, 90.0, 85.0, 60.0, 40.0]


def test_fires_at_the_exact_candles_of_a_hand_built_case() -> None:
    # up at 5 (D 11 < 20), down at 10 (D 90 > 80); the up cross at 13 has D 40: nothing
    detector = StochCross(StochConfig(cooldown=0))
    assert fire(detector, stoch_k=K, stoch_d=D) == [(5, "stoch_cross_up"), (10, "stoch_cross_down")]
    # the cooldown silences the second (10 - 5 <= 5) and never delays it
    assert fire(StochCross(StochConfig(cooldown=5)), stoch_k=K, stoch_d=D) == [
        (5, "stoch_cross_up")
    ]
    assert fire(StochCross(StochConfig(cooldown=4)), stoch_k=K, stoch_d=D)[1] == (
        10,
        "stoch_cross_down",
    )
    # wider zones: the cross at 13 (D 40) fires with oversold 45
    wide = StochCross(StochConfig(cooldown=0, oversold=45.0, overbought=80.0))
    assert fire(wide, stoch_k=K, stoch_d=D)[-1] == (13, "stoch_cross_up")


def test_strength_and_evidence_by_hand() -> None:
    detector = StochCross(StochConfig())
    v = {"stoch_k": 15.0, "stoch_d": 11.0}
    p = {"stoch_k": 9.0, "stoch_d": 10.0}
    direction, strength, evidence = detector.describe(0, v, p)
    assert direction is Direction.LONG
    assert strength == pytest.approx(0.95)  # 0.5 + 0.5 x (20 - 11) / 10
    assert evidence == {
        "stoch_k": 15.0,
        "stoch_d": 11.0,
        "stoch_k_prev": 9.0,
        "stoch_d_prev": 10.0,
        "level": 20.0,
    }
    direction, strength, _ = detector.describe(1, {"stoch_k": 88.0, "stoch_d": 84.0}, p)
    assert (direction, strength) == (Direction.SHORT, pytest.approx(0.7))


def oracle(series: InstrumentSeries, cfg: StochConfig) -> list[tuple[int, str, float]]:
    """The documented rule, written out over TA-Lib's slow stochastic."""
    k, d = talib.STOCH(
        series.high,
        series.low,
        series.close,
        fastk_period=cfg.fastk,
        slowk_period=cfg.slowk,
        slowk_matype=0,
        slowd_period=cfg.slowd,
        slowd_matype=0,
    )
    eps = 1e-9
    side, last, out = 0, -(10**9), []
    for i in range(1, len(k)):
        g, q = k[i] - d[i], k[i - 1] - d[i - 1]
        kind = None
        if g > eps and not q > eps:
            if side == -1 and d[i] < cfg.oversold:
                kind, depth = "stoch_cross_up", cfg.oversold - d[i]
            side = 1
        elif g < -eps and not q < -eps:
            if side == 1 and d[i] > cfg.overbought:
                kind, depth = "stoch_cross_down", d[i] - cfg.overbought
            side = -1
        if kind is not None and i - last > cfg.cooldown:
            last = i
            out.append((i, kind, min(1.0, 0.5 + 0.5 * depth / cfg.depth)))
    return out


@pytest.fixture(scope="module")
def btc(btc_1m_csv: Path) -> InstrumentSeries:
    return select(load_many([btc_1m_csv])[0], last=6000)


def test_real_btc_matches_the_talib_oracle_and_both_paths_agree(btc: InstrumentSeries) -> None:
    config = default_signal_config().with_detectors("stoch")
    result = detect_series(btc, config)
    got = [
        (int(i), s.kind, s.strength)
        for i, s in zip(result.signal_index, result.signals, strict=True)
    ]
    want = oracle(btc, config.params_of("stoch"))
    assert len(want) > 20
    assert [(i, kind) for i, kind, _ in got] == [(i, kind) for i, kind, _ in want]
    for (_, _, a), (_, _, b) in zip(got, want, strict=True):
        assert a == pytest.approx(b, rel=1e-9)
    assert {s.kind for s in result.signals} == {"stoch_cross_up", "stoch_cross_down"}
    step = SignalDetector(btc.instrument, config)
    stepped = [s for i in range(len(btc)) for s in step.update(btc.candle(i))]
    assert_same_signals(result.signals, stepped)


def test_no_lookahead_a_prefix_gives_the_same_signals(btc: InstrumentSeries) -> None:
    config = default_signal_config().with_detectors("stoch")
    full = detect_series(btc, config)
    cut = 2500
    prefix = detect_series(select(btc, end=int(btc.open_time[cut])), config)
    assert_same_signals(prefix.signals, [s for s in full.signals if s.time < btc.close_time[cut]])


def test_not_default_but_selectable(capsys: pytest.CaptureFixture[str]) -> None:
    assert "stoch" not in default_signal_config().detectors
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 2000)))
    series = make_series(close, high=close * 1.004, low=close * 0.996)
    default = detect_series(series)
    assert not any(s.kind.startswith("stoch") for s in default.signals)
    both = detect_series(series, default_signal_config().with_detectors("rsi,stoch"))
    assert {s.kind for s in both.signals} >= {"stoch_cross_up", "stoch_cross_down"}
    assert not math.isnan(both.indicators["stoch_d"][-1])


def test_cli_signals_detectors_stoch(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.data.sample import SAMPLE_PATHS

    code = main(["signals", str(SAMPLE_PATHS[0]), "--detectors", "stoch", "--json", "--summary"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out["per_kind"]) == {"stoch_cross_up", "stoch_cross_down"}
    with pytest.raises(Exception, match="stoch levels need"):
        default_signal_config().with_params("stoch", oversold=90.0)
