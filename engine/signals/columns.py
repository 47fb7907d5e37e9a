"""Signals kept as columns and made into :class:`Signal` objects when read.

10M one-minute candles fire about 1.1M signals; as objects (each with its evidence
dict) they took 0.55 GB, and the batches and per-step lookups built from them as much
again. The vectorised path keeps instead what ``describe`` gave for each kind on its
fired candles (:class:`KindColumns`: arrays, or one value for all), lists each
instrument's signals in order as two small integer columns (:class:`SignalList`), and
makes a Signal only when one is read, with exactly the values, types and order the
objects had (``.item()`` gives the same Python scalar as ``.tolist()``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, overload

import numpy as np

from engine.types import Signal

_CHUNK = 4096  # signals made per numpy -> list conversion while iterating

T = TypeVar("T")


class MadeWhenRead(Sequence[T]):
    """A read-only sequence whose item ``i`` is made by ``_make(i)`` on each read and not
    kept. Equal to any sequence of equal items; printed, copied and pickled as the
    plain list. ``NOUN`` names an item in the index error."""

    __slots__ = ()
    NOUN = "item"

    def _make(self, i: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(len(self)))]
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"{self.NOUN} {index} out of range for {n}")
        return self._make(i)

    def __iter__(self) -> Iterator[T]:
        for i in range(len(self)):
            yield self._make(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


class KindColumns:
    """The signals of one kind on one instrument, as ``describe`` gave them on the fired
    candles: for direction, strength and each evidence key either an array (a value per
    signal) or one value shared by all (a configured level stays the very object the
    step path puts there). The float64 columns are kept as one matrix, so a signal's
    floats come out in one ``tolist()``."""

    __slots__ = ("_direction", "_evidence", "_floats", "_instrument", "_kind", "_strength")
    __slots__ += ("_times",)

    def __init__(
        self,
        instrument: str,
        kind: str,
        times: np.ndarray,
        prices: np.ndarray,
        direction: Any,
        strength: Any,
        evidence: Mapping[str, Any],
    ) -> None:
        n = times.shape[0]
        columns: list[np.ndarray] = [prices]

        def place(value: Any) -> tuple[int, Any]:
            # (column in the float matrix, -1) or (-1, the shared value or an array)
            if isinstance(value, np.ndarray) and value.dtype == np.float64:
                if value.shape != (n,):
                    raise ValueError(f"{kind}: a column of {value.shape} for {n} signals")
                columns.append(value)
                return len(columns) - 1, None
            return -1, value

        self._instrument, self._kind, self._times = instrument, kind, times
        self._direction = direction
        self._strength = place(strength)
        self._evidence = tuple((k, *place(v)) for k, v in evidence.items())
        self._floats = np.stack(columns, axis=1) if n else np.empty((0, len(columns)))

    def signal(self, j: int) -> Signal:
        row = self._floats[j].tolist()
        d = self._direction if not isinstance(self._direction, list) else self._direction[j]
        col, value = self._strength
        s = row[col] if col >= 0 else _one(value, j)
        evidence = {k: (row[c] if c >= 0 else _one(v, j)) for k, c, v in self._evidence}
        return Signal(self._instrument, self._times[j].item(), self._kind, d, s, row[0], evidence)


def _one(value: Any, j: int) -> Any:
    """Element ``j`` of an array that is not float64 (as ``tolist`` gives it), or the
    shared value."""
    return value[j].item() if isinstance(value, np.ndarray) else value


class SignalColumns(NamedTuple):
    """Signals as columns, without making them: per signal a code into ``instruments``,
    ``kinds`` and ``directions`` (each value as the Signal holds it), the strength as a
    float64 (``float(signal.strength)``), the count and the time."""

    instruments: tuple[str, ...]
    instrument: np.ndarray  # int64 codes
    kinds: tuple[str, ...]
    kind: np.ndarray
    directions: tuple[Any, ...]
    direction: np.ndarray
    strength: np.ndarray  # float64
    count: np.ndarray  # int64
    time: np.ndarray  # int64 ns


class _Coder:
    """Codes values by first appearance: ``code(value)``; ``values`` in code order."""

    def __init__(self) -> None:
        self._codes: dict[Any, int] = {}

    def code(self, value: Any) -> int:
        return self._codes.setdefault(value, len(self._codes))

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(self._codes)


def signal_columns(lists: Sequence[Sequence[Signal]]) -> SignalColumns:
    """The signals of ``lists``, one after the other, as :class:`SignalColumns`; a
    :class:`SignalList` is read from its columns without making any Signal."""
    inst, kind, direction = _Coder(), _Coder(), _Coder()
    parts: list[tuple[np.ndarray, ...]] = []
    for signals in lists:
        if isinstance(signals, SignalList):
            parts.append(signals._columns(inst, kind, direction))
            continue
        n = len(signals)
        parts.append(
            (
                np.fromiter((inst.code(s.instrument) for s in signals), np.int64, n),
                np.fromiter((kind.code(s.kind) for s in signals), np.int64, n),
                np.fromiter((direction.code(s.direction) for s in signals), np.int64, n),
                np.fromiter((float(s.strength) for s in signals), np.float64, n),
                np.fromiter((int(s.count) for s in signals), np.int64, n),
                np.fromiter((int(s.time) for s in signals), np.int64, n),
            )
        )
    types = (np.int64, np.int64, np.int64, np.float64, np.int64, np.int64)
    cols = [
        np.concatenate([p[c] for p in parts]) if parts else np.empty(0, dtype=t)
        for c, t in enumerate(types)
    ]
    return SignalColumns(inst.values, cols[0], kind.values, cols[1], direction.values, *cols[2:])


class SignalList(MadeWhenRead[Signal]):
    """One instrument's signals in order: signal ``i`` is row ``rows[i]`` of
    ``groups[group[i]]``, made when read (not kept)."""

    __slots__ = ("_group", "_groups", "_rows")
    NOUN = "signal"

    def __init__(self, groups: Sequence[KindColumns], group: np.ndarray, rows: np.ndarray):
        self._groups = tuple(groups)
        self._group = group
        self._rows = rows

    def times(self) -> np.ndarray:
        """The signals' times (int64 ns), in order, without making any Signal."""
        out = np.empty(len(self), dtype=np.int64)
        for g, cols in enumerate(self._groups):
            mine = self._group == g
            out[mine] = cols._times[self._rows[mine]]
        return out

    def __len__(self) -> int:
        return int(self._group.shape[0])

    def _columns(self, inst: _Coder, kind: _Coder, direction: _Coder) -> tuple[np.ndarray, ...]:
        """(instrument, kind, direction codes, strength, count, time) of every signal, in
        order, read from the kinds' columns (see :func:`signal_columns`)."""
        n = len(self)
        out = [np.empty(n, dtype=np.int64) for _ in range(3)]
        strength = np.empty(n, dtype=np.float64)
        time = np.empty(n, dtype=np.int64)
        for g, cols in enumerate(self._groups):
            mine = self._group == g
            rows = self._rows[mine]
            out[0][mine] = inst.code(cols._instrument)
            out[1][mine] = kind.code(cols._kind)
            d = cols._direction
            if isinstance(d, list):
                out[2][mine] = [direction.code(d[j]) for j in rows.tolist()]
            else:
                out[2][mine] = direction.code(d)
            col, value = cols._strength
            if col >= 0:
                strength[mine] = cols._floats[rows, col]
            elif isinstance(value, np.ndarray):
                strength[mine] = [float(value[j].item()) for j in rows.tolist()]
            else:
                strength[mine] = float(value)
            time[mine] = cols._times[rows]
        return (*out, strength, np.ones(n, dtype=np.int64), time)

    def _make(self, i: int) -> Signal:
        return self._groups[self._group[i]].signal(self._rows[i])

    def __iter__(self) -> Iterator[Signal]:
        groups = self._groups
        for lo in range(0, len(self), _CHUNK):
            pairs = zip(
                self._group[lo : lo + _CHUNK].tolist(),
                self._rows[lo : lo + _CHUNK].tolist(),
                strict=True,
            )
            for g, r in pairs:
                yield groups[g].signal(r)


