"""What every detector is made of, written once for both execution paths.

A detector is one class (a subclass of :class:`Detector` in its own module under
``engine/signals/detectors/``) that declares:

- ``name`` (what ``--detectors`` and personas' configs call it), ``kinds`` (the signal
  kinds it emits, in kind order), ``rank`` (its place among detectors: the default
  order, and the order of kinds at one candle), ``default`` (whether the default
  configuration runs it) and ``aliases`` (group names such as ``bb``);
- ``Params``: a frozen dataclass of its parameters with their defaults, whose
  ``validate(name)`` raises ``SignalConfigError`` with a one-line message;
- ``uses`` (set in ``__init__`` from the parameters): the indicators it needs, by
  indicator registry name, with the keys their outputs get;

and four pure parts, so that the vectorised and the step-by-step paths run the *same*
code:

- ``derive(v, p)``: values computed from indicator values (a ratio, a z-score);
- ``events(v, p)``: an integer bit mask of raw events at a candle from the values ``v``
  at that candle and ``p`` at the one before. Written with operators only, so it runs
  on whole numpy arrays (vectorised path) and on plain floats (step path) alike;
- ``gate(state, code)``: the small state machine over the (sparse) raw events: zone
  arming, last crossing side. Returns the index of the kind that fires, or -1.
- ``describe(kind, v, p)``: the direction, strength and evidence of a fired signal; like
  ``events`` it runs on one candle's floats (step path) and on the arrays of every
  candle where one kind fired (vectorised path), element-wise with the same arithmetic.

Defining the class registers it (``engine.signals.registry`` imports every module of
the ``detectors`` package); nothing else needs an edit.

The runner adds the per-detector cooldown: after a signal at candle ``i`` the detector
stays silent at candles ``i+1 .. i+cooldown``. A suppressed event still changes the
state (a zone entry is consumed, a crossing moves the side), so the cooldown never
makes a signal fire late.

Comparisons carry a tiny dead band (``EPS`` for values in points, ``REL_EPS`` x close
for values in price units) so that round-number ties and the last-bit noise between
batch and incremental indicators cannot make the two paths disagree, and a flat series
does not "cross" on rounding noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from engine.errors import TapedeckError
from engine.indicators.registry import OSCILLATOR, DisplayHint
from engine.types import Direction

EPS = 1e-9  # dead band for values in points (RSI, ratios, z-scores)
REL_EPS = 1e-9  # dead band for values in price units, as a fraction of the close

CANDLE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

Values = Mapping[str, Any]  # key -> np.ndarray (vectorised) or float (step)


class SignalConfigError(TapedeckError, ValueError):
    """A signal configuration a user gave that cannot be used."""


def check(cond: bool, what: str) -> None:
    """Raise SignalConfigError(what) unless ``cond``."""
    if not cond:
        raise SignalConfigError(what)


@dataclass(frozen=True)
class DetectorParams:
    """A detector's parameters. Counts are in candles of the instrument."""

    cooldown: int = 30

    def validate(self, name: str) -> None:
        """Raise SignalConfigError on a value that cannot work (``cooldown`` is checked
        for every detector by the configuration)."""


@dataclass(frozen=True)
class IndicatorUse:
    """One registry indicator a detector needs: ``sources`` are candle columns or keys
    of earlier uses, given in the indicator's input order; ``outputs`` name the key each
    output is stored under ("" = not kept)."""

    name: str
    sources: tuple[str, ...]
    params: Mapping[str, Any]
    outputs: tuple[str, ...]


class ConfigView(Protocol):
    """What a detector may read of the whole signal configuration when it is built."""

    detectors: tuple[str, ...]
    atr_period: int

    def params_of(self, name: str) -> Any: ...


# -- helpers that work on numpy arrays and on floats alike ---------------------------


def not_(x: Any) -> Any:
    return np.logical_not(x) if isinstance(x, np.ndarray) else not x


def safe_div(a: Any, b: Any, min_b: Any = 0.0, default: float = math.nan) -> Any:
    """a / b where b > min_b, else ``default``."""
    if isinstance(b, np.ndarray):
        out = np.full(b.shape, default)
        np.divide(a, b, out=out, where=b > min_b)
        return out
    return a / b if b > min_b else default


