"""Detectors over one instrument: vectorised (``detect_series``) and step by step
(``SignalDetector``). Both run the detectors of ``engine.signals.registry``; indicator
values come from the indicator layer's registry (batch functions for the first path,
incremental classes for the second).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.indicators import registry
from engine.runtime import gc_paused
from engine.signals.base import CANDLE_COLUMNS, Detector, IndicatorUse
from engine.signals.columns import KindColumns, SignalList
from engine.signals.config import SignalConfig, default_signal_config
from engine.signals.registry import KIND_ORDER, all_uses, build
from engine.types import Candle, Direction, InstrumentContext, InstrumentSeries, Signal

_NEVER = -(2**62)  # "last fired" before any candle: no cooldown applies


@dataclass(frozen=True, eq=False)
class SeriesSignals:
    """The vectorised result for one instrument.

    ``signals``: in time order (same candle: in the order of ``SIGNAL_KINDS``).
    ``signal_index``: the candle index of each signal. ``indicators``: every value the
    detectors used (and "atr" always), aligned with the series, NaN in warm-ups.
    """

    instrument: str
    signals: Sequence[Signal]  # a SignalList: made when read
    signal_index: np.ndarray
    indicators: Mapping[str, np.ndarray]  # an IndicatorColumns from detect_series
    close: np.ndarray = field(repr=False)
    close_time: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def values_at(self, index: int) -> dict[str, float]:
        """The indicator values at candle ``index`` (what ``SignalDetector.values`` says
        after that candle)."""
        if isinstance(self.indicators, IndicatorColumns):
            return self.indicators.at(index)
        return {k: float(a[index]) for k, a in self.indicators.items()}

    def context(self, index: int, lookback: int) -> InstrumentContext:
        """The brain's view of this instrument at the close of candle ``index`` (its
        indicator values computed when first read: a rule brain reads only price and ATR)."""
        back = index if index < lookback else lookback  # min(lookback, index)
        indicators = self.indicators
        close = self.close
        start = index - RECENT_MOVES
        recent = close[start if start > 0 else 0 : index + 1].tolist()
        price_then = recent[-1 - back] if back < len(recent) else float(close.item(index - back))
        return make_context(
            self.instrument,
            recent[-1],
            price_then,
            back,
            CandleValues(indicators, index, True)
            if isinstance(indicators, IndicatorColumns)
            else self.values_at(index),
            recent,
        )


RECENT_MOVES = 5  # candles whose % moves a context carries (what an LLM prompt shows)


def make_context(
    instrument: str,
    price: float,
    price_then: float,
    lookback: int,
    values: Mapping[str, float],
    recent: Sequence[float] = (),
) -> InstrumentContext:
    """Shared by both paths so that their contexts are built by the same arithmetic.
    ``recent``: the last closes up to ``price`` (at most RECENT_MOVES + 1)."""
    change = (price / price_then - 1.0) * 100.0 if price_then > 0 else 0.0
    if isinstance(values, CandleValues):  # made when read, without the NaN
        atr, known = values.atr(), values.known()
    else:
        atr, known = float(values.get("atr", math.nan)), {k: v for k, v in values.items() if v == v}
    return InstrumentContext(
        instrument,
        price,
        atr,
        change,
        lookback,
        known,
        _moves(recent),
    )


def _moves(recent: Sequence[float]) -> tuple[float, ...]:
    """The % moves between consecutive closes (0 after a close that is not positive)."""
    if len(recent) == RECENT_MOVES + 1 == 6:  # the usual case, unrolled: the same arithmetic
        p0, p1, p2, p3, p4, p5 = recent
        if p0 > 0 and p1 > 0 and p2 > 0 and p3 > 0 and p4 > 0:
            return (
                (p1 / p0 - 1.0) * 100.0,
                (p2 / p1 - 1.0) * 100.0,
                (p3 / p2 - 1.0) * 100.0,
                (p4 / p3 - 1.0) * 100.0,
                (p5 / p4 - 1.0) * 100.0,
            )
    return tuple([(b / a - 1.0) * 100.0 if a > 0 else 0.0 for a, b in itertools.pairwise(recent)])


# -- indicator values ------------------------------------------------------------------


def _shift(a: np.ndarray) -> np.ndarray:
    out = np.empty_like(a, dtype=np.float64)
    out[:1] = np.nan
    out[1:] = a[:-1]
    return out


class Previous(Mapping[str, np.ndarray]):
    """Every column of ``values`` one candle later (NaN at the first), each made when
    read and not kept: the vectorised detectors read only a few of them at a time, and
    holding all of them (10M candles: 21 columns of 80 MB) doubled the analysis' peak.
    ``rows(key, at)`` gives the previous values at candles ``at`` only."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, np.ndarray]) -> None:
        self._values = values  # read live: derived columns added later are seen

    def __getitem__(self, key: str) -> np.ndarray:
        return _shift(self._values[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def rows(self, key: str, at: np.ndarray) -> np.ndarray:
        """``self[key][at]`` without the whole shifted column."""
        out = np.asarray(self._values[key][np.maximum(at - 1, 0)], dtype=np.float64)
        out[at == 0] = np.nan
        return out


class _Gathered(Mapping[str, np.ndarray]):
    """The columns of ``keys`` at a detector's fired candles, each gathered when first
    read: ``describe`` reads a few of the twenty-odd keys."""

    __slots__ = ("_keys", "_made", "_read")

    def __init__(self, keys: Mapping[str, Any], read: Any) -> None:
        self._keys, self._read, self._made = keys, read, {}

    def __getitem__(self, key: str) -> np.ndarray:
        made = self._made.get(key)
        if made is None:
            if key not in self._keys:
                raise KeyError(key)
            made = self._made[key] = self._read(key)
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class IndicatorColumns(Mapping[str, np.ndarray]):
    """An instrument's indicator values by key, in the detectors' order: the indicators'
    outputs are stored columns; the detectors' derived values (``derive``: differences
    and ratios of other values) are computed again when read, for one candle (``at``,
    the step path's arithmetic on that candle's values: the same floats) or for all
    (a new array). 10M candles: 80 MB less per derived key.

    Made only from the vectorised path's results; a derive that reads a derived value
    of the previous candle falls back to the whole column."""

    __slots__ = ("_derived", "_derivers", "_keys", "_series", "_stored")

    def __init__(
        self,
        keys: Sequence[str],
        stored: dict[str, np.ndarray],
        series: InstrumentSeries,
        derivers: Sequence[tuple[Any, tuple[str, ...]]],
    ) -> None:
        self._keys = tuple(keys)
        self._stored = stored
        self._series = series
        self._derivers = tuple(derivers)
        self._derived = frozenset(k for _, ks in derivers for k in ks)

    def __getitem__(self, key: str) -> np.ndarray:
        column = self._stored.get(key)
        if column is not None:
            return column
        if key not in self._derived:
            raise KeyError(key)
        return self._all_derived()[key]

    def _all_derived(self) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {
            c: np.asarray(getattr(self._series, c), dtype=np.float64) for c in CANDLE_COLUMNS
        }
        values.update(self._stored)
        prev = Previous(values)
        for detector, _ in self._derivers:
            values.update(detector.derive(values, prev))
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._stored or key in self._derived

    def _row(self, i: int) -> dict[str, Any]:
        if i < 0:
            return dict.fromkeys(itertools.chain(CANDLE_COLUMNS, self._stored), np.float64("nan"))
        row: dict[str, Any] = {c: getattr(self._series, c)[i] for c in CANDLE_COLUMNS}
        row.update({k: a[i] for k, a in self._stored.items()})
        return row

    def at(self, i: int) -> dict[str, float]:
        """Every value at candle ``i``, as ``float(self[key][i])`` for each key in order."""
        v = self._row(i)
        p = self._row(i - 1)
        try:
            with np.errstate(all="ignore"):  # numpy scalars: x/0 is inf, as on arrays
                for detector, _ in self._derivers:
                    v.update(detector.derive(v, p))
        except KeyError:  # it reads a derived value of the previous candle
            return {k: float(self[k][i]) for k in self._keys}
        return {k: float(v[k]) for k in self._keys}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self.items()),))


