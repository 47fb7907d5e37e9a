"""Batch indicators: numpy float64 arrays in, arrays of the same length out.

Every function matches TA-Lib with its default settings (unstable period 0, default
compatibility): the same values (to rounding) and the same first valid index; the
warm-up is NaN. Conventions, pinned because peers differ:

- EMA is seeded with the simple mean of the first ``period`` values; period 1 copies.
- RSI and ATR use Wilder smoothing seeded with simple means; ATR's true range starts
  at the second bar, so ATR's first value is at index ``period``. RSI is 0 on a window
  with no movement at all (TA-Lib's convention). EMA and MACD use a fused
  multiply-add in the recursion, as TA-Lib 0.8 does, so they agree to the last bit.
- MACD's fast and slow EMA seeds both end on bar ``slow - 1``; the three outputs start
  together at ``slow + signal - 2``.
- Bollinger bands use the population standard deviation (divide by ``period``).
- Stochastic %K is 0 on a flat window (range within 1e-14 of the prices, TA-Lib 0.8).
- Bollinger bands' standard deviation is computed without cancellation (TA-Lib 0.8
  does so too; 0.4's E[x^2] - E[x]^2 loses every digit at BTC prices), and is exactly 0
  on a window of identical values.

NaN in the input behaves as in TA-Lib 0.8 (its Python wrapper and C code; the parity
tests pin each case):

- Leading bars where any input is NaN are skipped; the warm-up starts after them.
- A NaN after that enters the arithmetic. Running sums and recursive filters keep it
  for good: SMA, EMA, MACD, BBANDS, ATR, VWAP and STOCH (through a NaN close) are NaN
  from that bar on. WMA recomputes its sums every ``8 * period`` bars, so it recovers
  at the first recomputation after the NaN has left its window.
- RSI reads a NaN average as "no movement": 0.0 from that bar on.
- ADX skips a bar whose directional movement cannot be computed: it holds its value.
- TRANGE and ROC are NaN only on the bars that read the NaN. OBV ignores a NaN close
  (comparisons with NaN are false) and keeps a NaN volume for good.

Inputs are never modified. Parameters out of range raise ``ValueError``. An input
shorter than the warm-up gives all NaN.

The compiled kernels (numba) are imported on the first call, not at import time, so
importing this module costs nothing; see ``bench/indicators.py`` for start-up figures.
"""

from __future__ import annotations

import numbers
from types import ModuleType

import numpy as np

from engine.errors import TapedeckError
from engine.runtime import lazy_module

MAX_PERIOD = 100_000


class IndicatorError(TapedeckError, ValueError):
    """A bad parameter or input: a ValueError, printed on one line by the CLI."""


def _k() -> ModuleType:
    return lazy_module("engine.indicators._kernels")


