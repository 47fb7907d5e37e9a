"""RuleBrain: deterministic, persona-weighted scoring of a batch's signals.

For each instrument every signal contributes ``strength × weight × count`` (the weight
from the persona, 0 for kinds it does not list). A long signal with a positive weight
adds to the long pressure, a short one to the short pressure; a negative weight turns
a signal against its own direction (a mean-reversion persona fades breakouts).
Neutral signals (volatility, volume) confirm whichever side leads: their sum is added
to the lead's size (or taken from it when their weight is negative), never creating a
direction by themselves. So::

    net   = long − short
    score = sign(net) × max(0, |net| + neutral)

Opposite signals therefore cancel each other in proportion to their weight rather than
being ignored. ``|score| >= entry_threshold`` opens in the score's direction when the
persona allows that direction, the instrument has no position or pending order, the
persona's position limit and cooldown allow. An open position facing an opposite score
of at least the threshold is closed; one of at least half the threshold has its stop
tightened to half the persona's stop distance from the price.
"""

from __future__ import annotations

import math
import weakref
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.brain.base import ReasoningCallback
from engine.brain.persona import TradingPersona
from engine.numfmt import fmt_price
from engine.risk import tradeable
from engine.types import (
    Action,
    Decision,
    Direction,
    InstrumentContext,
    PortfolioState,
    Position,
    Side,
    Signal,
    SignalBatch,
    SizeMode,
    TradePlan,
    TrailingMode,
)

if TYPE_CHECKING:
    from engine.signals.aggregator import BatchView

_SIGN = {Direction.LONG: 1.0, Direction.SHORT: -1.0}


@dataclass(frozen=True, slots=True)
class Term:
    """One signal's part in a score: ``value = strength × weight × count``."""

    kind: str
    strength: float
    weight: float
    count: int
    value: float

    def text(self) -> str:
        return _term_text(self.kind, self.strength, self.weight, self.count)


@dataclass(frozen=True, slots=True)
class Score:
    """The weighted view of one instrument's signals in one batch."""

    instrument: str
    long_terms: tuple[Term, ...]
    short_terms: tuple[Term, ...]
    neutral_terms: tuple[Term, ...]
    ignored: tuple[str, ...]  # kinds the persona gives no weight
    long: float
    short: float
    neutral: float
    net: float
    score: float

    @property
    def agreement(self) -> float:
        """1 when all weighted directional evidence agrees, 0 when it cancels out."""
        return _agreement(self.net, self.long + self.short)

    def explain(self) -> str:
        return _explanation(
            self.instrument,
            self.long,
            [t.text() for t in self.long_terms],
            self.short,
            [t.text() for t in self.short_terms],
            self.net,
            self.neutral,
            [t.text() for t in self.neutral_terms],
            self.score,
            self.ignored,
        )


# A term as the hot path keeps it: (kind, strength, weight, count, value).
_TermRow = tuple[str, float, float, int, float]


def _term_text(kind: str, strength: float, weight: float, count: int) -> str:
    if count != 1:
        return f"{kind} {strength:.2f}×{weight:g}×{count}"
    return f"{kind} {strength:.2f}×{weight:g}"


def _agreement(net: float, total: float) -> float:
    return abs(net) / total if total > 0 else 1.0


def _texts(terms: Sequence[_TermRow]) -> list[str]:
    return [_term_text(k, s, w, c) for k, s, w, c, _ in terms]


def _listed(texts: Sequence[str]) -> str:
    return f" = {' + '.join(texts)}" if texts else ""


def _explanation(
    instrument: str,
    long: float,
    long_texts: Sequence[str],
    short: float,
    short_texts: Sequence[str],
    net: float,
    neutral: float,
    neutral_texts: Sequence[str],
    score: float,
    ignored: Sequence[str],
) -> str:
    text = (
        f"{instrument}: long {long:.2f}{_listed(long_texts)}; "
        f"short {short:.2f}{_listed(short_texts)}; net {net:+.2f}"
    )
    if neutral_texts:
        text += f"; confirm {neutral:+.2f}{_listed(neutral_texts)}"
        if net == 0:
            text += " (no side leads, nothing to confirm)"
    text += f" → score {score:+.2f}"
    if ignored:
        text += f" (weight 0: {', '.join(ignored)})"
    return text


# A signal as scoring reads it: (instrument, kind, strength, count, sign: 1.0 long,
# -1.0 short, None neutral or unknown), from Signals (_rows) or from the merged signal
# columns (_view_rows).
_SignalRow = tuple[str, str, Any, Any, float | None]


def _rows(signals: Iterable[Signal]) -> list[_SignalRow]:
    return [(s.instrument, s.kind, s.strength, s.count, _SIGN.get(s.direction)) for s in signals]


