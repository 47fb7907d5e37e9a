"""The replay screen's layout at every size from 80x24 to 240x70: chart first, no pane
overlapping another or leaving the screen, a one-line message below the minimum."""

from __future__ import annotations

import itertools

import pytest
from textual.geometry import Region

from tests.tui.conftest import jump, settle, text_of
from tui.chart import CandleChart
from tui.replay import ReplayScreen

pytestmark = pytest.mark.anyio

SIZES = [(80, 24), (100, 30), (120, 36), (120, 40), (160, 48), (200, 60), (240, 70)]
PANES = ("#header", "#chart", "#now", "#tabs", "#strip", "Footer")


def regions(screen: ReplayScreen) -> dict[str, Region]:
    out = {}
    for selector in PANES:
        widget = screen.query_one(selector)
        assert widget.display and widget.region.area > 0, selector
        out[selector] = widget.region
    return out


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_panes_fit_the_screen_without_overlapping(make_app, size) -> None:
    width, height = size
    app = make_app(history=True)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        found = regions(screen)
        screen_region = Region(0, 0, width, height)
        for selector, region in found.items():
            assert screen_region.contains_region(region), (selector, region)
        for (a, ra), (b, rb) in itertools.combinations(found.items(), 2):
            assert not ra.overlaps(rb), (a, ra, b, rb)
        chart = found["#chart"]
        # Chart first: at least 55% of the width from 120 columns up, and most of the height.
        assert chart.width >= (0.55 if width >= 120 else 0.5) * width
        assert chart.height >= 0.75 * height
        # Every row of the chart is drawn at the widget's width (no cut box).
        strips = screen.query_one(CandleChart).frame()
        assert len(strips) == chart.height - 2
        assert {s.cell_length for s in strips} == {chart.width - 2}
        # The compact layout still shows the last signal, decision and position.
        now = text_of(screen.query_one("#now"), width=found["#now"].width - 2)
        assert "rules:" in now or "no decision" in now
        assert "position" in now or "stop" in now


@pytest.mark.parametrize("size", [(79, 24), (80, 23), (60, 20)])
async def test_below_80x24_one_line_says_so(make_app, size) -> None:
    app = make_app(history=True)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        message = screen.query_one("#too-small")
        assert message.display
        assert text_of(message).strip() == (
            f"tapedeck needs at least 80x24 (this terminal is {size[0]}x{size[1]})"
        )
        assert message.region == Region(0, 0, *size)
        for selector in PANES:
            assert screen.query_one(selector).region.area == 0, selector
        # Growing the terminal brings the screen back.
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert not message.display and screen.query_one("#chart").display


async def test_zoom_keeps_the_latest_candle_visible_and_pan_shows_the_way_back(make_app) -> None:
    app = make_app(history=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        await jump(pilot, "900")
        chart = screen.query_one(CandleChart)
        n = len(chart.data)
        seen = []
        for key in ("z", "z", "z", "Z", "Z", "Z", "Z", "Z", "Z"):
            await pilot.press(key)
            await pilot.pause()
            win = chart.window
            seen.append(chart.view.zoom)
            assert win.end == n  # the latest candle is the last one drawn
            assert "LIVE ●" in chart.frame()[0].text
        assert seen == [1, 2, 2, 1, 0, -1, -2, -3, -4]  # in to 3 columns, out to 16:1
        # Back at zoom 0, half a screen back: a marker says how far; f returns to live.
        await pilot.press("z", "z", "z", "z")
        await pilot.press("left_square_bracket")
        await pilot.pause()
        back = n - chart.window.end
        assert back == chart.visible_candles // 2 and f"◀ {back:,} back" in chart.frame()[0].text
        await pilot.press("s")  # a new candle arrives: the view stays where it was
        await settle(pilot)
        assert chart.window.end == n - back and len(chart.data) == n + 1
        await pilot.press("f")
        await pilot.pause()
        assert chart.view.live and chart.window.end == n + 1


async def test_inspect_moves_over_candles_and_escape_returns_to_live(make_app) -> None:
    app = make_app(history=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        await jump(pilot, "600")
        chart = screen.query_one(CandleChart)
        n = len(chart.data)
        await pilot.press("i", "left", "left", "left")
        await pilot.pause()
        assert chart.view.cursor == n - 4 and screen.steps_done == 600  # arrows did not step
        hist = screen.model.history[screen.focus_instrument]
        now = screen.query_one("#now")
        text = text_of(now)
        o = float(hist.candles.view("open")[n - 4])
        from tui.format import fmt_price, fmt_time

        assert fmt_time(hist.times[n - 4]) in str(now.border_title)
        assert f"O {fmt_price(o)}" in text and "rsi" in text
        assert not screen.query_one("#tabs").display or screen.query_one("#tabs").region.area == 0
        await pilot.press("escape")
        await pilot.pause()
        assert chart.view.cursor is None and chart.view.live
        assert str(now.border_title) == "Now"


async def test_btc_quoted_names_and_prices_are_shown_whole(unittest_1m_feather) -> None:
    from textual.widgets import TabbedContent

    from tui.app import TapedeckApp
    from tui.format import fmt_price
    from tui.sources import ReplaySource, ReplaySpec

    spec = ReplaySpec(paths=[str(unittest_1m_feather)], persona="momentum", brain="rules")
    app = TapedeckApp(spec, source=ReplaySource.from_spec(spec))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        chart = screen.query_one(CandleChart)
        close = float(chart.data.close[-1])
        assert chart.frame()[0].text.startswith(f"UNITTEST/BTC C {fmt_price(close)} ")
        assert len(fmt_price(close).split(".")[1]) >= 5  # satoshi prices, not 0.0016
        screen.query_one(TabbedContent).active = "tab-market"
        await pilot.pause()
        table = screen.query_one("#instruments")
        assert table.columns["inst"].width >= len("UNITTEST/BTC")
        lines = [s.text for s in (table.render_line(y) for y in range(table.size.height))]
        assert any("UNITTEST/BTC" in line for line in lines), lines