def clip01(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return np.where(x != x, 0.0, np.where(x < 0.0, 0.0, np.where(x > 1.0, 1.0, x)))
    if x != x:  # NaN: nothing measured, say so with the weakest value
        return 0.0
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else float(x)


def sign_direction(x: Any) -> Any:
    """The direction of a change; a list of them for an array."""
    if isinstance(x, np.ndarray):
        return [sign_direction(c) for c in x.tolist()]
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


# -- the same state machines over every event at once --------------------------------
# Each takes the event codes of one series in order (int64, none zero) and returns the
# kind each gate call would return (-1: none), so the states they carry are the same.


def _before(value: np.ndarray, changes: np.ndarray, initial: int) -> np.ndarray:
    """For each event, the ``value`` of the last event before it where ``changes``, else
    ``initial``: the state a state machine holds when that event comes."""
    at = np.where(changes, np.arange(len(value)), -1)
    last = np.maximum.accumulate(at) if len(at) else at
    prior = np.concatenate(([-1], last[:-1])) if len(last) else last
    return np.where(prior >= 0, value[np.maximum(prior, 0)], initial)


def zone_gates(codes: np.ndarray) -> np.ndarray:
    """``zone_gate`` over every event (a zone-1 fire wins over zone 0, as there)."""
    fired = np.full(len(codes), -1, dtype=np.int64)
    for side in (0, 1):
        enter = (codes & (1 << (2 * side))) != 0
        rearm = (codes & (2 << (2 * side))) != 0
        armed_after = ~enter  # an entry disarms; else a re-arm arms; else unchanged
        armed = rearm | (_before(armed_after, enter | rearm, 0) != 0)
        fired[enter & armed] = side
    return fired


def cross_gates(codes: np.ndarray) -> np.ndarray:
    """``cross_gate`` over every event (bit 1 wins over bit 2, as there)."""
    up = (codes & 1) != 0
    down = ((codes & 2) != 0) & ~up
    side = _before(np.where(up, 1, -1), up | down, 0)
    return np.where(up & (side == -1), 0, np.where(down & (side == 1), 1, -1))


def edge_gates(codes: np.ndarray) -> np.ndarray:
    """``edge_gate`` over every event."""
    return np.where(codes == 1, 0, np.where(codes == 2, 1, -1))


# -- the detector classes ------------------------------------------------------------

_REGISTERED: list[type[Detector]] = []


class Detector:
    """Base of every detector (see the module doc). A subclass that sets ``name`` in its
    own body is registered; intermediate bases (no ``name``) are not."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ()
    rank: ClassVar[int] = 1000
    default: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[DetectorParams]] = DetectorParams

    cooldown: int = 0
    uses: tuple[IndicatorUse, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.name:
            _REGISTERED.append(cls)

    def __init__(self, params: DetectorParams | None = None, config: ConfigView | None = None):
        self.cfg: Any = self.Params() if params is None else params
        self.cooldown = self.cfg.cooldown

    def derive(self, v: Values, p: Values) -> dict[str, Any]:
        return {}

    def events(self, v: Values, p: Values) -> Any:
        raise NotImplementedError

    def new_state(self) -> Any:
        return None

    def gate(self, state: Any, code: int) -> int:
        return edge_gate(state, code)

    # ``gate`` over every event of a series at once; read only from the class that
    # defines ``gate`` (a subclass with a gate of its own and none of these is gated
    # event by event)
    gate_events = staticmethod(edge_gates)

    def describe(
        self, kind: int, v: Mapping[str, float], p: Mapping[str, float]
    ) -> tuple[Direction, float, dict[str, float]]:
        raise NotImplementedError

    def display_hints(self) -> dict[str, DisplayHint]:
        """Hints for the values it derives, or for its indicators' keys where its
        parameters say more than the indicator registry (its own zone levels)."""
        return {}

    def evidence_hints(self) -> dict[str, DisplayHint]:
        """Hints for the keys of its signals' evidence that are no value key (a previous
        value, the level crossed) and are not prices: shown as their indicator is."""
        return {}


def registered_detectors() -> list[type[Detector]]:
    """Every detector class defined so far (``engine.signals.registry`` loads them all)."""
    return list(_REGISTERED)


class ZoneDetector(Detector):
    """Gated by zones: a zone entry fires only when the zone is armed (``zone_gate``)."""

    def new_state(self) -> ZoneState:
        return ZoneState()

    def gate(self, state: ZoneState, code: int) -> int:
        return zone_gate(state, code)

    gate_events = staticmethod(zone_gates)


class CrossDetector(Detector):
    """A gap series crossing zero, with a dead band of REL_EPS x close."""

    gap_key = ""

    def display_hints(self) -> dict[str, DisplayHint]:
        return {self.gap_key: DisplayHint(OSCILLATOR, centre=0.0)}

    def events(self, v: Values, p: Values) -> Any:
        g, q = v[self.gap_key], p[self.gap_key]
        tol, tol_p = v["close"] * REL_EPS, p["close"] * REL_EPS
        up = (g > tol) & not_(q > tol_p)
        down = (g < -tol) & not_(q < -tol_p)
        return up * 1 | down * 2

    def new_state(self) -> CrossState:
        return CrossState()

    def gate(self, state: CrossState, code: int) -> int:
        return cross_gate(state, code)

    gate_events = staticmethod(cross_gates)


class UpperZoneDetector(ZoneDetector):
    """Fires on entering the zone above ``hi`` of the derived value ``zone_key``;
    re-arms once the value falls below ``rearm``. Subclasses set the three."""

    zone_key = ""
    hi = 0.0
    rearm = 0.0

    def display_hints(self) -> dict[str, DisplayHint]:
        # a ratio or a z-score: two decimals
        return {self.zone_key: DisplayHint(OSCILLATOR, high=self.cfg.threshold, decimals=2)}

    def events(self, v: Values, p: Values) -> Any:
        c, q = v[self.zone_key], p[self.zone_key]
        enter = (c > self.hi) & (q <= self.hi)
        rearm = (c < self.rearm) & not_(q < self.rearm)
        return enter * 1 | rearm * 2
