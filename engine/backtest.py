"""The backtest engine: one persona, one brain, one broker over a merged market stream.

One code path serves both ways of driving it (``_process`` handles one step):

- ``step()`` processes the next merged step and returns a :class:`StepEvent` (the TUI);
- ``run()`` processes only the steps where something can happen and fills the rest in
  with numpy: a step must be processed in Python when a batch with signals closes there,
  when an open position is due for review, or when the broker says (``next_event_index``)
  that one of its candles can fill an order, expire it, hit a holding limit or touch a
  stop, target or trail. On every other step the broker would do nothing (it ratchets
  trails over skipped candles itself) and the equity is a linear function of the closes,
  so it is computed for the whole quiet range at once.

Both give the same decisions, fills and trades and the same equity samples bit for bit
(tests prove it): the equity model ``cash-like constant + sum(signed qty x close)`` is
refreshed at the same steps in both modes, whenever the broker's fills change, and the
broker values instruments with the same marks in both (see ``_process``).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.analysis import MarketAnalysis, analyse, gc_paused
from engine.brain.base import Brain, ReasoningCallback
from engine.brain.persona import TradingPersona, load_persona
from engine.brain.risk import RiskGuard
from engine.broker import Broker, BrokerConfig
from engine.errors import TapedeckError
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
)

if TYPE_CHECKING:
    from engine.signals import SignalConfig

ProgressCallback = Callable[[int, int], None]
"""Receives (steps done, total steps) during ``run()``."""


class BacktestError(TapedeckError):
    """A backtest that cannot be set up as asked."""


def _default_signal_config() -> SignalConfig:
    from engine.signals import default_signal_config

    return default_signal_config()


@dataclass(frozen=True)
class BacktestConfig:
    """How a backtest runs. Money settings go to the broker, ``signal`` to the analysis.

    ``review_positions``: while a position is open, the brain is also asked (with a
    batch holding no signals, only the market context) once ``review_interval`` steps
    have passed since it was last asked; 0 means the signal aggregation window (at
    least 1). ``close_at_end`` closes what is open at the last close (``end_of_data``).
    """

    initial_cash: float = 10_000.0
    fees_bps: float = 10.0
    slippage_bps: float = 5.0
    intrabar: str = "stop_first"
    leverage: float = 1.0
    signal: SignalConfig = field(default_factory=_default_signal_config)
    review_positions: bool = True
    review_interval: int = 0
    close_at_end: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.review_interval, bool) or not isinstance(self.review_interval, int):
            raise BacktestError(
                f"review_interval must be a whole number, got {self.review_interval!r}"
            )
        if self.review_interval < 0:
            raise BacktestError(f"review_interval must be >= 0, got {self.review_interval}")
        self.broker_config()  # the broker's own checks, at configuration time

    def broker_config(self) -> BrokerConfig:
        return BrokerConfig(
            initial_cash=self.initial_cash,
            fees_bps=self.fees_bps,
            slippage_bps=self.slippage_bps,
            intrabar=self.intrabar,
            leverage=self.leverage,
        )

    def review_steps(self) -> int:
        if self.review_interval > 0:
            return int(self.review_interval)
        window = getattr(self.signal, "window", 1)
        return max(1, int(window)) if isinstance(window, int | float) else 1


@dataclass(frozen=True, eq=False)
class BacktestResult:
    persona: str
    brain: str
    model: str
    trades: tuple[Trade, ...]
    fills: tuple[Fill, ...]
    decisions: tuple[Decision, ...]
    equity_times: np.ndarray
    equity_values: np.ndarray
    metrics: dict[str, Any]
    brain_stats: dict[str, Any]
    steps: int

    @property
    def final_equity(self) -> float:
        return float(self.equity_values[-1]) if len(self.equity_values) else math.nan


@dataclass
class BrainStats:
    calls: int = 0  # decide() invocations
    batches: int = 0  # of which for a batch with signals
    reviews: int = 0  # of which for a position review
    cache_hits: int = 0
    tokens: int = 0
    latency_s: float = 0.0  # wall clock, summed
    corrections: int = 0
    errors: int = 0
    refused: int = 0  # plans the broker refused

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "batches": self.batches,
            "reviews": self.reviews,
            "cache_hits": self.cache_hits,
            "tokens": self.tokens,
            "mean_latency_s": self.latency_s / self.calls if self.calls else 0.0,
            "corrections": self.corrections,
            "errors": self.errors,
            "refused": self.refused,
        }


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
        self._candle_index = analysis.stream.candle_index
        self._review_every = self.config.review_steps()
        self._review = bool(self.config.review_positions)
        self._names = list(analysis.instruments)
        self._several = len(self._rows) > 1
        n = self._n = len(analysis)
        self._rows_dense = [(arr, len(arr.step_of_candle) == n) for arr in self._rows]
        self._batch_list = [int(x) for x in analysis.batch_steps.tolist()]
        self._batch_set = set(self._batch_list)
        self._eventful: set[int] = set()
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
        self.decisions: list[Decision] = []
        self.stats = BrainStats()
        n = len(self.analysis)
        self._equity = np.full(n, np.nan)
        self._last_brain_step = -(10**18)
        self._last_loss_step: int | None = None
        self._model_fills = -1
        self._eq_const = float(self.config.initial_cash)
        self._eq_coef: list[tuple[int, float]] = []  # (row, signed qty)

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
        event = self._process(t, record=True)
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
        t = self.step_index
        report_every = max(1, n // 200)
        next_report = t
        with gc_paused():
            t = self._fast_loop(t, stop, progress, report_every, next_report)
        self.step_index = t
        if progress is not None:
            progress(t, n)

    def _fast_loop(
        self, t: int, stop: int, progress: ProgressCallback | None, every: int, next_report: int
    ) -> int:
        n = self.total_steps
        while t < stop:
            busy = min(self._next_busy_step(t), stop)
            if busy > t:
                self._quiet_equity(t, busy)
            if busy >= stop:
                t = stop
                break
            only = None
            if (
                self._several
                and busy not in self._batch_set
                and busy != n - 1
                and not (self._review and busy - self._last_brain_step >= self._review_every)
            ):
                # nobody looks at the broker's state at this step but the broker itself:
                # only the instruments with an event need their candle (the others are
                # quiet, as on skipped steps)
                only = self._eventful
            self._process(busy, record=False, only=only)
            t = busy + 1
            if progress is not None and t >= next_report:
                progress(t, n)
                next_report = t + every
        return t

    def _has_positions(self) -> bool:
        has = self.broker.has_position
        return any(has(name) for name in self._names)

    def _next_busy_step(self, t: int) -> int:
        """The first step >= t that must be processed in Python (the last step always is)."""
        busy = self._n - 1
        batches = self._batch_list
        j = bisect.bisect_left(batches, t)
        if j < len(batches) and batches[j] < busy:
            busy = batches[j]
        if busy > t and self._review and self._has_positions():
            busy = min(busy, max(t, self._last_brain_step + self._review_every))
        events: dict[int, int] = {}
        if busy > t:
            event_index = self.broker.next_event_index
            for arr, dense in self._rows_dense:
                if dense:  # a candle at every step: candle index == step
                    lo, hi = t, busy + 1
                else:
                    sc = arr.step_of_candle
                    lo = int(np.searchsorted(sc, t))
                    hi = int(np.searchsorted(sc, busy, "right"))
                    if lo >= hi:
                        continue
                e = int(event_index(arr.name, arr.open, arr.high, arr.low, lo, hi))
                if e < hi:
                    at = e if dense else int(arr.step_of_candle[e])
                    events[arr.index] = at
                    busy = min(busy, at)
        self._eventful = {row for row, at in events.items() if at == busy}
        return busy

    # ---------------------------------------------------------------- one step
    def _process(self, t: int, *, record: bool, only: set[int] | None = None) -> StepEvent | None:
        """One merged step. ``only``: the rows whose candle the broker must see (run()
        passes the instruments with an event when nothing else happens at the step)."""
        a = self.analysis
        broker = self.broker
        time = int(a.times[t])
        n_fills, n_trades, n_decisions = len(broker.fills), len(broker.trades), len(self.decisions)
        column = self._candle_index[:, t]
        present = []
        for arr, dense in self._rows_dense:
            ci = t if dense else int(column[arr.index])
            if ci >= 0:
                present.append((arr, ci))
        several = self._several
        if several:
            # Value every instrument as known at this step's open while its candles are
            # processed: the last close before the step, or the open of its candle here.
            # The broker sizes entries with this equity; run() skips quiet candles, so
            # the marks are set here, the same way in both modes.
            if t > 0:
                broker.mark(a.prices_at(t - 1))
            broker.mark({arr.name: float(arr.open[ci]) for arr, ci in present})
        for arr, ci in present:
            if only is not None and arr.index not in only:
                continue
            broker.on_candle(
                arr.name,
                ci,
                int(arr.open_time[ci]),
                int(arr.close_time[ci]),
                float(arr.open[ci]),
                float(arr.high[ci]),
                float(arr.low[ci]),
                float(arr.close[ci]),
                # the ATR known at this candle's open, where entries fill
                float(arr.atr[ci - 1]) if ci > 0 else math.nan,
            )
            if several:  # the broker marked the close: back to the open for the others
                broker.mark({arr.name: float(arr.open[ci])})
        if several:
            broker.mark(a.prices_at(t))
        for trade in broker.trades[n_trades:]:
            if trade.pnl < 0:
                self._last_loss_step = t
        batch = a.batch_by_step.get(t)
        asked = None
        if batch is not None and batch.signals:
            asked = batch
            self.stats.batches += 1
        elif self._review_due(t):
            asked = SignalBatch(time, time, t, (), a.context_at(t))
            self.stats.reviews += 1
        if asked is not None:
            self._decide(asked, t)
        if t == self._n - 1 and self.config.close_at_end:
            broker.close_all(time, a.prices_at(t), ExitReason.END_OF_DATA.value)
        if len(broker.fills) != self._model_fills:
            self._refresh_equity_model(t)
        eq = self._eq_const
        for row, coef in self._eq_coef:
            eq = eq + coef * a.last_close[row, t]
        self._equity[t] = eq
        if not record:
            return None
        prices = a.prices_at(t)
        return StepEvent(
            step=t,
            total_steps=self.total_steps,
            time=time,
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
        )

    def _review_due(self, t: int) -> bool:
        return (
            self._review
            and t - self._last_brain_step >= self._review_every
            and self._has_positions()
        )

    # ---------------------------------------------------------------- equity
    def _refresh_equity_model(self, t: int) -> None:
        """equity(closes) = const + sum(signed qty x close): exact while no fill happens.

        The broker's marks are the closes of step t here (see ``_process``)."""
        a = self.analysis
        broker = self.broker
        terms = []
        const = float(broker.equity())
        for p in broker.positions():
            coef = float(p.qty) if p.side == "long" else -float(p.qty)
            row = a.arrays[p.instrument].index
            terms.append((row, coef))
            const -= coef * a.last_close[row, t]
        terms.sort()
        self._eq_const = const
        self._eq_coef = terms
        self._model_fills = len(broker.fills)

    def _quiet_equity(self, start: int, stop: int) -> None:
        if not self._eq_coef:
            self._equity[start:stop] = self._eq_const
            return
        values = np.full(stop - start, self._eq_const)
        for row, coef in self._eq_coef:
            values = values + coef * self.analysis.last_close[row, start:stop]
        self._equity[start:stop] = values

    # ---------------------------------------------------------------- brain
    def _portfolio(self, t: int) -> PortfolioState:
        broker = self.broker  # its marks are the closes of step t (see _process)
        return PortfolioState(
            time=int(self.analysis.times[t]),
            step=t,
            cash=float(broker.cash),
            equity=float(broker.equity()),
            positions=broker.positions(),
            pending_orders=broker.orders(),
            last_loss_step=self._last_loss_step,
        )

    def _decide(self, batch: SignalBatch, t: int) -> None:
        portfolio = self._portfolio(t)
        brain = self.brain
        self.stats.calls += 1
        start = _time.perf_counter()
        try:
            decision = brain.decide(batch, portfolio, self.persona, self.on_reasoning)
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
        self.stats.latency_s += _time.perf_counter() - start
        decision = self.guard.validate(decision, portfolio, batch)
        decision = self._execute(decision, batch, t)
        self.stats.cache_hits += bool(decision.cache_hit)
        self.stats.tokens += int(decision.tokens or 0)
        self.stats.corrections += len(decision.corrections)
        self.stats.errors += bool(decision.errors)
        self.decisions.append(decision)
        self._last_brain_step = t

    def _execute(self, decision: Decision, batch: SignalBatch, t: int) -> Decision:
        plans: list[TradePlan] = []
        notes: list[str] = []
        time = int(self.analysis.times[t])
        for plan in decision.plans:
            plan = _with_decision_atr(plan, batch.context)
            plans.append(plan)
            if plan.action == Action.HOLD:
                continue
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
            decisions=tuple(self.decisions),
            equity_times=times,
            equity_values=values,
            metrics=metrics,
            brain_stats=self.stats.as_dict(),
            steps=done,
        )


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
    if trail is None or trail.mode != "atr" or trail.atr is not None:
        return plan
    ctx = context.get(plan.instrument)
    if ctx is None or not math.isfinite(ctx.atr):
        return plan
    return dataclasses.replace(plan, trailing=dataclasses.replace(trail, atr=float(ctx.atr)))


