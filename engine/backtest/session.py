"""Several personas over the same window: the analysis once, a brain and broker each."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.backtest.analysis import MarketAnalysis, analyse
from engine.backtest.config import BacktestConfig, BacktestError, ProgressCallback
from engine.backtest.engine import BacktestEngine
from engine.backtest.result import BacktestResult
from engine.brain.base import Brain, ReasoningCallback
from engine.brain.persona import TradingPersona, load_persona
from engine.types import InstrumentSeries, StepEvent

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
