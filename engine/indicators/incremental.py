"""Incremental indicators: one candle in, the current value out, in O(1) (amortized:
WMA and BBands recompute their window sums every 8 * period and period bars, Stoch's
monotonic deques pop each bar once).

Each class is built with the batch function's parameters; ``update`` takes one
candle's values in the batch function's input order and returns the value the batch
function gives at that index (NaN during the warm-up; a tuple for several outputs).
The arithmetic is the batch kernels' own, operation for operation, so a live stream
and a backtest agree, including how a NaN in the input spreads: leading updates with a
NaN input are skipped (the warm-up starts after them), later NaNs enter the arithmetic.
Pure Python with ``__slots__``: no compile step, a few hundred thousand updates a second.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys
from collections import deque
from collections.abc import Callable
from fractions import Fraction

from engine.indicators.batch import IndicatorError, check_float, check_int

NAN = math.nan
_isnan = math.isnan


def _fma_exact(a: float, b: float, c: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _load_fma() -> Callable[[float, float, float], float]:
    """A correctly rounded fused multiply-add, as the batch kernels use (TA-Lib 0.8's EMA).

    math.fma exists from Python 3.13; before that the C library's fma through ctypes;
    an exact rational fallback where neither is available.
    """
    fma = getattr(math, "fma", None)
    if fma is not None:
        return fma
    for name in (ctypes.util.find_library("m"), ctypes.util.find_library("c"), "ucrtbase"):
        if not name and sys.platform != "win32":
            continue
        try:
            f = ctypes.CDLL(name).fma
        except (OSError, AttributeError, TypeError):
            continue
        f.restype = ctypes.c_double
        f.argtypes = (ctypes.c_double, ctypes.c_double, ctypes.c_double)
        if f(0.1, 10.0, -1.0) == _fma_exact(0.1, 10.0, -1.0):
            return f
    return _fma_exact


_fma = _load_fma()


class _RunSMA:
    """TA-Lib's running-total SMA from the first value it is given (NaN or not).

    Period 1 copies its input when ``copy_one`` (TA_MA, inside STOCH); TA_SMA runs the
    total even then, so a NaN stays in it."""

    __slots__ = ("_buf", "_copy", "_count", "_total", "period")

    def __init__(self, period: int, copy_one: bool = True) -> None:
        self.period = period
        self._copy = copy_one and period == 1
        self._buf = [0.0] * period
        self._count = 0
        self._total = 0.0

    def update(self, x: float) -> float:
        if self._copy:
            return x
        p = self.period
        c = self._count
        self._count = c + 1
        buf = self._buf
        buf[c % p] = x
        total = self._total + x
        if c < p - 1:
            self._total = total
            return NAN
        self._total = total - buf[(c + 1) % p]
        return total / p


class SMA:
    """Simple moving average, as :func:`engine.indicators.sma`."""

    __slots__ = ("_run", "_started", "period")

    def __init__(self, period: int) -> None:
        self.period = check_int("period", period, 1)
        self._run = _RunSMA(self.period, copy_one=False)
        self._started = False

    def update(self, x: float) -> float:
        if not self._started:
            if _isnan(x):
                return NAN
            self._started = True
        return self._run.update(x)


class EMA:
    """Exponential moving average seeded by the SMA, as :func:`engine.indicators.ema`."""

    __slots__ = ("_count", "_k", "_prev", "_total", "period")

    def __init__(self, period: int) -> None:
        self.period = check_int("period", period, 1)
        self._k = 2.0 / (self.period + 1)
        self._count = 0
        self._total = 0.0
        self._prev = NAN

    def update(self, x: float) -> float:
        c = self._count
        if c == 0 and _isnan(x):
            return NAN
        p = self.period
        if p == 1:  # copies its input, as TA-Lib's EMA(1) does
            self._count = 1
            return x
        if c >= p:
            self._prev = _fma(x - self._prev, self._k, self._prev)
            return self._prev
        self._count = c + 1
        self._total += x
        if c + 1 < p:
            return NAN
        self._prev = self._total / p
        return self._prev


class _SeedEMA:
    """EMA with TA_INT_EMA's arithmetic for every period, including 1 (MACD's lines)."""

    __slots__ = ("_count", "_k", "_prev", "_total", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._k = 2.0 / (period + 1)
        self._count = 0
        self._total = 0.0
        self._prev = NAN

    def update(self, x: float) -> float:
        c = self._count
        if c >= self.period:
            self._prev = _fma(x - self._prev, self._k, self._prev)
            return self._prev
        self._count = c + 1
        self._total += x
        if c + 1 < self.period:
            return NAN
        self._prev = self._total / self.period
        return self._prev


class WMA:
    """Linearly weighted moving average, as :func:`engine.indicators.wma`."""

    __slots__ = ("_buf", "_count", "_divider", "_sub", "_sum", "_trailing", "period")

    def __init__(self, period: int) -> None:
        self.period = check_int("period", period, 1)
        self._divider = (self.period * (self.period + 1)) >> 1
        self._buf = [0.0] * self.period
        self._count = 0
        self._sub = 0.0
        self._sum = 0.0
        self._trailing = 0.0

    def update(self, x: float) -> float:
        c = self._count
        if c == 0 and _isnan(x):
            return NAN
        p = self.period
        if p == 1:
            self._count = 1
            return x
        self._count = c + 1
        buf = self._buf
        buf[c % p] = x
        if c < p - 1:
            self._sub += x
            self._sum += x * (c + 1)
            return NAN
        if (c - p + 2) % (8 * p) == 0:
            # the batch kernel's periodic recomputation from the window (TA-Lib 0.8)
            sub = 0.0
            s = 0.0
            w = 1
            for j in range(c - p + 1, c + 1):
                v = buf[j % p]
                sub += v
                s += v * w
                w += 1
        else:
            sub = self._sub + x
            sub -= self._trailing
            s = self._sum + x * p
        self._trailing = buf[(c + 1) % p]  # the oldest bar of this window
        self._sum = s - sub
        self._sub = sub
        return s / self._divider


class RSI:
    """Wilder's RSI, as :func:`engine.indicators.rsi`."""

    __slots__ = ("_a", "_count", "_gain", "_loss", "_prev", "_r", "period")

    def __init__(self, period: int = 14) -> None:
        self.period = check_int("period", period, 2)
        self._a = (self.period - 1) / self.period
        self._r = 1.0 / self.period
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0
        self._prev = NAN

    @staticmethod
    def _value(gain: float, loss: float) -> float:
        total = gain + loss
        if total > 0.0:
            return 100.0 * (gain / total)
        return 0.0

    def update(self, x: float) -> float:
        c = self._count
        if c == 0:
            if _isnan(x):
                return NAN
            self._prev = x
            self._count = 1
            return NAN
        p = self.period
        d = x - self._prev
        self._prev = x
        if c > p:
            a = self._a
            r = self._r
            if d < 0:
                loss = _fma(self._loss, a, -d * r)
                gain = _fma(self._gain, a, 0.0)
            else:
                loss = _fma(self._loss, a, 0.0)
                gain = _fma(self._gain, a, d * r)
            self._loss = loss
            self._gain = gain
            return self._value(gain, loss)
        if d < 0:
            self._loss -= d
        else:
            self._gain += d
        self._count = c + 1
        if c < p:
            return NAN
        self._loss /= p
        self._gain /= p
        return self._value(self._gain, self._loss)


