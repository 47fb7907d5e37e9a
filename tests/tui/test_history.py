"""Pilot tests of the history features: step back, jumps, the decision and trade lists."""

from __future__ import annotations

import random

import pytest

from tests.tui.conftest import SIZE, settle
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
        screen.jump_to("30")
        await settle(pilot)
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
        screen.jump_to("900")
        await settle(pilot)
        screen.jump_to("400")
        await settle(pilot)
        forward = fingerprint(screen)
        times = sample_analysis.times
        screen.jump_to("1200")
        await settle(pilot)
        from tui.format import fmt_time

        screen.jump_to(fmt_time(int(times[399])))
        await settle(pilot)
        assert screen.steps_done == 400
        assert fingerprint(screen) == forward
