"""The replay screen: every pane drawn from the ReplayModel, which only StepEvents feed."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane, Tabs

from engine.backtest.checkpoint import Rewound
from engine.brain.breaker import CIRCUIT_OPEN
from tui.chart import CandleChart
from tui.format import fmt_time
from tui.hints import default_hints, display_extras
from tui.history import KINDS, DecisionBrowser, TradesBrowser, event_has, previous_step
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
from tui.sidebar import NowPane, StripPane
from tui.sources import ReplaySource

ERROR_TOAST_SECONDS = 5.0
MIN_SIZE = (80, 24)
# sidebar tabs: (pane id, labels by terminal width: below 140, from 140, from 200 columns)
TABS = (
    ("tab-signals", "Sig", "Signals", "Signals"),
    ("tab-brain", "Brain", "Brain", "Brain"),
    ("tab-trades", "Trd", "Trades", "Trades"),
    ("tab-positions", "Pos", "Pos", "Positions"),
    ("tab-market", "Mkt", "Market", "Market"),
    ("tab-stats", "Stat", "Stats", "Stats"),
)


class ReplayScreen(PlaybackScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        *TRANSPORT_BINDINGS,
        # priority: the sidebar's tabs would take ← otherwise
        Binding("left", "step_back", "Back", show=False, priority=True, id="replay.step_back"),
        Binding("full_stop", "jump_next", "Next", show=False, id="history.next"),
        Binding("comma", "jump_prev", "Prev", show=False, id="history.prev"),
        Binding("m", "jump_kind", "Jump kind", show=False, id="history.kind"),
        Binding("a", "jump_scope", "All/focus", show=False, id="history.scope"),
        Binding("d", "decisions", "Decisions", show=False, id="history.decisions"),
        Binding("T", "trades", "Trades", show=False, id="history.trades"),
        Binding("e", "export('trades')", "Export trades", show=False, id="export.trades"),
        Binding("E", "export('runlog')", "Export run log", show=False, id="export.runlog"),
        Binding("H", "export('report')", "Export report", show=False, id="export.report"),
        Binding("S", "app.screenshot", "Screenshot", show=False, id="export.screenshot"),
        Binding("p", "personas", "Persona", id="replay.persona"),
        Binding("c", "compare", "Compare", id="replay.compare"),
        Binding("n", "next_instrument(1)", "Next inst", show=False, id="replay.next"),
        Binding("b", "next_instrument(-1)", "Prev inst", show=False, id="replay.prev"),
        Binding("z", "zoom(1)", "Zoom", id="chart.zoom_in"),
        Binding("Z", "zoom(-1)", "Zoom out", show=False, id="chart.zoom_out"),
        Binding("left_square_bracket", "pan_page(1)", "Back", show=False, id="chart.back"),
        Binding("right_square_bracket", "pan_page(-1)", "Fwd", show=False, id="chart.forward"),
        Binding("f,end", "follow", "Live", show=False, id="chart.follow"),
        Binding("o", "oscillator(1)", "Osc", id="chart.oscillator"),
        Binding("i", "inspect", "Inspect", id="chart.inspect"),
        Binding("v", "view_prompt", "Prompt", show=False, id="replay.prompt"),
        Binding("tab", "next_tab(1)", "Tab", show=False, priority=True, id="sidebar.next"),
        Binding(
            "shift+tab", "next_tab(-1)", "Prev tab", show=False, priority=True, id="sidebar.prev"
        ),
    ]
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [
        (0, "-w80"),
        (100, "-w100"),
        (140, "-w140"),
        (200, "-w200"),
    ]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [
        (0, "-h24"),
        (30, "-h30"),
        (40, "-h40"),
    ]

    def __init__(
        self, source: ReplaySource, speed: str = "100x", *, open_with_history: bool = True
    ) -> None:
        super().__init__(source, speed)
        self.focus_instrument = source.series[0].instrument
        self.jump_kind = KINDS[0]  # what . and , jump to
        self.jump_all = False  # on every instrument, or the focused one
        self._why_cache: tuple[Any, tuple[Any, ...]] = (None, ())
        self._open_with_history = open_with_history
        self._extras: dict | None = None
        self.model = self._new_model()
        self._streamed = ""
        self._stream_lock = threading.Lock()
        self._brain_error: tuple[int, str] | None = None
        self._notified_error = 0.0
        self._told_circuit = False
        source.set_reasoning_callback(self._on_reasoning)

    def _new_model(self) -> ReplayModel:
        if self._extras is None:
            # stochastic and ADX for the oscillator pane: computed once per window
            self._extras = {s.instrument: display_extras(s) for s in self.source.series}
        return ReplayModel(
            instruments=tuple(s.instrument for s in self.source.series),
            initial_equity=self.source.initial_cash,
            extras=self._extras,
        )

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Every widget below but the header implements the pane protocol (tui.pane): a new
        # pane is its class plus one line here; draw() and reset_panes() reach it through
        # self.panes. Panes inside a sidebar tab are drawn only while their tab shows.
        yield HeaderBar(id="header")
        yield Static(id="too-small")
        with Horizontal(id="main"):
            yield CandleChart(id="chart")
            with Vertical(id="sidebar"):
                yield NowPane(id="now")
                with TabbedContent(id="tabs"):
                    with TabPane("Sig", id="tab-signals"):
                        yield SignalsPane(id="signals")
                    with TabPane("Brain", id="tab-brain"):
                        yield BrainPane(id="reasoning")
                    with TabPane("Trd", id="tab-trades"):
                        yield TradesPane(id="trades")
                    with TabPane("Pos", id="tab-positions"):
                        yield PositionsPane(id="positions")
                    with TabPane("Mkt", id="tab-market"):
                        yield InstrumentsTable(id="instruments")
                        yield IndicatorsPane(id="indicators")
                    with TabPane("Stat", id="tab-stats"):
                        yield StatsPane(id="stats")
                        yield EquityPane(id="equity")
        yield StripPane(id="strip")
        yield Footer()

    def on_mount(self) -> None:
        # Keys belong to the screen (arrows step or move the cursor): nothing takes focus;
        # tab / shift+tab switch the sidebar's tabs.
        for widget in (*self.query(Tabs), self.query_one(InstrumentsTable)):
            widget.can_focus = False
        self.panes: list[Pane] = [w for w in self.query("*") if isinstance(w, Pane)]
        self._tab_of = {id(p): self._tab_holding(p) for p in self.panes}
        self._fit(self.app.size.width, self.app.size.height)
        self.draw()
        self.runner.refresh_metrics()
        if self._open_with_history:
            self.call_after_refresh(self.open_with_history)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        """Below the minimum size one line says so; tabs carry full names when wide."""
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.set_class(small, "too-small")
        if small:
            self.query_one("#too-small", Static).update(
                Text(
                    f"tapedeck needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}"
                    f" (this terminal is {width}x{height})"
                )
            )
        tabs = self.query_one(TabbedContent)
        size = 2 if width >= 200 else 1 if width >= 140 else 0
        for pane_id, *labels in TABS:
            tab = tabs.get_tab(pane_id)
            if str(tab.label) != labels[size]:
                tab.label = labels[size]

    @staticmethod
    def _tab_holding(widget: Any) -> str | None:
        node = widget.parent
        while node is not None and not isinstance(node, TabPane):
            node = node.parent
        return node.id if node is not None else None

    def opening_step(self) -> int:
        """Where the window opens: every indicator valid and the chart full of candles."""
        arrays = self.source.analysis.arrays[self.focus_instrument]
        valid = np.ones(len(arrays.close), dtype=bool)
        for values in arrays.indicators.values():
            valid &= np.isfinite(values)
        warm = int(np.argmax(valid)) if valid.any() else 0
        candles = max(warm + 1, self.query_one(CandleChart).visible_candles)
        candles = min(candles, len(arrays.close))
        step = int(arrays.step_of_candle[candles - 1]) + 1 if candles else 0
        return min(step, self.source.total_steps - 1)

    def open_with_history(self) -> None:
        """Run the warm-up (and enough candles to fill the chart) before the first frame."""
        if self.steps_done == 0:
            self.jump_to(str(self.opening_step()))

    # -- events ---------------------------------------------------------------------
    def _on_reasoning(self, text: str) -> None:
        # Called from the runner thread while a brain writes; read at the next frame.
        with self._stream_lock:
            self._streamed = text

    def apply_events(self, events: list[Any]) -> None:
        decided = False
        for ev in events:
            if isinstance(ev, Rewound):  # a step back: the model goes back with the engine
                if ev.event is None:
                    self.reset_panes()
                else:
                    self.model.rewind(ev.event)
                continue
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
        self._show_inspect(False)

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
            cursor=self.query_one(CandleChart).view.cursor,
            why=self._why(),
            **busy,
        )

    def _why(self) -> tuple[Any, ...]:
        """Why no trade at the latest step (the engine's reasons; cached per model version)."""
        ev = self.model.last_event
        if ev is None:
            return ()
        if self._why_cache[0] != (self.model.version, id(self.model)):
            from engine.backtest.why import why_no_trade, with_last_decision

            analysis, persona, m = self.source.analysis, self.source.persona, self.model
            lines = why_no_trade(analysis, persona, ev)
            lines = with_last_decision(lines, analysis, persona, m.decision_steps, m.decisions)
            self._why_cache = ((self.model.version, id(self.model)), lines)
        return self._why_cache[1]

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
        if self.has_class("too-small"):
            return
        self._notify_brain_error()
        self._header()
        view = self.view()
        # While inspecting the tabs are hidden; otherwise only the visible tab is drawn.
        active = None if view.cursor is not None else self.query_one(TabbedContent).active
        for pane in self.panes:
            tab = self._tab_of[id(pane)]
            if tab is None or tab == active:
                pane.update_from(view)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._plot_version = -1
        self.draw()

    # -- actions --------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        if key in self.model.history and key != self.focus_instrument:
            self.focus_instrument = str(key)
            self._refocus()

    def _refocus(self) -> None:
        chart = self.query_one(CandleChart)
        chart.inspect(None)
        chart.follow()
        self._show_inspect(False)
        self.draw()

    def action_next_instrument(self, delta: int) -> None:
        names = list(self.model.instruments)
        if not names:
            return
        i = (names.index(self.focus_instrument) + delta) % len(names)
        self.focus_instrument = names[i]
        self.query_one(InstrumentsTable).move_cursor(row=i, animate=False)
        self._refocus()

    # -- chart view -------------------------------------------------------------------
    def action_pan_page(self, pages: int) -> None:
        """Half the visible candles back (1) or forward (-1)."""
        chart = self.query_one(CandleChart)
        chart.pan(pages * max(1, chart.visible_candles // 2))

    def action_follow(self) -> None:
        chart = self.query_one(CandleChart)
        chart.inspect(None)
        chart.follow()
        self._show_inspect(False)
        self.draw()

    def action_next_tab(self, delta: int) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [pane_id for pane_id, *_ in TABS]
        i = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(i + delta) % len(ids)]

    def action_restart(self) -> None:
        """Back to where the window opens (its warm-up history drawn)."""
        super().action_restart()
        if self._open_with_history:
            self.run_when_idle(self.open_with_history)

    def action_zoom(self, delta: int) -> None:
        self.query_one(CandleChart).zoom(delta)

    def action_oscillator(self, delta: int) -> None:
        chart = self.query_one(CandleChart)
        chart.set_oscillator(default_hints().next_oscillator(chart.view.oscillator, delta))

    def action_step_back(self) -> None:
        chart = self.query_one(CandleChart)
        if chart.view.cursor is None:
            super().action_step_back()
        else:  # inspecting: ← moves the cursor
            chart.inspect(chart.view.cursor - 1)
            self.draw()

    # -- history --------------------------------------------------------------------
    def _jump_scope(self) -> str | None:
        return None if self.jump_all else self.focus_instrument

    def _jump_what(self) -> str:
        return f"{self.jump_kind} ({'all instruments' if self.jump_all else self.focus_instrument})"

    def action_jump_kind(self) -> None:
        self.jump_kind = KINDS[(KINDS.index(self.jump_kind) + 1) % len(KINDS)]
        self.notify(f"./, jump to the next/previous {self._jump_what()}", timeout=3)

    def action_jump_scope(self) -> None:
        self.jump_all = not self.jump_all
        self.notify(f"./, jump to the next/previous {self._jump_what()}", timeout=3)

    def action_jump_next(self) -> None:
        kind, instrument = self.jump_kind, self._jump_scope()
        self.jump_until(partial(event_has, kind=kind, instrument=instrument), self._jump_what())

    def action_jump_prev(self) -> None:
        step = previous_step(self.model, self.jump_kind, self._jump_scope())
        if step is None:
            self.notify(f"no earlier {self._jump_what()}", timeout=3)
            return
        self.rewind_to(step + 1)

    def action_decisions(self) -> None:
        if not self.model.decisions:
            self.notify("no decision yet", timeout=3)
            return
        self.app.push_screen(DecisionBrowser.of(self.model), self._go_to_step)

    def action_trades(self) -> None:
        if not self.model.trades:
            self.notify("no closed trade yet", timeout=3)
            return
        self.app.push_screen(TradesBrowser.of(self.model), self._go_to_step)

    def _go_to_step(self, step: int | None) -> None:
        """A browser's choice: the chart goes to that step (its entry candle for a trade)."""
        if step is not None:
            self.query_one(CandleChart).follow()
            self.rewind_to(step + 1)

    # -- export ---------------------------------------------------------------------
    def action_export(self, what: str) -> None:
        """The closed trades as CSV, or the run log of the steps so far (JSONL)."""

        def export() -> None:  # the runner is idle: nothing else touches the engine
            from tui.export import export_path

            try:
                path = self.source.export(what, export_path(self.source.persona.name, what))
            except (OSError, ValueError) as exc:
                self.notify(f"cannot export: {exc}", severity="error", timeout=8)
                return
            self.notify(f"saved {path}", timeout=6)

        self.run_when_idle(export)

    def action_inspect(self) -> None:
        """Put the cursor on the latest visible candle (pausing), or take it away."""
        chart = self.query_one(CandleChart)
        if chart.view.cursor is not None:
            self.action_follow()
            return
        if not len(chart.data):
            return
        self.action_pause()
        chart.inspect(chart.window.end - 1)
        self._show_inspect(True)
        self.draw()

    def _show_inspect(self, on: bool) -> None:
        self.query_one("#sidebar").set_class(on, "inspecting")

    def on_key(self, event: events.Key) -> None:
        """While inspecting, the arrows move the cursor and escape returns to live."""
        chart = self.query_one(CandleChart)
        cursor = chart.view.cursor
        if cursor is None:
            return
        moves = {"left": -1, "right": 1, "shift+left": -10, "shift+right": 10}
        if event.key in moves:
            chart.inspect(cursor + moves[event.key])
        elif event.key == "home":
            chart.inspect(0)
        elif event.key == "escape":
            self.action_follow()
        else:
            return
        event.stop()
        event.prevent_default()
        self.draw()

    def action_view_prompt(self) -> None:
        from tui.dialogs import PromptScreen

        dec = self.model.decisions[-1] if self.model.decisions else None
        if dec is None:
            self.notify("no decision yet", timeout=3)
            return
        if dec.prompt:
            from engine.brain.audit import audit_text

            prompt = audit_text(dec)  # prompt, raw answer, parsed plans, every correction
        else:
            prompt = f"The {dec.brain} brain works without a prompt (it scores signals)."
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
        # An LLM replay also offers each persona with the rule brain: AI against rules.
        kind = self.source.brain_kind
        others = [f"{n}@rules" for n in names] if kind != "rules" else []
        self.app.push_screen(CompareSetup([*names, *others], preselected), self._open_compare)

    def _open_compare(self, personas: list[str] | None) -> None:
        if not personas:
            return
        from tui.compare import CompareScreen
        from tui.sources import CompareSource

        self.action_pause()
        try:
            source = CompareSource(
                self.source.series,
                personas,
                self.source.brain_kind,
                self.source.analysis,
                config=self.source.config,
                brain_options=self.source.brain_options,
            )
        except Exception as exc:  # a brain that cannot start is a message, not a crash
            self.notify(f"cannot compare: {exc}", severity="error", timeout=8)
            return
        self.app.push_screen(CompareScreen(source, speed=self.clock.speed))