def _weigh(
    signals: Iterable[_SignalRow], weights: Mapping[str, float]
) -> tuple[list[_TermRow], list[_TermRow], list[_TermRow], tuple[str, ...]]:
    """The signals' terms by side (long, short, neutral) and the kinds of weight 0."""
    long_terms: list[_TermRow] = []
    short_terms: list[_TermRow] = []
    neutral_terms: list[_TermRow] = []
    ignored: list[str] = []
    for _, kind, strength, count, sign in signals:
        weight = float(weights.get(kind, 0.0))
        strength = float(strength)
        if not 0.0 <= strength <= 1.0:  # also NaN
            strength = min(max(strength, 0.0), 1.0) if math.isfinite(strength) else 0.0
        count = int(count)
        if count < 1:
            count = 1
        value = strength * weight * count
        if weight == 0.0:
            ignored.append(kind)
            continue
        if sign is None:  # neutral (or unknown) directions
            neutral_terms.append((kind, strength, weight, count, value))
        elif sign * weight > 0:
            long_terms.append((kind, strength, weight, count, abs(value)))
        else:
            short_terms.append((kind, strength, weight, count, abs(value)))
    return long_terms, short_terms, neutral_terms, tuple(dict.fromkeys(ignored))


def _totals(
    long_terms: list[_TermRow], short_terms: list[_TermRow], neutral_terms: list[_TermRow]
) -> tuple[float, float, float, float, float]:
    """long, short, neutral, net and score (see the module doc)."""
    # sum() as score_signals always did (0 when empty); a comprehension only when needed
    long = sum([t[4] for t in long_terms]) if long_terms else 0
    short = sum([t[4] for t in short_terms]) if short_terms else 0
    neutral = sum([t[4] for t in neutral_terms]) if neutral_terms else 0
    net = long - short
    score = math.copysign(max(0.0, abs(net) + neutral), net) if net != 0 else 0.0
    return long, short, neutral, net, score


def score_signals(
    instrument: str, signals: Iterable[Signal], weights: Mapping[str, float]
) -> Score:
    """Score one instrument's signals with the persona's weights (see the module doc)."""
    long_terms, short_terms, neutral_terms, ignored = _weigh(_rows(signals), weights)
    long, short, neutral, net, score = _totals(long_terms, short_terms, neutral_terms)
    return Score(
        instrument,
        tuple(Term(*t) for t in long_terms),
        tuple(Term(*t) for t in short_terms),
        tuple(Term(*t) for t in neutral_terms),
        ignored,
        long,
        short,
        neutral,
        net,
        score,
    )


class _Scored:
    """What a decision needs of an instrument's :class:`Score`, without building one:
    ``score``, ``net``, ``total`` (long + short) and ``text`` (``Score.explain()``)."""

    __slots__ = ("net", "score", "text", "total")

    def __init__(
        self,
        instrument: str,
        signals: Iterable[_SignalRow],
        weights: Mapping[str, float],
    ):
        long_terms, short_terms, neutral_terms, ignored = _weigh(signals, weights)
        long, short, neutral, net, score = _totals(long_terms, short_terms, neutral_terms)
        self.score = score
        self.net = net
        self.total = long + short
        self.text = _explanation(
            instrument,
            long,
            _texts(long_terms),
            short,
            _texts(short_terms),
            net,
            neutral,
            _texts(neutral_terms),
            score,
            ignored,
        )


def _passes(score: float, threshold: float) -> bool:
    return score != 0.0 and abs(score) >= threshold


# ------------------------------------------------------------------------- pre-scoring
SCORE_TOLERANCE = 1e-9
"""Relative error allowed for the vectorised sums (of the terms' absolute values): they
may add in another order than the decision's own (and Python 3.12's ``sum`` compensates),
so a batch is called quiet only when the bound on its scores clears the threshold by it."""

_flat_signals: weakref.WeakKeyDictionary[Any, tuple] = weakref.WeakKeyDictionary()


def _signal_columns(analysis: Any) -> tuple:
    """Every signal of the batches with signals as columns (computed once per analysis):
    batch number (in ``analysis.batch_steps`` order), instrument code, kind code, side
    (+1 long, -1 short, 0 neutral), strength clamped as ``_weigh`` does, count; then the
    kinds by code and the instrument codes by name (codes by first appearance). Read
    from the analysis' columns when its batches are made when read (``merged_columns``),
    else from the batches' signals (:func:`_object_columns`): the same arrays."""
    batches = getattr(analysis, "batches", None)
    if callable(getattr(batches, "merged_columns", None)):
        return _list_columns(batches)
    cached = _flat_signals.get(analysis)
    if cached is None:
        cached = _flat_signals[analysis] = _object_columns(analysis)
    return cached


# per BatchList (a sequence, not hashable: by id, dropped with the list)
_per_list: dict[tuple[Any, int], tuple] = {}


def _kept(make: Any, batches: Any) -> tuple:
    """``make(batches)``, made once per list and kept while the list lives."""
    key = (make, id(batches))
    cached = _per_list.get(key)
    if cached is None:
        cached = _per_list[key] = make(batches)
        weakref.finalize(batches, _per_list.pop, key, None)
    return cached


def _list_columns(batches: Any) -> tuple:
    """``_signal_columns`` of a ``BatchList`` (kept per list, which a BatchView names)."""
    return _kept(_merged_columns, batches)


def _merged_columns(batches: Any) -> tuple:
    return _column_columns(*batches.merged_columns())