class OrderedSignals:
    """Several instruments' signals in one order: item ``k`` is signal ``pos[k]`` of
    ``lists[which[k]]`` (each list may be a :class:`SignalList` or a plain list)."""

    __slots__ = ("_get", "_lists", "_pos", "_which")

    def __init__(self, lists: Sequence[Sequence[Signal]], which: np.ndarray, pos: np.ndarray):
        self._lists = tuple(lists)
        self._which = which
        self._pos = pos
        # a SignalList's _make skips the index checks: the positions are its own
        self._get = [getattr(x, "_make", x.__getitem__) for x in self._lists]

    def __len__(self) -> int:
        return int(self._which.shape[0])

    def take(self, lo: int, hi: int) -> list[Signal]:
        """Items ``lo`` to ``hi`` (exclusive), made now."""
        get = self._get
        if len(get) == 1:
            return list(map(get[0], self._pos[lo:hi].tolist()))
        return [
            get[w](p)
            for w, p in zip(self._which[lo:hi].tolist(), self._pos[lo:hi].tolist(), strict=True)
        ]


def signal_times(signals: Sequence[Signal]) -> np.ndarray:
    """The times of ``signals`` (int64 ns), without making them when they are columns."""
    if isinstance(signals, SignalList):
        return signals.times()
    return np.fromiter((s.time for s in signals), dtype=np.int64, count=len(signals))


def order_signals(
    lists: Sequence[Sequence[Signal]], steps: Sequence[np.ndarray]
) -> tuple[OrderedSignals, np.ndarray]:
    """The signals of several lists by step (``steps[i][j]``: the step of ``lists[i][j]``),
    ties in list order then each list's own order; and the sorted steps."""
    if not lists:
        empty = np.empty(0, dtype=np.int64)
        return OrderedSignals((), empty, empty), empty
    at = np.concatenate([np.asarray(s, dtype=np.int64) for s in steps])
    which = np.concatenate([np.full(len(x), i, dtype=np.int64) for i, x in enumerate(lists)])
    pos = np.concatenate([np.arange(len(x), dtype=np.int64) for x in lists])
    if len(at) > 1 and not (at[1:] >= at[:-1]).all():
        order = np.argsort(at, kind="stable")  # stable: ties keep the lists' order
        at, which, pos = at[order], which[order], pos[order]
    return OrderedSignals(lists, which, pos), at
