"""The replay panes. Each one renders a ReplayModel (built from StepEvents) and nothing else."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from engine.types import Decision, Signal
from tui import hints
from tui.format import (
    fmt_clock,
    fmt_metric,
    fmt_money,
    fmt_price,
    fmt_qty,
    fmt_signed,
    fmt_time,
)
from tui.model import ReplayModel
from tui.pane import TextPane, View

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def colour(variables: Mapping[str, str], name: str, fallback: str = "") -> str:
    return variables.get(name, fallback)


def zone_of(name: str, value: float) -> str | None:
    """ "high" / "low" when a value is in the zone its indicator declares (tui.hints)."""
    return hints.zone(name, value)


def fmt_indicator(name: str, value: float) -> str:
    return _fmt_value(value, hints.decimals(name))


def fmt_evidence(key: str, value: float) -> str:
    """A value of a signal's evidence, as its indicator is shown (``rsi_prev`` as RSI)."""
    return _fmt_value(value, hints.evidence_decimals(key))


def _fmt_value(value: float, decimals: int | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if decimals is not None:  # points (RSI, ADX): the declared decimals
        return f"{value:.{decimals}f}"
    if abs(value) >= 1e6:
        return f"{value:,.0f}"
    return fmt_price(value)


def direction_text(direction: str, variables: Mapping[str, str]) -> Text:
    d = str(direction)
    if d == "long":
        return Text("▲", style=colour(variables, "signal-long"))
    if d == "short":
        return Text("▼", style=colour(variables, "signal-short"))
    return Text("•", style=colour(variables, "signal-neutral"))


def signal_line(sig: Signal, variables: Mapping[str, str]) -> Text:
    line = Text.assemble(
        (fmt_clock(sig.time) + " ", "dim"),
        direction_text(sig.direction, variables),
        f" {sig.instrument} ",
        (sig.kind, "bold"),
        f" {sig.strength:.2f} @ {fmt_price(sig.price)}",
    )
    if sig.count > 1:
        line.append(f" ×{sig.count}", "dim")
    if sig.evidence:
        ev = "  ".join(f"{k}={fmt_evidence(k, float(v))}" for k, v in sig.evidence.items())
        line.append("\n    " + ev, "dim")
    return line


def render_signals(
    model: ReplayModel, variables: Mapping[str, str], limit: int = 30
) -> Group | Text:
    if not model.signals:
        return Text("no signals yet", style="dim")
    recent = model.signals[-limit:]
    recent.reverse()
    return Group(*(signal_line(s, variables) for s in recent))


def render_indicators(
    model: ReplayModel, instrument: str, variables: Mapping[str, str]
) -> Table | Text:
    hist = model.history.get(instrument)
    if hist is None or not hist.indicators:
        return Text("waiting for data", style="dim")
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(ratio=1)
    table.add_column(justify="right")
    for name, value in sorted(hist.indicators.items()):
        v = float(value) if value is not None else math.nan
        zone = zone_of(name, v)
        style = {
            "high": colour(variables, "zone-high"),
            "low": colour(variables, "zone-low"),
        }.get(zone or "", "")
        label = name + {"high": " ↑hi", "low": " ↓lo"}.get(zone or "", "")
        table.add_row(Text(label, style=style or "dim"), Text(fmt_indicator(name, v), style=style))
    return table


def decision_block(dec: Decision, variables: Mapping[str, str]) -> Group:
    latency = f"{dec.latency_s * 1000:.1f} ms" if dec.latency_s < 1 else f"{dec.latency_s:.2f} s"
    head = Text.assemble(
        (fmt_time(dec.time) + "  ", "dim"),
        (dec.brain, "bold"),
        (f" · {dec.model or '-'}", ""),
        (f" · {latency}", "dim"),
        (" · cache hit" if dec.cache_hit else " · no cache", "dim"),
        (f" · {dec.tokens} tok" if dec.tokens else "", "dim"),
    )
    if dec.grounded is False:  # the reasoning says what its prompt does not
        head.append(" · ungrounded", colour(variables, "warning", "yellow"))
    elif dec.grounded:
        head.append(" · grounded", "dim")
    parts: list = [head]
    if dec.reasoning:
        parts.append(Text(dec.reasoning.strip()))
    for plan in dec.plans:
        action = str(plan.action)
        style = (
            colour(variables, "signal-long")
            if action == "open_long"
            else colour(variables, "signal-short")
            if action == "open_short"
            else "dim"
        )
        text = Text.assemble(("→ ", "dim"), (f"{action} {plan.instrument}", style))
        if plan.stop_loss is not None:
            text.append(f"  stop {fmt_price(plan.stop_loss)}")
        if plan.take_profit is not None:
            text.append(f"  target {fmt_price(plan.take_profit)}")
        if plan.size:
            text.append(f"  size {plan.size:.3g} ({plan.size_mode})")
        if plan.confidence:
            text.append(f"  conf {plan.confidence:.2f}", "dim")
        parts.append(text)
    for c in dec.corrections:
        parts.append(Text(f"  corrected: {c}", style=colour(variables, "warning", "yellow")))
    for g in dec.grounding:
        parts.append(Text(f"  ungrounded: {g}", style=colour(variables, "warning", "yellow")))
    for e in dec.errors:
        parts.append(Text(f"  error: {e}", style=colour(variables, "error", "red")))
    return Group(*parts)


def thinking_lines(
    label: str, seconds: float, streamed: str, variables: Mapping[str, str]
) -> list[Text]:
    """A spinner with the seconds a brain has been thinking, then what it has streamed."""
    frame = SPINNER[int(time.monotonic() * 10) % len(SPINNER)]
    lines = [Text(f"{frame} {label}thinking… {seconds:.1f}s", style=colour(variables, "accent"))]
    if streamed:
        lines.append(Text(streamed.strip(), style="italic"))
    return lines


def render_reasoning(
    model: ReplayModel,
    variables: Mapping[str, str],
    *,
    thinking: float | None = None,
    streamed: str = "",
    brain_label: str = "",
    limit: int = 4,
) -> Group | Text:
    parts: list = []
    if thinking is not None:
        parts.extend(thinking_lines(f"{brain_label} ", thinking, streamed, variables))
        parts.append(Text(""))
    decisions = model.decisions[-limit:]
    decisions.reverse()
    for dec in decisions:
        parts.append(decision_block(dec, variables))
        parts.append(Text(""))
    if not parts:
        return Text("no decisions yet (a brain is asked when a batch holds signals)", style="dim")
    return Group(*parts)


def short_name(instrument: str) -> str:
    """The base asset ("BTC" of "BTC/USDT") for compact tables."""
    return instrument.split("/")[0].split("-")[0] or instrument


def render_positions(model: ReplayModel, variables: Mapping[str, str]) -> Group | Text:
    if not model.positions and not model.orders:
        return Text("no open positions or orders", style="dim")
    parts: list = []
    for p in model.positions:
        pnl_style = colour(variables, "signal-long" if p.unrealized_pnl >= 0 else "signal-short")
        parts.append(
            Text.assemble(
                direction_text("long" if str(p.side) == "long" else "short", variables),
                (f" {p.instrument} ", "bold"),
                fmt_qty(p.qty),
                (" @ ", "dim"),
                fmt_price(p.entry_price),
                ("  uPnL ", "dim"),
                (fmt_signed(p.unrealized_pnl), pnl_style),
            )
        )
        parts.append(
            Text.assemble(
                ("   stop ", "dim"),
                (fmt_price(p.stop_loss), colour(variables, "chart-stop")),
                ("  target ", "dim"),
                (fmt_price(p.take_profit), colour(variables, "chart-target")),
                ("  trail ", "dim"),
                (fmt_price(p.trail_stop), colour(variables, "chart-trail")),
            )
        )
    for o in model.orders:
        plan = o.plan
        parts.append(
            Text.assemble(
                ("◇ ", "dim"),
                (f"{o.instrument} {o.kind} {o.side}", ""),
                ("  at ", "dim"),
                fmt_price(o.limit_price) if o.limit_price is not None else "next open",
                ("  stop ", "dim"),
                fmt_price(plan.stop_loss),
                ("  target ", "dim"),
                fmt_price(plan.take_profit),
                ("  pending", "dim"),
            )
        )
    return Group(*parts)


# columns of the closed-trades table left out first when the pane is too narrow for all
_TRADE_COLUMNS_DROPPED_FIRST = ("entry", "exit px", "exit")


def render_trades(
    model: ReplayModel, variables: Mapping[str, str], limit: int = 12, width: int | None = None
) -> Table | Text:
    """The last closed trades, newest first. In a pane narrower than the whole table the
    entry and exit prices, then the exit time, are left out, so that the instrument, the
    pnl and why the trade closed stay whole."""
    if not model.trades:
        return Text("no closed trades yet", style="dim")
    headers = ("exit", "", "inst", "entry", "exit px", "pnl", "why")
    rows = []
    for t in reversed(model.trades[-limit:]):
        style = colour(variables, "signal-long" if t.pnl >= 0 else "signal-short")
        rows.append(
            (
                Text(fmt_clock(t.exit_time)),
                direction_text(str(t.side), variables),
                Text(short_name(t.instrument)),
                Text(fmt_price(t.entry_price)),
                Text(fmt_price(t.exit_price)),
                Text(fmt_signed(t.pnl), style=style),
                Text(str(t.exit_reason) + ("?" if t.ambiguous else "")),
            )
        )
    widths = {
        h: max(len("exit" if h == "exit px" else h), *(row[i].cell_len for row in rows))
        for i, h in enumerate(headers)
    }
    kept = list(headers)
    for name in _TRADE_COLUMNS_DROPPED_FIRST:
        if width is None or sum(widths[h] for h in kept) + len(kept) - 1 <= width:
            break
        kept.remove(name)
    table = Table.grid(padding=(0, 1))
    for h in kept:
        justify = "right" if h in ("entry", "exit px", "pnl") else "left"
        table.add_column(h, justify=justify, no_wrap=True)
    table.add_row(*(Text("exit" if h == "exit px" else h, style="dim") for h in kept))
    for row in rows:
        table.add_row(*(cell for h, cell in zip(headers, row, strict=True) if h in kept))
    return table


def render_stats(metrics: Mapping[str, Any] | None, variables: Mapping[str, str]) -> Table | Text:
    """Key figures of the run so far, as ``engine.metrics`` computes them."""
    if metrics is None:
        return Text("computing…", style="dim")
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim")
    table.add_column(justify="right")
    ret = metrics.get("total_return_pct", math.nan)
    ret_style = colour(variables, "signal-long" if ret >= 0 else "signal-short")
    table.add_row("equity", fmt_money(metrics.get("final_equity", math.nan)))
    table.add_row("return", Text(fmt_signed(ret, 2, "%"), style=ret_style))

    def pct(key: str) -> str:
        text = fmt_metric(metrics.get(key))
        return text if text == "-" else text + "%"

    table.add_row("max dd", pct("max_drawdown_pct"))
    table.add_row("trades", fmt_metric(metrics.get("n_trades")))
    table.add_row("win rate", pct("win_rate_pct"))
    table.add_row("profit f.", fmt_metric(metrics.get("profit_factor")))
    table.add_row("fees", fmt_money(metrics.get("fees_paid", math.nan)))
    return table


PLOT_AXIS_COLOURS = {0, 7, 8, 12, 15}  # plotext's frame/axis colours: drawn in the pane's own


def _downsample(values: list[float], points: int) -> tuple[list[int], list[float]]:
    n = len(values)
    if n <= points:
        return list(range(1, n + 1)), list(values)
    step = n / points
    idx = sorted({min(n - 1, int(i * step)) for i in range(points)} | {n - 1})
    return [i + 1 for i in idx], [values[i] for i in idx]


def plot_lines(
    series: list[tuple[str, list[float]]], width: int, height: int, colors: list[str] | None = None
) -> Text:
    """A plotext line plot of one or more series (low rate only: it costs milliseconds)."""
    import plotext as plt

    width, height = max(width, 12), max(height, 4)
    drawable = [(label, values) for label, values in series if len(values) >= 2]
    if not drawable:
        return Text("the equity curve appears after a few steps", style="dim")
    fig = plt.figure
    fig.clear()
    fig.plot_size(width, height)
    fig.theme("clear")
    for i, (_label, values) in enumerate(drawable):
        x, y = _downsample(values, width * 2)
        colour_name = colors[i % len(colors)] if colors else None
        sig = fig.signal(x, y, marker=plt.marker("braille", colour_name))
        sig.lines()  # no legend: the colours are named in the panes' titles
        fig.draw(sig)
    lo = min(min(v) for _, v in drawable)
    hi = max(max(v) for _, v in drawable)
    ticks = [lo + (hi - lo) * i / 3 for i in range(4)] if hi > lo else [lo]
    decimals = 0 if hi - lo >= 30 else 2
    fig.ruler("y", 0).ticks(ticks, labels=[f"{t:,.{decimals}f}" for t in ticks])
    fig.ruler("x", 0).ticks([], labels=[])  # the step axis says nothing the header does not
    return _keep_series_colours(Text.from_ansi(str(fig.build())))


def _keep_series_colours(text: Text) -> Text:
    """Drop plotext's background and frame colours so the plot takes the theme's."""
    out = Text(text.plain, no_wrap=True, overflow="crop")
    for span in text.spans:
        style = span.style if isinstance(span.style, Style) else Style.parse(str(span.style))
        color = style.color
        if color is not None and color.number not in PLOT_AXIS_COLOURS:
            out.stylize(Style(color=color), span.start, span.end)
    return out


class HeaderBar(Static):
    """Transport first (state, speed and candles a second, simulated time, progress),
    then what is replayed (persona, brain, data, window); one line on short terminals."""

    DEFAULT_CSS = "HeaderBar { height: 2; background: $panel; padding: 0 1; }"

    def show(
        self,
        *,
        data: str,
        window: str,
        persona: str,
        brain: str,
        speed: str,
        playing: bool,
        sim_time: int | None,
        steps_done: int,
        total: int,
        busy: str = "",
        rate: str = "",
    ) -> None:
        v = self.app.theme_variables
        state = (
            Text("▶ playing", style=colour(v, "success"))
            if playing
            else Text("❚❚ paused", style="dim")
        )
        pct = steps_done / total * 100.0 if total else 0.0
        narrow = self.size.width < 110  # labels go, the progress bar shrinks
        bar_w = 6 if narrow else 24
        filled = round(bar_w * pct / 100.0)
        line1 = Text.assemble(
            ("tapedeck ", "bold " + colour(v, "primary")),
            state,
            ("  " if narrow else "  speed ", "dim"),
            (speed, "bold"),
            (f" ({rate})" if rate else "", "dim"),
            ("  ", ""),
            fmt_time(sim_time) if sim_time else "-",
            ("  " if narrow else "  step ", "dim"),
            f"{steps_done:,}/{total:,} ",
            ("█" * filled, colour(v, "primary")),
            ("░" * (bar_w - filled), "dim"),
            f" {pct:4.1f}%",
        )
        line2 = Text.assemble(
            ("persona ", "dim"),
            (persona, "bold"),
            ("  brain ", "dim"),
            brain,
            ("  data ", "dim"),
            data,
            ("  window ", "dim"),
            window,
        )
        if busy:
            line1.append("  " + busy, style=colour(v, "accent"))
        for line in (line1, line2):
            line.no_wrap, line.overflow = True, "ellipsis"
        self.update(Group(line1, line2), layout=False)


class InstrumentsTable(DataTable):
    """Last price, change over the window, position and unrealised PnL per instrument."""

    DEFAULT_CSS = "InstrumentsTable { height: auto; max-height: 12; }"

    def on_mount(self) -> None:
        self.border_title = "Instruments"
        self.cursor_type = "row"
        self.zebra_stripes = False
        self.cell_padding = 0
        self.add_column("inst", width=10, key="inst")
        self.add_column(Text("last", justify="right"), width=12, key="last")
        self.add_column(Text("chg%", justify="right"), width=7, key="chg")
        self.add_column(Text("  uPnL", justify="left"), width=11, key="pos")

    def show(self, model: ReplayModel) -> None:
        v = self.app.theme_variables
        rows = []
        for name in model.instruments:
            hist = model.history[name]
            pos = model.position(name)
            chg = hist.change_pct
            if pos is not None:
                side = "long" if str(pos.side) == "long" else "short"
                pnl_style = colour(v, "signal-long" if pos.unrealized_pnl >= 0 else "signal-short")
                pos_text = Text.assemble(
                    " ", direction_text(side, v), " ", (fmt_signed(pos.unrealized_pnl), pnl_style)
                )
            else:
                pos_text = Text("   -", style="dim")
            chg_style = colour(v, "signal-long" if chg >= 0 else "signal-short")
            rows.append(
                (
                    name,
                    Text(fmt_price(hist.last), justify="right"),
                    Text(
                        fmt_signed(chg, 1),
                        style=chg_style if math.isfinite(chg) else "",
                        justify="right",
                    ),
                    pos_text,
                )
            )
        if self.row_count != len(rows):
            cursor = self.cursor_row
            self.clear()
            # instrument names are never cut (UNITTEST/BTC is 12 characters)
            inst = self.columns["inst"]
            longest = max((len(str(r[0])) for r in rows), default=0)
            if longest > inst.width:
                inst.width = longest
                self.refresh(layout=True)
            for row in rows:
                self.add_row(*row, key=str(row[0]))
            if rows:
                self.move_cursor(row=min(max(cursor, 0), len(rows) - 1), animate=False)
            return
        for r, row in enumerate(rows):
            for c, value in enumerate(row[1:], start=1):
                self.update_cell_at((r, c), value)

    def update_from(self, view: View) -> None:
        self.show(view.model)

    def reset(self) -> None:
        self.clear()


class IndicatorsPane(TextPane):
    TITLE = "Indicators"

    def update_from(self, view: View) -> None:
        self.show(render_indicators(view.model, view.focus, view.variables))


class EquityPane(TextPane):
    TITLE = "Equity"

    def update_from(self, view: View) -> None:
        if view.plot_due:
            size = self.content_size
            self.show(plot_lines([("equity", view.model.equity_values)], size.width, size.height))


class StatsPane(TextPane):
    TITLE = "Stats"

    def update_from(self, view: View) -> None:
        self.show(render_stats(view.metrics, view.variables))


class SignalsPane(TextPane):
    TITLE = "Signals"

    def update_from(self, view: View) -> None:
        m = view.model
        self.show(render_signals(m, view.variables, limit=self.rows // 2 + 1))
        self.border_title = f"Signals · {m.signal_count}"


class BrainPane(TextPane):
    TITLE = "Brain"

    def update_from(self, view: View) -> None:
        m = view.model
        self.show(
            render_reasoning(
                m,
                view.variables,
                thinking=view.thinking,
                streamed=view.streamed,
                brain_label=view.brain_label,
                limit=2,
            ),
            title=f"Brain · {m.decision_count} decisions",
        )


class PositionsPane(TextPane):
    TITLE = "Plans & positions"

    def update_from(self, view: View) -> None:
        self.show(render_positions(view.model, view.variables))


class TradesPane(TextPane):
    TITLE = "Closed trades"

    def update_from(self, view: View) -> None:
        m = view.model
        width = self.content_size.width or None  # None before the first layout
        self.show(
            render_trades(m, view.variables, limit=self.rows, width=width),
            title=f"Closed trades · {len(m.trades)}",
        )