class CandleValues(Mapping[str, float]):
    """The values of one candle, ``IndicatorColumns.at(index)`` (``known``: without the
    NaN), computed when first read and then kept. Equal to, printed, copied and pickled
    as that plain dict; ``atr()`` reads one stored column without computing the rest."""

    __slots__ = ("_columns", "_index", "_known", "_values")

    def __init__(self, columns: IndicatorColumns, index: int, known: bool = False) -> None:
        self._columns, self._index, self._known = columns, index, known
        self._values: dict[str, float] | None = None

    def _all(self) -> dict[str, float]:
        if self._values is None:
            values = self._columns.at(self._index)
            self._values = {k: v for k, v in values.items() if v == v} if self._known else values
        return self._values

    def atr(self) -> float:
        """``float(self.get("atr", nan))`` of the values with NaN (see ``known``)."""
        column = self._columns._stored.get("atr")
        if column is not None:
            return float(column.item(self._index))  # (float(column[i]), without a scalar)
        return float(self._columns.at(self._index).get("atr", math.nan))

    def known(self) -> CandleValues:
        """The same values without the NaN (what a context holds)."""
        return self if self._known else CandleValues(self._columns, self._index, True)

    def __getitem__(self, key: str) -> float:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return repr(self._all())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._all(),))


def _compute_use(use: IndicatorUse, values: Mapping[str, np.ndarray], n: int) -> dict:
    spec = registry.get(use.name)
    sources = [np.asarray(values[s], dtype=np.float64) for s in use.sources]
    # An indicator of an indicator (SMA of ATR) starts where its input becomes valid,
    # exactly as the incremental path starts feeding it there.
    valid = np.ones(n, dtype=bool)
    for s in sources:
        valid &= ~np.isnan(s)
    first = int(np.argmax(valid)) if valid.any() else n
    columns = {name: s[first:] for name, s in zip(spec.inputs, sources, strict=True)}
    result = registry.compute(use.name, columns, **use.params) if first < n else {}
    out = {}
    for name, key in zip(spec.outputs, use.outputs, strict=True):
        if not key:
            continue
        if first == 0 and result[name].dtype == np.float64 and result[name].shape == (n,):
            out[key] = result[name]  # already the whole column: no second copy
            continue
        full = np.full(n, np.nan)
        if first < n:
            full[first:] = result[name]
        out[key] = full
    return out


