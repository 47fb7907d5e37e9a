"""Pilot tests of the history features: step back, jumps, the decision and trade lists."""

from __future__ import annotations

import random

import pytest

from tests.tui.conftest import SIZE, jump, settle
from tui.chart import CandleChart

pytestmark = pytest.mark.anyio


def fingerprint(screen) -> str:
    """Everything the panes read from the model (repr: NaN equals NaN)."""
    m = screen.model
    hists = {
        name: (
            h.times,
            {k: h.candles.view(k).tolist() for k in h.candles.names()},
            {k: h.indicator_columns.view(k).tolist() for k in h.indicator_columns.names()},
            h.indicators,
            h.fills,
            h.signals,
            h.signals_at,
            h.decisions_at,
            h.fills_at,
        )
        for name, h in m.history.items()
    }
    return repr(
        (
            m.step,
            m.time,
            m.cash,
            m.equity,
            m.positions,
            m.orders,
            m.trades,
            m.equity_values,
            m.signal_count,
            m.decision_count,
            list(m.signals),
            list(m.decisions),
            hists,
            screen.run_metrics,
        )
    )


async def test_stepping_back_gives_the_state_reached_going_forward(make_app) -> None:
    app = make_app(persona="scalper")
    rng = random.Random(7)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        for k in sorted(rng.sample(range(2, 1500), 3)):
            screen.jump_to(str(k))
            await settle(pilot)
            assert screen.steps_done == k
            here = fingerprint(screen)
            ahead = rng.randrange(1, 12)
            screen.jump_to(str(k + ahead))
            await settle(pilot)
            assert fingerprint(screen) != here
            for _ in range(ahead):
                await pilot.press("left")
                await settle(pilot)
            assert screen.steps_done == k
            assert fingerprint(screen) == here, k
            chart = screen.query_one(CandleChart).data
            assert chart.open_time[-1] == screen.model.history[screen.focus_instrument].times[-1]


async def test_holding_left_scrubs_back_and_stops_at_the_first_candle(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "30")
        await pilot.press(*["left"] * 12)  # faster than the steps back finish
        await settle(pilot)
        assert screen.steps_done == 18
        await pilot.press(*["left"] * 25)
        await settle(pilot)
        assert screen.steps_done == 0 and screen.model.equity_values == []
        await pilot.press("s")
        await settle(pilot)
        assert screen.steps_done == 1


async def test_jump_to_an_earlier_time_rewinds(make_app, sample_analysis) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "900")
        screen.jump_to("400")
        await settle(pilot)
        forward = fingerprint(screen)
        times = sample_analysis.times
        await jump(pilot, "1200")
        from tui.format import fmt_time

        screen.jump_to(fmt_time(int(times[399])))
        await settle(pilot)
        assert screen.steps_done == 400
        assert fingerprint(screen) == forward


def headless(sample_series, sample_analysis, persona: str = "momentum") -> list:
    from engine.backtest import BacktestEngine
    from engine.brain.factory import make_brain
    from engine.brain.persona import load_persona

    p = load_persona(persona)
    engine = BacktestEngine(sample_series, p, make_brain("rules", p), analysis=sample_analysis)
    return [engine.step() for _ in range(engine.total_steps)]


def entry_steps(events, instrument=None) -> list[int]:
    return [
        e.step
        for e in events
        if any(f.reason == "entry" and instrument in (None, f.instrument) for f in e.fills)
    ]


async def test_jump_to_the_next_trade_lands_on_its_entry_candle(
    make_app, sample_series, sample_analysis
) -> None:
    events = headless(sample_series, sample_analysis)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        focus = screen.focus_instrument
        entries = entry_steps(events, focus)
        assert len(entries) >= 3
        for expected in entries[:3]:
            await pilot.press("full_stop")
            await settle(pilot)
            assert screen.steps_done == expected + 1  # the entry candle is the latest
            hist = screen.model.history[focus]
            fills = hist.fills_at[len(hist) - 1]
            assert any(f.reason == "entry" for f in fills)
            assert screen.model.position(focus) is not None or any(
                t.entry_time == fills[0].time for t in screen.model.trades
            )
        await pilot.press("comma")  # previous trade on this instrument
        await settle(pilot)
        assert screen.steps_done == entries[1] + 1
        await pilot.press("a", "m")  # every instrument, decisions
        assert screen.jump_all and screen.jump_kind == "decision"
        await pilot.press("full_stop")
        await settle(pilot)
        decided = [e.step for e in events if e.decisions and e.step > entries[1]]
        assert screen.steps_done == decided[0] + 1


