"""What the sidebar's first pane and the stats strip show.

``render_now``: one glance at what just happened (the last signal, the last decision,
the open positions). ``render_inspect``: the same pane while the inspect cursor is on a
candle (its OHLCV, indicator values, the signals fired, the decisions and fills there).
``render_strip``: the one-line stats strip under the chart.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.text import Text
from textual.widgets import Static

from engine.types import Decision
from tui.format import fmt_clock, fmt_metric, fmt_money, fmt_price, fmt_qty, fmt_signed, fmt_time
from tui.model import ReplayModel
from tui.pane import TextPane, View
from tui.panes import colour, direction_text, fmt_indicator, short_name

# Indicators the inspect pane lists first, in this order (the rest follow by name).
INSPECT_FIRST = ("ema_fast", "ema_slow", "bb_upper", "bb_middle", "bb_lower", "rsi", "macd")


def decision_summary(dec: Decision) -> str:
    """'open_long BTC, hold ETH' (or 'hold' when the brain returned no plan)."""
    acts = [f"{p.action} {short_name(p.instrument)}" for p in dec.plans]
    return ", ".join(acts) if acts else "hold"


def _decision_lines(dec: Decision, variables: Mapping[str, str], full: bool) -> list[Text]:
    head = Text.assemble(
        (fmt_clock(dec.time) + " ", "dim"),
        (dec.brain + ": ", "bold"),
        (decision_summary(dec), colour(variables, "accent")),
    )
    lines = [head]
    reasoning = (dec.reasoning or "").strip()
    if reasoning:
        lines.append(Text("  " + (reasoning if full else reasoning.splitlines()[0]), style="dim"))
    if full:
        for plan in dec.plans:
            if plan.stop_loss is None and plan.take_profit is None:
                continue
            lines.append(
                Text(
                    f"  {short_name(plan.instrument)} stop {fmt_price(plan.stop_loss)}"
                    f" target {fmt_price(plan.take_profit)}",
                    style="dim",
                )
            )
        for c in dec.corrections:
            lines.append(Text(f"  corrected: {c}", style=colour(variables, "warning", "yellow")))
        for e in dec.errors:
            lines.append(Text(f"  error: {e}", style=colour(variables, "error", "red")))
    return lines


def render_now(
    model: ReplayModel,
    variables: Mapping[str, str],
    why: Sequence[Any] = (),
    width: int = 0,
    height: int = 0,
) -> Group:
    """``width`` x ``height``: the pane's content size, when known: the why-no-trade lines
    wrap into the rows left free."""
    parts: list[Text] = []
    if model.signals:
        sig = model.signals[-1]
        parts.append(
            Text.assemble(
                (fmt_clock(sig.time) + " ", "dim"),
                direction_text(sig.direction, variables),
                (f" {sig.kind}", "bold"),
                f" {sig.instrument} {sig.strength:.2f}",
            )
        )
    else:
        parts.append(Text("no signal yet", style="dim"))
    if model.decisions:
        parts.extend(_decision_lines(model.decisions[-1], variables, full=False))
    else:
        parts.append(Text("no decision yet (asked when a batch holds signals)", style="dim"))
    if not model.positions:
        parts.append(Text("no open position", style="dim"))
    for p in model.positions:
        side = "long" if str(p.side) == "long" else "short"
        pnl_style = colour(variables, "signal-long" if p.unrealized_pnl >= 0 else "signal-short")
        parts.append(
            Text.assemble(
                direction_text(side, variables),
                (f" {p.instrument} {side} ", "bold"),
                fmt_qty(p.qty),
                (" @ ", "dim"),
                fmt_price(p.entry_price),
                " ",
                (fmt_signed(p.unrealized_pnl), pnl_style),
            )
        )
        parts.append(
            Text.assemble(
                ("  stop ", "dim"),
                (fmt_price(p.stop_loss), colour(variables, "chart-stop")),
                ("  target ", "dim"),
                (fmt_price(p.take_profit), colour(variables, "chart-target")),
            )
        )
    if why:  # engine.backtest.why: one line per instrument
        parts.append(Text("why no trade:", style="dim"))
    for line in parts:
        line.overflow = "fold"
    room = 0
    if why and width and height:
        room = height - sum(_rows(line, width) for line in parts)
    parts.extend(_why_rows(why, width, room))
    return Group(*parts)


def _rows(text: Text, width: int) -> int:
    return len(text.wrap(_MEASURE, width))


_MEASURE = Console(width=200)  # only measures lines (``Text.wrap``), never prints


def _why_rows(why: Sequence[Any], width: int, room: int) -> list[Text]:
    """The why-no-trade lines, each on one row cut with an ellipsis (every instrument
    keeps a row, however narrow), except that a line is wrapped under its text (a hanging
    indent past the instrument's name) while the ``room`` rows of ``width`` cells left
    allow it, in order."""
    spare = room - len(why)
    rows: list[Text] = []
    for w in why:
        head = f" {short_name(w.instrument)} "
        body = [w.text]
        if width > len(head) + 8 and spare > 0:
            wrapped = textwrap.wrap(w.text, width - len(head)) or [""]
            if len(wrapped) - 1 <= spare:
                body, spare = wrapped, spare - (len(wrapped) - 1)
        rows.append(Text.assemble((head, "bold"), body[0]))
        rows.extend(Text(" " * len(head) + more) for more in body[1:])
    for row in rows:
        row.no_wrap, row.overflow = True, "ellipsis"
    return rows


def render_inspect(
    model: ReplayModel, instrument: str, candle: int, variables: Mapping[str, str]
) -> Group | Text:
    """The inspected candle of ``instrument``: OHLCV, the signals fired, the decision and
    fills there, then every indicator value (last: a short pane cuts the list, not them)."""
    hist = model.history.get(instrument)
    if hist is None or not 0 <= candle < len(hist):
        return Text("no candle here", style="dim")
    c = hist.candles
    o, h, lo, cl, v = (float(c.view(k)[candle]) for k in ("open", "high", "low", "close", "volume"))
    up = cl >= o
    parts: list[Text] = [
        Text.assemble(
            (f"{instrument} ", "bold"),
            (fmt_time(hist.times[candle]), ""),
            (f"  #{candle + 1:,}", "dim"),
        ),
        Text.assemble(("O ", "dim"), fmt_price(o), ("  H ", "dim"), fmt_price(h)),
        Text.assemble(
            ("L ", "dim"),
            fmt_price(lo),
            ("  C ", "dim"),
            (fmt_price(cl), colour(variables, "candle-up" if up else "candle-down")),
        ),
        Text.assemble(
            ("V ", "dim"), f"{v:,.4g}", ("  chg ", "dim"), fmt_signed((cl / o - 1) * 100, 2, "%")
        ),
    ]
    sigs = hist.signals_at.get(candle, [])
    parts.append(Text(f"signals ({len(sigs)})" if sigs else "no signal", style="bold"))
    for sig in sigs:
        parts.append(
            Text.assemble(
                "  ",
                direction_text(sig.direction, variables),
                (f" {sig.kind}", "bold"),
                f" {sig.strength:.2f}",
            )
        )
    decs = hist.decisions_at.get(candle, [])
    if decs:
        parts.append(Text("decision", style="bold"))
        for dec in decs:
            parts.extend(_decision_lines(dec, variables, full=True))
    else:
        parts.append(Text("no decision at this candle", style="dim"))
    for fill in hist.fills_at.get(candle, []):
        parts.append(
            Text.assemble(
                ("fill ", "bold"),
                f"{fill.side} {fmt_qty(fill.qty)} @ {fmt_price(fill.price)} ({fill.reason})",
            )
        )
    values = hist.values_at(candle)
    order = [k for k in INSPECT_FIRST if k in values]
    order += sorted(k for k in values if k not in INSPECT_FIRST)
    shown = [(k, values[k]) for k in order if math.isfinite(values[k])]
    if shown:
        parts.append(Text("indicators", style="bold"))
        for k, val in shown:
            parts.append(Text.assemble((f"  {k} ", "dim"), fmt_indicator(k, val)))
    for line in parts:
        line.overflow = "fold"
    return Group(*parts)


def render_strip(
    metrics: Mapping[str, Any] | None, variables: Mapping[str, str], width: int = 200
) -> Text:
    """equity, return, drawdown, trades, win rate, profit factor, fees on one line, as
    ``engine.metrics`` computes them; below 90 columns without the fees (never cut)."""
    if metrics is None:
        return Text("computing…", style="dim")
    ret = metrics.get("total_return_pct", math.nan)

    def pct(key: str) -> str:
        text = fmt_metric(metrics.get(key))
        return text if text == "-" else text + "%"

    text = Text.assemble(
        ("equity ", "dim"),
        fmt_money(metrics.get("final_equity", math.nan)),
        " ",
        (
            fmt_signed(ret, 2, "%"),
            colour(variables, "signal-long" if not ret < 0 else "signal-short"),
        ),
        ("  dd ", "dim"),
        pct("max_drawdown_pct"),
        ("  trades ", "dim"),
        fmt_metric(metrics.get("n_trades")),
        ("  win ", "dim"),
        pct("win_rate_pct"),
        ("  pf ", "dim"),
        fmt_metric(metrics.get("profit_factor")),
    )
    if width >= 90:
        text.append_text(
            Text.assemble(("  fees ", "dim"), fmt_money(metrics.get("fees_paid", math.nan)))
        )
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


class NowPane(TextPane):
    """The sidebar's first pane: what just happened, or the inspected candle."""

    TITLE = "Now"

    def update_from(self, view: View) -> None:
        cursor = view.cursor
        hist = view.model.history.get(view.focus)
        if cursor is not None and hist is not None and 0 <= cursor < len(hist):
            self.show(
                render_inspect(view.model, view.focus, cursor, view.variables),
                title="At " + fmt_time(hist.times[cursor]),
            )
        else:
            size = self.content_size
            now = render_now(view.model, view.variables, view.why, size.width, size.height)
            self.show(now, title=self.TITLE)


class StripPane(Static):
    """The one-line stats strip under the chart."""

    def update_from(self, view: View) -> None:
        self.update(render_strip(view.metrics, view.variables, self.size.width), layout=False)

    def reset(self) -> None:
        self.update("")
