"""Where StepEvents come from: the engine over one window of data.

This module only builds and steps the engine (``BacktestEngine`` for one persona,
``Session`` for several); every trading decision stays inside ``engine``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.brain.persona import TradingPersona, builtin_persona_names, load_persona
from engine.errors import TapedeckError
from engine.timeutil import ns_to_timeframe
from engine.types import InstrumentSeries, StepEvent

if TYPE_CHECKING:
    from engine.backtest.checkpoint import Rewound

PREFERRED_PERSONA = "momentum"


def persona_choices() -> list[tuple[str, str]]:
    """(name, description) of every built-in persona; the name is the loadable file stem."""
    out = []
    for name in builtin_persona_names():
        try:
            out.append((name, load_persona(name).description))
        except TapedeckError as exc:
            out.append((name, f"(cannot load: {exc})"))
    return out


def same_persona(a: str, b: str) -> bool:
    """``mean-reversion`` (a persona's name) is the file ``mean_reversion``."""
    return a.replace("-", "_").lower() == b.replace("-", "_").lower()


def default_persona() -> str:
    names = builtin_persona_names()
    if PREFERRED_PERSONA in names or not names:
        return PREFERRED_PERSONA
    return names[0]


@dataclass
class ReplaySpec:
    """What the user asked to replay."""

    paths: list[str]
    persona: str = field(default_factory=default_persona)
    brain: str = "rules"
    speed: str = "100x"
    start: str | None = None
    end: str | None = None
    # an experiment cell's settings: BacktestConfig keywords, and make_brain keywords by
    # brain kind or by compare entry (``persona@brain[:model]`` as given)
    backtest: dict[str, Any] = field(default_factory=dict)
    brain_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeframe: str | None = None  # for files whose timeframe cannot be inferred


def load_window(spec: ReplaySpec) -> list[InstrumentSeries]:
    """Load the files and cut the window; raises TapedeckError with a precise message."""
    from engine.commands.options import load_window as load

    return load(spec.paths, start=spec.start, end=spec.end, timeframe=spec.timeframe)


def brain_options_for(
    options: Mapping[str, Mapping[str, Any]],
    entry: str,
    kind: str,
    series: Sequence[InstrumentSeries],
    *,
    count_candles: bool = False,
) -> dict[str, Any]:
    """``make_brain`` keywords for ``entry`` (a compare entry or persona) with brain
    ``kind``: the options given for that entry, else for that kind. With options given
    (an experiment's cell) or ``count_candles``, an LLM's prompts count ages in candles
    of the data's timeframe, as ``tapedeck run``'s and the cell's did."""
    given = options[entry] if entry in options else options.get(kind)
    opts = dict(given or {})
    if kind != "rules" and series and (given is not None or count_candles):
        opts.setdefault("timeframe", series[0].timeframe)
    return opts


def describe_data(series: Sequence[InstrumentSeries]) -> str:
    if not series:
        return "-"
    tfs = sorted({s.timeframe or ns_to_timeframe(s.timeframe_ns) for s in series})
    names = [s.instrument for s in series]
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    return f"{shown} · {'/'.join(tfs)}"


def describe_window(series: Sequence[InstrumentSeries]) -> tuple[int, int]:
    start = min(int(s.open_time[0]) for s in series if len(s))
    end = max(int(s.close_time[-1]) for s in series if len(s))
    return start, end


def candle_seconds(series: Sequence[InstrumentSeries]) -> float:
    return min(s.timeframe_ns for s in series) / 1e9


def _engine_modules() -> tuple[Any, Any]:
    from engine import backtest
    from engine.brain import factory

    return backtest, factory


class ReplaySource:
    """One persona's engine over the window. Switching persona or brain builds a new
    engine over the same analysis (indicators and signals are computed once)."""

    def __init__(
        self,
        series: Sequence[InstrumentSeries],
        persona: str,
        brain: str,
        *,
        analysis: Any = None,
        config: Any = None,
        brain_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        backtest, _ = _engine_modules()
        self.series = list(series)
        self.config = config if config is not None else backtest.BacktestConfig()
        self.brain_options = {k: dict(v) for k, v in (brain_options or {}).items()}
        self._on_reasoning: Callable[[str], None] | None = None
        self.analysis = analysis  # the first engine analyses the window if None
        self.persona: TradingPersona
        self.brain_kind = brain
        self.engine: Any = None
        self.switch(persona, brain)

    @classmethod
    def from_spec(cls, spec: ReplaySpec) -> ReplaySource:
        """The window ``spec`` names, with its persona and brain."""
        backtest, _ = _engine_modules()
        return cls(
            load_window(spec),
            spec.persona,
            spec.brain,
            config=backtest.BacktestConfig(**spec.backtest),
            brain_options=spec.brain_options,
        )

    def set_reasoning_callback(self, callback: Callable[[str], None] | None) -> None:
        self._on_reasoning = callback
        if self.engine is not None:
            self.engine.on_reasoning = callback

    def switch(self, persona: str, brain: str) -> None:
        backtest, factory = _engine_modules()
        p = load_persona(persona)
        b = factory.make_brain(
            brain, p, **brain_options_for(self.brain_options, persona, brain, self.series)
        )
        self.engine = backtest.BacktestEngine(
            self.series, p, b, self.config, analysis=self.analysis, on_reasoning=self._on_reasoning
        )
        from engine.backtest.checkpoint import Rewinder

        self.rewinder = Rewinder(self.engine)
        self.analysis = self.engine.analysis
        self.persona, self.brain_kind = p, brain

    @property
    def brain_label(self) -> str:
        name = getattr(self.engine.brain, "name", self.brain_kind)
        model = getattr(self.engine.brain, "model", "")
        return f"{name}/{model}" if model else str(name)

    @property
    def total_steps(self) -> int:
        return int(self.engine.total_steps)

    @property
    def initial_cash(self) -> float:
        return float(self.config.initial_cash)

    def step(self) -> StepEvent | None:
        return self.rewinder.step()

    def export(self, what: str, stem: Path) -> Path:
        """Write the closed trades ("trades": CSV), the run log of the steps so far
        ("runlog": JSONL) or the HTML report of the steps so far ("report") beside
        ``stem``; only while no step runs."""
        if what == "trades":
            from engine.export import write_trades_csv

            return write_trades_csv(Path(f"{stem}.csv"), self.engine.broker.trades)
        if what == "runlog":
            from engine.runlog import write_run_log

            return write_run_log(
                Path(f"{stem}.jsonl"),
                self.engine.result(),
                persona=self.persona,
                config=self.config,
                analysis=self.analysis,
            )
        if what == "report":
            from engine.report import from_result, write_report

            result = self.engine.result()
            times = result.equity_times
            # the candles up to the step shown: none that opens at or after its close
            until = int(times[-1]) - 1 if len(times) else None
            run = from_result(result, self.persona.name, self.series, until=until)
            return write_report(Path(f"{stem}.html"), [run], title=f"tapedeck replay: {run.title}")
        raise ValueError(f"unknown export {what!r}: trades, runlog or report")

    def step_back(self, steps: int = 1) -> Rewound:
        """Back ``steps`` steps, to exactly the state stepping forward reached there."""
        return self.rewinder.back(steps)

    def rewind_to(self, steps_done: int) -> Rewound:
        return self.rewinder.rewind_to(steps_done)

    def steps_until(self, time_ns: int) -> int:
        """Steps to run from the start until the simulated time reaches ``time_ns``."""
        return min(self.total_steps, int(np.searchsorted(self.analysis.times, time_ns)) + 1)

    def metrics(self) -> dict[str, Any]:
        """The engine's metrics for the steps run so far (``engine.metrics``). Called in the
        runner's thread, between steps."""
        return dict(self.engine.result().metrics)

    def reset(self) -> None:
        self.rewinder.reset()


class CompareSource:
    """Several personas over the same window, one engine each, through a Session."""

    def __init__(
        self,
        series: Sequence[InstrumentSeries],
        personas: Sequence[str],
        brain: str,
        analysis: Any = None,
        *,
        config: Any = None,
        brain_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not 2 <= len(personas) <= 4:
            raise TapedeckError(f"compare takes 2 to 4 personas, got {len(personas)}")
        import dataclasses

        from engine.brain.spec import parse_persona_brain

        backtest, factory = _engine_modules()
        self.series = list(series)
        self.brain_kind = brain
        self.config = config if config is not None else backtest.BacktestConfig()
        # "persona" runs with ``brain``; "persona@brain[:model]" with its own, named so
        # (a persona file by the name inside it: an experiment's configurations)
        specs = [parse_persona_brain(p, default_brain=brain) for p in personas]
        labelled = any("@" in p for p in personas)
        loaded = []
        brains: dict[str, tuple[str, dict[str, Any]]] = {}
        for text, spec in zip(personas, specs, strict=True):
            persona = load_persona(spec.persona)
            if labelled:
                label = spec.label
                if spec.persona.endswith(".toml"):
                    label = label.replace(spec.persona, persona.name, 1)
                persona = dataclasses.replace(persona, name=label)
            opts = brain_options_for(
                brain_options or {}, text, spec.brain, self.series, count_candles=labelled
            )
            if spec.model:
                opts["model"] = spec.model
            loaded.append(persona)
            brains[persona.name] = (spec.brain, opts)
        self.persona_names = [p.name for p in loaded]
        self.session = backtest.Session(
            self.series,
            loaded,
            lambda persona: factory.make_brain(
                brains[persona.name][0], persona, **brains[persona.name][1]
            ),
            self.config,
            analysis=analysis,
            on_reasoning=self._reasoning,
        )
        self._on_reasoning: Callable[[str, str], None] | None = None

    def _reasoning(self, persona: str, text: str) -> None:
        if self._on_reasoning is not None:
            self._on_reasoning(persona, text)

    def set_reasoning_callback(self, callback: Callable[[str, str], None] | None) -> None:
        self._on_reasoning = callback

    @property
    def total_steps(self) -> int:
        return int(self.session.total_steps)

    @property
    def initial_cash(self) -> float:
        return float(self.config.initial_cash)

    def step(self) -> dict[str, StepEvent] | None:
        events = self.session.step()
        return events or None

    def reset(self) -> None:
        self.session.reset()

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Each persona's engine metrics for the steps run so far (at the end: headless
        compare's). Called in the runner's thread, between steps."""
        return {name: dict(e.result().metrics) for name, e in self.session.engines.items()}