def _array(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise IndicatorError(f"{name} must be a 1-D array, got {a.ndim} dimensions")
    return np.ascontiguousarray(a)


def _arrays(**columns: object) -> list[np.ndarray]:
    arrays = [_array(v, k) for k, v in columns.items()]
    lengths = {a.shape[0] for a in arrays}
    if len(lengths) > 1:
        detail = ", ".join(f"{k}={a.shape[0]}" for k, a in zip(columns, arrays, strict=True))
        raise IndicatorError(f"inputs must have the same length, got {detail}")
    return arrays


def _out(n: int) -> np.ndarray:
    return np.empty(n, dtype=np.float64)


def check_int(name: str, value: object, minimum: int, maximum: int = MAX_PERIOD) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise IndicatorError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if not minimum <= v <= maximum:
        raise IndicatorError(f"{name} must be between {minimum} and {maximum}, got {v}")
    return v


def check_float(name: str, value: object, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise IndicatorError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not minimum <= v <= maximum:  # also rejects NaN
        raise IndicatorError(f"{name} must be between {minimum} and {maximum}, got {v}")
    return v


def _one_period(kernel: str, x: object, name: str, period: object, minimum: int) -> np.ndarray:
    """The shape of every one-input, one-period indicator."""
    p = check_int("period", period, minimum)
    a = _array(x, name)
    out = _out(a.shape[0])
    getattr(_k(), kernel)(a, p, out)
    return out


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average (TA-Lib SMA); first value at index ``period - 1``."""
    return _one_period("sma", x, "x", period, 1)


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, k = 2 / (period + 1), seeded by the SMA (TA-Lib EMA)."""
    return _one_period("ema", x, "x", period, 1)


def wma(x: np.ndarray, period: int) -> np.ndarray:
    """Linearly weighted moving average, newest weight ``period`` (TA-Lib WMA)."""
    return _one_period("wma", x, "x", period, 1)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's relative strength index (TA-Lib RSI); first value at index ``period``."""
    return _one_period("rsi", close, "close", period, 2)


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line, histogram (TA-Lib MACD); all start at ``slow + signal - 2``."""
    f = check_int("fast", fast, 2)
    s = check_int("slow", slow, 2)
    g = check_int("signal", signal, 1)
    if f > s:
        raise IndicatorError(f"fast must not exceed slow, got fast={f} slow={s}")
    a = _array(close, "close")
    n = a.shape[0]
    m, sig, hist = _out(n), _out(n), _out(n)
    _k().macd(a, f, s, g, m, sig, hist)
    return m, sig, hist


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range (TA-Lib TRANGE); first value at index 1 (it needs the previous close)."""
    h, lo, c = _arrays(high=high, low=low, close=close)
    out = _out(h.shape[0])
    _k().true_range(h, lo, c, out)
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's average true range (TA-Lib ATR); first value at index ``period``."""
    p = check_int("period", period, 1)
    h, lo, c = _arrays(high=high, low=low, close=close)
    out = _out(h.shape[0])
    _k().atr(h, lo, c, p, out)
    return out


def bbands(
    close: np.ndarray, period: int = 20, nbdev: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands (upper, middle, lower): SMA +- nbdev population std devs."""
    p = check_int("period", period, 2)
    d = check_float("nbdev", nbdev, 0.0, 1e6)
    a = _array(close, "close")
    n = a.shape[0]
    upper, middle, lower = _out(n), _out(n), _out(n)
    _k().bbands(a, p, d, upper, middle, lower)
    return upper, middle, lower


def stoch(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk: int = 14,
    slowk: int = 3,
    slowd: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic (%K smoothed by an SMA of ``slowk``, %D = SMA ``slowd`` of %K)."""
    fk = check_int("fastk", fastk, 1)
    sk = check_int("slowk", slowk, 1)
    sd = check_int("slowd", slowd, 1)
    h, lo, c = _arrays(high=high, low=low, close=close)
    n = h.shape[0]
    k, d = _out(n), _out(n)
    _k().stoch(h, lo, c, fk, sk, sd, k, d, _out(n))
    return k, d


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's average directional index (TA-Lib ADX); first value at ``2 * period - 1``."""
    p = check_int("period", period, 2)
    h, lo, c = _arrays(high=high, low=low, close=close)
    out = _out(h.shape[0])
    _k().adx(h, lo, c, p, out)
    return out


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume (TA-Lib OBV): starts at the first bar's volume."""
    c, v = _arrays(close=close, volume=volume)
    out = _out(c.shape[0])
    _k().obv(c, v, out)
    return out


def roc(x: np.ndarray, period: int = 10) -> np.ndarray:
    """Rate of change in percent, (x / x[-period] - 1) * 100; 0 where x[-period] is 0."""
    return _one_period("roc", x, "x", period, 1)


def vwap(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, period: int
) -> np.ndarray:
    """Rolling volume-weighted average price over ``period`` bars (TA-Lib has none).

    Price is the typical price (high + low + close) / 3. The value at bar i is
    sum(typical * volume) / sum(volume) over bars i - period + 1 .. i; first value at
    index ``period - 1``; NaN where the window holds no volume at all.
    """
    p = check_int("period", period, 1)
    h, lo, c, v = _arrays(high=high, low=low, close=close, volume=volume)
    out = _out(h.shape[0])
    _k().vwap(h, lo, c, v, p, out)
    return out


def warm_up() -> float:
    """Load (or compile, the first time after install) every kernel; returns seconds.

    The kernels are cached on disk, so this costs about 0.3 s (mostly importing numba)
    once the cache exists and about 5 s on the very first run. An application can call
    it in a background thread at start-up so the first real computation is instant.
    """
    import time

    t0 = time.perf_counter()
    x = np.linspace(1.0, 2.0, 64)
    h, lo, v = x + 0.5, x - 0.5, np.ones_like(x)
    sma(x, 3)
    ema(x, 3)
    wma(x, 3)
    rsi(x, 3)
    macd(x, 3, 5, 2)
    true_range(h, lo, x)
    atr(h, lo, x, 3)
    bbands(x, 3, 2.0)
    stoch(h, lo, x, 3, 2, 2)
    adx(h, lo, x, 3)
    obv(x, v)
    roc(x, 3)
    vwap(h, lo, x, v, 3)
    return time.perf_counter() - t0
