"""The decisions of a run in order, the ones known to be holds only made when first read.

``run()`` asks a brain that offers a hold oracle (the rule brain) only for the batches
that may act; a decision the oracle knows to be holds only is recorded as what it was
asked (:class:`Later`: the step, whether it was a review, the portfolio) and made the
first time it is read, by the same brain, RiskGuard and the same code as an eager one,
so it is the same Decision. A summary that only counts decisions never builds them;
the run log, ``--json``, the report and the TUI read them and get them all.
"""

from __future__ import annotations

import copy
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


class DecisionLog(Sequence[Decision]):
    """A sequence of Decisions whose :class:`Later` items ``make`` turns into Decisions
    on first read (each made once, then kept). Equal to any sequence of equal items."""

    __slots__ = ("_items", "_make")

    def __init__(
        self,
        make: Callable[[Later], Decision] | None = None,
        items: list[Decision | Later] | None = None,
    ) -> None:
        self._make = make
        self._items: list[Decision | Later] = [] if items is None else items

    def append(self, decision: Decision) -> None:
        self._items.append(decision)

    def defer(self, later: Later) -> None:
        if self._make is None:
            raise ValueError("this decision log cannot make decisions later")
        self._items.append(later)

    @property
    def pending(self) -> int:
        """How many decisions are not made yet."""
        return sum(type(item) is Later for item in self._items)

    def snapshot(self) -> DecisionLog:
        """The decisions so far, unaffected by later appends."""
        return DecisionLog(self._make, list(self._items))

    def __deepcopy__(self, memo: dict[int, Any]) -> DecisionLog:
        # The maker is not state (it holds the brain, which a copy must share: the TUI's
        # step-back snapshots deep-copy the log); the items are.
        return DecisionLog(self._make, copy.deepcopy(self._items, memo))

    def _get(self, i: int) -> Decision:
        item = self._items[i]
        if type(item) is Later:
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