class MACD:
    """MACD (line, signal, histogram), as :func:`engine.indicators.macd`."""

    __slots__ = ("_count", "_fast", "_first", "_sig", "_slow", "fast", "signal", "slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast = check_int("fast", fast, 2)
        self.slow = check_int("slow", slow, 2)
        self.signal = check_int("signal", signal, 1)
        if self.fast > self.slow:
            raise IndicatorError(f"fast must not exceed slow, got fast={fast} slow={slow}")
        self._slow = _SeedEMA(self.slow)
        self._fast = _SeedEMA(self.fast)
        self._sig = _SeedEMA(self.signal)
        self._first: list[float] = []  # the first `slow` values: both seeds come from them
        self._count = 0

    def update(self, x: float) -> tuple[float, float, float]:
        c = self._count
        if c == 0 and _isnan(x):
            return (NAN, NAN, NAN)
        self._count = c + 1
        slow = self._slow.update(x)
        if c < self.slow - 1:
            self._first.append(x)
            return (NAN, NAN, NAN)
        if c == self.slow - 1:
            # the fast EMA's seed is the mean of the `fast` values ending on this bar
            for v in self._first[len(self._first) - self.fast + 1 :]:
                self._fast.update(v)
            self._first = []
        line = self._fast.update(x) - slow
        sig = self._sig.update(line)
        if _isnan(sig) and self._sig._count < self.signal:
            return (NAN, NAN, NAN)
        return (line, sig, line - sig)


def _true_range(high: float, low: float, prev_close: float) -> float:
    greatest = high - low
    v = abs(prev_close - high)
    if v > greatest:
        greatest = v
    v = abs(prev_close - low)
    if v > greatest:
        greatest = v
    return greatest


class TrueRange:
    """True range, as :func:`engine.indicators.true_range`."""

    __slots__ = ("_prev_close", "_started")

    def __init__(self) -> None:
        self._started = False
        self._prev_close = NAN

    def update(self, high: float, low: float, close: float) -> float:
        if not self._started:
            if high != high or low != low or close != close:
                return NAN
            self._started = True
            self._prev_close = close
            return NAN
        out = _true_range(high, low, self._prev_close)
        self._prev_close = close
        return out


class ATR:
    """Wilder's average true range, as :func:`engine.indicators.atr`."""

    __slots__ = ("_a", "_count", "_prev", "_r", "_tr", "period")

    def __init__(self, period: int = 14) -> None:
        self.period = check_int("period", period, 1)
        self._a = (self.period - 1) / self.period
        self._r = 1.0 / self.period
        self._tr = TrueRange()
        self._count = 0
        self._prev = 0.0

    def update(self, high: float, low: float, close: float) -> float:
        tr = self._tr.update(high, low, close)
        if not self._tr._started:
            return NAN
        p = self.period
        c = self._count
        self._count = c + 1
        if c == 0:
            return NAN
        if c <= p:
            self._prev += tr
            if c < p:
                return NAN
            self._prev /= p
            return self._prev
        self._prev = prev = _fma(self._prev, self._a, tr * self._r)
        return prev


class BBands:
    """Bollinger bands (upper, middle, lower), as :func:`engine.indicators.bbands`."""

    __slots__ = (
        "_anchor",
        "_buf",
        "_count",
        "_last",
        "_run",
        "_s1",
        "_s2",
        "_total",
        "nbdev",
        "period",
    )

    def __init__(self, period: int = 20, nbdev: float = 2.0) -> None:
        self.period = check_int("period", period, 2)
        self.nbdev = check_float("nbdev", nbdev, 0.0, 1e6)
        self._buf = [0.0] * self.period
        self._count = 0
        self._total = 0.0
        self._anchor = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._run = 0
        self._last = NAN

    def update(self, x: float) -> tuple[float, float, float]:
        c = self._count
        if c == 0 and _isnan(x):
            return (NAN, NAN, NAN)
        p = self.period
        buf = self._buf
        slot = c % p
        leaving = buf[slot]  # the value p bars back (once c >= p)
        buf[slot] = x
        self._count = c + 1
        self._run = self._run + 1 if (c > 0 and x == self._last) else 1
        self._last = x
        total = self._total + x
        if c < p - 1:
            self._total = total
            return (NAN, NAN, NAN)
        self._total = total - buf[(c + 1) % p]
        middle = total / p
        k = c - (p - 1)
        if k % p == 0:
            anchor = x
            s1 = 0.0
            s2 = 0.0
            for j in range(c - p + 1, c + 1):
                d = buf[j % p] - anchor
                s1 += d
                s2 += d * d
            self._anchor = anchor
        else:
            anchor = self._anchor
            d = x - anchor
            s1 = self._s1 + d
            s2 = self._s2 + d * d
            d = leaving - anchor
            s1 -= d
            s2 -= d * d
        self._s1 = s1
        self._s2 = s2
        if self._run >= p:
            sd = 0.0
        else:
            mean1 = s1 / p
            var = s2 / p - mean1 * mean1
            sd = math.sqrt(var) if var > 0.0 else 0.0
        t = sd * self.nbdev
        return (middle + t, middle, middle - t)


class _Extreme:
    """TA-Lib's rolling lowest (or highest) with its exact rescan rule, in O(1) amortized.

    TA-Lib keeps (index, value) of the extreme; when that index leaves the window it
    rescans the window from its oldest bar with a strict comparison, otherwise a new bar
    at least as extreme takes over. A monotonic deque answers the rescan: its front is
    the earliest extreme among non-NaN values, and a NaN at the oldest bar makes the
    rescan return NaN, as TA-Lib's scan does.
    """

    __slots__ = ("_dq", "_ring", "idx", "lowest", "period", "value")

    def __init__(self, period: int, lowest: bool) -> None:
        self.period = period
        self.lowest = lowest
        self._dq: deque[tuple[int, float]] = deque()
        self._ring = [0.0] * period
        self.idx = -1
        self.value = 0.0

    def push(self, today: int, v: float) -> None:
        self._ring[today % self.period] = v
        if v == v:
            dq = self._dq
            if self.lowest:
                while dq and dq[-1][1] > v:
                    dq.pop()
            else:
                while dq and dq[-1][1] < v:
                    dq.pop()
            dq.append((today, v))

    def step(self, today: int, trailing: int) -> float:
        v = self._ring[today % self.period]
        dq = self._dq
        while dq and dq[0][0] < trailing:
            dq.popleft()
        if self.idx < trailing:
            first = self._ring[trailing % self.period]
            if first != first:
                self.idx, self.value = trailing, first
            else:
                self.idx, self.value = dq[0]
        elif (v <= self.value) if self.lowest else (v >= self.value):
            self.idx, self.value = today, v
        return self.value


class Stoch:
    """Slow stochastic (k, d), as :func:`engine.indicators.stoch`."""

    __slots__ = ("_count", "_d", "_hi", "_k", "_lo", "fastk", "slowd", "slowk")

    def __init__(self, fastk: int = 14, slowk: int = 3, slowd: int = 3) -> None:
        self.fastk = check_int("fastk", fastk, 1)
        self.slowk = check_int("slowk", slowk, 1)
        self.slowd = check_int("slowd", slowd, 1)
        self._lo = _Extreme(self.fastk, True)
        self._hi = _Extreme(self.fastk, False)
        self._k = _RunSMA(self.slowk)
        self._d = _RunSMA(self.slowd)
        self._count = 0

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        t = self._count
        if t == 0 and (high != high or low != low or close != close):
            return (NAN, NAN)
        self._count = t + 1
        self._lo.push(t, low)
        self._hi.push(t, high)
        fk = self.fastk
        if t < fk - 1:
            return (NAN, NAN)
        trailing = t - fk + 1
        lowest = self._lo.step(t, trailing)
        highest = self._hi.step(t, trailing)
        rng = highest - lowest
        if not (abs(rng) <= 1e-14 * (abs(highest) + abs(lowest))):
            raw = (close - lowest) / rng * 100.0
        else:
            raw = 0.0
        k = self._k.update(raw)
        if t < fk + self.slowk - 2:
            return (NAN, NAN)
        d = self._d.update(k)
        if t < fk + self.slowk + self.slowd - 3:
            return (NAN, NAN)
        return (k, d)


class ADX:
    """Wilder's average directional index, as :func:`engine.indicators.adx`."""

    __slots__ = (
        "_adx",
        "_count",
        "_mdm",
        "_pc",
        "_pdm",
        "_ph",
        "_pl",
        "_sum_dx",
        "_tr",
        "period",
    )

    def __init__(self, period: int = 14) -> None:
        self.period = check_int("period", period, 2)
        self._count = 0
        self._mdm = 0.0
        self._pdm = 0.0
        self._tr = 0.0
        self._sum_dx = 0.0
        self._adx = NAN
        self._ph = self._pl = self._pc = NAN

    def update(self, high: float, low: float, close: float) -> float:
        c = self._count
        if c == 0:
            if high != high or low != low or close != close:
                return NAN
            self._ph, self._pl, self._pc = high, low, close
            self._count = 1
            return NAN
        p = self.period
        self._count = c + 1
        diff_p = high - self._ph
        self._ph = high
        diff_m = self._pl - low
        self._pl = low
        if c < p:
            if diff_m > 0 and diff_p < diff_m:
                self._mdm += diff_m
            elif diff_p > 0 and diff_p > diff_m:
                self._pdm += diff_p
            self._tr += _true_range(high, low, self._pc)
            self._pc = close
            return NAN
        mdm = self._mdm
        pdm = self._pdm
        mdm -= mdm / p
        pdm -= pdm / p
        if diff_m > 0 and diff_p < diff_m:
            mdm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            pdm += diff_p
        tr = self._tr
        tr = tr - (tr / p) + _true_range(high, low, self._pc)
        self._pc = close
        self._mdm, self._pdm, self._tr = mdm, pdm, tr
        dx = NAN
        has_dx = False  # TA-Lib skips a bar with no range or no direction (or NaN)
        if tr > 0.0:
            minus_di = 100.0 * (mdm / tr)
            plus_di = 100.0 * (pdm / tr)
            t = minus_di + plus_di
            if t > 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / t)
                has_dx = True
        if c < 2 * p - 1:
            if has_dx:
                self._sum_dx += dx
            return NAN
        if c == 2 * p - 1:
            if has_dx:
                self._sum_dx += dx
            self._adx = self._sum_dx / p
            return self._adx
        if has_dx:
            self._adx = ((self._adx * (p - 1)) + dx) / p
        return self._adx


