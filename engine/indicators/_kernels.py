"""Compiled loops for the batch indicators (numba, cached on disk).

Each kernel follows TA-Lib 0.8's algorithm (same operations in the same order, same
comparisons and zero guards), so the first valid index is identical, a NaN inside the
input spreads as it does in TA-Lib, and SMA, EMA, WMA, MACD, TRANGE, ADX, STOCH, OBV and
ROC agree with TA-Lib 0.8.1 to the last bit. RSI's and ATR's Wilder smoothing and the
Bollinger deviation agree to about 1e-15 relative: TA-Lib 0.8 changed their rounding
in ways its public sources do not show, and bit-matching them was not worth slower code.
Like TA-Lib's Python wrapper, each kernel first skips the leading bars where any
input is NaN (``begin``), then runs the algorithm on the rest.

Layout, for speed: the public kernels write into output arrays allocated by the caller
with numpy (large numpy allocations get transparent huge pages; many fresh 8 MB
allocations inside numba page-fault 4 KB at a time), and run the algorithm (the
``_*_core`` functions) on views that start at ``begin``, so every loop starts at a
constant and LLVM can prove its indices non-negative (a loop from a run-time start
reading ``x[i - 1]`` was ten times slower).

This module imports numba, which costs a few hundred milliseconds: it is imported
lazily by :mod:`engine.indicators.batch` on the first call, never at start-up.
"""

from __future__ import annotations

import math

import llvmlite.ir as llvm_ir
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

NAN = np.nan
# TA-Lib's relative dead-zone for "is this difference zero?" (TA_IS_ZERO_SCALED).
EPS = 1e-14


@intrinsic
def fma(typingctx, a, b, c):
    """Fused multiply-add a * b + c with one rounding (TA-Lib 0.8 uses it in places)."""
    sig = types.float64(a, b, c)

    def codegen(context, builder, signature, args):
        d = llvm_ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], llvm_ir.FunctionType(d, [d, d, d]))
        vals = [
            context.cast(builder, v, t, types.float64)
            for v, t in zip(args, signature.args, strict=True)
        ]
        return builder.call(fn, vals)

    return sig, codegen


@njit(cache=True)
def first_valid1(x):
    n = x.shape[0]
    for i in range(n):
        if not math.isnan(x[i]):
            return i
    return n


@njit(cache=True)
def first_valid2(a, b):
    n = a.shape[0]
    for i in range(n):
        if not (math.isnan(a[i]) or math.isnan(b[i])):
            return i
    return n


@njit(cache=True)
def first_valid3(a, b, c):
    n = a.shape[0]
    for i in range(n):
        if not (math.isnan(a[i]) or math.isnan(b[i]) or math.isnan(c[i])):
            return i
    return n


@njit(cache=True)
def first_valid4(a, b, c, d):
    n = a.shape[0]
    for i in range(n):
        if not (math.isnan(a[i]) or math.isnan(b[i]) or math.isnan(c[i]) or math.isnan(d[i])):
            return i
    return n


@njit(cache=True)
def _fill_nan(out, stop):
    for i in range(min(stop, out.shape[0])):
        out[i] = NAN


@njit(cache=True)
def sma_core(x, period, out, copy_one):
    """TA_INT_SMA's running total. Period 1 copies when ``copy_one`` (TA_MA, used inside
    STOCH); TA_SMA itself runs the total even then, so a NaN stays in it for good."""
    n = x.shape[0]
    start = period - 1
    _fill_nan(out, start)
    if start >= n:
        return
    if period == 1 and copy_one:
        for i in range(n):
            out[i] = x[i]
        return
    total = 0.0
    for i in range(start):
        total += x[i]
    for i in range(start, n):
        total += x[i]
        tmp = total
        total -= x[i - start]
        out[i] = tmp / period


@njit(cache=True)
def sma(x, period, out):
    b = first_valid1(x)
    _fill_nan(out, b)
    sma_core(x[b:], period, out[b:], False)


