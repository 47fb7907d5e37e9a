"""The detectors' firing rules, written once for both execution paths.

A strategy is split in four pure parts so the vectorised and the step-by-step paths run
the *same* code:

- ``uses``: the indicators it needs, by registry name, with the keys their outputs get;
- ``derive(v, p)``: values computed from indicator values (a ratio, a z-score);
- ``events(v, p)``: an integer bit mask of raw events at a candle from the values ``v``
  at that candle and ``p`` at the one before. Written with operators only, so it runs
  on whole numpy arrays (vectorised path) and on plain floats (step path) alike;
- ``gate(state, code)``: the small state machine over the (sparse) raw events: zone
  arming, last crossing side. Returns the index of the kind that fires, or -1.
  ``describe`` then gives the direction, strength and evidence of a fired signal; like
  ``events`` it runs on one candle's floats (step path) and on the arrays of every
  candle where one kind fired (vectorised path), element-wise with the same arithmetic.

The runner adds the per-strategy cooldown: after a signal at candle ``i`` the strategy
stays silent at candles ``i+1 .. i+cooldown``. A suppressed event still changes the
state (a zone entry is consumed, a crossing moves the side), so the cooldown never
makes a signal fire late.

Comparisons carry a tiny dead band (``EPS`` for values in points, ``EPS`` x close for
values in price units) so that round-number ties and the last-bit noise between batch
and incremental indicators cannot make the two paths disagree, and a flat series does
not "cross" on rounding noise.

The rules (``i`` is the candle, ``i-1`` the one before; "valid" = not NaN):

``rsi`` (RSI, Wilder): ``rsi_oversold`` (long) fires when RSI goes from >= oversold at
    i-1 to < oversold at i, if armed. It is armed by RSI reaching oversold + rearm (the
    first valid RSI counts), and disarmed by every entry (fired or suppressed).
    Mirror image for ``rsi_overbought`` (short). Strength 0.5 at the level, rising
    linearly to 1 at ``depth`` points inside the zone.
``macd`` (MACD 12/26/9): the gap is MACD - signal (``against="signal"``) or MACD itself
    (``against="zero"``). ``macd_cross_up`` (long) fires at the first candle where the
    gap is > +tol after its last value outside [-tol, +tol] was < -tol; mirror for
    ``macd_cross_down`` (short). Strength = |gap_i - gap_{i-1}| / (strength_atr x ATR),
    capped at 1: how hard the lines cross, in volatility units.
``ema`` (EMA fast / slow): same crossing rule on fast - slow; ``ema_cross_up`` long,
    ``ema_cross_down`` short. Strength = 0.5 x min(1, |fast - slow| / (gap_atr x ATR))
    + 0.5 x min(1, max(0, fast's one-candle move in the cross's direction) /
    (slope_atr x ATR)).
``bb_breakout`` (Bollinger): ``bb_breakout_up`` (long) when close > upper at i and
    close <= upper at i-1 (both bands valid); ``bb_breakout_down`` (short) mirror on the
    lower band. Strength = 0.5 + 0.5 x (close - band) / (upper - middle), capped at 1.
``bb_touch`` (Bollinger, mean reversion): ``bb_touch_lower`` (long) when low <= lower
    and close > lower at i, and low > lower at i-1 (first touch). ``bb_touch_upper``
    (short) mirror on the upper band. A candle touching both bands fires neither.
    Strength = 0.5 x rejection + 0.5 x min(1, 4 x penetration), rejection = how far the
    close came back across the candle's range, penetration = wick beyond the band in
    half band widths.
``atr`` (volatility expansion): ratio = ATR / SMA(ATR, average). ``atr_expansion`` fires
    when the ratio goes from <= threshold at i-1 to > threshold at i, if armed (armed by
    the ratio being < rearm, disarmed by every entry). Direction: the sign of close_i -
    close_{i-1} (neutral if equal). Strength = 0.5 x (ratio - 1) / (threshold - 1),
    capped at 1 (0.5 at the threshold, 1 at twice as far from 1).
``volume`` (spike): z = (volume_i - mean) / std, mean and population std of the
    ``window`` volumes *before* candle i (std must exceed 1e-6 x mean). ``volume_spike``
    fires when z goes from <= threshold to > threshold, if armed (armed by z < rearm,
    disarmed by every entry). Direction: the sign of close - open (neutral if equal).
    Strength = 0.5 x z / threshold, capped at 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.signals.config import SignalConfig
from engine.types import Direction

EPS = 1e-9  # dead band for values in points (RSI, ratios, z-scores)
REL_EPS = 1e-9  # dead band for values in price units, as a fraction of the close

# The signal kinds, by detector.
KINDS: Mapping[str, tuple[str, ...]] = {
    "rsi": ("rsi_oversold", "rsi_overbought"),
    "macd": ("macd_cross_up", "macd_cross_down"),
    "ema": ("ema_cross_up", "ema_cross_down"),
    "bb_breakout": ("bb_breakout_up", "bb_breakout_down"),
    "bb_touch": ("bb_touch_lower", "bb_touch_upper"),
    "atr": ("atr_expansion",),
    "volume": ("volume_spike",),
}
SIGNAL_KINDS: tuple[str, ...] = tuple(k for kinds in KINDS.values() for k in kinds)
KIND_ORDER: Mapping[str, int] = {k: i for i, k in enumerate(SIGNAL_KINDS)}  # sort key

CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

Values = Mapping[str, Any]  # key -> np.ndarray (vectorised) or float (step)


@dataclass(frozen=True)
class IndicatorUse:
    """One registry indicator a strategy needs: ``sources`` are candle columns or keys
    of earlier uses, given in the indicator's input order; ``outputs`` name the key each
    output is stored under ("" = not kept)."""

    name: str
    sources: tuple[str, ...]
    params: Mapping[str, Any]
    outputs: tuple[str, ...]


# -- helpers that work on numpy arrays and on floats alike ---------------------------


def _not(x: Any) -> Any:
    return np.logical_not(x) if isinstance(x, np.ndarray) else not x


def _div(a: Any, b: Any, min_b: Any = 0.0, default: float = math.nan) -> Any:
    """a / b where b > min_b, else ``default``."""
    if isinstance(b, np.ndarray):
        out = np.full(b.shape, default)
        np.divide(a, b, out=out, where=b > min_b)
        return out
    return a / b if b > min_b else default


def _clip01(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return np.where(x != x, 0.0, np.where(x < 0.0, 0.0, np.where(x > 1.0, 1.0, x)))
    if x != x:  # NaN: nothing measured, say so with the weakest value
        return 0.0
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else float(x)


def _sign_direction(x: Any) -> Any:
    """The direction of a change; a list of them for an array."""
    if isinstance(x, np.ndarray):
        return [_sign_direction(c) for c in x.tolist()]
    return Direction.LONG if x > 0 else Direction.SHORT if x < 0 else Direction.NEUTRAL


# -- state machines --------------------------------------------------------------------


@dataclass
class ZoneState:
    armed: list[bool] = field(default_factory=lambda: [False, False])


def zone_gate(state: ZoneState, code: int) -> int:
    """Bits: 1 enter zone 0, 2 re-arm zone 0, 4 enter zone 1, 8 re-arm zone 1."""
    fired = -1
    for side in (0, 1):
        if code & (2 << (2 * side)):
            state.armed[side] = True
        if code & (1 << (2 * side)):
            if state.armed[side]:
                fired = side
            state.armed[side] = False
    return fired


@dataclass
class CrossState:
    side: int = 0  # last side outside the dead band: +1 above, -1 below, 0 none yet


def cross_gate(state: CrossState, code: int) -> int:
    """Bits: 1 the gap went above +tol, 2 it went below -tol."""
    if code & 1:
        fired = 0 if state.side == -1 else -1
        state.side = 1
        return fired
    if code & 2:
        fired = 1 if state.side == 1 else -1
        state.side = -1
        return fired
    return -1


def edge_gate(state: None, code: int) -> int:
    """Bits: 1 kind 0, 2 kind 1; both at once fires neither."""
    if code == 1:
        return 0
    if code == 2:
        return 1
    return -1


# -- the strategies --------------------------------------------------------------------


class Strategy:
    name: str = ""
    cooldown: int = 0
    uses: tuple[IndicatorUse, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS[self.name]

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {}

    def events(self, v: Values, p: Values) -> Any:
        raise NotImplementedError

    def new_state(self) -> Any:
        return None

    def gate(self, state: Any, code: int) -> int:
        return edge_gate(state, code)

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        raise NotImplementedError


class _ZoneStrategy(Strategy):
    """Gated by zones: a zone entry fires only when the zone is armed (``zone_gate``)."""

    def new_state(self) -> ZoneState:
        return ZoneState()

    def gate(self, state: ZoneState, code: int) -> int:
        return zone_gate(state, code)


class RsiStrategy(_ZoneStrategy):
    name = "rsi"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.cooldown = cfg.cooldown
        self.uses = (IndicatorUse("rsi", ("close",), {"period": cfg.period}, ("rsi",)),)
        self.lo = cfg.oversold - EPS
        self.lo_rearm = cfg.oversold + cfg.rearm - EPS
        self.hi = cfg.overbought + EPS
        self.hi_rearm = cfg.overbought - cfg.rearm + EPS

    def events(self, v: Values, p: Values) -> Any:
        c, q = v["rsi"], p["rsi"]
        enter_lo = (c < self.lo) & (q >= self.lo)
        rearm_lo = (c >= self.lo_rearm) & _not(q >= self.lo_rearm)
        enter_hi = (c > self.hi) & (q <= self.hi)
        rearm_hi = (c <= self.hi_rearm) & _not(q <= self.hi_rearm)
        return enter_lo * 1 | rearm_lo * 2 | enter_hi * 4 | rearm_hi * 8

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        rsi = v["rsi"]
        if kind == 0:
            level, depth, direction = self.cfg.oversold, self.cfg.oversold - rsi, Direction.LONG
        else:
            level, depth, direction = (
                self.cfg.overbought,
                rsi - self.cfg.overbought,
                Direction.SHORT,
            )
        strength = _clip01(0.5 + 0.5 * depth / self.cfg.depth)
        return direction, strength, {"rsi": rsi, "rsi_prev": p["rsi"], "level": level}


class _CrossStrategy(Strategy):
    """A gap series crossing zero, with a dead band of REL_EPS x close."""

    gap_key = ""

    def events(self, v: Values, p: Values) -> Any:
        g, q = v[self.gap_key], p[self.gap_key]
        tol, tol_p = v["close"] * REL_EPS, p["close"] * REL_EPS
        up = (g > tol) & _not(q > tol_p)
        down = (g < -tol) & _not(q < -tol_p)
        return up * 1 | down * 2

    def new_state(self) -> CrossState:
        return CrossState()

    def gate(self, state: CrossState, code: int) -> int:
        return cross_gate(state, code)


class MacdStrategy(_CrossStrategy):
    name = "macd"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.cooldown = cfg.cooldown
        params = {"fast": cfg.fast, "slow": cfg.slow, "signal": cfg.signal}
        self.uses = (
            IndicatorUse("macd", ("close",), params, ("macd", "macd_signal", "macd_hist")),
        )
        self.gap_key = "macd_hist" if cfg.against == "signal" else "macd"

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        move = abs(v[self.gap_key] - p[self.gap_key])
        strength = _clip01(_div(move, self.cfg.strength_atr * v["atr"]))
        evidence = {
            "macd": v["macd"],
            "macd_signal": v["macd_signal"],
            "macd_hist": v["macd_hist"],
            f"{self.gap_key}_prev": p[self.gap_key],
            "atr": v["atr"],
        }
        return (Direction.LONG if kind == 0 else Direction.SHORT), strength, evidence


class EmaStrategy(_CrossStrategy):
    name = "ema"
    gap_key = "ema_gap"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.cooldown = cfg.cooldown
        self.uses = (
            IndicatorUse("ema", ("close",), {"period": cfg.fast}, ("ema_fast",)),
            IndicatorUse("ema", ("close",), {"period": cfg.slow}, ("ema_slow",)),
        )

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {"ema_gap": v["ema_fast"] - v["ema_slow"]}

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        sign = 1.0 if kind == 0 else -1.0
        atr = v["atr"]
        gap = _div(abs(v["ema_gap"]), self.cfg.gap_atr * atr)
        slope = _div(sign * (v["ema_fast"] - p["ema_fast"]), self.cfg.slope_atr * atr)
        strength = 0.5 * _clip01(gap) + 0.5 * _clip01(slope)
        evidence = {
            "ema_fast": v["ema_fast"],
            "ema_slow": v["ema_slow"],
            "ema_fast_prev": p["ema_fast"],
            "ema_gap_prev": p["ema_gap"],
            "atr": atr,
        }
        return (Direction.LONG if kind == 0 else Direction.SHORT), strength, evidence


class _BollingerStrategy(Strategy):
    """Reads the bands under the keys ``{prefix}_upper/_middle/_lower``."""

    def __init__(self, cfg: Any, prefix: str = "bb") -> None:
        self.cfg = cfg
        self.cooldown = cfg.cooldown
        self.k = (f"{prefix}_upper", f"{prefix}_middle", f"{prefix}_lower")
        params = {"period": cfg.period, "nbdev": cfg.nbdev}
        self.uses = (IndicatorUse("bbands", ("close",), params, self.k),)


class BollingerBreakout(_BollingerStrategy):
    name = "bb_breakout"

    def events(self, v: Values, p: Values) -> Any:
        up, _, lo = self.k
        tol, tol_p = v["close"] * REL_EPS, p["close"] * REL_EPS
        out_up = (v["close"] > v[up] + tol) & (p["close"] <= p[up] + tol_p)
        out_down = (v["close"] < v[lo] - tol) & (p["close"] >= p[lo] - tol_p)
        return out_up * 1 | out_down * 2

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        up, mid, lo = self.k
        half = v[up] - v[mid]
        excess = (v["close"] - v[up]) if kind == 0 else (v[lo] - v["close"])
        strength = _clip01(0.5 + _div(0.5 * excess, half, default=0.0))  # 0.5 without bands
        evidence = {"close": v["close"], up: v[up], mid: v[mid], lo: v[lo]}
        return (Direction.LONG if kind == 0 else Direction.SHORT), strength, evidence


class BollingerTouch(_BollingerStrategy):
    name = "bb_touch"

    def events(self, v: Values, p: Values) -> Any:
        up, _, lo = self.k
        tol, tol_p = v["close"] * REL_EPS, p["close"] * REL_EPS
        touch_lo = (
            (v["low"] <= v[lo] + tol) & (v["close"] > v[lo] + tol) & (p["low"] > p[lo] + tol_p)
        )
        touch_up = (
            (v["high"] >= v[up] - tol) & (v["close"] < v[up] - tol) & (p["high"] < p[up] - tol_p)
        )
        return touch_lo * 1 | touch_up * 2

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        up, mid, lo = self.k
        high, low, close = v["high"], v["low"], v["close"]
        half = v[up] - v[mid]
        rng = high - low
        if kind == 0:
            rejection = _div(close - low, rng, default=0.0)
            penetration = _div(v[lo] - low, half, default=0.0)
            direction = Direction.LONG
        else:
            rejection = _div(high - close, rng, default=0.0)
            penetration = _div(high - v[up], half, default=0.0)
            direction = Direction.SHORT
        strength = 0.5 * _clip01(rejection) + 0.5 * _clip01(4.0 * penetration)
        evidence = {"low": low, "high": high, "close": close, up: v[up], mid: v[mid], lo: v[lo]}
        return direction, strength, evidence


class _UpperZoneStrategy(_ZoneStrategy):
    """Fires on entering the zone above ``threshold`` of the derived value ``zone_key``;
    re-arms once the value falls below ``rearm``. Subclasses set the three."""

    zone_key = ""
    hi = 0.0
    rearm = 0.0

    def events(self, v: Values, p: Values) -> Any:
        c, q = v[self.zone_key], p[self.zone_key]
        enter = (c > self.hi) & (q <= self.hi)
        rearm = (c < self.rearm) & _not(q < self.rearm)
        return enter * 1 | rearm * 2


class AtrExpansion(_UpperZoneStrategy):
    name = "atr"
    zone_key = "atr_ratio"

    def __init__(self, cfg: Any, atr_key: str) -> None:
        self.cfg = cfg
        self.cooldown = cfg.cooldown
        self.atr_key = atr_key
        uses = []
        if atr_key != "atr":
            uses.append(
                IndicatorUse("atr", ("high", "low", "close"), {"period": cfg.period}, (atr_key,))
            )
        uses.append(IndicatorUse("sma", (atr_key,), {"period": cfg.average}, ("atr_avg",)))
        self.uses = tuple(uses)
        self.hi = cfg.threshold + EPS
        self.rearm = cfg.rearm - EPS

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {"atr_ratio": _div(v[self.atr_key], v["atr_avg"], 0.0)}

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        ratio = v["atr_ratio"]
        strength = _clip01(0.5 * (ratio - 1.0) / (self.cfg.threshold - 1.0))
        change = v["close"] - p["close"]
        evidence = {
            "atr": v[self.atr_key],
            "atr_avg": v["atr_avg"],
            "atr_ratio": ratio,
            "close_change": change,
        }
        return _sign_direction(change), strength, evidence


class VolumeSpike(_UpperZoneStrategy):
    name = "volume"
    zone_key = "volume_z"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.cooldown = cfg.cooldown
        # Bollinger bands of volume with nbdev=1: middle = mean, upper - middle = std.
        self.uses = (
            IndicatorUse(
                "bbands",
                ("volume",),
                {"period": cfg.window, "nbdev": 1.0},
                ("volume_upper", "volume_mean", ""),
            ),
        )
        self.hi = cfg.threshold + EPS
        self.rearm = cfg.rearm - EPS

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        mean = p["volume_mean"]
        std = p["volume_upper"] - mean
        return {"volume_z": _div(v["volume"] - mean, std, mean * 1e-6)}

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        z = v["volume_z"]
        mean = p["volume_mean"]
        evidence = {
            "volume": v["volume"],
            "volume_mean": mean,
            "volume_std": p["volume_upper"] - mean,
            "volume_z": z,
        }
        return (
            _sign_direction(v["close"] - v["open"]),
            _clip01(0.5 * z / self.cfg.threshold),
            evidence,
        )


def base_uses(config: SignalConfig) -> tuple[IndicatorUse, ...]:
    """The ATR every instrument carries (stops, context, strength scales)."""
    return (IndicatorUse("atr", ("high", "low", "close"), {"period": config.atr_period}, ("atr",)),)


def build_strategies(config: SignalConfig) -> list[Strategy]:
    """The enabled strategies, in ``config.detectors`` order."""
    out: list[Strategy] = []
    for name in config.detectors:
        if name == "rsi":
            out.append(RsiStrategy(config.rsi))
        elif name == "macd":
            out.append(MacdStrategy(config.macd))
        elif name == "ema":
            out.append(EmaStrategy(config.ema))
        elif name == "bb_breakout":
            out.append(BollingerBreakout(config.bb_breakout))
        elif name == "bb_touch":
            same = config.bb_touch == config.bb_breakout or "bb_breakout" not in config.detectors
            out.append(BollingerTouch(config.bb_touch, "bb" if same else "bb_touch"))
        elif name == "atr":
            key = "atr" if config.atr.period == config.atr_period else "atr_expansion"
            out.append(AtrExpansion(config.atr, key))
        elif name == "volume":
            out.append(VolumeSpike(config.volume))
    return out


def all_uses(config: SignalConfig, strategies: list[Strategy]) -> tuple[IndicatorUse, ...]:
    """Every indicator to compute, each key once, in dependency order."""
    seen: dict[str, IndicatorUse] = {}
    ordered: list[IndicatorUse] = []
    for use in (*base_uses(config), *(u for s in strategies for u in s.uses)):
        keys = [k for k in use.outputs if k]
        if all(k in seen for k in keys):
            if any(seen[k] != use for k in keys):
                raise AssertionError(f"indicator key clash for {keys}")
            continue
        for k in keys:
            seen[k] = use
        ordered.append(use)
    return tuple(ordered)