class OBV:
    """On-balance volume, as :func:`engine.indicators.obv`."""

    __slots__ = ("_obv", "_prev", "_started")

    def __init__(self) -> None:
        self._started = False
        self._obv = NAN
        self._prev = NAN

    def update(self, close: float, volume: float) -> float:
        if not self._started:
            if close != close or volume != volume:
                return NAN
            self._started = True
            self._obv = volume
            self._prev = close
            return volume
        if close > self._prev:
            self._obv += volume
        elif close < self._prev:
            self._obv -= volume
        self._prev = close
        return self._obv


class ROC:
    """Rate of change in percent, as :func:`engine.indicators.roc`."""

    __slots__ = ("_buf", "_count", "period")

    def __init__(self, period: int = 10) -> None:
        self.period = check_int("period", period, 1)
        self._buf = [0.0] * self.period
        self._count = 0

    def update(self, x: float) -> float:
        c = self._count
        if c == 0 and _isnan(x):
            return NAN
        self._count = c + 1
        p = self.period
        slot = c % p
        t = self._buf[slot]  # the value p bars back
        self._buf[slot] = x
        if c < p:
            return NAN
        if t != 0.0:
            return ((x / t) - 1.0) * 100.0
        return 0.0


class VWAP:
    """Rolling volume-weighted average price, as :func:`engine.indicators.vwap`."""

    __slots__ = ("_count", "_nonzero", "_pv", "_spv", "_sv", "_v", "period")

    def __init__(self, period: int = 20) -> None:
        self.period = check_int("period", period, 1)
        self._pv = [0.0] * self.period
        self._v = [0.0] * self.period
        self._count = 0
        self._spv = 0.0
        self._sv = 0.0
        self._nonzero = 0

    def update(self, high: float, low: float, close: float, volume: float) -> float:
        c = self._count
        if c == 0 and (high != high or low != low or close != close or volume != volume):
            return NAN
        self._count = c + 1
        p = self.period
        slot = c % p
        pv = (high + low + close) / 3.0 * volume
        self._pv[slot] = pv
        self._v[slot] = volume
        spv = self._spv + pv
        sv = self._sv + volume
        if volume != 0.0:
            self._nonzero += 1
        if c < p - 1:
            self._spv, self._sv = spv, sv
            return NAN
        if self._nonzero > 0:
            out = spv / sv
        else:
            out = NAN
            spv = 0.0
            sv = 0.0
        old = (c + 1) % p  # the oldest bar of this window
        ov = self._v[old]
        self._spv = spv - self._pv[old]
        self._sv = sv - ov
        if ov != 0.0:
            self._nonzero -= 1
        return out


__all__ = [
    "ADX",
    "ATR",
    "EMA",
    "MACD",
    "OBV",
    "ROC",
    "RSI",
    "SMA",
    "VWAP",
    "WMA",
    "BBands",
    "Stoch",
    "TrueRange",
]