def compute_values(
    series: InstrumentSeries, config: SignalConfig, detectors: list[Detector]
) -> tuple[dict[str, np.ndarray], Previous]:
    """(values, previous values) over the whole series: candle columns, indicators and
    derived values, each an array aligned with the series (the previous ones are made
    when read, see :class:`Previous`)."""
    values, prev, _ = _compute_values(series, config, detectors)
    return values, prev


def _compute_values(
    series: InstrumentSeries, config: SignalConfig, detectors: list[Detector]
) -> tuple[dict[str, np.ndarray], Previous, list[tuple[Detector, tuple[str, ...]]]]:
    """``compute_values`` and each deriving detector with the keys it derived."""
    n = len(series)
    values: dict[str, np.ndarray] = {
        c: np.asarray(getattr(series, c), dtype=np.float64) for c in CANDLE_COLUMNS
    }
    for use in all_uses(config, detectors):
        values.update(_compute_use(use, values, n))
    prev = Previous(values)
    derivers = []
    for detector in detectors:
        derived = detector.derive(values, prev)
        if derived:
            derivers.append((detector, tuple(derived)))
        values.update(derived)
    return values, prev, derivers


def _indicator_keys(values: Mapping[str, Any]) -> list[str]:
    return [k for k in values if k not in CANDLE_COLUMNS]


class _Difference:
    """An indicator output that is exactly the difference of two others (MACD's
    histogram: its kernel stores ``line - signal``), made when read like a derived
    value; kept only after checking it on the whole column."""

    def __init__(self, key: str, a: str, b: str) -> None:
        self.key, self.a, self.b = key, a, b

    def derive(self, v: Mapping[str, Any], p: Mapping[str, Any]) -> dict[str, Any]:
        return {self.key: v[self.a] - v[self.b]}


def _differences(
    values: Mapping[str, np.ndarray], config: SignalConfig, detectors: list[Detector]
) -> list[tuple[Any, tuple[str, ...]]]:
    out: list[tuple[Any, tuple[str, ...]]] = []
    for use in all_uses(config, detectors):
        if use.name == "macd" and len(use.outputs) == 3 and all(use.outputs):
            line, signal, hist = use.outputs
            with np.errstate(all="ignore"):
                same = np.array_equal(values[hist], values[line] - values[signal], equal_nan=True)
            if same:
                out.append((_Difference(hist, line, signal), (hist,)))
    return out


def _indicator_columns(
    values: Mapping[str, np.ndarray],
    series: InstrumentSeries,
    derivers: list[tuple[Any, tuple[str, ...]]],
) -> IndicatorColumns:
    derived = {k for _, keys in derivers for k in keys}
    keys = _indicator_keys(values)
    stored = {k: values[k] for k in keys if k not in derived}
    return IndicatorColumns(keys, stored, series, derivers)


# -- vectorised path -------------------------------------------------------------------


class StrategyRunner:
    """One detector's gate state and cooldown, advanced candle by candle (step path)."""

    __slots__ = ("detector", "last", "state")

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.state = detector.new_state()
        self.last = _NEVER

    def step(self, i: int, code: int) -> int:
        """The kind index that fires at candle ``i`` given its raw event bits, or -1."""
        if not code:
            return -1
        kind = self.detector.gate(self.state, code)
        if kind < 0 or i - self.last <= self.detector.cooldown:
            return -1
        self.last = i
        return kind


