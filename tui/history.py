"""History navigation: what a jump looks for, and the decision and trade browsers.

A jump forward steps the engine until a StepEvent holds the thing looked for (the future
is not known before it is simulated); a jump back finds it in the model and rewinds.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Static

from engine.types import Decision, StepEvent
from tui.dialogs import ModalBase
from tui.format import fmt_money, fmt_qty, fmt_signed, fmt_time
from tui.model import ReplayModel

KINDS: tuple[str, ...] = ("trade", "decision", "signal", "fill")


def decision_instruments(dec: Decision) -> set[str]:
    return {p.instrument for p in dec.plans}


def event_has(ev: StepEvent, kind: str, instrument: str | None) -> bool:
    """Whether step ``ev`` holds a ``kind`` (on ``instrument``, or on any when None).
    A trade is found at its entry fill."""

    def on(name: str) -> bool:
        return instrument is None or name == instrument

    if kind == "trade":
        return any(f.reason == "entry" and on(f.instrument) for f in ev.fills)
    if kind == "fill":
        return any(on(f.instrument) for f in ev.fills)
    if kind == "signal":
        return any(on(s.instrument) for s in ev.signals)
    if kind == "decision":
        if instrument is None:
            return bool(ev.decisions)
        batch = {s.instrument for s in ev.batch.signals} if ev.batch is not None else set()
        return any(instrument in decision_instruments(d) | batch for d in ev.decisions)
    raise ValueError(f"unknown jump kind {kind!r}")


def _logged(model: ReplayModel, kind: str) -> tuple[list[int], list[Any]]:
    if kind == "signal":
        return model.signal_steps, model.signals
    if kind == "decision":
        return model.decision_steps, model.decisions
    return model.fill_steps, model.fill_log


def previous_step(model: ReplayModel, kind: str, instrument: str | None) -> int | None:
    """The latest step before the current one that holds a ``kind``, from the model."""
    steps, items = _logged(model, kind)
    i = bisect.bisect_left(steps, model.step) - 1
    while i >= 0:
        item = items[i]
        if kind == "trade" and item.reason != "entry":
            i -= 1
            continue
        if instrument is None or _item_on(item, kind, instrument):
            return steps[i]
        i -= 1
    return None


def _item_on(item: Any, kind: str, instrument: str) -> bool:
    if kind == "decision":
        return not item.plans or instrument in decision_instruments(item)
    return item.instrument == instrument


def entry_step(model: ReplayModel, trade: Any) -> int | None:
    """The step at which ``trade``'s entry filled (its entry candle), from the model."""
    for fill, step in zip(model.fill_log, model.fill_steps, strict=True):
        if (
            fill.reason == "entry"
            and fill.instrument == trade.instrument
            and fill.time == trade.entry_time
        ):
            return step
    return None


def decision_row(dec: Decision) -> tuple[str, ...]:
    latency = f"{dec.latency_s * 1000:.1f} ms" if dec.latency_s < 1 else f"{dec.latency_s:.2f} s"
    acts = [f"{p.action.value} {p.instrument}" for p in dec.plans] or ["hold"]
    grounded = "-" if dec.grounded is None else ("yes" if dec.grounded else "NO")
    return (
        fmt_time(dec.time),
        latency,
        "hit" if dec.cache_hit else "-",
        grounded,
        str(len(dec.corrections)) if dec.corrections else "-",
        f"{dec.brain}{'/' + dec.model if dec.model else ''}",
        ", ".join(acts),
    )


def decision_detail(dec: Decision) -> str:
    from engine.brain.audit import audit_text

    head = f"{fmt_time(dec.time)} · {dec.brain} {dec.model}\n\nreasoning: {dec.reasoning or '-'}\n"
    return head + "\n" + audit_text(dec)


class BrowserBase(ModalBase):
    """A list of rows over a detail view; enter dismisses with the chosen row's step."""

    DEFAULT_CSS = """
    BrowserBase > Vertical { width: 96%; height: 92%; max-width: 160; }
    BrowserBase DataTable { height: 1fr; min-height: 5; }
    BrowserBase #detail { height: 1fr; border-top: solid $panel-lighten-2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Close", id="browser.close"),
    ]
    TITLE = ""
    COLUMNS: tuple[str, ...] = ()

    def __init__(self, rows: list[tuple[int, tuple[Any, ...]]], detail: Callable[[int], str]):
        super().__init__()
        self._rows = rows  # (step, cells), oldest first
        self._detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.TITLE} · {len(self._rows)}", classes="title")
            yield DataTable(id="rows", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail"):
                yield Static(id="detail-text", markup=False)
            yield Label("↑/↓ choose · enter: go there · esc: close", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # A column that says "-" on every row (the cache, grounding and fixes of a rule
        # brain) gives its width to the columns that say something.
        keep = [
            i
            for i in range(len(self.COLUMNS))
            if not self._rows or any(cells[i] != "-" for _, cells in self._rows)
        ]
        table.add_columns(*(self.COLUMNS[i] for i in keep))
        for row, (_, cells) in enumerate(self._rows):
            table.add_row(*(cells[i] for i in keep), key=str(row))
        if self._rows:
            table.move_cursor(row=len(self._rows) - 1, animate=False)  # the latest
        table.focus()
        self._show(table.cursor_row)

    def _show(self, row: int) -> None:
        if 0 <= row < len(self._rows):
            self.query_one("#detail-text", Static).update(self._detail(row))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(self._rows[event.cursor_row][0])


class DecisionBrowser(BrowserBase):
    TITLE = "Decisions"
    COLUMNS = ("time", "latency", "cache", "grounded", "fixes", "brain", "actions")

    @classmethod
    def of(cls, model: ReplayModel) -> DecisionBrowser:
        decisions = list(model.decisions)
        rows = [
            (step, decision_row(d)) for step, d in zip(model.decision_steps, decisions, strict=True)
        ]
        return cls(rows, lambda i: decision_detail(decisions[i]))


class TradesBrowser(BrowserBase):
    TITLE = "Trades"
    # what a trade did comes before when it closed and at what prices, so that the reason
    # stays whole in an 80-column terminal
    COLUMNS = ("entry", "inst", "side", "P&L", "reason", "exit", "entry px", "exit px")

    @classmethod
    def of(cls, model: ReplayModel) -> TradesBrowser:
        from engine.numfmt import fmt_price

        rows = []
        trades = []
        for t in model.trades:
            step = entry_step(model, t)
            if step is None:
                continue
            trades.append(t)
            pnl = Text(fmt_signed(t.pnl), style="green" if t.pnl >= 0 else "red", justify="right")
            reason = str(t.exit_reason) + (" (ambiguous)" if t.ambiguous else "")
            cells = (
                fmt_time(t.entry_time),
                t.instrument,
                str(t.side),
                pnl,
                reason,
                fmt_time(t.exit_time),
                Text(fmt_price(t.entry_price, grouping=True), justify="right"),
                Text(fmt_price(t.exit_price, grouping=True), justify="right"),
            )
            rows.append((step, cells))

        def detail(i: int) -> str:
            t = trades[i]
            return (
                f"{t.instrument} {t.side} {fmt_qty(t.qty)} · entry {fmt_time(t.entry_time)} at "
                f"{fmt_price(t.entry_price, grouping=True)} · exit {fmt_time(t.exit_time)} at "
                f"{fmt_price(t.exit_price, grouping=True)} ({t.exit_reason}) · "
                f"P&L {fmt_signed(t.pnl)} (net of {fmt_money(t.fees)} fees) · "
                "enter: go to its entry candle"
            )

        return cls(rows, detail)