@njit(cache=True)
def ema_core(x, period, k, seed_end, out):
    """TA_INT_EMA: seeded by the simple mean of the ``period`` values ending at
    ``seed_end`` (the first output), then fma(x - prev, k, prev) as TA-Lib 0.8 does."""
    n = x.shape[0]
    _fill_nan(out, seed_end)
    if seed_end >= n:
        return
    total = 0.0
    for i in range(seed_end - period + 1, seed_end + 1):
        total += x[i]
    prev = total / period
    out[seed_end] = prev
    for i in range(seed_end + 1, n):
        prev = fma(x[i] - prev, k, prev)
        out[i] = prev


@njit(cache=True)
def ema(x, period, out):
    b = first_valid1(x)
    _fill_nan(out, b)
    if period == 1:
        sma_core(x[b:], 1, out[b:], True)
    else:
        ema_core(x[b:], period, 2.0 / (period + 1), period - 1, out[b:])


@njit(cache=True)
def wma_core(x, period, out):
    n = x.shape[0]
    start = period - 1
    _fill_nan(out, start)
    if start >= n:
        return
    if period == 1:
        for i in range(n):
            out[i] = x[i]
        return
    divider = (period * (period + 1)) >> 1
    period_sub = 0.0
    period_sum = 0.0
    for i in range(start):
        tmp = x[i]
        period_sub += tmp
        period_sum += tmp * (i + 1)
    trailing_value = 0.0
    countdown = 8 * period  # bars until the next recomputation
    for idx in range(start, n):
        trailing = idx - start
        countdown -= 1
        if countdown == 0:
            countdown = 8 * period
            # TA-Lib 0.8 recomputes both sums from the window every 8 * period bars,
            # so rounding drift (and a NaN that has left the window) does not persist
            period_sub = 0.0
            period_sum = 0.0
            w = 1
            for j in range(trailing, idx + 1):
                tmp = x[j]
                period_sub += tmp
                period_sum += tmp * w
                w += 1
        else:
            tmp = x[idx]
            period_sub += tmp
            period_sub -= trailing_value
            period_sum += tmp * period
        trailing_value = x[trailing]
        out[idx] = period_sum / divider
        period_sum -= period_sub


@njit(cache=True)
def wma(x, period, out):
    b = first_valid1(x)
    _fill_nan(out, b)
    wma_core(x[b:], period, out[b:])


@njit(cache=True)
def _rsi_value(gain, loss):
    # TA-Lib 0.8: no movement at all (or a NaN that has entered the averages) reads 0
    total = gain + loss
    return 100.0 * (gain / total) if total > 0.0 else 0.0


@njit(cache=True)
def rsi_core(x, period, out):
    n = x.shape[0]
    start = period
    _fill_nan(out, start)
    if start >= n:
        return
    prev_value = x[0]
    prev_gain = 0.0
    prev_loss = 0.0
    for i in range(1, period + 1):
        v = x[i]
        d = v - prev_value
        prev_value = v
        if d < 0:
            prev_loss -= d
        else:
            prev_gain += d
    prev_loss /= period
    prev_gain /= period
    out[start] = _rsi_value(prev_gain, prev_loss)
    # Wilder smoothing as avg * (p - 1) / p + change / p, one fused multiply-add per
    # step: TA-Lib 0.8 is this fast and agrees to ~1e-15 (its exact rounding is unknown)
    a = (period - 1) / period
    r = 1.0 / period
    for i in range(start + 1, n):
        v = x[i]
        d = v - prev_value
        prev_value = v
        neg = d < 0
        prev_loss = fma(prev_loss, a, (-d if neg else 0.0) * r)
        prev_gain = fma(prev_gain, a, (0.0 if neg else d) * r)
        out[i] = _rsi_value(prev_gain, prev_loss)


@njit(cache=True)
def rsi(x, period, out):
    b = first_valid1(x)
    _fill_nan(out, b)
    rsi_core(x[b:], period, out[b:])


