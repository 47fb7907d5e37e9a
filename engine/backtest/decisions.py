"""The decisions of a run in order, the ones known to be holds only made when first read.

``run()`` asks a brain that offers a hold oracle (the rule brain) only for the batches
that may act; a decision the oracle knows to be holds only is recorded as what it was
asked (:class:`Later`: the step, whether it was a review, the portfolio) and made the
first time it is read, by the same brain, RiskGuard and the same code as an eager one,
so it is the same Decision. A decision the brain was asked for is made without its
reasoning text (:class:`Unexplained`), which the brain writes when it is first read. A
summary that only counts decisions never builds them; the run log, ``--json``, the
report and the TUI read them and get them all.
"""

from __future__ import annotations

import copy
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, overload

from engine.types import Decision, PortfolioState


class Later(NamedTuple):
    """A decision to be made when first read: asked at ``step`` (a review when
    ``review``, else the batch with signals closing there) with ``portfolio``. Its
    positions and their sides, pending orders, cash and last loss are those at ``step``;
    when the engine passed the step without visiting it, the marks (prices, equity) and
    trailing stops are those the broker last valued, which a decision of holds only
    does not read."""

    step: int
    review: bool
    portfolio: PortfolioState


class Unexplained(NamedTuple):
    """A decision made without its reasoning (``decision.reasoning`` is ``""``), whose
    reasoning is made when first read: the brain's ``explain()`` of the batch at
    ``step`` (a review when ``review``) with ``portfolio``, the book it decided on."""

    decision: Decision
    step: int
    review: bool
    portfolio: PortfolioState


class _LaterRows:
    """The :class:`Later` items of a log as typed columns (one row each: step, review
    flag, time, and the index of its book, the portfolio shared by a run of deferred
    steps), so that a deferred decision costs about 25 bytes plus its run's book, not
    the ~300 of its objects (10M candles: ~1.4M deferred decisions). Append-only: a
    snapshot shares it."""

    __slots__ = ("book", "books", "review", "step", "time")

    def __init__(self) -> None:
        self.step, self.time, self.book = array("q"), array("q"), array("q")
        self.review = array("b")
        self.books: list[PortfolioState] = []  # a row's cash, equity, book, last loss

    @staticmethod
    def fits(later: Later) -> bool:
        p = later.portfolio
        return (
            type(later.step) is int
            and later.step == p.step
            and type(p.time) is int
            and type(later.review) is bool
        )

    def add(self, later: Later) -> int:
        p = later.portfolio
        return self.add_run([later.step], [later.review], [p.time], p)

    def add_run(
        self, steps: Sequence[int], reviews: Sequence[bool], times: Sequence[int], book: Any
    ) -> int:
        """One row per step (with its review flag and time, Python ints and bools), each
        with the rest of the portfolio ``book``; the first row's index."""
        first = len(self.step)
        k = len(steps)
        if not k:
            return first
        self.step.extend(steps)
        self.review.extend(reviews)
        self.time.extend(times)
        if k == 1:
            self.book.append(len(self.books))
        else:
            self.book.extend([len(self.books)] * k)
        self.books.append(book)
        return first

    def get(self, row: int) -> Later:
        step = self.step[row]
        book = self.books[self.book[row]]
        return Later(step, bool(self.review[row]), _at(book, step, self.time[row]))


def _at(book: PortfolioState, step: int, time: int) -> PortfolioState:
    """``book`` as asked at ``step`` (closing at ``time``)."""
    return PortfolioState(
        time, step, book.cash, book.equity, book.positions, book.pending_orders, book.last_loss_step
    )


