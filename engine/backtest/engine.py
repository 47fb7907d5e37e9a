"""The backtest engine: one persona, one brain, one broker over a merged market stream.

One code path serves both ways of driving it (``_process`` handles one step):

- ``step()`` processes the next merged step and returns a :class:`StepEvent` (the TUI);
- ``run()`` processes only the steps where something can happen, and at those only the
  candles that matter: a step must be processed in Python when a batch with signals
  closes there, when an open position is due for review, or when the broker says
  (``next_event_index``, a compiled scan) that an instrument's candle there can fill an
  order, expire it, hit a holding limit or touch a stop, target or trail; only those
  instruments' candles reach the broker. Each instrument's next possible event is
  searched again only when the broker's state on it changes (``watch.EventWatch``).
  On every other candle the
  broker would do nothing (it ratchets trails over skipped candles itself, and they are
  caught up before a brain sees them), and the equity is a linear function of the
  closes, so it is computed for all quiet ranges at once.

Both give the same decisions, fills and trades and the same equity samples bit for bit
(tests prove it): the equity model ``cash-like constant + sum(signed qty x close)`` is
refreshed at the same steps in both modes, whenever the broker's fills change, and the
broker values what is held with the same marks in both (see ``_process``).

Rules of time at step t: the broker first sees the step's candles (orders decided
earlier fill at these opens; stops and targets are checked); then the signals of t are
known, the brain decides at the close of t, RiskGuard validates every Decision, and the
orders reach the broker, which fills them at the instrument's next open at the
earliest. A brain that raises becomes a hold Decision with the error; the replay goes
on. The brain is asked for batches holding signals, and (``review_positions``) every
``review_interval`` steps while a position is open, with a batch of no signals.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import time as _time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backtest.analysis import MarketAnalysis, analyse
from engine.backtest.config import BacktestConfig, BacktestError, ProgressCallback
from engine.backtest.decisions import DecisionLog, Later, Unexplained
from engine.backtest.result import BacktestResult, BrainStats
from engine.backtest.watch import EventWatch
from engine.brain.base import Brain, ReasoningCallback
from engine.brain.persona import TradingPersona, load_persona
from engine.broker import Broker
from engine.risk import RiskGuard
from engine.runtime import gc_paused
from engine.types import (
    Action,
    Candle,
    Decision,
    ExitReason,
    Fill,
    InstrumentContext,
    InstrumentSeries,
    PortfolioState,
    SignalBatch,
    StepEvent,
    Trade,
    TradePlan,
    TrailingMode,
)

if TYPE_CHECKING:
    from engine.signals.aggregator import BatchView


class BacktestEngine:
    """Replays the market for one persona. See the module docstring for the rules."""

    def __init__(
        self,
        series_list: Sequence[InstrumentSeries],
        persona: TradingPersona | str,
        brain: Brain,
        config: BacktestConfig | None = None,
        *,
        analysis: MarketAnalysis | None = None,
        on_reasoning: ReasoningCallback | None = None,
        prescore: bool = True,
    ) -> None:
        self.config = config if config is not None else BacktestConfig()
        self.persona = persona if isinstance(persona, TradingPersona) else load_persona(persona)
        self.brain = brain
        self.on_reasoning = on_reasoning
        if analysis is None:
            if not series_list:
                raise BacktestError("a backtest needs at least one instrument's candles")
            analysis = analyse(series_list, self.config.signal)
        self.analysis = analysis
        if len(analysis) == 0:
            raise BacktestError("the market window holds no candles")
        self._rows = [analysis.arrays[name] for name in analysis.instruments]
        self._row_of = {name: i for i, name in enumerate(analysis.instruments)}
        self._candle_index = analysis.stream.candle_index
        self._review_every = self.config.review_steps()
        self._review = bool(self.config.review_positions)
        self._several = len(self._rows) > 1
        n = self._n = len(analysis)
        self._dense = [len(arr.step_of_candle) == n for arr in self._rows]
        self._batch_list = [int(x) for x in analysis.batch_steps.tolist()]
        self._times = analysis.times
        # A brain's hold oracle (the rule brain's pre-scoring) tells run() which decisions
        # are holds only: those are made when first read (DecisionLog), and while the
        # book is flat the batches it calls quiet are skipped without being visited.
        self._oracle: Any = None
        self._quiet: np.ndarray | None = None
        self._loud: np.ndarray | None = None
        oracle = getattr(brain, "hold_oracle", None)
        if prescore and on_reasoning is None and callable(oracle) and self._batch_list:
            self._oracle = oracle(analysis, self.persona)
            self._quiet = np.asarray(self._oracle.flat_quiet, dtype=bool)
            # for each batch, the first at or after it that is not quiet while flat
            loud = np.where(self._quiet, len(self._quiet), np.arange(len(self._quiet)))
            self._loud = np.minimum.accumulate(loud[::-1])[::-1]
        # with the oracle, run() makes a decision's reasoning when it is read: a brain
        # that can decide without it and explain later (not one whose gate may answer
        # for it: that answer's reasoning is its own)
        self._explains = (
            callable(getattr(brain, "decide_unexplained", None))
            and callable(getattr(brain, "explain", None))
            and not callable(getattr(brain, "skipped", None))
        )
        # within one fast-forward: the step where _defer_holds heard the oracle say no
        self._acting = -1
        self.reset()

    # ---------------------------------------------------------------- state
    def reset(self) -> None:
        """Back to the first step with a fresh broker (and a fresh brain state if it has one)."""
        reset = getattr(self.brain, "reset", None)
        if callable(reset):
            reset()
        self.broker = Broker(self.config.broker_config(), list(self.analysis.instruments))
        self.guard = RiskGuard(list(self.analysis.instruments), self.persona)
        self.step_index = 0
        later = _HoldsLater(self.analysis, self.brain, self.persona, self.guard)
        self.decisions = DecisionLog(later)
        self.stats = BrainStats()
        n = len(self.analysis)
        self._equity = np.full(n, np.nan)
        self._last_brain_step = -(10**18)
        self._last_loss_step: int | None = None
        self._model_fills = -1
        self._eq_const = float(self.config.initial_cash)
        self._eq_coef: tuple[tuple[int, float], ...] = ()  # (row, signed qty)
        self._watch = EventWatch(self._rows, self._dense)  # run()'s next busy steps

    @property
    def total_steps(self) -> int:
        return self._n

    @property
    def done(self) -> bool:
        return self.step_index >= self._n

    # ---------------------------------------------------------------- driving
    def step(self) -> StepEvent | None:
        """Process the next merged step; None once the data is exhausted."""
        if self.done:
            return None
        t = self.step_index
        event = self._process(t, None)
        self.step_index = t + 1
        return event

    def run(self, progress: ProgressCallback | None = None) -> BacktestResult:
        """Process every remaining step (fast path) and return the result."""
        self._fast_forward(self.total_steps, progress)
        return self.result()

    def advance_to(self, step: int) -> StepEvent | None:
        """Fast-forward through the steps before ``step`` without events, then step once.

        This is how a replay jumps to a time: the outcome is the same as stepping.
        """
        step = min(max(step, self.step_index), self.total_steps)
        self._fast_forward(step, None)
        return self.step()

    def _fast_forward(self, stop: int, progress: ProgressCallback | None) -> None:
        n = self.total_steps
        start = t = self.step_index
        if start < stop:
            # stepping may have changed anything since the last fast-forward
            self._watch.restart()
            self._acting = -1
            segments = [(start, self._eq_const, self._eq_coef)]
            with gc_paused():
                t = self._fast_loop(start, stop, progress, max(1, n // 200), segments)
            self._segment_equity(start, t, segments)
            self.step_index = t
        if progress is not None:
            progress(t, n)

    def _fast_loop(
        self,
        t: int,
        stop: int,
        progress: ProgressCallback | None,
        every: int,
        segments: list[tuple[int, float, tuple[tuple[int, float], ...]]],
    ) -> int:
        n = self.total_steps
        next_report = t
        # (a reasoning callback set after construction sees every decision in order)
        lazy = self._oracle is not None and self.on_reasoning is None
        quiet = lazy and self._quiet is not None
        broker = self.broker
        while t < stop:
            if quiet and broker.idle:
                t = self._skip_quiet_batches(t, stop)
            busy, eventful = self._defer_holds(t, stop) if lazy else self._next_busy_step(t)
            if busy >= stop:
                return stop
            fills = self._model_fills
            self._process(busy, eventful)
            if self._model_fills != fills:
                segments.append((busy, self._eq_const, self._eq_coef))
            t = busy + 1
            if progress is not None and t >= next_report:
                progress(t, n)
                next_report = t + every
        return t

    def _skip_quiet_batches(self, t: int, stop: int) -> int:
        """With no position and no order, pass the batches from ``t`` on that cannot
        act (pre-scoring), up to the first that can: their decisions, holds only, are
        made when first read (``_HoldsLater``), as ``_decide`` would have made them."""
        batches = self._batch_list
        assert self._loud is not None
        limit = min(stop, self._n - 1)  # the last step is always processed
        j = bisect.bisect_left(batches, t)
        if j == len(batches):
            return t
        end = min(int(self._loud[j]), bisect.bisect_left(batches, limit, j))
        if end <= j:
            return t
        steps = batches[j:end]
        times = self._stamps(steps)
        cash, equity = float(self.broker.cash), float(self.broker.equity())
        flat = PortfolioState(times[0], steps[0], cash, equity, (), (), self._last_loss_step)
        self._defer_run(steps, [False] * len(steps), times, flat)
        return steps[-1] + 1

    def _defer_holds(self, t: int, stop: int) -> tuple[int, list[int]]:
        """Pass the brain's steps from ``t`` on, up to the first where the broker may act
        or the hold oracle cannot promise holds only, and return that step as
        ``_next_busy_step`` does. Each passed step's decision is recorded to be made
        when read (``Later``), with the book as the broker holds it (positions and their
        sides, pending orders, cash, last loss: nothing changes it before the broker
        acts; prices, equity and trailing stops are those it last valued them at, which
        a decision of holds only never reads)."""
        broker = self.broker
        limit = min(stop, self._n - 1)  # the last step is always processed
        # The broker's first event up to the limit: nothing changes the broker's state
        # before it, so what next_event(t, busy) says for each brain step follows from it.
        event, rows = self._watch.next_event(broker, t, limit)
        if event == t:  # the broker may act at once (an order fills): no step to pass
            return event, rows
        oracle = self._oracle
        book: PortfolioState | None = None
        batches = self._batch_list
        n_batches = len(batches)
        # _next_brain_step, with the broker's state fixed meanwhile
        reviewing = self._review and not broker.flat
        asked = self._last_brain_step
        steps: list[int] = []  # the passed steps, recorded in one run at the end
        reviews: list[bool] = []
        j = 0
        try:
            while True:
                busy, j = self._brain_step(t, j, reviewing, asked)
                if busy >= limit or event < busy or (event == busy and rows):
                    return event, rows  # (beyond the limit, the caller stops anyway)
                review = j == n_batches or batches[j] != busy
                if book is None:
                    book = self._portfolio(busy)
                if not oracle.holds(busy, review, book, None if review else j):
                    self._acting = busy  # (_process need not ask again)
                    return busy, []
                steps.append(busy)
                reviews.append(review)
                asked = busy  # the next review counts from it
                t = busy + 1
        finally:
            if steps:
                assert book is not None
                self._defer_run(steps, reviews, self._stamps(steps), book)

    def _stamps(self, steps: list[int]) -> list[int]:
        """The times of ``steps`` (a few read one by one: numpy's gather costs more)."""
        times = self._times
        if len(steps) <= 8:
            return [int(times[s]) for s in steps]
        return times[np.array(steps, dtype=np.int64)].tolist()

    def _defer_run(
        self,
        steps: list[int],
        reviews: list[bool],
        times: list[int],
        book: PortfolioState,
        *,
        counted: bool = False,
    ) -> None:
        """Count the decisions the hold oracle promised holds only at ``steps`` (as
        batches and reviews too, unless ``counted``) and record them to be made when
        first read (``_HoldsLater``), as ``_decide`` would have made them."""
        self.decisions.defer_run(steps, reviews, times, book)
        stats = self.stats
        stats.calls += len(steps)
        if not counted:
            asked = sum(reviews)
            stats.reviews += asked
            stats.batches += len(steps) - asked
        self._last_brain_step = steps[-1]

    def _next_brain_step(self, t: int) -> int:
        """The first step >= t where the brain is asked (a batch with signals closes, or
        a position review is due), else the last step."""
        reviewing = self._review and not self.broker.flat
        return self._brain_step(t, 0, reviewing, self._last_brain_step)[0]

    def _brain_step(self, t: int, j: int, reviewing: bool, asked: int) -> tuple[int, int]:
        """``_next_brain_step`` for a book that does (``reviewing``) or does not hold a
        position under review, last asked at ``asked``: the step, and the index of the
        first batch at or after ``t`` (searched from ``j``)."""
        batches = self._batch_list
        last = self._n - 1
        j = bisect.bisect_left(batches, t, j)
        busy = batches[j] if j < len(batches) and batches[j] < last else last
        if busy > t and reviewing:
            busy = min(busy, max(t, asked + self._review_every))
        return busy, j

    def _next_busy_step(self, t: int) -> tuple[int, list[int]]:
        """The first step >= t that must be processed (the last step always is), and the
        rows whose candle the broker must see there.

        A step is busy when a batch with signals closes there, a position review is due,
        or the broker may act on one of its candles (the event watch knows those)."""
        return self._watch.next_event(self.broker, t, self._next_brain_step(t))

    # ---------------------------------------------------------------- one step
    def _process(self, t: int, rows: list[int] | None) -> StepEvent | None:
        """One merged step. ``rows`` None: every instrument with a candle at ``t`` (step();
        returns the StepEvent). Else (run()) only those rows' candles reach the broker:
        the others are quiet there, and what the brain sees of them is caught up first."""
        a = self.analysis
        broker = self.broker
        record = rows is None
        n_trades = len(broker.trades)
        present = []
        if record:
            n_fills, n_decisions = len(broker.fills), len(self.decisions)
            n_rejections = len(broker.rejections)
            column = self._candle_index[:, t]
            for arr in self._rows:
                ci = int(column[arr.index])
                if ci >= 0:
                    present.append((arr, ci))
        else:
            touch = self._watch.touch
            for r in rows:
                present.append((self._rows[r], self._candle_at(r, t)))
                touch(r)
        several = self._several
        last_close = a.last_close
        # Marks are read only to size an entry that fills here, by the brain, and by the
        # equity model: they are set just before those reads.
        open_marks = several and any(broker.has_entry(arr.name) for arr, _ in present)
        if open_marks:
            # Value what is held as known at this step's open while candles are processed:
            # the open of its candle here, or its last close before the step.
            for name in broker.held:
                row = self._row_of[name]
                ci = self._candle_at(row, t)
                if ci >= 0:
                    broker.mark_price(name, float(self._rows[row].open[ci]))
                elif t > 0:
                    broker.mark_price(name, float(last_close[row, t - 1]))
        if present:  # (run() asks the brain at steps where no candle matters too)
            # Time order across instruments (DESIGN.md rule 6): every instrument's events at
            # its open (exits first, then entries with the cash they freed), then the events
            # inside the candles; fills are recorded in that order.
            # each candle's open and close times, open, and the ATR known at its open (where
            # entries fill), read from the arrays once for the three phases
            cells = [
                (
                    arr,
                    ci,
                    int(arr.open_time[ci]),
                    int(arr.close_time[ci]),
                    float(arr.open[ci]),
                    float(arr.atr[ci - 1]) if ci > 0 else math.nan,
                )
                for arr, ci in present
            ]
            for arr, ci, open_time, close_time, o, _ in cells:
                broker.on_open_exits(arr.name, ci, open_time, close_time, o)
            for arr, ci, open_time, _, o, atr in cells:
                broker.on_open_entries(arr.name, ci, open_time, o, atr)
            for arr, ci, open_time, close_time, o, atr in cells:
                broker.on_inside(
                    arr.name,
                    ci,
                    open_time,
                    close_time,
                    o,
                    float(arr.high[ci]),
                    float(arr.low[ci]),
                    float(arr.close[ci]),
                    atr,
                )
                if open_marks:  # the broker marked the close: back to the open for the others
                    broker.mark_price(arr.name, o)
        held = not broker.flat
        if len(broker.trades) != n_trades:
            for trade in broker.trades[n_trades:]:
                if trade.pnl < 0:
                    self._last_loss_step = t
        # run() makes the batch only to ask the brain (most are deferred holds)
        batch = a.batch_by_step.get(t) if record else None
        signals = bool(batch.signals) if batch is not None else not record and self._has_batch(t)
        asked: SignalBatch | None = None
        review = False
        if signals:
            asked = batch
            self.stats.batches += 1
        elif held and self._review and t - self._last_brain_step >= self._review_every:
            review = True
            self.stats.reviews += 1
        if (signals or review or len(broker.fills) != self._model_fills) and not broker.flat:
            self._mark_closes(t)  # the brain and the equity model read the marks
        if signals or review:
            oracle = self._oracle
            book = None
            deferred = False
            lazy = not record and oracle is not None and self.on_reasoning is None
            # (_defer_holds heard the oracle say no at t: nothing it reads changed since)
            if lazy and self._acting != t:
                book = self._portfolio(t)
                if oracle.holds(t, review, book):
                    # (the trails need no catching up for a deferred decision)
                    self._defer_run([t], [review], [book.time], book, counted=True)
                    deferred = True
                elif self.broker.trailing:
                    book = None  # the brain is shown the trails caught up (_portfolio)
            if not deferred:
                # run() with the hold oracle makes a decision's reasoning when it is read
                unexplained = lazy and self._explains
                if review:
                    asked = _review_batch(a, t)
                elif asked is None:
                    asked = self._asked_batch(t, unexplained)
                if not record:
                    self._catch_up_trails(t)
                assert asked is not None
                self._decide(asked, t, book, unexplained=unexplained, review=review)
        if t == self._n - 1 and self.config.close_at_end:
            broker.close_all(int(self._times[t]), a.prices_at(t), ExitReason.END_OF_DATA.value)
        if len(broker.fills) != self._model_fills:
            self._refresh_equity_model(t)
        if not record:
            return None
        eq = self._eq_const
        for row, coef in self._eq_coef:
            eq = eq + coef * last_close[row, t]
        self._equity[t] = eq
        prices = a.prices_at(t)
        return StepEvent(
            step=t,
            total_steps=self.total_steps,
            time=int(self._times[t]),
            candles=tuple(_candle(arr, ci) for arr, ci in present),
            indicators={arr.name: a.indicator_values(arr.name, ci) for arr, ci in present},
            signals=a.signals_at(t),
            batch=batch,
            decisions=tuple(self.decisions[n_decisions:]),
            fills=tuple(broker.fills[n_fills:]),
            trades=tuple(broker.trades[n_trades:]),
            positions=tuple(broker.positions(prices)),
            orders=tuple(broker.orders()),
            cash=float(broker.cash),
            equity=float(eq),
            rejections=tuple(broker.rejections[n_rejections:]),
        )

    def _has_batch(self, t: int) -> bool:
        """Whether a batch with signals closes at step ``t``."""
        batches = self._batch_list
        j = bisect.bisect_left(batches, t)
        return j < len(batches) and batches[j] == t

    def _candle_at(self, row: int, t: int) -> int:
        """The row's candle index at step ``t`` (-1 when it has none there)."""
        return t if self._dense[row] else int(self._candle_index[row, t])

    def _mark_closes(self, t: int) -> None:
        """Value what is held at its last close at step ``t``."""
        broker = self.broker
        last_close = self.analysis.last_close
        row_of = self._row_of
        for name in broker.held:
            broker.mark_price(name, float(last_close[row_of[name], t]))

    def _catch_up_trails(self, t: int) -> None:
        """Trailing stops as processing every candle up to ``t`` would have left them
        (run() skips quiet candles): the brain is shown them."""
        for name in self.broker.trailing:
            row = self._row_of[name]
            ci = t if self._dense[row] else self.analysis.last_candle(name, t)
            if ci >= 0:
                self.broker.catch_up(name, ci)

    # ---------------------------------------------------------------- equity
    def _refresh_equity_model(self, t: int) -> None:
        """equity(closes) = const + sum(signed qty x close): exact while no fill happens.

        The broker's marks are the closes of step t here (see ``_process``)."""
        a = self.analysis
        broker = self.broker
        if broker.flat:  # (what the loop below leaves with nothing held)
            self._eq_const = float(broker.equity())
            self._eq_coef = ()
            self._model_fills = len(broker.fills)
            return
        terms = []
        const = float(broker.equity())
        for name, coef in sorted(broker.holdings()):
            row = self._row_of[name]
            terms.append((row, coef))
            const -= coef * a.last_close[row, t]
        terms.sort()
        self._eq_const = const
        self._eq_coef = tuple(terms)
        self._model_fills = len(broker.fills)

    def _segment_equity(
        self,
        start: int,
        stop: int,
        segments: list[tuple[int, float, tuple[tuple[int, float], ...]]],
    ) -> None:
        """The equity of steps [start, stop) from the models in force over them: the
        same float operations, in the same order, as ``_process`` does step by step
        (a row not held adds 0.0 x close, which changes nothing)."""
        if stop <= start:
            return
        begins = [s for s, _, _ in segments]
        lengths = np.diff(np.array([*begins, stop], dtype=np.int64))
        # in place in the equity array, one temporary at a time (10M steps: 80 MB each)
        values = self._equity[start:stop]
        values[:] = np.repeat(np.array([c for _, c, _ in segments]), lengths)
        rows = sorted({row for _, _, terms in segments for row, _ in terms})
        column = {row: j for j, row in enumerate(rows)}
        coefs = np.zeros((len(segments), len(rows)))
        for k, (_, _, terms) in enumerate(segments):
            for row, coef in terms:
                coefs[k, column[row]] = coef
        last_close = self.analysis.last_close
        for j, row in enumerate(rows):
            term = np.repeat(coefs[:, j], lengths)
            term *= last_close[row, start:stop]
            values += term
            del term

    # ---------------------------------------------------------------- brain
    def _portfolio(self, t: int) -> PortfolioState:
        broker = self.broker  # its marks are the closes of step t (see _process)
        # (positional: time, step, cash, equity, positions, pending orders, last loss)
        return PortfolioState(
            int(self._times[t]),
            t,
            float(broker.cash),
            float(broker.equity()),
            broker.positions(),
            broker.orders(),
            self._last_loss_step,
        )

    def _asked_batch(self, t: int, unexplained: bool) -> SignalBatch | BatchView:
        """The batch with signals closing at ``t``, as the brain is asked with it: to
        decide without reasoning (run(), a rule brain), a ``BatchView`` (scored from the
        signal columns; the batch is made only if something reads its signals)."""
        if not unexplained:
            return self.analysis.batch_by_step[t]
        return self.analysis.batch_view(t, bisect.bisect_left(self._batch_list, t))

    def _decide(
        self,
        batch: SignalBatch | BatchView,
        t: int,
        book: PortfolioState | None = None,
        *,
        unexplained: bool = False,
        review: bool = False,
    ) -> None:
        """Ask the brain at ``t``; ``book``: ``_portfolio(t)`` when already made.
        ``unexplained``: the decision is made without its reasoning, which is made when
        it is first read (``Unexplained``, of a review's batch when ``review``)."""
        portfolio = self._portfolio(t) if book is None else book
        decision = self._decision(batch, t, portfolio, unexplained)
        if unexplained and not decision.errors:
            self.decisions.append_unexplained(Unexplained(decision, t, review, portfolio))
        else:
            self.decisions.append(decision)
        self._last_brain_step = t

    def _decision(
        self,
        batch: SignalBatch | BatchView,
        t: int,
        portfolio: PortfolioState,
        unexplained: bool = False,
    ) -> Decision:
        """Ask the brain (``decide_unexplained`` when ``unexplained``), validate,
        execute; the statistics counted."""
        brain = self.brain
        stats = self.stats
        # An LLM brain may hold without asking its model (engine.brain.gate): not a call.
        skipped = self._skipped(batch, portfolio)
        if skipped is not None:
            stats.skipped += 1
            return self._execute(self.guard.validate(skipped, portfolio, batch), batch, t)
        stats.calls += 1
        start = _time.perf_counter()
        decision = _ask(brain, batch, portfolio, self.persona, self.on_reasoning, unexplained)
        stats.latency_s += _time.perf_counter() - start
        # (the batch's contexts: a BatchView's are its batch's, without making the batch)
        decision = self.guard.validate(decision, portfolio, batch.context)
        decision = self._execute(decision, batch, t)
        stats.cache_hits += bool(decision.cache_hit)
        stats.tokens += int(decision.tokens or 0)
        stats.corrections += len(decision.corrections)
        stats.errors += bool(decision.errors)
        stats.grounded += decision.grounded is True
        stats.ungrounded += decision.grounded is False
        return decision

    def _skipped(self, batch: SignalBatch, portfolio: PortfolioState) -> Decision | None:
        gate = getattr(self.brain, "skipped", None)
        if not callable(gate):
            return None
        try:
            decision = gate(batch, portfolio, self.persona)
        except Exception:  # then decide() is asked, and says what is wrong
            return None
        return decision if isinstance(decision, Decision) else None

    def _execute(self, decision: Decision, batch: SignalBatch, t: int) -> Decision:
        plans: list[TradePlan] = []
        notes: list[str] = []
        time = int(self._times[t])
        for plan in decision.plans:
            plan = _with_decision_atr(plan, batch.context)
            plans.append(plan)
            if plan.action == Action.HOLD:
                continue
            row = self._row_of.get(plan.instrument)
            if row is not None:
                self._watch.touch(row)
            outcome = self.broker.submit(
                plan,
                time,
                t,
                self.persona.max_position_fraction,
                max_holding_candles=self.persona.max_holding_candles,
            )
            if isinstance(outcome, str):
                self.stats.refused += 1
                notes.append(f"broker refused {plan.action.value} {plan.instrument}: {outcome}")
        if tuple(plans) != decision.plans or notes:
            decision = dataclasses.replace(
                decision, plans=tuple(plans), corrections=decision.corrections + tuple(notes)
            )
        return decision

    # ---------------------------------------------------------------- result
    def _metrics(
        self,
        trades: tuple[Trade, ...],
        fills: tuple[Fill, ...],
        times: np.ndarray,
        values: np.ndarray,
    ) -> dict[str, Any]:
        from engine.metrics import compute_metrics

        a = self.analysis
        done = len(values)
        bench: dict[str, np.ndarray] = {}
        if done:
            for name in a.instruments:  # buy and hold over the candles seen so far
                last = a.last_candle(name, done - 1)
                if last >= 0:
                    bench[name] = a.arrays[name].close[: last + 1]
        bar_ns = min(int(a.stream.series[n].timeframe_ns) for n in a.instruments)
        return compute_metrics(
            times,
            values,
            trades,
            fills,
            initial_cash=self.config.initial_cash,
            timeframe=bar_ns,
            benchmark_close=bench,
        )

    def result(self) -> BacktestResult:
        done = self.step_index
        times = np.asarray(self.analysis.times[:done], dtype=np.int64)
        if done == self._n:  # finished: no step writes it again (reset() makes a new one)
            values = self._equity.view()
            values.flags.writeable = False
        else:
            values = self._equity[:done].copy()
        trades = tuple(self.broker.trades)
        fills = tuple(self.broker.fills)
        metrics = self._metrics(trades, fills, times, values)
        return BacktestResult(
            persona=self.persona.name,
            brain=str(getattr(self.brain, "name", "")),
            model=str(getattr(self.brain, "model", "")),
            trades=trades,
            fills=fills,
            decisions=self.decisions.snapshot(),
            equity_times=times,
            equity_values=values,
            metrics=metrics,
            brain_stats=self.stats.as_dict(),
            steps=done,
            rejections=tuple(self.broker.rejections),
        )


def _ask(
    brain: Brain,
    batch: SignalBatch | BatchView,
    portfolio: PortfolioState,
    persona: TradingPersona,
    on_reasoning: ReasoningCallback | None,
    unexplained: bool = False,
) -> Decision:
    """The brain's Decision (without its reasoning when ``unexplained``: the brain's
    ``decide_unexplained``), or a hold Decision with the error when it raises."""
    try:
        if unexplained:
            decide = brain.decide_unexplained  # type: ignore[attr-defined]
            decision = decide(batch, portfolio, persona)
        else:
            decision = brain.decide(batch, portfolio, persona, on_reasoning)
        if not isinstance(decision, Decision):
            raise TypeError(f"decide() returned {type(decision).__name__}, not a Decision")
    except Exception as exc:  # a failing brain must never stop the replay
        decision = Decision(
            time=batch.time,
            brain=str(getattr(brain, "name", "?")),
            model=str(getattr(brain, "model", "")),
            plans=(),
            reasoning="",
            errors=(f"brain raised {type(exc).__name__}: {exc}",),
        )
    return decision


def _review_batch(analysis: MarketAnalysis, t: int) -> SignalBatch:
    """What a brain is asked with for a position review at step ``t``: no signals."""
    time = int(analysis.times[t])
    return SignalBatch(time, time, t, (), analysis.context_at(t))


class _HoldsLater:
    """Makes a deferred decision (:class:`Later`) as ``_decision`` would have: the same
    brain, persona and RiskGuard. The hold oracle promised holds only; anything else
    (an action, a trailing spec to bind, a correction, an error: a statistic that
    would have been counted) raises rather than give a different record."""

    def __init__(
        self, analysis: MarketAnalysis, brain: Brain, persona: TradingPersona, guard: RiskGuard
    ) -> None:
        self.analysis, self.brain, self.persona, self.guard = analysis, brain, persona, guard

    def __call__(self, later: Later | Unexplained) -> Decision:
        a, step = self.analysis, later.step
        batch = _review_batch(a, step) if later.review else a.batch_by_step[step]
        if type(later) is Unexplained:  # its reasoning, as decide() would have written it
            explain = self.brain.explain  # type: ignore[attr-defined]
            reasoning = explain(batch, later.portfolio, self.persona)
            return dataclasses.replace(later.decision, reasoning=reasoning)
        assert type(later) is Later
        decision = _ask(self.brain, batch, later.portfolio, self.persona, None)
        decision = self.guard.validate(decision, later.portfolio, batch)
        if (
            decision.errors
            or decision.corrections
            or decision.cache_hit
            or decision.tokens
            or decision.grounded is not None
            or any(p.action != Action.HOLD or p.trailing is not None for p in decision.plans)
        ):
            raise RuntimeError(f"a decision known to be holds only is not, at step {step}")
        return decision


def _candle(arr: Any, ci: int) -> Candle:
    return Candle(
        arr.name,
        int(arr.open_time[ci]),
        int(arr.close_time[ci]),
        float(arr.open[ci]),
        float(arr.high[ci]),
        float(arr.low[ci]),
        float(arr.close[ci]),
        float(arr.series.volume[ci]),
    )


def _with_decision_atr(plan: TradePlan, context: Mapping[str, InstrumentContext]) -> TradePlan:
    """An ATR-multiple trail refers to the ATR at decision time unless the brain set one."""
    trail = plan.trailing
    if trail is None or trail.mode != TrailingMode.ATR or trail.atr is not None:
        return plan
    ctx = context.get(plan.instrument)
    if ctx is None or not math.isfinite(ctx.atr):
        return plan
    return dataclasses.replace(plan, trailing=dataclasses.replace(trail, atr=float(ctx.atr)))