def _slices(batches: Any) -> tuple:
    """What ``_view_rows`` reads: where each batch's signals start in ``_list_columns``
    (the batch numbers do not decrease), their columns, and the names of the codes."""
    batch_no, inst, kind, kinds, side, strength, count, codes = _list_columns(batches)
    bounds = np.searchsorted(batch_no, np.arange(int(batches.with_signals.sum()) + 1))
    names = tuple(sorted(codes, key=codes.__getitem__))
    return bounds, inst, kind, side, strength, count, names, kinds


def _view_rows(view: BatchView) -> list[_SignalRow]:
    """The merged signals of a ``BatchView`` as scoring rows, in the batch's order, read
    from its list's ``_signal_columns`` (the oracle's: strengths clamped and counts at
    least 1 as ``_weigh`` makes them, which it then leaves as they are)."""
    bounds, inst, kind, side, strength, count, names, kinds = _kept(_slices, view.batches)
    lo, hi = bounds.item(view.row), bounds.item(view.row + 1)
    if hi - lo <= 4:  # most batches: a few signals (item() is a fast path for one value)
        return [
            (
                names[inst.item(x)],
                kinds[kind.item(x)],
                strength.item(x),
                count.item(x),
                side.item(x) or None,  # side 0.0: neutral
            )
            for x in range(lo, hi)
        ]
    return [
        (names[i], kinds[k], x, c, sign or None)  # side 0.0: neutral
        for i, k, x, c, sign in zip(
            inst[lo:hi].tolist(),
            kind[lo:hi].tolist(),
            strength[lo:hi].tolist(),
            count[lo:hi].tolist(),
            side[lo:hi].tolist(),
            strict=True,
        )
    ]


def _clamped(strength: np.ndarray) -> np.ndarray:
    """Strengths as ``_weigh`` clamps them: into [0, 1], NaN (and what is not finite
    outside the range) to 0."""
    inside = (strength >= 0.0) & (strength <= 1.0)
    clipped = np.where(np.isfinite(strength), np.clip(strength, 0.0, 1.0), 0.0)
    return np.where(inside, strength, clipped)


def _column_columns(batch: np.ndarray, cols: Any) -> tuple:
    """``_signal_columns`` from the merged signals' columns (``BatchList.merged_columns``)."""
    side_of = np.array([_SIGN.get(d, 0.0) for d in cols.directions], dtype=np.float64)
    inst, instruments = _by_appearance(cols.instrument, cols.instruments)
    kind, kinds = _by_appearance(cols.kind, cols.kinds)
    return (
        np.asarray(batch, dtype=np.int64),
        inst,
        kind,
        kinds,
        side_of[cols.direction] if len(side_of) else np.zeros(0),
        _clamped(np.asarray(cols.strength, dtype=np.float64)),
        np.maximum(cols.count, 1).astype(np.float64),
        {name: i for i, name in enumerate(instruments)},
    )


def _by_appearance(code: np.ndarray, values: Sequence[Any]) -> tuple[np.ndarray, tuple]:
    """``code`` (into ``values``) coded again by first appearance, and the values so coded."""
    seen, first = np.unique(code, return_index=True)
    order = seen[np.argsort(first, kind="stable")]
    recode = np.zeros(len(values), dtype=np.int64)
    recode[order] = np.arange(len(order))
    return recode[code], tuple(values[i] for i in order.tolist())


def _object_columns(analysis: Any) -> tuple:
    """``_signal_columns`` from the batches' Signal objects."""
    # typed arrays, not lists of Python numbers: 10M candles give ~1.1M signals
    batch_no, inst, count, kind = array("q"), array("q"), array("q"), array("q")
    side, strength = array("d"), array("d")
    kinds: dict[str, int] = {}
    codes: dict[str, int] = {}
    by_step = analysis.batch_by_step
    for b, step in enumerate(analysis.batch_steps.tolist()):
        for sig in by_step[step].signals:
            batch_no.append(b)
            inst.append(codes.setdefault(sig.instrument, len(codes)))
            kind.append(kinds.setdefault(sig.kind, len(kinds)))
            side.append(_SIGN.get(sig.direction, 0.0))
            x = float(sig.strength)
            if not 0.0 <= x <= 1.0:
                x = min(max(x, 0.0), 1.0) if math.isfinite(x) else 0.0
            strength.append(x)
            count.append(max(1, int(sig.count)))
    return (
        np.array(batch_no, dtype=np.int64),
        np.array(inst, dtype=np.int64),
        np.array(kind, dtype=np.int64),
        tuple(kinds),
        np.array(side),
        np.array(strength),
        np.array(count, dtype=np.float64),
        codes,
    )


