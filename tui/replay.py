"""The replay screen: every pane drawn from the ReplayModel, which only StepEvents feed."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer

from engine.brain.breaker import CIRCUIT_OPEN
from tui.chart import CandleChart
from tui.format import fmt_time
from tui.model import ReplayModel
from tui.pane import Pane, View
from tui.panes import (
    BrainPane,
    EquityPane,
    HeaderBar,
    IndicatorsPane,
    InstrumentsTable,
    PositionsPane,
    SignalsPane,
    StatsPane,
    TradesPane,
)
from tui.playback import TRANSPORT_BINDINGS, PlaybackScreen
from tui.sources import ReplaySource

ERROR_TOAST_SECONDS = 5.0


class ReplayScreen(PlaybackScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        *TRANSPORT_BINDINGS,
        Binding("p", "personas", "Persona", id="replay.persona"),
        Binding("c", "compare", "Compare", id="replay.compare"),
        Binding("n", "next_instrument(1)", "Next inst", show=False, id="replay.next"),
        Binding("b", "next_instrument(-1)", "Prev inst", show=False, id="replay.prev"),
        Binding("left_square_bracket", "pan(10)", "Back", show=False, id="chart.back"),
        Binding("right_square_bracket", "pan(-10)", "Forward", show=False, id="chart.forward"),
        Binding("f", "follow", "Follow", show=False, id="chart.follow"),
        Binding("v", "view_prompt", "Prompt", id="replay.prompt"),
    ]

    def __init__(self, source: ReplaySource, speed: str = "10x") -> None:
        super().__init__(source, speed)
        self.focus_instrument = source.series[0].instrument
        self.model = self._new_model()
        self._streamed = ""
        self._stream_lock = threading.Lock()
        self._brain_error: tuple[int, str] | None = None
        self._notified_error = 0.0
        self._told_circuit = False
        source.set_reasoning_callback(self._on_reasoning)

    def _new_model(self) -> ReplayModel:
        return ReplayModel(
            instruments=tuple(s.instrument for s in self.source.series),
            initial_equity=self.source.initial_cash,
        )

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Every widget below implements the pane protocol (tui.pane): a new pane is its
        # class plus one line here; draw() and reset_panes() reach it through self.panes.
        yield HeaderBar(id="header")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield InstrumentsTable(id="instruments")
                yield IndicatorsPane(id="indicators")
            with Vertical(id="center"):
                yield CandleChart(id="chart")
                with Horizontal(id="equity-row"):
                    yield EquityPane(id="equity")
                    yield StatsPane(id="stats")
            with Vertical(id="right"):
                # Fixed-size panes showing the latest items: no relayout per frame.
                yield SignalsPane(id="signals")
                yield BrainPane(id="reasoning")
                yield PositionsPane(id="positions")
                yield TradesPane(id="trades")
        yield Footer()

    def on_mount(self) -> None:
        self.panes: list[Pane] = [w for w in self.query("*") if isinstance(w, Pane)]
        self.draw()
        self.runner.refresh_metrics()

    # -- events ---------------------------------------------------------------------
    def _on_reasoning(self, text: str) -> None:
        # Called from the runner thread while a brain writes; read at the next frame.
        with self._stream_lock:
            self._streamed = text

    def apply_events(self, events: list[Any]) -> None:
        decided = False
        for ev in events:
            self.model.apply(ev)
            for dec in ev.decisions:
                decided = True
                if dec.errors and not (
                    # the circuit breaker's holds: told once, not at every skipped call
                    dec.errors[0].startswith(CIRCUIT_OPEN) and self._told_circuit
                ):
                    self._told_circuit |= dec.errors[0].startswith(CIRCUIT_OPEN)
                    self._brain_error = (self.model.decision_count, dec.errors[0])
        if decided:  # the streamed text belonged to a decision that is now recorded
            with self._stream_lock:
                self._streamed = ""

    def reset_panes(self) -> None:
        self.model = self._new_model()
        for pane in self.panes:
            pane.reset()

    @property
    def lead_model(self) -> ReplayModel:
        return self.model

    # -- drawing --------------------------------------------------------------------
    def header_names(self) -> tuple[str, str]:
        return self.source.persona.name, self.source.brain_label

    def view(self, **busy: Any) -> View:
        """What the panes show this frame; ``busy`` holds the thinking brain's state."""
        return View(
            model=self.model,
            focus=self.focus_instrument,
            variables=self.app.theme_variables,
            metrics=self.run_metrics,
            plot_due=not busy and self._plot_due(self.model.version),
            brain_label=self.source.brain_label,
            **busy,
        )

    def draw_busy(self, seconds: float) -> None:
        with self._stream_lock:
            streamed = self._streamed
        self._header(busy=f"brain thinking {seconds:.1f}s (esc: pause)")
        self.query_one(BrainPane).update_from(self.view(thinking=seconds, streamed=streamed))

    def _notify_brain_error(self) -> None:
        """A brain fault becomes a toast (at most one every few seconds); the replay goes on."""
        if self._brain_error is None:
            return
        now = time.monotonic()
        if now - self._notified_error >= ERROR_TOAST_SECONDS:
            self._notified_error = now
            self.notify(f"brain error: {self._brain_error[1]}", severity="warning", timeout=6)
            self._brain_error = None

    def draw(self) -> None:
        self._notify_brain_error()
        self._header()
        view = self.view()
        for pane in self.panes:
            pane.update_from(view)

    # -- actions --------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        if key in self.model.history and key != self.focus_instrument:
            self.focus_instrument = str(key)
            self.query_one(CandleChart).follow()
            self.draw()

    def action_next_instrument(self, delta: int) -> None:
        names = list(self.model.instruments)
        if not names:
            return
        i = (names.index(self.focus_instrument) + delta) % len(names)
        self.focus_instrument = names[i]
        self.query_one(InstrumentsTable).move_cursor(row=i, animate=False)
        self.query_one(CandleChart).follow()
        self.draw()

    def action_pan(self, candles: int) -> None:
        self.query_one(CandleChart).pan(candles)

    def action_follow(self) -> None:
        self.query_one(CandleChart).follow()

    def action_view_prompt(self) -> None:
        from tui.dialogs import PromptScreen

        dec = self.model.decisions[-1] if self.model.decisions else None
        if dec is None:
            self.notify("no decision yet", timeout=3)
            return
        prompt = dec.prompt or f"The {dec.brain} brain works without a prompt (it scores signals)."
        self.app.push_screen(
            PromptScreen(f"Prompt · {dec.brain} {dec.model} · {fmt_time(dec.time)}", prompt)
        )

    def action_personas(self) -> None:
        from engine.brain.factory import brain_kinds
        from tui.dialogs import PersonaPicker
        from tui.sources import persona_choices

        self.app.push_screen(
            PersonaPicker(
                persona_choices(), brain_kinds(), self.source.persona.name, self.source.brain_kind
            ),
            self._switch_persona,
        )

    def _switch_persona(self, choice: tuple[str, str] | None) -> None:
        if choice is None:
            return
        persona, brain = choice

        def switch() -> None:
            try:
                self.source.switch(persona, brain)
            except Exception as exc:  # a brain that cannot start is a message, not a crash
                self.notify(f"cannot use {persona}/{brain}: {exc}", severity="error", timeout=8)
                return
            self.clock.reset()
            self.reset_view()
            self.draw()
            self.runner.refresh_metrics()
            self.notify(f"rerunning the window with {persona} ({brain})", timeout=3)

        self.run_when_idle(switch, "switching once the current step (a brain call) ends")

    def action_compare(self) -> None:
        from tui.dialogs import CompareSetup
        from tui.sources import persona_choices, same_persona

        names = [n for n, _ in persona_choices()]
        current = next((n for n in names if same_persona(n, self.source.persona.name)), names[0])
        preselected = [current, *[n for n in names if n != current]][:3]
        self.app.push_screen(CompareSetup(names, preselected), self._open_compare)

    def _open_compare(self, personas: list[str] | None) -> None:
        if not personas:
            return
        from tui.compare import CompareScreen
        from tui.sources import CompareSource

        self.action_pause()
        try:
            source = CompareSource(
                self.source.series, personas, self.source.brain_kind, self.source.analysis
            )
        except Exception as exc:  # a brain that cannot start is a message, not a crash
            self.notify(f"cannot compare: {exc}", severity="error", timeout=8)
            return
        self.app.push_screen(CompareScreen(source, speed=self.clock.speed))