def fire_series(detector: Detector, codes: np.ndarray) -> list[tuple[int, int]]:
    """(candle index, kind index) of each signal over a whole series of raw event bits:
    the step runner applied to the (sparse) candles that have any event."""
    return [(i, k) for i, k in fire_array(detector, codes).tolist()]


def fire_array(detector: Detector, codes: np.ndarray) -> np.ndarray:
    """``fire_series`` as an (n, 2) int64 array. The detector's gate runs over every
    event at once (``gate_events``) where the class that defines its ``gate`` gives one;
    the cooldown then passes the gate's fires in order (a cooled-down fire does not
    count as the last)."""
    idx = np.flatnonzero(codes)
    owner = next(k for k in type(detector).__mro__ if "gate" in k.__dict__)
    gate_events = owner.__dict__.get("gate_events")
    if gate_events is None:
        return np.array(_fire_one_by_one(detector, idx, codes[idx]), dtype=np.int64).reshape(-1, 2)
    kinds = gate_events.__get__(detector)(codes[idx])
    gated = np.flatnonzero(kinds >= 0)
    at, kind = idx[gated], kinds[gated]
    cooldown = detector.cooldown
    if cooldown > 0 and len(at):  # else no fire is within a cooldown: indices increase
        keep = np.zeros(len(at), dtype=bool)
        last = _NEVER
        for n, i in enumerate(at.tolist()):
            if i - last > cooldown:
                keep[n] = True
                last = i
        at, kind = at[keep], kind[keep]
    return np.stack([at, kind.astype(np.int64)], axis=1)


def _fire_one_by_one(
    detector: Detector, idx: np.ndarray, codes: np.ndarray
) -> list[tuple[int, int]]:
    # StrategyRunner.step inlined
    gate, state, cooldown = detector.gate, detector.new_state(), detector.cooldown
    last = _NEVER
    fired: list[tuple[int, int]] = []
    for i, code in zip(idx.tolist(), codes.tolist(), strict=True):
        kind = gate(state, code)
        if kind < 0 or i - last <= cooldown:
            continue
        last = i
        fired.append((i, kind))
    return fired


def _describe_all(
    detector: Detector,
    kind_index: int,
    kind: str,
    at: np.ndarray,
    values: Mapping[str, np.ndarray],
    prev: Previous,
    series: InstrumentSeries,
) -> KindColumns:
    """The signals of one kind fired at candles ``at``: ``describe`` runs once on the
    gathered columns (element-wise, the same float arithmetic as on one candle)."""
    v = _Gathered(values, lambda key: values[key][at])
    p = _Gathered(values, lambda key: prev.rows(key, at))
    with np.errstate(all="ignore"):
        direction, strength, evidence = detector.describe(kind_index, v, p)
    n = at.shape[0]
    if not isinstance(direction, Direction) and len(direction) != n:
        raise ValueError(f"{detector.name}: {len(direction)} directions for {n} signals")
    return KindColumns(
        series.instrument,
        kind,
        series.close_time[at],
        v["close"],
        direction if isinstance(direction, Direction) else list(direction),
        strength,
        evidence,
    )


def detect_series(series: InstrumentSeries, config: SignalConfig | None = None) -> SeriesSignals:
    """Run every configured detector over a whole series at once."""
    with gc_paused():
        return _detect_series(series, config)


def _detect_series(series: InstrumentSeries, config: SignalConfig | None) -> SeriesSignals:
    config = config or default_signal_config()
    detectors = build(config)
    values, prev, derivers = _compute_values(series, config, detectors)
    close_time = series.close_time
    instrument = series.instrument
    groups: list[KindColumns] = []
    at_parts: list[np.ndarray] = []
    kind_parts: list[np.ndarray] = []
    for detector in detectors:
        codes = np.asarray(detector.events(values, prev), dtype=np.int64)
        fired = fire_array(detector, codes)
        del codes
        for kind_index in np.unique(fired[:, 1]).tolist():
            at = fired[fired[:, 1] == kind_index, 0]
            kind = detector.kinds[kind_index]
            groups.append(_describe_all(detector, kind_index, kind, at, values, prev, series))
            at_parts.append(at)
            kind_parts.append(np.full(at.shape[0], KIND_ORDER[kind], dtype=np.int64))
    signal_index = np.empty(0, dtype=np.int64)
    group = rows = signal_index
    if at_parts:  # by candle, then kind
        candle_of, kind_of = np.concatenate(at_parts), np.concatenate(kind_parts)
        order = np.lexsort((kind_of, candle_of))
        signal_index = candle_of[order]
        group = np.concatenate(
            [np.full(len(a), g, dtype=np.int32) for g, a in enumerate(at_parts)]
        )[order]
        rows = np.concatenate([np.arange(len(a), dtype=np.int64) for a in at_parts])[order]
    signals = SignalList(groups, group, rows)
    return SeriesSignals(
        instrument=instrument,
        signals=signals,
        signal_index=signal_index,
        indicators=_indicator_columns(
            values, series, _differences(values, config, detectors) + derivers
        ),
        close=values["close"],
        close_time=close_time,
    )


