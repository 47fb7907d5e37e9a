"""Properties of every registered indicator (hypothesis): no lookahead, incremental equals
batch, constant series, scale invariance at tiny and huge magnitudes, purity, NaN rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.indicators as ind
from engine.indicators import registry

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = registry.names()


def candles_from(steps: list[float], scale: float, tick: bool) -> dict[str, np.ndarray]:
    """OHLCV from log-return steps; ``tick`` rounds prices so flat windows and ties occur."""
    r = np.asarray(steps, dtype=np.float64)
    close = scale * np.exp(np.cumsum(r * 0.01))
    rng = np.random.default_rng(len(steps))
    high = close * (1 + np.abs(rng.normal(0, 0.003, r.size)))
    low = close * (1 - np.abs(rng.normal(0, 0.003, r.size)))
    if tick:
        q = scale * 1e-3
        close, high, low = (np.round(a / q) * q for a in (close, high, low))
        high = np.maximum(high, close)
        low = np.minimum(low, close)
    volume = np.round(rng.gamma(2.0, 5.0, r.size))  # some zero volumes
    return {"open": close.copy(), "high": high, "low": low, "close": close, "volume": volume}


@st.composite
def series(draw: st.DrawFn, max_size: int = 150) -> dict[str, np.ndarray]:
    steps = draw(
        st.lists(st.floats(-3, 3, allow_nan=False, allow_infinity=False), max_size=max_size)
    )
    scale = draw(st.sampled_from([1e-12, 1e-5, 1.0, 40_000.0, 1e9]))
    c = candles_from(steps, scale, draw(st.booleans()))
    n = len(steps)
    if n and draw(st.booleans()):  # NaN: leading in some inputs, and one later on
        for k in ("high", "low", "close", "volume"):
            c[k][: draw(st.integers(0, min(n, 5)))] = np.nan
        c[draw(st.sampled_from(["high", "low", "close", "volume"]))][
            draw(st.integers(0, n - 1))
        ] = np.nan
    return c


@st.composite
def params_for(draw: st.DrawFn, name: str) -> dict[str, Any]:
    spec = registry.get(name)
    out: dict[str, Any] = {}
    for pname, p in spec.params.items():
        if p.kind is int:
            out[pname] = draw(st.integers(int(p.minimum), int(p.minimum) + 25))
        else:
            out[pname] = draw(st.sampled_from([0.0, 1.0, 2.0, 2.5]))
    if name == "macd" and out["fast"] > out["slow"]:
        out["fast"], out["slow"] = out["slow"], out["fast"]
    return out


def outputs(name: str, cols: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return np.array(list(registry.compute(name, cols, **params).values()))


def run_incremental(name: str, cols: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
    spec = registry.get(name)
    obj = spec.make_incremental(**params)
    args = [cols[c].tolist() for c in spec.inputs]
    rows = []
    for values in zip(*args, strict=True):
        r = obj.update(*values)
        rows.append(r if isinstance(r, tuple) else (r,))
    return np.array(rows, dtype=np.float64).T.reshape(len(spec.outputs), -1)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_prefix_equals_full_no_lookahead(name: str, data: st.DataObject) -> None:
    cols = data.draw(series())
    params = data.draw(params_for(name))
    full = outputs(name, cols, params)
    cut = data.draw(st.integers(0, len(cols["close"])))
    prefix = outputs(name, {k: v[:cut] for k, v in cols.items()}, params)
    np.testing.assert_array_equal(prefix, full[:, :cut])


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_incremental_equals_batch_at_every_index(name: str, data: st.DataObject) -> None:
    cols = data.draw(series())
    params = data.draw(params_for(name))
    batch = outputs(name, cols, params)
    inc = run_incremental(name, cols, params)
    np.testing.assert_array_equal(np.isnan(inc), np.isnan(batch))
    np.testing.assert_allclose(inc, batch, rtol=1e-9, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_scale_invariance_tiny_and_huge(name: str, data: st.DataObject) -> None:
    """Scaling prices by a power of two scales every rounding too: price-like outputs
    scale exactly, oscillators do not change at all, from 1e-12 to 1e9 magnitudes."""
    cols = data.draw(series())
    params = data.draw(params_for(name))
    factor = data.draw(st.sampled_from([2.0**-40, 2.0**-17, 2.0**20, 2.0**40]))
    scaled = {k: (v if k == "volume" else v * factor) for k, v in cols.items()}
    base = outputs(name, cols, params)
    got = outputs(name, scaled, params)
    scale_free = {"rsi", "stoch", "adx", "roc", "obv"}
    expected = base if name in scale_free else base * factor
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_inputs_are_never_modified(name: str, data: st.DataObject) -> None:
    cols = data.draw(series(max_size=60))
    params = data.draw(params_for(name))
    before = {k: v.copy() for k, v in cols.items()}
    registry.compute(name, cols, **params)
    for k in cols:
        np.testing.assert_array_equal(cols[k], before[k])


@pytest.mark.parametrize("value", [1e-12, 0.1, 3.0, 40_000.0, 1e9])
def test_constant_series(value: float) -> None:
    n = 120
    flat = np.full(n, value)
    vol = np.full(n, 7.0)
    for f in (ind.sma, ind.ema, ind.wma):
        out = f(flat, 10)
        assert np.isnan(out[:9]).all()
        np.testing.assert_allclose(out[9:], value, rtol=1e-14)
    up, mid, lo = ind.bbands(flat, 20, 2.0)
    np.testing.assert_array_equal(up[19:], mid[19:])  # exactly zero deviation
    np.testing.assert_array_equal(lo[19:], mid[19:])
    np.testing.assert_array_equal(ind.rsi(flat, 14)[14:], 0.0)  # TA-Lib: no movement is 0
    np.testing.assert_array_equal(ind.roc(flat, 10)[10:], 0.0)
    np.testing.assert_array_equal(ind.true_range(flat, flat, flat)[1:], 0.0)
    np.testing.assert_array_equal(ind.atr(flat, flat, flat, 14)[14:], 0.0)
    np.testing.assert_array_equal(ind.adx(flat, flat, flat, 14)[27:], 0.0)
    k, d = ind.stoch(flat, flat, flat)
    assert np.isnan(k[:17]).all()
    np.testing.assert_array_equal(k[17:], 0.0)  # a flat window reads 0
    np.testing.assert_array_equal(d[17:], 0.0)
    np.testing.assert_array_equal(ind.obv(flat, vol), 7.0)
    m, s, h = ind.macd(flat)
    assert np.isnan(m[:33]).all() and not np.isnan(m[33:]).any()
    np.testing.assert_allclose(np.stack([m, s, h])[:, 33:], 0.0, atol=value * 1e-14)
    np.testing.assert_allclose(ind.vwap(flat, flat, flat, vol, 5)[4:], value, rtol=1e-14)


def test_leading_nan_shifts_the_warmup() -> None:
    x = np.r_[np.nan, np.nan, np.nan, np.arange(1.0, 11.0)]
    out = ind.sma(x, 3)
    assert np.isnan(out[:5]).all()
    np.testing.assert_allclose(out[5:], np.arange(2.0, 10.0))
    h = np.r_[np.arange(1.0, 8.0) + 1]
    lo = np.r_[np.nan, np.arange(2.0, 8.0) - 1]  # NaN in one input only
    c = np.arange(1.0, 8.0)
    tr = ind.true_range(h, lo, c)
    assert np.isnan(tr[:2]).all() and not np.isnan(tr[2:]).any()


def test_nan_inside_the_input_as_talib() -> None:
    x = np.linspace(100.0, 120.0, 200) + np.sin(np.arange(200.0))
    x[50] = np.nan
    assert np.isnan(ind.sma(x, 5)[50:]).all()  # running sums keep it
    assert np.isnan(ind.ema(x, 5)[50:]).all()
    wma = ind.wma(x, 5)
    # WMA recomputes its sums every 8 * period = 40 bars: back at bar 4 + 40 * 2 - 1 = 83
    assert np.isnan(wma[50:83]).all() and not np.isnan(wma[83:]).any()
    rsi = ind.rsi(x, 5)
    assert (rsi[50:] == 0.0).all()  # TA-Lib 0.8 reads the NaN average as no movement
    roc = ind.roc(x, 3)
    assert np.isnan(roc[[50, 53]]).all() and not np.isnan(np.delete(roc[3:], [47, 50])).any()
    h, lo = x + 1, x - 1
    adx = ind.adx(h, lo, x, 5)
    assert not np.isnan(adx[9:]).any()  # ADX skips the bars it cannot compute
    assert np.isnan(ind.atr(h, lo, x, 5)[50:]).all()


BAD_PARAMS = [
    ("sma", {"period": 0}),
    ("sma", {"period": 100_001}),
    ("ema", {"period": 2.5}),
    ("wma", {"period": True}),
    ("rsi", {"period": 1}),
    ("macd", {"fast": 30, "slow": 26}),
    ("macd", {"signal": 0}),
    ("atr", {"period": -3}),
    ("bbands", {"period": 1}),
    ("bbands", {"nbdev": -1.0}),
    ("bbands", {"nbdev": float("nan")}),
    ("stoch", {"fastk": 0}),
    ("adx", {"period": 1}),
    ("roc", {"period": "10"}),
    ("vwap", {"period": 0}),
]


@pytest.mark.parametrize(("name", "params"), BAD_PARAMS)
def test_invalid_parameters_raise_value_error(name: str, params: dict[str, Any]) -> None:
    cols = candles_from([0.1] * 40, 100.0, False)
    spec = registry.get(name)
    with pytest.raises(ValueError, match=r"must be|must not"):
        registry.compute(name, cols, **params)
    with pytest.raises(ValueError, match=r"must be|must not"):
        spec.make_incremental(**{**spec.resolve(), **params})
    full = {**{k: p.default for k, p in spec.params.items()}, **params}
    with pytest.raises(ValueError, match=r"must be|must not"):
        spec.func(*(cols[c] for c in spec.inputs), **full)


def test_bad_inputs_raise_value_error() -> None:
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="same length"):
        ind.true_range(x, x, x[:5])
    with pytest.raises(ValueError, match="1-D"):
        ind.sma(np.ones((3, 3)), 2)


def test_lists_and_integers_are_accepted_and_not_modified() -> None:
    x = [1, 2, 3, 4, 5]
    np.testing.assert_allclose(ind.sma(x, 2), [np.nan, 1.5, 2.5, 3.5, 4.5])
    assert x == [1, 2, 3, 4, 5]
