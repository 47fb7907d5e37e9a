"""Compiled loops for the batch indicators (numba, cached on disk).

Each kernel follows TA-Lib's C algorithm statement by statement (same operations in
the same order, same comparisons), so values agree to the last bits, the first valid
index is identical, and a NaN inside the input spreads exactly as it does in TA-Lib.
Like TA-Lib's Python wrapper, each kernel first skips the leading bars where any
input is NaN (``begin``), then runs the algorithm on the rest.

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
def sma_into(x, begin, period, out, copy_one=True):
    """TA_INT_SMA's running total. Period 1 copies when ``copy_one`` (TA_MA, used inside
    STOCH); TA_SMA itself runs the total even then, so a NaN stays in it for good."""
    n = x.shape[0]
    start = begin + period - 1
    _fill_nan(out, start)
    if start >= n:
        return
    if period == 1 and copy_one:
        for i in range(begin, n):
            out[i] = x[i]
        return
    total = 0.0
    i = begin
    while i < start:
        total += x[i]
        i += 1
    trailing = begin
    while i < n:
        total += x[i]
        tmp = total
        total -= x[trailing]
        trailing += 1
        out[i] = tmp / period
        i += 1


@njit(cache=True)
def sma(x, period):
    out = np.empty(x.shape[0])
    sma_into(x, first_valid1(x), period, out, False)
    return out


@njit(cache=True)
def ema_into(x, begin, period, k, seed_end, out):
    """TA_INT_EMA: seeded by the simple mean of the ``period`` values ending at
    ``seed_end`` (the first output), then fma(x - prev, k, prev) as TA-Lib 0.8 does."""
    n = x.shape[0]
    _fill_nan(out, seed_end)
    if seed_end >= n:
        return
    total = 0.0
    today = seed_end - period + 1
    for _ in range(period):
        total += x[today]
        today += 1
    prev = total / period
    out[seed_end] = prev
    while today < n:
        prev = fma(x[today] - prev, k, prev)
        out[today] = prev
        today += 1


@njit(cache=True)
def ema(x, period):
    out = np.empty(x.shape[0])
    begin = first_valid1(x)
    if period == 1:
        sma_into(x, begin, 1, out)
    else:
        ema_into(x, begin, period, 2.0 / (period + 1), begin + period - 1, out)
    return out


@njit(cache=True)
def wma(x, period):
    n = x.shape[0]
    out = np.empty(n)
    begin = first_valid1(x)
    start = begin + period - 1
    _fill_nan(out, start)
    if start >= n:
        return out
    if period == 1:
        for i in range(begin, n):
            out[i] = x[i]
        return out
    divider = (period * (period + 1)) >> 1
    period_sub = 0.0
    period_sum = 0.0
    idx = begin
    w = 1
    while idx < start:
        tmp = x[idx]
        period_sub += tmp
        period_sum += tmp * w
        w += 1
        idx += 1
    trailing_value = 0.0
    trailing = begin
    resync = 8 * period
    while idx < n:
        if (idx - start + 1) % resync == 0:
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
        trailing += 1
        out[idx] = period_sum / divider
        period_sum -= period_sub
        idx += 1
    return out


@njit(cache=True)
def _rsi_value(gain, loss):
    # TA-Lib 0.8: no movement at all (or a NaN that has entered the averages) reads 0
    total = gain + loss
    if total > 0.0:
        return 100.0 * (gain / total)
    return 0.0


@njit(cache=True)
def rsi(x, period):
    n = x.shape[0]
    out = np.empty(n)
    begin = first_valid1(x)
    start = begin + period
    _fill_nan(out, start)
    if start >= n:
        return out
    today = begin
    prev_value = x[today]
    prev_gain = 0.0
    prev_loss = 0.0
    today += 1
    for _ in range(period):
        v = x[today]
        today += 1
        d = v - prev_value
        prev_value = v
        if d < 0:
            prev_loss -= d
        else:
            prev_gain += d
    prev_loss /= period
    prev_gain /= period
    out[start] = _rsi_value(prev_gain, prev_loss)
    while today < n:
        v = x[today]
        d = v - prev_value
        prev_value = v
        prev_loss *= period - 1
        prev_gain *= period - 1
        if d < 0:
            prev_loss -= d
        else:
            prev_gain += d
        prev_loss /= period
        prev_gain /= period
        out[today] = _rsi_value(prev_gain, prev_loss)
        today += 1
    return out


@njit(cache=True)
def macd(x, fast, slow, signal):
    n = x.shape[0]
    m = np.empty(n)
    s = np.empty(n)
    h = np.empty(n)
    begin = first_valid1(x)
    first_line = begin + slow - 1  # both EMA seeds end on this bar
    start = first_line + signal - 1
    _fill_nan(m, start)
    _fill_nan(s, start)
    _fill_nan(h, start)
    if start >= n:
        return m, s, h
    slow_e = np.empty(n)
    ema_into(x, begin, slow, 2.0 / (slow + 1), first_line, slow_e)
    line = np.empty(n)
    ema_into(x, begin, fast, 2.0 / (fast + 1), first_line, line)
    for i in range(first_line, n):
        line[i] = line[i] - slow_e[i]
    ema_into(line, first_line, signal, 2.0 / (signal + 1), start, s)
    for i in range(start, n):
        m[i] = line[i]
        h[i] = line[i] - s[i]
    return m, s, h


@njit(cache=True)
def _true_range(high, low, prev_close):
    greatest = high - low
    v2 = abs(prev_close - high)
    if v2 > greatest:
        greatest = v2
    v3 = abs(prev_close - low)
    if v3 > greatest:
        greatest = v3
    return greatest


@njit(cache=True)
def true_range_into(high, low, close, begin, out):
    n = high.shape[0]
    _fill_nan(out, begin + 1)
    for i in range(begin + 1, n):
        out[i] = _true_range(high[i], low[i], close[i - 1])


@njit(cache=True)
def true_range(high, low, close):
    out = np.empty(high.shape[0])
    true_range_into(high, low, close, first_valid3(high, low, close), out)
    return out


@njit(cache=True)
def atr(high, low, close, period):
    n = high.shape[0]
    out = np.empty(n)
    begin = first_valid3(high, low, close)
    tr = np.empty(n)
    true_range_into(high, low, close, begin, tr)
    start = begin + period
    _fill_nan(out, start)
    if start >= n:
        return out
    total = 0.0
    for i in range(begin + 1, start + 1):
        total += tr[i]
    prev = total / period
    out[start] = prev
    for i in range(start + 1, n):
        prev *= period - 1
        prev += tr[i]
        prev /= period
        out[i] = prev
    return out


@njit(cache=True)
def bbands(x, period, nbdev):
    """Bollinger bands: TA-Lib's SMA middle band +- nbdev * population std dev.

    The variance is not TA-Lib 0.4's E[x^2] - E[x]^2 of raw prices, which loses every
    digit at BTC prices over short windows; like TA-Lib 0.8 it is computed accurately:
    running sums of deviations from an anchor value inside the window, re-anchored
    (sums recomputed from scratch) every ``period`` bars so neither magnitude nor
    rounding drift builds up. A window of identical values gives exactly 0.
    """
    n = x.shape[0]
    upper = np.empty(n)
    middle = np.empty(n)
    lower = np.empty(n)
    begin = first_valid1(x)
    start = begin + period - 1
    sma_into(x, begin, period, middle)
    _fill_nan(upper, start)
    _fill_nan(lower, start)
    if start >= n:
        return upper, middle, lower
    anchor = 0.0
    s1 = 0.0
    s2 = 0.0
    run = 1  # length of the run of equal values ending at bar i
    for i in range(begin + 1, start):
        run = run + 1 if x[i] == x[i - 1] else 1
    for i in range(start, n):
        if i > begin and x[i] == x[i - 1]:
            run += 1
        elif i > begin:
            run = 1
        if (i - start) % period == 0:
            anchor = x[i]
            s1 = 0.0
            s2 = 0.0
            for j in range(i - period + 1, i + 1):
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
        if run >= period:
            sd = 0.0
        else:
            mean1 = s1 / period
            var = s2 / period - mean1 * mean1
            sd = math.sqrt(var) if var > 0.0 else 0.0
        t = sd * nbdev
        upper[i] = m + t
        lower[i] = m - t
    return upper, middle, lower


@njit(cache=True)
def stoch(high, low, close, fastk, slowk, slowd):
    n = high.shape[0]
    k_out = np.empty(n)
    d_out = np.empty(n)
    begin = first_valid3(high, low, close)
    start = begin + fastk - 1 + slowk - 1 + slowd - 1
    _fill_nan(k_out, start)
    _fill_nan(d_out, start)
    if start >= n:
        return k_out, d_out
    raw = np.empty(n)
    _fill_nan(raw, begin + fastk - 1)
    trailing = begin
    today = begin + fastk - 1
    lowest_idx = -1
    highest_idx = -1
    highest = 0.0
    lowest = 0.0
    while today < n:
        tmp = low[today]
        if lowest_idx < trailing:
            lowest_idx = trailing
            lowest = low[lowest_idx]
            i = lowest_idx + 1
            while i <= today:
                tmp = low[i]
                if tmp < lowest:
                    lowest_idx = i
                    lowest = tmp
                i += 1
        elif tmp <= lowest:
            lowest_idx = today
            lowest = tmp
        tmp = high[today]
        if highest_idx < trailing:
            highest_idx = trailing
            highest = high[highest_idx]
            i = highest_idx + 1
            while i <= today:
                tmp = high[i]
                if tmp > highest:
                    highest_idx = i
                    highest = tmp
                i += 1
        elif tmp >= highest:
            highest_idx = today
            highest = tmp
        rng = highest - lowest
        if not (abs(rng) <= EPS * (abs(highest) + abs(lowest))):
            raw[today] = (close[today] - lowest) / rng * 100.0
        else:
            raw[today] = 0.0
        trailing += 1
        today += 1
    sma_into(raw, begin + fastk - 1, slowk, k_out)
    sma_into(k_out, begin + fastk + slowk - 2, slowd, d_out)
    _fill_nan(k_out, start)
    return k_out, d_out


@njit(cache=True)
def adx(high, low, close, period):
    n = high.shape[0]
    out = np.empty(n)
    begin = first_valid3(high, low, close)
    start = begin + 2 * period - 1
    _fill_nan(out, start)
    if start >= n:
        return out
    minus_dm = 0.0
    plus_dm = 0.0
    tr_sum = 0.0
    today = begin
    prev_high = high[today]
    prev_low = low[today]
    prev_close = close[today]
    for _ in range(period - 1):
        today += 1
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
    for _ in range(period):
        today += 1
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
        if tr_sum > 0.0:
            minus_di = 100.0 * (minus_dm / tr_sum)
            plus_di = 100.0 * (plus_dm / tr_sum)
            t = minus_di + plus_di
            if t > 0.0:
                sum_dx += 100.0 * (abs(minus_di - plus_di) / t)
    prev_adx = sum_dx / period
    out[today] = prev_adx
    while today < n - 1:
        today += 1
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
        if tr_sum > 0.0:
            minus_di = 100.0 * (minus_dm / tr_sum)
            plus_di = 100.0 * (plus_dm / tr_sum)
            t = minus_di + plus_di
            if t > 0.0:
                t = 100.0 * (abs(minus_di - plus_di) / t)
                prev_adx = ((prev_adx * (period - 1)) + t) / period
        out[today] = prev_adx
    return out


@njit(cache=True)
def obv(close, volume):
    n = close.shape[0]
    out = np.empty(n)
    begin = first_valid2(close, volume)
    _fill_nan(out, begin)
    if begin >= n:
        return out
    prev_obv = volume[begin]
    prev_real = close[begin]
    for i in range(begin, n):
        t = close[i]
        if t > prev_real:
            prev_obv += volume[i]
        elif t < prev_real:
            prev_obv -= volume[i]
        out[i] = prev_obv
        prev_real = t
    return out


@njit(cache=True)
def roc(x, period):
    n = x.shape[0]
    out = np.empty(n)
    begin = first_valid1(x)
    start = begin + period
    _fill_nan(out, start)
    for i in range(start, n):
        t = x[i - period]
        if t != 0.0:
            out[i] = ((x[i] / t) - 1.0) * 100.0
        else:
            out[i] = 0.0
    return out


@njit(cache=True)
def vwap(high, low, close, volume, period):
    """Rolling VWAP: sum(typical * volume) / sum(volume) over ``period`` bars."""
    n = high.shape[0]
    out = np.empty(n)
    begin = first_valid4(high, low, close, volume)
    start = begin + period - 1
    _fill_nan(out, start)
    if start >= n:
        return out
    pv = np.empty(n)
    for i in range(begin, n):
        pv[i] = (high[i] + low[i] + close[i]) / 3.0 * volume[i]
    sum_pv = 0.0
    sum_v = 0.0
    nonzero = 0
    for i in range(begin, start):
        sum_pv += pv[i]
        sum_v += volume[i]
        if volume[i] != 0.0:
            nonzero += 1
    trailing = begin
    for i in range(start, n):
        v = volume[i]
        sum_pv += pv[i]
        sum_v += v
        if v != 0.0:
            nonzero += 1
        if nonzero > 0:
            out[i] = sum_pv / sum_v
        else:
            # a window with no volume has no VWAP; reset the sums so rounding
            # residue of the bars that left cannot leak into later windows
            out[i] = NAN
            sum_pv = 0.0
            sum_v = 0.0
        ov = volume[trailing]
        sum_pv -= pv[trailing]
        sum_v -= ov
        if ov != 0.0:
            nonzero -= 1
        trailing += 1
    return out