async def test_choosing_a_trade_in_the_table_goes_to_its_entry(
    make_app, sample_series, sample_analysis
) -> None:
    from tui.history import TradesBrowser

    events = headless(sample_series, sample_analysis)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "900")
        await pilot.press("T")
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, TradesBrowser)
        trades = list(screen.model.trades)
        assert len(browser._rows) == len(trades) > 3
        # prices with every digit the engine prints, grouped as the other panes group them
        from engine.numfmt import fmt_price

        btc = [
            (c, t)
            for (_, c), t in zip(browser._rows, trades, strict=True)
            if t.instrument[0] == "B"
        ]
        cells, trade = btc[0]
        assert cells[6].plain == fmt_price(trade.entry_price, grouping=True)
        assert cells[7].plain == fmt_price(trade.exit_price, grouping=True)
        assert "," in cells[6].plain and float(cells[6].plain.replace(",", "")) == float(
            fmt_price(trade.entry_price)
        )
        await pilot.press("up", "up")
        await pilot.pause()
        from textual.widgets import DataTable

        row = browser.query_one(DataTable).cursor_row
        assert row == len(trades) - 3, row  # the third latest trade
        await pilot.press("enter")
        await settle(pilot)
        trade = trades[row]
        entry = next(
            e.step
            for e in events
            if any(f.reason == "entry" and f.time == trade.entry_time for f in e.fills)
        )
        assert screen.steps_done == entry + 1
        assert screen.model.position(trade.instrument).entry_time == trade.entry_time


async def test_the_trades_table_shows_each_trades_reason_whole_in_80_columns(make_app) -> None:
    from textual.widgets import DataTable

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await jump(pilot, "900")
        await pilot.press("T")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        labels = [str(c.label) for c in table.ordered_columns]
        upto = labels.index("reason") + 1
        needed = sum(c.get_render_width(table) for c in table.ordered_columns[:upto])
        assert needed <= table.scrollable_content_region.width, (labels, needed)
        reasons = {str(table.get_row_at(r)[upto - 1]) for r in range(table.row_count)}
        assert reasons and reasons <= {"stop", "take_profit", "trailing", "signal", "end"}, reasons


async def test_the_now_pane_says_why_no_trade_for_each_instrument(make_app) -> None:
    from engine.backtest.why import why_no_trade, with_last_decision
    from tests.tui.conftest import text_of
    from tui.panes import short_name

    app = make_app()
    async with app.run_test(size=(200, 60)) as pilot:
        screen = app.screen
        await jump(pilot, "696")  # two positions open; the last decision on two was a hold
        analysis, persona, m = screen.source.analysis, screen.source.persona, screen.model
        expected = with_last_decision(
            why_no_trade(analysis, persona, m.last_event),
            analysis,
            persona,
            m.decision_steps,
            m.decisions,
        )
        shown = text_of(screen.query_one("#now"), width=400)
        assert "why no trade:" in shown
        flowing = " ".join(shown.split())  # a long line wraps under its text
        for w in expected:
            assert f"{short_name(w.instrument)} {w.text}" in flowing
        assert "…" not in shown  # 200 x 60: room for every line whole
        assert {w.reason for w in expected} - {"no_signal"}  # not only the trivial reason
        assert any(w.text.startswith("no signal since ") for w in expected)


async def test_a_list_drops_columns_that_say_nothing_on_every_row() -> None:
    from textual.app import App
    from textual.widgets import DataTable

    from tui.history import BrowserBase

    class Listing(BrowserBase):
        TITLE = "Decisions"
        COLUMNS = ("time", "cache", "grounded", "actions")

    rows = [
        (1, ("00:05", "-", "-", "hold BTC/USDT")),
        (2, ("00:10", "-", "NO", "open_long BTC/USDT")),
    ]

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(Listing(rows, lambda i: f"row {i}"))

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["time", "grounded", "actions"]  # "cache" is "-" on every row
        assert table.get_row_at(1) == ["00:10", "NO", "open_long BTC/USDT"]
