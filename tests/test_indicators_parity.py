"""Parity with TA-Lib (default settings): same first valid index, values within 1e-9 relative.

On the real files in ../shared/data (BTC near 40,000 and altcoins near 0.00001 BTC) and on
random walks, each indicator with several parameter sets, including periods 1 and 2 where
TA-Lib accepts them and long periods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engine.indicators as ind

talib = pytest.importorskip("talib")

RTOL = 1e-9

Candles = dict[str, np.ndarray]


def assert_parity(ours: object, theirs: object, *, min_valid: int = 1) -> None:
    """Identical NaN positions (so the same first valid index) and rtol 1e-9 elsewhere."""
    ours_t = ours if isinstance(ours, tuple) else (ours,)
    theirs_t = theirs if isinstance(theirs, tuple) else (theirs,)
    assert len(ours_t) == len(theirs_t)
    for k, (a, b) in enumerate(zip(ours_t, theirs_t, strict=True)):
        a = np.asarray(a)
        b = np.asarray(b)
        assert a.shape == b.shape, f"output {k}: shape {a.shape} != {b.shape}"
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            first = int(np.flatnonzero(nan_a != nan_b)[0])
            raise AssertionError(
                f"output {k}: NaN pattern differs first at index {first} "
                f"(ours {a[first]!r}, TA-Lib {b[first]!r}); first valid ours "
                f"{_first_valid(a)} vs TA-Lib {_first_valid(b)}"
            )
        valid = ~nan_b
        assert valid.sum() >= min_valid, f"output {k}: only {valid.sum()} valid values"
        np.testing.assert_allclose(a[valid], b[valid], rtol=RTOL, atol=0, err_msg=f"output {k}")


def _first_valid(a: np.ndarray) -> int:
    ok = np.flatnonzero(~np.isnan(a))
    return int(ok[0]) if ok.size else len(a)


# (name, ours, theirs) for every indicator TA-Lib has, with several parameter sets.
Case = tuple[str, Callable[[Candles], object], Callable[[Candles], object]]


def _cases() -> list[Case]:
    cases: list[Case] = []
    for p in (1, 2, 5, 14, 30, 200, 1000):
        cases += [
            (
                f"sma{p}",
                lambda c, p=p: ind.sma(c["close"], p),
                lambda c, p=p: talib.SMA(c["close"], p),
            ),
            (
                f"ema{p}",
                lambda c, p=p: ind.ema(c["close"], p),
                lambda c, p=p: talib.EMA(c["close"], p),
            ),
            (
                f"wma{p}",
                lambda c, p=p: ind.wma(c["close"], p),
                lambda c, p=p: talib.WMA(c["close"], p),
            ),
        ]
    for p in (2, 3, 14, 50, 500):
        cases.append(
            (
                f"rsi{p}",
                lambda c, p=p: ind.rsi(c["close"], p),
                lambda c, p=p: talib.RSI(c["close"], p),
            )
        )
    for p in (1, 2, 10, 100):
        cases.append(
            (
                f"roc{p}",
                lambda c, p=p: ind.roc(c["close"], p),
                lambda c, p=p: talib.ROC(c["close"], p),
            )
        )
    hlc = ("high", "low", "close")
    for p in (1, 2, 14, 100):
        cases.append(
            (
                f"atr{p}",
                lambda c, p=p: ind.atr(*(c[k] for k in hlc), p),
                lambda c, p=p: talib.ATR(*(c[k] for k in hlc), p),
            )
        )
    for p in (2, 3, 14, 100):
        cases.append(
            (
                f"adx{p}",
                lambda c, p=p: ind.adx(*(c[k] for k in hlc), p),
                lambda c, p=p: talib.ADX(*(c[k] for k in hlc), p),
            )
        )
    for p, dev in ((2, 2.0), (5, 1.0), (20, 2.0), (20, 2.5), (200, 3.0)):
        cases.append(
            (
                f"bbands{p},{dev}",
                lambda c, p=p, dev=dev: ind.bbands(c["close"], p, dev),
                lambda c, p=p, dev=dev: talib.BBANDS(c["close"], p, dev, dev, 0),
            )
        )
    for f, s, g in ((12, 26, 9), (2, 3, 1), (5, 5, 2), (12, 26, 1), (50, 200, 30)):
        cases.append(
            (
                f"macd{f},{s},{g}",
                lambda c, f=f, s=s, g=g: ind.macd(c["close"], f, s, g),
                lambda c, f=f, s=s, g=g: talib.MACD(c["close"], f, s, g),
            )
        )
    for fk, sk, sd in ((14, 3, 3), (5, 3, 3), (1, 1, 1), (2, 1, 2), (30, 10, 5)):
        cases.append(
            (
                f"stoch{fk},{sk},{sd}",
                lambda c, fk=fk, sk=sk, sd=sd: ind.stoch(*(c[k] for k in hlc), fk, sk, sd),
                lambda c, fk=fk, sk=sk, sd=sd: talib.STOCH(*(c[k] for k in hlc), fk, sk, 0, sd, 0),
            )
        )
    cases += [
        (
            "true_range",
            lambda c: ind.true_range(*(c[k] for k in hlc)),
            lambda c: talib.TRANGE(*(c[k] for k in hlc)),
        ),
        (
            "obv",
            lambda c: ind.obv(c["close"], c["volume"]),
            lambda c: talib.OBV(c["close"], c["volume"]),
        ),
    ]
    return cases


CASES = _cases()


def _run_all(candles: Candles) -> None:
    failures = []
    for name, ours, theirs in CASES:
        try:
            assert_parity(ours(candles), theirs(candles))
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)


def _columns(df: pd.DataFrame) -> Candles:
    return {k: df[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume")}


@pytest.fixture(scope="module")
def btc(btc_1m_csv: Path) -> Candles:
    return _columns(pd.read_csv(btc_1m_csv))


@pytest.fixture(scope="module")
def alts(alt_5m_files: list[Path]) -> dict[str, Candles]:
    return {p.name.split("_")[0]: _columns(pd.read_feather(p)) for p in alt_5m_files}


def test_btc_1m_matches_talib(btc: Candles) -> None:
    assert 30_000 < float(np.median(btc["close"])) < 60_000  # the magnitude this test is about
    _run_all(btc)


def test_altcoins_5m_match_talib(alts: dict[str, Candles]) -> None:
    assert len(alts) == 8
    assert min(float(np.median(c["close"])) for c in alts.values()) < 1e-4
    for name, candles in alts.items():
        try:
            _run_all(candles)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


def random_walk(n: int, scale: float, seed: int, *, tick: float | None = None) -> Candles:
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    spread = np.abs(rng.normal(0.0, 0.001, (2, n))) * close
    high = close + spread[0]
    low = close - spread[1]
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(high, open_)
    low = np.minimum(low, open_)
    if tick is not None:  # exchange prices: repeated values, flat windows, zero changes
        close, high, low, open_ = (np.round(a / tick) * tick for a in (close, high, low, open_))
    volume = rng.gamma(2.0, 50.0, n)
    volume[rng.random(n) < 0.05] = 0.0
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


@pytest.mark.parametrize(
    ("scale", "tick"),
    [(40_000.0, None), (40_000.0, 0.5), (1e-5, None), (1e-5, 1e-8), (1.0, None)],
)
def test_random_walks_match_talib(scale: float, tick: float | None) -> None:
    _run_all(random_walk(3_000, scale, seed=int(scale * 7) % 1000, tick=tick))


def test_flat_series_matches_talib() -> None:
    n = 1_500
    flat = np.full(n, 40_000.0)
    _run_all({"open": flat, "high": flat, "low": flat, "close": flat, "volume": np.ones(n)})


def test_flat_stretch_inside_a_walk_matches_talib() -> None:
    c = random_walk(1_500, 1e-5, seed=3, tick=1e-8)
    for k in ("open", "high", "low", "close"):
        c[k][200:350] = c["close"][199]
    _run_all(c)


@pytest.mark.parametrize("scale", [1e-12, 1e9])
def test_extreme_magnitudes_match_talib(scale: float) -> None:
    _run_all(random_walk(1_500, scale, seed=11))


def test_nan_inside_input_behaves_as_talib() -> None:
    c = random_walk(800, 40_000.0, seed=5)
    for k in ("open", "high", "low", "close", "volume"):
        c[k][:7] = np.nan  # leading NaN: skipped, the warm-up starts after them
    c["close"][300] = np.nan  # a NaN later on enters the arithmetic
    c["high"][500] = np.nan
    failures = []
    for name, ours, theirs in CASES:
        try:
            assert_parity(ours(c), theirs(c), min_valid=0)
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)


def test_shorter_than_warmup_gives_all_nan_like_talib() -> None:
    c = random_walk(20, 100.0, seed=1)
    assert np.isnan(ind.rsi(c["close"], 20)).all()
    assert np.isnan(ind.adx(c["high"], c["low"], c["close"], 14)).all()  # needs 27 bars
    assert all(np.isnan(a).all() for a in ind.macd(c["close"]))
    for _name, ours, theirs in CASES:
        assert_parity(ours(c), theirs(c), min_valid=0)
    empty = np.array([], dtype=np.float64)
    assert ind.sma(empty, 3).shape == (0,)
    assert all(a.shape == (0,) for a in ind.stoch(empty, empty, empty))