@njit(cache=True)
def macd_core(x, fast, slow, signal, m, s, h):
    """One pass: both EMAs (seeds ending on bar ``slow - 1``), the line, and the signal
    EMA of the line, with TA_INT_EMA's arithmetic for each (same bits as three passes)."""
    n = x.shape[0]
    first_line = slow - 1
    start = first_line + signal - 1
    _fill_nan(m, start)
    _fill_nan(s, start)
    _fill_nan(h, start)
    if start >= n:
        return
    total = 0.0
    for i in range(slow):
        total += x[i]
    slow_e = total / slow
    total = 0.0
    for i in range(slow - fast, slow):
        total += x[i]
    fast_e = total / fast
    ks = 2.0 / (slow + 1)
    kf = 2.0 / (fast + 1)
    kg = 2.0 / (signal + 1)
    line = fast_e - slow_e
    total = 0.0 + line  # the signal EMA's seed: mean of its first `signal` lines
    for i in range(first_line + 1, start + 1):
        v = x[i]
        slow_e = fma(v - slow_e, ks, slow_e)
        fast_e = fma(v - fast_e, kf, fast_e)
        line = fast_e - slow_e
        total += line
    sig = total / signal
    m[start] = line
    s[start] = sig
    h[start] = line - sig
    for i in range(start + 1, n):
        v = x[i]
        slow_e = fma(v - slow_e, ks, slow_e)
        fast_e = fma(v - fast_e, kf, fast_e)
        line = fast_e - slow_e
        sig = fma(line - sig, kg, sig)
        m[i] = line
        s[i] = sig
        h[i] = line - sig


@njit(cache=True)
def macd(x, fast, slow, signal, m, s, h):
    b = first_valid1(x)
    _fill_nan(m, b)
    _fill_nan(s, b)
    _fill_nan(h, b)
    macd_core(x[b:], fast, slow, signal, m[b:], s[b:], h[b:])


@njit(cache=True)
def _true_range(high, low, prev_close):
    # selects, not branches: the same NaN semantics as TA-Lib's ifs, without mispredicts
    greatest = high - low
    v = abs(prev_close - high)
    greatest = v if v > greatest else greatest
    v = abs(prev_close - low)
    return v if v > greatest else greatest


@njit(cache=True)
def true_range_core(high, low, close, out):
    n = high.shape[0]
    _fill_nan(out, 1)
    for i in range(1, n):
        out[i] = _true_range(high[i], low[i], close[i - 1])


@njit(cache=True)
def true_range(high, low, close, out):
    b = first_valid3(high, low, close)
    _fill_nan(out, b)
    true_range_core(high[b:], low[b:], close[b:], out[b:])


@njit(cache=True)
def atr_core(high, low, close, period, out):
    n = high.shape[0]
    start = period
    _fill_nan(out, start)
    if start >= n:
        return
    total = 0.0
    for i in range(1, start + 1):
        total += _true_range(high[i], low[i], close[i - 1])
    prev = total / period
    out[start] = prev
    # Wilder smoothing with one fused multiply-add per step (see rsi)
    a = (period - 1) / period
    r = 1.0 / period
    for i in range(start + 1, n):
        prev = fma(prev, a, _true_range(high[i], low[i], close[i - 1]) * r)
        out[i] = prev


@njit(cache=True)
def atr(high, low, close, period, out):
    b = first_valid3(high, low, close)
    _fill_nan(out, b)
    atr_core(high[b:], low[b:], close[b:], period, out[b:])