# -- step-by-step path -----------------------------------------------------------------


class _IncrementalUse:
    """An incremental indicator fed from the candle's value dict; it starts at the first
    candle where all its sources are known (as the batch path does)."""

    __slots__ = ("keys", "multi", "outputs", "sources", "started", "update_fn")

    def __init__(self, use: IndicatorUse) -> None:
        spec = registry.get(use.name)
        self.update_fn = spec.make_incremental(**use.params).update
        self.sources = use.sources
        self.keys = [k for k in use.outputs if k]
        self.outputs = [(pos, k) for pos, k in enumerate(use.outputs) if k]
        self.multi = len(spec.outputs) > 1
        self.started = False

    def update(self, v: dict[str, float]) -> None:
        args = [v[s] for s in self.sources]
        if not self.started:
            if any(a != a for a in args):
                for k in self.keys:
                    v[k] = math.nan
                return
            self.started = True
        result = self.update_fn(*args)
        if self.multi:
            for pos, k in self.outputs:
                v[k] = result[pos]
        else:
            v[self.keys[0]] = result


class SignalDetector:
    """One instrument's detectors, fed one candle at a time; the same signals as
    :func:`detect_series` on the same candles."""

    def __init__(self, instrument: str, config: SignalConfig | None = None) -> None:
        self.instrument = instrument
        self.config = config or default_signal_config()
        self._detectors = build(self.config)
        self._uses = [_IncrementalUse(u) for u in all_uses(self.config, self._detectors)]
        self._runners = [StrategyRunner(s) for s in self._detectors]
        self._derivers = [s for s in self._detectors if type(s).derive is not Detector.derive]
        self._prev: dict[str, float] = {}  # the last candle's values, also `values`
        self._index = -1
        self._closes: deque[float] = deque(
            maxlen=max(self.config.context_lookback, RECENT_MOVES) + 1
        )

    @property
    def index(self) -> int:
        """Index of the last candle seen (-1 before the first)."""
        return self._index

    @property
    def values(self) -> dict[str, float]:
        """The latest indicator values (NaN in warm-ups); "atr" is always there."""
        return {k: v for k, v in self._prev.items() if k not in CANDLE_COLUMNS}

    def update(self, candle: Candle) -> list[Signal]:
        """Take the next candle (at its close) and return the signals it fires."""
        if candle.instrument != self.instrument:
            raise ValueError(
                f"detector for {self.instrument!r} was given a candle of {candle.instrument!r}"
            )
        self._index += 1
        i = self._index
        v: dict[str, float] = {
            "open": candle.open,
            "high": candle.high,
            "low": candle.low,
            "close": candle.close,
            "volume": candle.volume,
        }
        for use in self._uses:
            use.update(v)
        p = self._prev or dict.fromkeys(v, math.nan)
        for detector in self._derivers:
            derived = detector.derive(v, p)
            v.update(derived)
            if not self._prev:
                p.update(dict.fromkeys(derived, math.nan))
        found: list[Signal] = []
        for runner in self._runners:
            detector = runner.detector
            kind_index = runner.step(i, int(detector.events(v, p)))
            if kind_index < 0:
                continue
            direction, strength, evidence = detector.describe(kind_index, v, p)
            found.append(
                Signal(
                    instrument=self.instrument,
                    time=candle.close_time,
                    kind=detector.kinds[kind_index],
                    direction=direction,
                    strength=strength,
                    price=candle.close,
                    evidence=evidence,
                )
            )
        found.sort(key=lambda s: KIND_ORDER[s.kind])
        self._prev = v
        self._closes.append(candle.close)
        return found

    def context(self) -> InstrumentContext | None:
        """The brain's view of this instrument after the last candle (None before any)."""
        if self._index < 0:
            return None
        closes = self._closes
        back = min(len(closes) - 1, self.config.context_lookback)
        recent = list(itertools.islice(closes, max(0, len(closes) - 1 - RECENT_MOVES), None))
        return make_context(
            self.instrument, closes[-1], closes[-1 - back], back, self.values, recent
        )