def score_bounds(
    analysis: Any, persona: TradingPersona
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """For every batch with signals (rows, in ``analysis.batch_steps`` order) and
    instrument (columns, codes by name), all batches at once: an upper bound of |score|
    (``|long - short| + neutral`` as ``_totals`` sums them, plus the rounding any order
    of summation could make: ``SCORE_TOLERANCE`` of the terms' absolute sum), and the
    score's side where it is certain (+1 long, -1 short: ``long - short`` clears that
    rounding; else 0). NaN bounds (and side 0) where a term is not a number: a NaN
    bound never compares below a threshold."""
    batch_no, inst, kind, kinds, side, strength, count, codes = _signal_columns(analysis)
    n, n_inst = len(analysis.batch_steps), max(1, len(codes))
    if len(batch_no) == 0:
        return np.zeros((n, n_inst)), np.zeros((n, n_inst), dtype=np.int8), codes
    weights = persona.signal_weights
    weight = np.array([float(weights.get(k, 0.0)) for k in kinds])[kind]
    value = strength * weight * count
    magnitude = np.abs(value)
    directional = (side != 0.0) & (weight != 0.0)
    towards_long = side * weight > 0
    group = batch_no * n_inst + inst
    size = n * n_inst
    long = np.bincount(group, np.where(directional & towards_long, magnitude, 0.0), size)
    short = np.bincount(group, np.where(directional & ~towards_long, magnitude, 0.0), size)
    neutral = np.bincount(group, np.where(side == 0.0, value, 0.0), size)
    slack = SCORE_TOLERANCE * np.bincount(group, magnitude, size)
    net = long - short
    bound = np.abs(net) + neutral + slack
    lean = np.where(net > slack, 1, 0) - np.where(net < -slack, 1, 0)
    return bound.reshape(n, n_inst), lean.astype(np.int8).reshape(n, n_inst), codes


_FIRST = (0,)


class HoldOracle:
    """Which of the rule brain's decisions are holds only, known without deciding.

    From the score bounds and certain sides of every batch (:func:`score_bounds`), the
    rules of :func:`_decide` read backwards: an instrument held acts only on a score
    against its side of at least half the threshold (a tightened stop; a close from the
    whole threshold), and one not held only on a score reaching the threshold that
    nothing blocks (a direction the persona trades, no pending order, no cooldown, a
    free position slot). A decision is holds only when no instrument of its batch can
    act: then no close frees a slot, and the book the engine passes (positions and their
    sides, pending orders, last loss) settles the rest exactly. A review (no signals:
    every score 0) always is. ``flat_quiet`` marks the batches that are holds only for an
    empty book. With a threshold that is not positive, only reviews are known to hold."""

    def __init__(self, analysis: Any, persona: TradingPersona) -> None:
        bound, self._lean, codes = score_bounds(analysis, persona)
        self._bound = bound
        self._names = sorted(codes, key=codes.__getitem__)  # column -> instrument
        self._steps = analysis.batch_steps  # sorted: a batch's row by searchsorted
        self._persona = persona
        threshold = float(persona.entry_threshold)
        self._threshold, self._half = threshold, threshold / 2
        self._known = threshold > 0 and math.isfinite(threshold)
        if self._known and len(bound):
            peak = bound.max(axis=1)  # NaN where any bound is NaN
            self.flat_quiet: np.ndarray = peak < threshold
            self._calm = peak < self._half
        else:
            self.flat_quiet = np.zeros(len(bound), dtype=bool)
            self._calm = self.flat_quiet
        self._calm_bytes = self._calm.astype(np.uint8).tobytes()  # fast to index one
        self._one = bound.shape[1] == 1
        self._last_book: tuple[Any, Any, tuple[dict[str, int], set[str], int]] | None = None

    def holds(
        self, step: int, review: bool, portfolio: PortfolioState, row: int | None = None
    ) -> bool:
        """Whether the decision at ``step`` (a review, else the batch with signals
        closing there) is holds only for the book of ``portfolio`` (its positions and
        their sides, pending orders and last loss; ``step`` counts the cooldown).
        ``row``: the batch's index in ``analysis.batch_steps``, when the caller knows it."""
        if review:
            return True
        j = int(self._steps.searchsorted(step)) if row is None else row
        if self._calm_bytes[j]:
            return True
        if not self._known:
            return False
        half = self._half
        if self._one:  # one instrument: not calm, so its column is hot
            row, hot = [self._bound.item(j, 0)], _FIRST
        else:
            row = self._bound[j].tolist()  # a few columns: Python floats, no numpy calls
            hot = [col for col, b in enumerate(row) if not b < half]  # NaN bounds are hot too
            if not hot:
                return True
        persona = self._persona
        held, pending, open_count = self._book(portfolio)
        blocked = open_count >= persona.max_open_positions
        if not blocked and persona.cooldown_after_loss > 0 and portfolio.last_loss_step is not None:
            blocked = persona.cooldown_after_loss - (step - portfolio.last_loss_step) > 0
        lean = [self._lean.item(j, 0)] if self._one else self._lean[j].tolist()
        for col in hot:
            name, side = self._names[col], lean[col]
            if name in held:
                if side != held[name]:  # may face the position
                    return False
            elif not (
                row[col] < self._threshold
                or blocked
                or name in pending
                or (side and not persona.allows("long" if side > 0 else "short"))
            ):
                return False
        return True

    def _book(self, portfolio: PortfolioState) -> tuple[dict[str, int], set[str], int]:
        """The book's held sides by name (+1 long, -1 short), pending names and open
        count; the last book's are kept (run() asks about one book for many steps)."""
        positions, orders = portfolio.positions, portfolio.pending_orders
        last = self._last_book
        if last is not None and last[0] is positions and last[1] is orders:
            return last[2]
        held = {p.instrument: 1 if Side(p.side) is Side.LONG else -1 for p in positions}
        pending = {o.instrument for o in orders}
        facts = (held, pending, len(held) + len(pending - held.keys()))
        if type(positions) is tuple and type(orders) is tuple:  # (of frozen records)
            self._last_book = (positions, orders, facts)
        return facts


def prescore(analysis: Any, persona: TradingPersona) -> np.ndarray:
    """For each batch with signals (``analysis.batch_steps`` order): whether the persona
    might act on it with no position and no pending order, i.e. whether the bound on
    some instrument's |score| reaches the entry threshold (:class:`HoldOracle`). A
    False here is always a decision of holds only."""
    return ~HoldOracle(analysis, persona).flat_quiet


class RuleBrain:
    """The deterministic baseline brain (see the module doc for the arithmetic)."""

    name = "rules"
    model = ""

    def __init__(self, persona: TradingPersona | None = None) -> None:
        self.persona = persona

    def _persona(self, persona: TradingPersona | None) -> TradingPersona:
        persona = persona or self.persona
        if persona is None:
            raise ValueError("RuleBrain needs a persona (at construction or per call)")
        return persona

    def hold_oracle(self, analysis: Any, persona: TradingPersona) -> HoldOracle:
        """See :class:`HoldOracle`: the engine skips, while flat, the batches it calls
        quiet, and makes the decisions it knows to be holds only when they are read."""
        return HoldOracle(analysis, persona)

    def decide(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona | None = None,
        on_reasoning: ReasoningCallback | None = None,
    ) -> Decision:
        persona = self._persona(persona)
        plans, lines = _decide(batch, portfolio, persona)
        reasoning = "\n".join(lines)
        if on_reasoning is not None:
            on_reasoning(reasoning)
        # latency stays 0: the run log must be byte-identical between runs
        return Decision(batch.time, self.name, self.model, tuple(plans), reasoning)

    def decide_unexplained(
        self,
        batch: SignalBatch | BatchView,
        portfolio: PortfolioState,
        persona: TradingPersona | None = None,
    ) -> Decision:
        """``decide()`` without its reasoning (``""``): the same plans, rationales and
        confidences. ``explain()`` gives the reasoning ``decide()`` would have: the
        engine's run() records it to be made when the decision is read. ``batch`` may
        be a :class:`~engine.signals.aggregator.BatchView` (run(): scored from the
        merged signal columns, the batch not made)."""
        persona = persona or self.persona
        if persona is None:
            raise ValueError("RuleBrain needs a persona (at construction or per call)")
        return Decision(batch.time, self.name, self.model, _plans(batch, portfolio, persona), "")

    def explain(
        self, batch: SignalBatch, portfolio: PortfolioState, persona: TradingPersona | None = None
    ) -> str:
        """The reasoning of ``decide(batch, portfolio, persona)``."""
        persona = self._persona(persona)
        return "\n".join(_decide(batch, portfolio, persona)[1])


def _decide(
    batch: SignalBatch | BatchView,
    portfolio: PortfolioState,
    persona: TradingPersona,
) -> tuple[list[TradePlan], list[str]]:
    """The plans and the reasoning's lines (:func:`_plans` makes the same plans without
    the lines)."""
    threshold = persona.entry_threshold
    # (comprehensions only when there is something to iterate: most calls hold nothing)
    positions: dict[str, Position] = (
        {p.instrument: p for p in portfolio.positions} if portfolio.positions else {}
    )
    pending = {o.instrument for o in portfolio.pending_orders} if portfolio.pending_orders else ()
    open_count = len(positions) + (len(pending - positions.keys()) if pending else 0)

    # the batch's signals as rows, by instrument in batch order: a BatchView's (run())
    # from the merged signal columns, without making the batch
    if isinstance(batch, SignalBatch) or not hasattr(batch, "batches"):
        rows = _rows(batch.signals)
    else:
        rows = _view_rows(batch)
    by_instrument: dict[str, list[_SignalRow]] = {}
    for row in rows:
        by_instrument.setdefault(row[0], []).append(row)
    instruments = sorted(by_instrument.keys() | positions.keys() if positions else by_instrument)
    weights = persona.signal_weights
    scores: dict[str, _Scored] = {}
    for inst in instruments:
        scores[inst] = _Scored(inst, by_instrument.get(inst, ()), weights)

    cooldown_left = 0
    if persona.cooldown_after_loss > 0 and portfolio.last_loss_step is not None:
        elapsed = batch.step - portfolio.last_loss_step
        cooldown_left = max(0, persona.cooldown_after_loss - elapsed)

    outcome: dict[str, list[tuple[TradePlan, str]]] = {}
    # Reviews first: a close frees its slot, and the same opposite score may then flip
    # the position (close and open the other side at the same open).
    # Contexts are read only where a plan needs a price (batch.context may build each
    # one on first read).
    contexts = batch.context
    flips: set[str] = set()
    for inst in positions:
        review = _review(positions[inst], scores[inst], contexts, persona)
        outcome[inst] = [review]
        if review[0].action is Action.CLOSE:
            open_count -= 1
            flips.add(inst)
    # Entries compete for position slots: the strongest score goes first, then by name.
    if positions:
        candidates = [i for i in instruments if i not in positions or i in flips]
    else:
        candidates = instruments.copy()
    if len(candidates) > 1:
        candidates.sort(key=lambda i: (-abs(scores[i].score), i))
    for inst in candidates:
        entry = _entry(
            inst,
            scores[inst],
            contexts,
            persona,
            inst in pending,
            cooldown_left,
            open_count,
        )
        if entry[0].action is not Action.HOLD:
            open_count += 1
            outcome.setdefault(inst, []).append(entry)
        elif inst not in flips:
            outcome[inst] = [entry]

    plans: list[TradePlan] = []
    lines = [
        f"{persona.name}: threshold {threshold:g}, "
        f"{len(positions)} open / {persona.max_open_positions} max, "
        f"{len(rows)} signal(s) on {len(by_instrument)} instrument(s)"
    ]
    if cooldown_left:
        lines[0] += f", cooling down {cooldown_left} more step(s) after a loss"
    for conflict in batch.conflicts:
        lines.append(f"conflict ({conflict.kind}): {conflict.detail}")
    for inst in instruments:
        lines.append(scores[inst].text)
        for plan, line in outcome[inst]:
            lines.append(f"  {line}")
            plans.append(plan)
    return plans, lines


def _normalised(signals: Iterable[Signal]) -> list[_SignalRow]:
    """``_rows(signals)`` with strengths and counts as ``_weigh`` makes them (a view's
    rows already are: see ``_view_rows``)."""
    rows = []
    for s in signals:
        strength = float(s.strength)
        if not 0.0 <= strength <= 1.0:  # also NaN
            strength = min(max(strength, 0.0), 1.0) if math.isfinite(strength) else 0.0
        count = int(s.count)
        rows.append(
            (s.instrument, s.kind, strength, count if count >= 1 else 1, _SIGN.get(s.direction))
        )
    return rows


def _plans(
    batch: SignalBatch | BatchView, portfolio: PortfolioState, persona: TradingPersona
) -> tuple[TradePlan, ...]:
    """The plans of ``_decide(batch, portfolio, persona)``, by the same rules and the
    same float operations in the same order, without its reasoning and in one pass
    (run()'s path: most decisions are one instrument's entry, with no position)."""
    threshold = persona.entry_threshold
    # per instrument, in batch order: its terms' values by side (_weigh's), long and
    # short as absolute values
    weights = persona.signal_weights
    terms: dict[str, tuple[list[float], list[float], list[float]]] = {}
    if isinstance(batch, SignalBatch) or not hasattr(batch, "batches"):
        for name, kind, strength, count, sign in _normalised(batch.signals):
            sides = terms.get(name)
            if sides is None:
                sides = terms[name] = ([], [], [])
            weight = float(weights.get(kind, 0.0))
            if weight == 0.0:
                continue
            value = strength * weight * count
            if sign is None:
                sides[2].append(value)
            elif sign * weight > 0:
                sides[0].append(abs(value))
            else:
                sides[1].append(abs(value))
    else:  # a BatchView: _view_rows' rows read as they are weighed, without the tuples
        bounds, inst_c, kind_c, side_c, strength_c, count_c, names, kinds = _kept(
            _slices, batch.batches
        )
        row = batch.row
        for x in range(bounds.item(row), bounds.item(row + 1)):
            name = names[inst_c.item(x)]
            sides = terms.get(name)
            if sides is None:
                sides = terms[name] = ([], [], [])
            weight = float(weights.get(kinds[kind_c.item(x)], 0.0))
            if weight == 0.0:
                continue
            value = strength_c.item(x) * weight * count_c.item(x)
            sign = side_c.item(x)
            if not sign:  # side 0.0: neutral
                sides[2].append(value)
            elif sign * weight > 0:
                sides[0].append(abs(value))
            else:
                sides[1].append(abs(value))
    positions = portfolio.positions
    orders = portfolio.pending_orders
    if not positions and len(terms) == 1:
        # the usual decision: one instrument, no position; the entry below, for it alone
        ((inst, sides),) = terms.items()
        pending = {o.instrument for o in orders} if orders else ()
        return (
            _open(
                inst,
                *_score(sides),
                threshold,
                batch.context,
                persona,
                inst in pending,
                _cooling(batch, portfolio, persona),
                len(pending),
            ),
        )
    if positions:
        held = {p.instrument: p for p in positions}
        instruments = sorted(terms.keys() | held.keys())
    else:
        held = {}
        instruments = sorted(terms)
    # (score, net, long + short) by instrument, as _totals makes them
    scored: dict[str, tuple[float, float, float]] = {}
    for inst in instruments:
        sides = terms.get(inst)
        scored[inst] = (0.0, 0, 0) if sides is None else _score(sides)

    pending = {o.instrument for o in orders} if orders else ()
    open_count = len(held) + (len(pending - held.keys()) if pending else 0)
    contexts = batch.context  # read only where a plan needs a price
    outcome: dict[str, list[TradePlan]] = {}
    flips: set[str] = set()
    for inst, pos in held.items():  # reviews first (see _decide)
        side = pos.side
        plan = _held(
            pos, side if type(side) is Side else Side(side), *scored[inst], contexts, persona
        )
        outcome[inst] = [plan]
        if plan.action is Action.CLOSE:
            open_count -= 1
            flips.add(inst)

    # entries compete for position slots: the strongest score first, then by name
    candidates = [i for i in instruments if i not in held or i in flips] if held else instruments
    if len(candidates) > 1:
        candidates = sorted(candidates, key=lambda i: (-abs(scored[i][0]), i))
    cooldown = _cooling(batch, portfolio, persona)
    for inst in candidates:
        plan = _open(
            inst, *scored[inst], threshold, contexts, persona, inst in pending, cooldown, open_count
        )
        if plan.action is not Action.HOLD:
            open_count += 1
            if inst in outcome:
                outcome[inst].append(plan)
            else:
                outcome[inst] = [plan]
        elif inst not in flips:
            outcome[inst] = [plan]
    if len(instruments) == 1:
        return tuple(outcome[instruments[0]])
    return tuple(plan for inst in instruments for plan in outcome[inst])


def _score(sides: tuple[list[float], list[float], list[float]]) -> tuple[float, float, float]:
    """(score, net, long + short) of an instrument's term values by side, as ``_totals``
    makes them."""
    long_values, short_values, neutral_values = sides
    long = sum(long_values) if long_values else 0
    short = sum(short_values) if short_values else 0
    net = long - short
    if net != 0:
        neutral = sum(neutral_values) if neutral_values else 0
        return math.copysign(max(0.0, abs(net) + neutral), net), net, long + short
    return 0.0, net, long + short


def _cooling(batch: Any, portfolio: PortfolioState, persona: TradingPersona) -> bool:
    """Whether the persona is still cooling down after a loss at ``batch.step``."""
    if persona.cooldown_after_loss > 0 and portfolio.last_loss_step is not None:
        return persona.cooldown_after_loss - (batch.step - portfolio.last_loss_step) > 0
    return False


def _open(
    inst: str,
    score: float,
    net: float,
    total: float,
    threshold: float,
    contexts: Mapping[str, InstrumentContext],
    persona: TradingPersona,
    has_pending: bool,
    cooldown: bool,
    open_count: int,
) -> TradePlan:
    """``_entry``'s plan."""
    if score == 0.0 or not abs(score) >= threshold:
        why = f"|{score:+.2f}| below threshold {threshold:g}"
        return TradePlan(inst, Action.HOLD, confidence=0.0, rationale=why)
    conf = _conf(score, net, total, threshold)
    direction = "long" if score > 0 else "short"
    if direction not in persona.allowed_directions:
        why = f"{direction} signal but persona trades {'/'.join(persona.allowed_directions)} only"
    elif has_pending:
        why = "an entry order is already pending"
    elif cooldown:
        why = f"{direction} score passes but cooling down after a loss"
    elif open_count >= persona.max_open_positions:
        why = f"{direction} score passes but {persona.max_open_positions} position(s) max reached"
    else:
        ctx = contexts.get(inst)
        if ctx is not None:
            price, atr = ctx.price, ctx.atr
            if (
                0.0 < price < math.inf and 0.0 < atr < math.inf
                if type(price) is float and type(atr) is float
                else tradeable(ctx)
            ):
                sign = 1.0 if direction == "long" else -1.0
                t = persona.trailing
                return TradePlan(
                    inst,
                    Action.OPEN_LONG if direction == "long" else Action.OPEN_SHORT,
                    None,
                    persona.risk_per_trade,
                    SizeMode.RISK,
                    price - sign * persona.stop_atr * atr,
                    price + sign * persona.target_atr * atr,
                    t.bound(atr) if t is not None else None,
                    conf,
                    f"score {score:+.2f} >= {threshold:g}: {direction} at market, "
                    f"stop {persona.stop_atr:g} ATR, target {persona.target_atr:g} ATR",
                )
        why = "no valid price/ATR to place a stop"
    return TradePlan(inst, Action.HOLD, confidence=conf, rationale=why)


def _conf(score: float, net: float, total: float, threshold: float) -> float:
    """A plan's confidence: the score's conviction times the signals' agreement."""
    conviction = min(1.0, abs(score) / (2 * threshold)) if threshold > 0 else 1.0
    return round(conviction * _agreement(net, total), 4)


def _hold(inst: str, why: str, confidence: float = 0.0) -> tuple[TradePlan, str]:
    return TradePlan(inst, Action.HOLD, confidence=confidence, rationale=why), f"hold: {why}"


def _entry(
    inst: str,
    sc: _Scored,
    contexts: Mapping[str, InstrumentContext],
    persona: TradingPersona,
    has_pending: bool,
    cooldown_left: int,
    open_count: int,
) -> tuple[TradePlan, str]:
    """``_open``'s plan with its line of the reasoning (the same rules, spelled out)."""
    threshold = persona.entry_threshold
    if not _passes(sc.score, threshold):
        return _hold(inst, f"|{sc.score:+.2f}| below threshold {threshold:g}")
    direction = "long" if sc.score > 0 else "short"
    conf = _conf(sc.score, sc.net, sc.total, threshold)
    if not persona.allows(direction):
        return _hold(
            inst,
            f"{direction} signal but persona trades {'/'.join(persona.allowed_directions)} only",
            conf,
        )
    if has_pending:
        return _hold(inst, "an entry order is already pending", conf)
    if cooldown_left:
        return _hold(inst, f"{direction} score passes but cooling down after a loss", conf)
    if open_count >= persona.max_open_positions:
        return _hold(
            inst,
            f"{direction} score passes but {persona.max_open_positions} position(s) max reached",
            conf,
        )
    ctx = contexts.get(inst)
    if not tradeable(ctx):
        return _hold(inst, "no valid price/ATR to place a stop", conf)
    assert ctx is not None
    sign = 1.0 if direction == "long" else -1.0
    price, atr = ctx.price, ctx.atr
    stop = price - sign * persona.stop_atr * atr
    target = price + sign * persona.target_atr * atr
    t = persona.trailing
    trailing = t.bound(atr) if t is not None else None
    rationale = (
        f"score {sc.score:+.2f} >= {threshold:g}: {direction} at market, "
        f"stop {persona.stop_atr:g} ATR, target {persona.target_atr:g} ATR"
    )
    plan = TradePlan(
        inst,
        Action.OPEN_LONG if direction == "long" else Action.OPEN_SHORT,
        entry_price=None,
        size=persona.risk_per_trade,
        size_mode=SizeMode.RISK,
        stop_loss=stop,
        take_profit=target,
        trailing=trailing,
        confidence=conf,
        rationale=rationale,
    )
    trail_text = ""
    if t is not None:
        unit = " ATR" if t.mode == TrailingMode.ATR else "%"
        scale = 1.0 if t.mode == TrailingMode.ATR else 100.0
        trail_text = f", trailing {t.distance * scale:g}{unit}" + (
            f" after {t.activation * scale:g}{unit}" if t.activation else ""
        )
    line = (
        f"|{sc.score:+.2f}| >= {threshold:g} → open {direction} at market ~{fmt_price(price)}: "
        f"stop {fmt_price(stop)} ({persona.stop_atr:g} ATR of {fmt_price(atr)}), "
        f"target {fmt_price(target)} ({persona.target_atr:g} ATR){trail_text}, "
        f"risk {persona.risk_per_trade:.2%}"
    )
    return plan, line


def _review(
    pos: Position,
    sc: _Scored,
    contexts: Mapping[str, InstrumentContext],
    persona: TradingPersona,
) -> tuple[TradePlan, str]:
    """``_held``'s plan for a position, and its line of the reasoning."""
    side = Side(pos.side)
    plan = _held(pos, side, sc.score, sc.net, sc.total, contexts, persona)
    if plan.action is Action.CLOSE:
        return plan, f"{plan.rationale} → close {side.value}"
    if plan.action is Action.ADJUST:
        return plan, plan.rationale
    return plan, f"hold: {plan.rationale}"


def _held(
    pos: Position,
    side: Side,
    score: float,
    net: float,
    total: float,
    contexts: Mapping[str, InstrumentContext],
    persona: TradingPersona,
) -> TradePlan:
    """The review of a position held on ``side``: close it on a score against it reaching
    the threshold, tighten its stop on one of half the threshold, else keep it."""
    inst, threshold = pos.instrument, persona.entry_threshold
    sign = 1.0 if side is Side.LONG else -1.0
    against = -sign * score  # > 0 when the score points against the position
    conf = _conf(score, net, total, threshold)
    if against > 0 and _passes(against, threshold):
        why = f"opposite score {score:+.2f} reaches threshold {threshold:g}"
        return TradePlan(inst, Action.CLOSE, confidence=conf, rationale=why)
    if (
        against > 0
        and threshold > 0
        and against >= threshold / 2
        and tradeable(ctx := contexts.get(inst))
    ):
        assert ctx is not None
        new_stop = ctx.price - sign * 0.5 * persona.stop_atr * ctx.atr
        current = [s for s in (pos.stop_loss, pos.trail_stop) if s is not None]
        if not current or (
            new_stop > max(current) if side is Side.LONG else new_stop < min(current)
        ):
            why = (
                f"opposite score {score:+.2f} >= half threshold {threshold / 2:g}: "
                f"tighten stop to {fmt_price(new_stop)} ({0.5 * persona.stop_atr:g} ATR)"
            )
            return TradePlan(
                inst,
                Action.ADJUST,
                stop_loss=new_stop,
                take_profit=pos.take_profit,
                trailing=pos.trailing,
                confidence=conf,
                rationale=why,
            )
    why = f"keep {side.value} (score {score:+.2f})"
    return TradePlan(inst, Action.HOLD, confidence=conf, rationale=why)