@njit(cache=True)
def bbands_core(x, period, nbdev, upper, middle, lower):
    n = x.shape[0]
    start = period - 1
    sma_core(x, period, middle, False)
    _fill_nan(upper, start)
    _fill_nan(lower, start)
    if start >= n:
        return
    anchor = 0.0
    s1 = 0.0
    s2 = 0.0
    run = 1  # length of the run of equal values ending at bar i
    for i in range(1, start):
        run = run + 1 if x[i] == x[i - 1] else 1
    countdown = 1  # bars until the next re-anchoring
    for i in range(start, n):
        run = run + 1 if x[i] == x[i - 1] else 1
        countdown -= 1
        if countdown == 0:
            countdown = period
            anchor = x[i]
            s1 = 0.0
            s2 = 0.0
            for j in range(i - start, i + 1):
                d = x[j] - anchor
                s1 += d
                s2 += d * d
        else:
            d = x[i] - anchor
            s1 += d
            s2 += d * d
            d = x[i - period] - anchor
            s1 -= d
            s2 -= d * d
        m = middle[i]
        mean1 = s1 / period
        var = s2 / period - mean1 * mean1
        sd = math.sqrt(var) if (var > 0.0 and run < period) else 0.0
        t = sd * nbdev
        upper[i] = m + t
        lower[i] = m - t


@njit(cache=True)
def bbands(x, period, nbdev, upper, middle, lower):
    """Bollinger bands: TA-Lib's SMA middle band +- nbdev * population std dev.

    The variance is not TA-Lib 0.4's E[x^2] - E[x]^2 of raw prices, which loses every
    digit at BTC prices over short windows; like TA-Lib 0.8 it is computed accurately:
    running sums of deviations from an anchor value inside the window, re-anchored
    (sums recomputed from scratch) every ``period`` bars so neither magnitude nor
    rounding drift builds up. A window of identical values gives exactly 0.
    """
    b = first_valid1(x)
    _fill_nan(upper, b)
    _fill_nan(middle, b)
    _fill_nan(lower, b)
    bbands_core(x[b:], period, nbdev, upper[b:], middle[b:], lower[b:])


@njit(cache=True)
def stoch_core(high, low, close, fastk, slowk, slowd, k_out, d_out, raw):
    n = high.shape[0]
    start = fastk - 1 + slowk - 1 + slowd - 1
    _fill_nan(k_out, start)
    _fill_nan(d_out, start)
    if start >= n:
        return
    lowest_idx = -1
    highest_idx = -1
    highest = 0.0
    lowest = 0.0
    for today in range(fastk - 1, n):
        trailing = today - fastk + 1
        tmp = low[today]
        if lowest_idx < trailing:
            lowest_idx = trailing
            lowest = low[lowest_idx]
            for i in range(lowest_idx + 1, today + 1):
                tmp = low[i]
                if tmp < lowest:
                    lowest_idx = i
                    lowest = tmp
        elif tmp <= lowest:
            lowest_idx = today
            lowest = tmp
        tmp = high[today]
        if highest_idx < trailing:
            highest_idx = trailing
            highest = high[highest_idx]
            for i in range(highest_idx + 1, today + 1):
                tmp = high[i]
                if tmp > highest:
                    highest_idx = i
                    highest = tmp
        elif tmp >= highest:
            highest_idx = today
            highest = tmp
        rng = highest - lowest
        flat = abs(rng) <= EPS * (abs(highest) + abs(lowest))
        raw[today] = 0.0 if flat else (close[today] - lowest) / rng * 100.0
    sma_core(raw[fastk - 1 :], slowk, k_out[fastk - 1 :], True)
    sma_core(k_out[fastk + slowk - 2 :], slowd, d_out[fastk + slowk - 2 :], True)
    _fill_nan(k_out, start)
    _fill_nan(d_out, start)


@njit(cache=True)
def stoch(high, low, close, fastk, slowk, slowd, k_out, d_out, raw):
    b = first_valid3(high, low, close)
    _fill_nan(k_out, b)
    _fill_nan(d_out, b)
    stoch_core(high[b:], low[b:], close[b:], fastk, slowk, slowd, k_out[b:], d_out[b:], raw[b:])