class _Deferred:
    """The marker of an item whose Later is a row of the log's ``_LaterRows``."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_DEFERRED"  # one object, pickled by name


_DEFERRED = _Deferred()
_INT, _BOOL = {int}, {bool}


class DecisionLog(Sequence[Decision]):
    """A sequence of Decisions whose :class:`Later` and :class:`Unexplained` items
    ``make`` turns into Decisions on first read (each made once, then kept). Equal to
    any sequence of equal items."""

    __slots__ = ("_items", "_later", "_make", "_row")

    def __init__(
        self,
        make: Callable[[Later | Unexplained], Decision] | None = None,
        items: list[Decision | Later] | None = None,
    ) -> None:
        self._make = make
        self._items: list[Any] = [] if items is None else items
        self._later = _LaterRows()
        self._row = array("q", [-1] * len(self._items))  # item -> row of _later, or -1

    def append(self, decision: Decision) -> None:
        self._items.append(decision)
        self._row.append(-1)

    def append_unexplained(self, item: Unexplained) -> None:
        """Append ``item.decision``, its reasoning made when first read."""
        if self._make is None:
            raise ValueError("this decision log cannot make decisions later")
        self._items.append(item)
        self._row.append(-1)

    def defer(self, later: Later) -> None:
        if self._make is None:
            raise ValueError("this decision log cannot make decisions later")
        if _LaterRows.fits(later):
            self._row.append(self._later.add(later))
            self._items.append(_DEFERRED)
        else:
            self._row.append(-1)
            self._items.append(later)

    def defer_run(
        self,
        steps: Sequence[int],
        reviews: Sequence[bool],
        times: Sequence[int],
        book: PortfolioState,
    ) -> None:
        """``defer`` for each of ``steps``, asked with ``book`` at that step (its own
        ``step`` and ``time``; the rest of the book is the same for all), in one go."""
        if self._make is None:
            raise ValueError("this decision log cannot make decisions later")
        k = len(steps)
        if not (
            type(steps[0]) is int and type(times[0]) is int and type(reviews[0]) is bool
            if k == 1  # (most runs are one step)
            else {*map(type, steps), *map(type, times)} == _INT  # (C loops: runs are long)
            and {*map(type, reviews)} == _BOOL
        ):
            for step, review, time in zip(steps, reviews, times, strict=True):
                self.defer(Later(step, review, _at(book, step, time)))
            return
        row = self._later.add_run(steps, reviews, times, book)
        if k == 1:
            self._row.append(row)
            self._items.append(_DEFERRED)
        elif k:
            self._row.extend(range(row, row + k))
            self._items.extend([_DEFERRED] * k)

    @property
    def pending(self) -> int:
        """How many decisions are not made yet."""
        return sum(type(item) is Later or item is _DEFERRED for item in self._items)

    def laters(self) -> list[Later]:
        """The decisions not made yet, as they were asked (nothing is made)."""
        return [
            self._later.get(self._row[i]) if item is _DEFERRED else item
            for i, item in enumerate(self._items)
            if item is _DEFERRED or type(item) is Later
        ]

    def snapshot(self) -> DecisionLog:
        """The decisions so far, unaffected by later appends."""
        copy = DecisionLog(self._make, list(self._items))
        copy._later = self._later  # append-only: the rows so far never change
        copy._row = array("q", self._row)
        return copy

    def __deepcopy__(self, memo: dict[int, Any]) -> DecisionLog:
        # The maker is not state (it holds the brain, which a copy must share: the TUI's
        # step-back snapshots deep-copy the log); the items are. The rows are shared:
        # append-only, and what they hold is immutable.
        log = DecisionLog(self._make, copy.deepcopy(self._items, memo))
        log._later = self._later
        log._row = array("q", self._row)
        return log

    def _get(self, i: int) -> Decision:
        item = self._items[i]
        if item is _DEFERRED:
            item = self._later.get(self._row[i])
        if type(item) is Later or type(item) is Unexplained:
            assert self._make is not None
            item = self._items[i] = self._make(item)
        return item  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Decision: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Decision, ...]: ...

    def __getitem__(self, index: int | slice) -> Decision | tuple[Decision, ...]:
        if isinstance(index, slice):
            return tuple(self._get(i) for i in range(*index.indices(len(self._items))))
        return self._get(index)

    def __iter__(self) -> Iterator[Decision]:
        for i in range(len(self._items)):
            yield self._get(i)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"DecisionLog({len(self)} decisions, {self.pending} not made yet)"
