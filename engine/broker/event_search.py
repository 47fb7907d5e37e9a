"""Compiled scans for the broker's event search (numba, cached on disk).

``Broker.next_event_index`` asks: from which candle on could this position (or pending
limit order) do anything? These loops answer by walking the candles once, stopping at
the first candle that may trigger, so a quiet stretch of any length costs one call.

They repeat the float operations of ``engine.broker._trail_from_extreme`` and of the
broker's exit checks in the same order, and accept a candle within a relative
``tol`` of a trigger: the answer is never later than the true event (an early answer
only means the engine processes a candle where nothing happens).

Imported lazily by the broker on the first search, so that start-up does not pay for
numba.
"""

from __future__ import annotations

import math

from numba import njit

INF = math.inf


@njit(cache=True, nogil=True)
def first_exit(
    high,
    low,
    scan_from: int,
    start: int,
    stop: int,
    long: bool,
    extreme: float,
    fixed_stop: float,
    trailing: bool,
    atr_mode: bool,
    distance: float,
    atr_distance: float,
    activation_level: float,
    trail_stop: float,
    target: float,
    tol: float,
) -> int:
    """First candle in ``[start, stop)`` whose range may reach the position's stop,
    trailing stop or target, else ``stop``.

    ``extreme``: the most favourable price seen up to candle ``scan_from - 1``; candles
    ``scan_from .. start - 1`` were skipped as quiet and only move the extreme.
    ``fixed_stop`` / ``trail_stop``: -inf for a long, +inf for a short, when absent;
    ``target``: inf or -inf when absent.
    ``activation_level``: the extreme at which trailing starts. The trail level from an
    extreme ``e`` is ``e - distance * e`` (percent) or ``e - atr_distance`` (ATR), for a
    long; mirrored for a short."""
    ext = extreme
    has_target = math.isfinite(target)
    target_slack = tol * abs(target) if has_target else 0.0
    if long:
        for i in range(scan_from, start):
            if high[i] > ext:
                ext = high[i]
        for i in range(start, stop):
            level = fixed_stop
            if trailing:
                trail = -INF
                if ext >= activation_level:
                    trail = ext - (atr_distance if atr_mode else distance * ext)
                if trail_stop > trail:
                    trail = trail_stop
                if trail > level:
                    level = trail
            slack = tol * abs(level) if math.isfinite(level) else 0.0
            if low[i] <= level + slack:
                return i
            if has_target and high[i] >= target - target_slack:
                return i
            if high[i] > ext:
                ext = high[i]
        return stop
    for i in range(scan_from, start):
        if low[i] < ext:
            ext = low[i]
    for i in range(start, stop):
        level = fixed_stop
        if trailing:
            trail = INF
            if ext <= activation_level:
                trail = ext + (atr_distance if atr_mode else distance * ext)
            if trail_stop < trail:
                trail = trail_stop
            if trail < level:
                level = trail
        slack = tol * abs(level) if math.isfinite(level) else 0.0
        if high[i] >= level - slack:
            return i
        if has_target and low[i] <= target + target_slack:
            return i
        if low[i] < ext:
            ext = low[i]
    return stop


@njit(cache=True, nogil=True)
def first_touch(high, low, start: int, stop: int, buy: bool, limit: float, tol: float) -> int:
    """First candle in ``[start, stop)`` that may trade at a buy (sell) limit, else ``stop``."""
    slack = tol * abs(limit)
    if buy:
        for i in range(start, stop):
            if low[i] <= limit + slack:
                return i
        return stop
    for i in range(start, stop):
        if high[i] >= limit - slack:
            return i
    return stop