@njit(cache=True)
def adx_core(high, low, close, period, out):
    n = high.shape[0]
    start = 2 * period - 1
    _fill_nan(out, start)
    if start >= n:
        return
    minus_dm = 0.0
    plus_dm = 0.0
    tr_sum = 0.0
    prev_high = high[0]
    prev_low = low[0]
    prev_close = close[0]
    for today in range(1, period):
        t = high[today]
        diff_p = t - prev_high
        prev_high = t
        t = low[today]
        diff_m = prev_low - t
        prev_low = t
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        tr_sum += _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
    sum_dx = 0.0
    prev_adx = 0.0
    for today in range(period, n):
        t = high[today]
        diff_p = t - prev_high
        prev_high = t
        t = low[today]
        diff_m = prev_low - t
        prev_low = t
        minus_dm -= minus_dm / period
        plus_dm -= plus_dm / period
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        tr_sum = tr_sum - (tr_sum / period) + _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
        # TA-Lib skips a bar with no range or no direction (or a NaN): ADX holds
        if tr_sum > 0.0:
            minus_di = 100.0 * (minus_dm / tr_sum)
            plus_di = 100.0 * (plus_dm / tr_sum)
            t = minus_di + plus_di
            if t > 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / t)
                if today <= start:
                    sum_dx += dx
                else:
                    prev_adx = ((prev_adx * (period - 1)) + dx) / period
        if today == start:
            prev_adx = sum_dx / period
        if today >= start:
            out[today] = prev_adx


@njit(cache=True)
def adx(high, low, close, period, out):
    b = first_valid3(high, low, close)
    _fill_nan(out, b)
    adx_core(high[b:], low[b:], close[b:], period, out[b:])


@njit(cache=True)
def obv(close, volume, out):
    n = close.shape[0]
    b = first_valid2(close, volume)
    _fill_nan(out, b)
    if b >= n:
        return
    prev_obv = volume[b]
    prev_real = close[b]
    for i in range(b, n):
        t = close[i]
        v = volume[i]
        # selects: TA-Lib's if/else-if, NaN comparisons false
        prev_obv = prev_obv + v if t > prev_real else (prev_obv - v if t < prev_real else prev_obv)
        out[i] = prev_obv
        prev_real = t


@njit(cache=True)
def roc_core(x, period, out):
    n = x.shape[0]
    _fill_nan(out, period)
    for i in range(period, n):
        t = x[i - period]
        out[i] = ((x[i] / t) - 1.0) * 100.0 if t != 0.0 else 0.0


@njit(cache=True)
def roc(x, period, out):
    b = first_valid1(x)
    _fill_nan(out, b)
    roc_core(x[b:], period, out[b:])


@njit(cache=True)
def vwap_core(high, low, close, volume, period, out):
    n = high.shape[0]
    start = period - 1
    _fill_nan(out, start)
    if start >= n:
        return
    sum_pv = 0.0
    sum_v = 0.0
    nonzero = 0
    for i in range(start):
        v = volume[i]
        sum_pv += (high[i] + low[i] + close[i]) / 3.0 * v
        sum_v += v
        nonzero += v != 0.0
    for i in range(start, n):
        v = volume[i]
        sum_pv += (high[i] + low[i] + close[i]) / 3.0 * v
        sum_v += v
        nonzero += v != 0.0
        if nonzero > 0:
            out[i] = sum_pv / sum_v
        else:
            # a window with no volume has no VWAP; reset the sums so rounding
            # residue of the bars that left cannot leak into later windows
            out[i] = NAN
            sum_pv = 0.0
            sum_v = 0.0
        j = i - start
        ov = volume[j]
        sum_pv -= (high[j] + low[j] + close[j]) / 3.0 * ov
        sum_v -= ov
        nonzero -= ov != 0.0


@njit(cache=True)
def vwap(high, low, close, volume, period, out):
    """Rolling VWAP: sum(typical * volume) / sum(volume) over ``period`` bars."""
    b = first_valid4(high, low, close, volume)
    _fill_nan(out, b)
    vwap_core(high[b:], low[b:], close[b:], volume[b:], period, out[b:])