BrainFactory = Callable[[TradingPersona], Brain]


class Session:
    """Several personas over the same window: the analysis once, a brain and broker each."""

    def __init__(
        self,
        series_list: Sequence[InstrumentSeries],
        personas: Sequence[TradingPersona | str],
        brain_factory: BrainFactory,
        config: BacktestConfig | None = None,
        *,
        analysis: MarketAnalysis | None = None,
        on_reasoning: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config if config is not None else BacktestConfig()
        loaded = [p if isinstance(p, TradingPersona) else load_persona(p) for p in personas]
        if not loaded:
            raise BacktestError("a session needs at least one persona")
        names = [p.name for p in loaded]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BacktestError(f"persona names must be distinct in a session: {', '.join(dupes)}")
        if analysis is None:
            if not series_list:
                raise BacktestError("a session needs at least one instrument's candles")
            analysis = analyse(series_list, self.config.signal)
        self.analysis = analysis
        self.engines: dict[str, BacktestEngine] = {}
        for persona in loaded:
            callback = None
            if on_reasoning is not None:
                callback = _bind_reasoning(on_reasoning, persona.name)
            self.engines[persona.name] = BacktestEngine(
                series_list,
                persona,
                brain_factory(persona),
                self.config,
                analysis=analysis,
                on_reasoning=callback,
            )

    @property
    def total_steps(self) -> int:
        return len(self.analysis)

    @property
    def step_index(self) -> int:
        return min(e.step_index for e in self.engines.values())

    @property
    def done(self) -> bool:
        return all(e.done for e in self.engines.values())

    def step(self) -> dict[str, StepEvent]:
        """One step of every persona's engine; empty once all are done."""
        out: dict[str, StepEvent] = {}
        for name, engine in self.engines.items():
            event = engine.step()
            if event is not None:
                out[name] = event
        return out

    def run(self, progress: ProgressCallback | None = None) -> dict[str, BacktestResult]:
        return {name: engine.run(progress) for name, engine in self.engines.items()}

    def reset(self) -> None:
        for engine in self.engines.values():
            engine.reset()


def _bind_reasoning(callback: Callable[[str, str], None], name: str) -> ReasoningCallback:
    def bound(text: str) -> None:
        callback(name, text)

    return bound
