"""The compare screen: 2-4 personas over the same window through one Session."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from tui.format import fmt_metric, fmt_money
from tui.model import ReplayModel
from tui.panes import HeaderBar, decision_block, plot_lines, render_positions, thinking_lines
from tui.playback import TRANSPORT_BINDINGS, PlaybackScreen
from tui.sources import CompareSource

PLOT_COLOURS = ("cyan", "magenta", "yellow", "blue")  # ANSI names plotext and Rich share

METRIC_ROWS: tuple[tuple[str, str], ...] = (
    ("final equity", "final_equity"),
    ("return %", "total_return_pct"),
    ("max drawdown %", "max_drawdown_pct"),
    ("trades", "n_trades"),
    ("win rate %", "win_rate_pct"),
    ("profit factor", "profit_factor"),
    ("expectancy", "expectancy"),
    ("sharpe", "sharpe"),
    ("sortino", "sortino"),
    ("exposure %", "exposure_pct"),
    ("fees", "fees_paid"),
)


def metric_rows(metrics: Any) -> list[tuple[str, str]]:
    """The key metrics the engine reports (headless ``compare`` prints the full set)."""
    keys = {k for m in metrics for k in m}
    return [(label, key) for label, key in METRIC_ROWS if key in keys]


class CompareScreen(PlaybackScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        *(b for b in TRANSPORT_BINDINGS if b.action != "cancel"),
        Binding("escape,c", "back", "Back to replay", id="compare.back"),
    ]

    def __init__(self, source: CompareSource, speed: str = "10x") -> None:
        super().__init__(source, speed)
        self.models = self._new_models()
        self._shown_metrics: Any = None
        self._streamed: dict[str, str] = {}
        self._stream_lock = threading.Lock()
        source.set_reasoning_callback(self._on_reasoning)

    def _on_reasoning(self, persona: str, text: str) -> None:
        with self._stream_lock:  # called from the runner thread
            self._streamed[persona] = text

    def _new_models(self) -> dict[str, ReplayModel]:
        instruments = tuple(s.instrument for s in self.source.series)
        return {
            name: ReplayModel(instruments=instruments, initial_equity=self.source.initial_cash)
            for name in self.source.persona_names
        }

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="compare-top"):
            yield Static(id="compare-equity")
            yield Static(id="compare-metrics")
        with Horizontal(id="compare-cards"):
            for i in range(len(self.source.persona_names)):
                yield Static(id=f"card-{i}", classes="card")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-equity").border_title = "Equity · all personas"
        self.query_one("#compare-metrics").border_title = "Metrics"
        for i, name in enumerate(self.source.persona_names):
            self.query_one(f"#card-{i}").border_title = f"[{PLOT_COLOURS[i]}]━━[/] {name}"
        self.draw()
        self.runner.refresh_metrics()

    # -- events ---------------------------------------------------------------------
    def apply_events(self, events: list[Any]) -> None:
        for step_events in events:
            for name, ev in step_events.items():
                self.models[name].apply(ev)
                if ev.decisions:
                    with self._stream_lock:
                        self._streamed.pop(name, None)

    def reset_panes(self) -> None:
        self.models = self._new_models()

    def event_step(self, ev: Any) -> int:
        return next(iter(ev.values())).step

    def event_time(self, ev: Any) -> int:
        return next(iter(ev.values())).time

    @property
    def lead_model(self) -> ReplayModel:
        return next(iter(self.models.values()))

    # -- drawing --------------------------------------------------------------------
    def header_names(self) -> tuple[str, str]:
        return " · ".join(self.source.persona_names), self.source.brain_kind

    def metrics(self) -> dict[str, Mapping[str, Any]]:
        """Each persona's metrics for the steps so far, as the runner's frames carried them
        (computed in the runner's thread, never here while it steps the engines)."""
        return self.run_metrics or {name: {} for name in self.models}

    def metrics_table(self) -> Table:
        table = Table(box=None, padding=(0, 1), expand=True, show_edge=False)
        table.add_column("metric", style="dim", no_wrap=True)
        names = self.source.persona_names
        for i, name in enumerate(names):
            table.add_column(
                Text(name, style=PLOT_COLOURS[i]),
                justify="right",
                no_wrap=True,
            )
        all_metrics = self.metrics()
        for label, key in metric_rows(all_metrics.values()):
            table.add_row(label, *(fmt_metric(all_metrics[n].get(key)) for n in names))
        return table

    def card(self, name: str, variables: Mapping[str, str], thinking: float | None = None) -> Group:
        m = self.models[name]
        parts: list[Any] = [
            Text.assemble(
                ("equity ", "dim"),
                fmt_money(m.equity),
                ("  trades ", "dim"),
                str(len(m.trades)),
                ("  decisions ", "dim"),
                str(m.decision_count),
            )
        ]
        parts.append(render_positions(m, variables))
        with self._stream_lock:
            streamed = self._streamed.get(name, "")
        if thinking is not None and streamed:
            parts.extend(thinking_lines("", thinking, streamed, variables))
        if m.decisions:
            parts.append(Text(""))
            parts.append(decision_block(m.decisions[-1], variables))
        else:
            parts.append(Text("no decision yet", style="dim"))
        return Group(*parts)

    def draw(self) -> None:
        v = self.app.theme_variables
        self._header()
        for i, name in enumerate(self.source.persona_names):
            self.query_one(f"#card-{i}", Static).update(self.card(name, v), layout=False)
        if self.run_metrics is not self._shown_metrics:
            self._shown_metrics = self.run_metrics
            self.query_one("#compare-metrics", Static).update(self.metrics_table(), layout=False)
        if self._plot_due(self.lead_model.version):
            eq = self.query_one("#compare-equity", Static)
            size = eq.content_size
            eq.update(
                plot_lines(
                    [(n, m.equity_values) for n, m in self.models.items()],
                    size.width,
                    size.height,
                    colors=list(PLOT_COLOURS),
                ),
                layout=False,
            )

    def draw_busy(self, seconds: float) -> None:
        self._header(busy=f"brains thinking {seconds:.1f}s (space: pause)")
        v = self.app.theme_variables
        for i, name in enumerate(self.source.persona_names):
            card = self.card(name, v, thinking=seconds)
            self.query_one(f"#card-{i}", Static).update(card, layout=False)

    def action_back(self) -> None:
        self.playing = False
        self.runner.invalidate()
        self.app.pop_screen()
