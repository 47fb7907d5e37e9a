"""The candlestick chart: glyphs, visible window, price scales from 40,000 to 0.00001."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tui.chart import (
    AXIS_WIDTH,
    ChartData,
    ChartView,
    palette_from_variables,
    render_chart,
    split_rows,
)
from tui.format import fmt_price
from tui.theming import VARIABLE_DEFAULTS

PALETTE = palette_from_variables(VARIABLE_DEFAULTS)
NO_OSC = ChartView(oscillator=None)


def make(o, h, lo, c, **kw) -> ChartData:
    n = len(o)
    t = np.arange(n, dtype=np.int64) * 60_000_000_000
    return ChartData(t, *(np.asarray(x, dtype=np.float64) for x in (o, h, lo, c)), **kw)


def grid(data: ChartData, width: int, height: int, view: ChartView = NO_OSC) -> list[str]:
    return [s.text for s in render_chart(data, width, height, PALETTE, view)]


def plot(rows: list[str], with_oscillator: bool = False) -> list[str]:
    """The price plot's rows (below the legend row)."""
    return rows[1 : 1 + split_rows(len(rows), with_oscillator).plot]


def column(rows: list[str], j: int) -> str:
    return "".join(r[j] for r in plot(rows))


def test_hand_drawn_candles() -> None:
    # Two candles over the price range 0..10 on 5 plot rows (10 half rows). With the 4%
    # padding the scale is (10 - 1) / 10.8 half rows per unit, top price 10.4.
    data = make([2, 8], [10, 9], [0, 1], [8, 2])
    rows = grid(data, AXIS_WIDTH + 1 + 2, 9)
    assert split_rows(9, False).plot == 5
    up, down = column(rows, 0), column(rows, 1)
    # Price range -0.4..10.4 (4% padding), 10 half rows: half(p) = rint((10.4 - p) * 9 / 10.8).
    # Up candle: high 10 -> 0, body 8..2 -> 2..7, low 0 -> 9: wick, 3 body cells, wick.
    assert up == "│███│"
    # Down candle: high 9 -> 1, low 1 -> 8: half wicks at both ends.
    assert down == "╷███╵"
    # The down candle is drawn in the down colour, the up candle in the up colour.
    strips = render_chart(data, AXIS_WIDTH + 3, 9, PALETTE, NO_OSC)
    style_up = strips[3].crop(0, 1)
    style_down = strips[3].crop(1, 2)
    assert [s.style.color.name for s in style_up if s.text.strip()] == [
        VARIABLE_DEFAULTS["candle-up"]
    ]
    assert [s.style.color.name for s in style_down if s.text.strip()] == [
        VARIABLE_DEFAULTS["candle-down"]
    ]


@pytest.mark.parametrize("width,height", [(40, 10), (120, 30), (213, 42)])
def test_strips_have_the_widget_size(width: int, height: int) -> None:
    rng = np.random.default_rng(1)
    c = 100 + np.cumsum(rng.normal(0, 1, 500))
    data = make(c, c + 1, c - 1, c + rng.normal(0, 0.5, 500))
    strips = render_chart(data, width, height, PALETTE, ChartView())
    assert len(strips) == height
    assert all(s.cell_length == width for s in strips)


def test_only_the_visible_window_is_drawn() -> None:
    rng = np.random.default_rng(2)
    c = 50 + np.cumsum(rng.normal(0, 1, 1000))
    o = c + rng.normal(0, 0.3, 1000)
    full = make(o, np.maximum(o, c) + 0.5, np.minimum(o, c) - 0.5, c)
    width = AXIS_WIDTH + 1 + 80
    last = ChartData(
        *(a[-80:] for a in (full.open_time, full.open, full.high, full.low, full.close))
    )
    assert grid(full, width, 20) == grid(last, width, 20)
    # Scrolled back by 100 candles: the window ending 100 candles before the last; only
    # the legend's status differs (how far back, instead of LIVE).
    back = ChartData(
        *(a[-180:-100] for a in (full.open_time, full.open, full.high, full.low, full.close))
    )
    scrolled = grid(full, width, 20, ChartView(end=900, oscillator=None))
    assert scrolled[1:] == grid(back, width, 20)[1:]
    assert "◀ 100 back" in scrolled[0] and "LIVE" in grid(full, width, 20)[0]


def test_btc_and_tiny_altcoin_prices_draw_the_same_shape() -> None:
    rng = np.random.default_rng(3)
    c = 1 + np.cumsum(rng.normal(0, 0.01, 150))
    o = c + rng.normal(0, 0.004, 150)
    h, lo = np.maximum(o, c) + 0.003, np.minimum(o, c) - 0.003
    btc = make(o * 40_000, h * 40_000, lo * 40_000, c * 40_000)
    alt = make(o * 1e-5, h * 1e-5, lo * 1e-5, c * 1e-5)
    width = AXIS_WIDTH + 1 + 150
    g_btc, g_alt = plot(grid(btc, width, 24)), plot(grid(alt, width, 24))
    cut = slice(0, 150)
    assert [r[cut] for r in g_btc] == [r[cut] for r in g_alt]
    labels_alt = [float(r[151:].replace(",", "")) for r in g_alt if r[151:].strip()]
    assert labels_alt and all(0.8e-5 < x < 1.3e-5 for x in labels_alt)
    assert len(set(labels_alt)) == len(labels_alt)  # enough decimals to tell them apart
    labels_btc = [float(r[151:].replace(",", "")) for r in g_btc if r[151:].strip()]
    assert all(32_000 < x < 52_000 for x in labels_btc)


def test_position_lines_fills_and_signals() -> None:
    data = make(
        [10, 11, 12, 13],
        [11, 12, 13, 14],
        [9, 10, 11, 12],
        [11, 12, 13, 12.5],
        lines=[("stop", 8.0), ("target", 16.0)],
        fills=[(1, "buy"), (3, "sell")],
        signals=[(0, "long"), (2, "short")],
    )
    width, height = AXIS_WIDTH + 1 + 4, 22
    rows = grid(data, width, height)
    plot_h = split_rows(height, False).plot
    stop_rows = [i for i, r in enumerate(plot(rows)) if "S 8" in r]
    target_rows = [i for i, r in enumerate(plot(rows)) if "T 16" in r]
    assert len(stop_rows) == 1 and len(target_rows) == 1
    assert target_rows[0] < stop_rows[0]  # higher price, higher row
    assert "╌" in plot(rows)[stop_rows[0]][:4]
    # Lines widen the scale: the stop is the lowest price, near the bottom.
    assert stop_rows[0] >= plot_h - 2 and target_rows[0] <= 1
    assert "▲" in column(rows, 1) and "▼" in column(rows, 3)
    buy_row = column(rows, 1).index("▲")
    assert buy_row > max(i for i, ch in enumerate(column(rows, 1)) if ch in "█▀▄│╵╷")
    assert rows[split_rows(height, False).lane][:4] == "↑ ↓ "


def test_overlay_is_drawn_where_the_candles_leave_room() -> None:
    c = np.linspace(100, 120, 60)
    data = make(c, c + 0.2, c - 0.2, c + 0.1, overlays=[("ema_fast", 220 - c)])
    rows = plot(grid(data, AXIS_WIDTH + 1 + 60, 20))
    cols_with_overlay = [j for j in range(60) if any(r[j] in "▔▁" for r in rows)]
    # The overlay crosses the candles once; everywhere else it has room.
    assert len(cols_with_overlay) >= 56


def test_real_btc_and_altcoin_files(btc_1m_csv, alt_5m_files) -> None:
    df = pd.read_csv(btc_1m_csv, nrows=300)
    t = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ns, UTC]").astype("int64")
    btc = ChartData(
        t.to_numpy(), *(df[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    )
    alt_df = pd.read_feather(alt_5m_files[0]).head(300)
    at = alt_df["date"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    alt = ChartData(at, *(alt_df[k].to_numpy(float) for k in ("open", "high", "low", "close")))
    for data in (btc, alt):
        rows = grid(data, 140, 30)
        drawn = sum(ch in "█▀▄│╵╷" for r in plot(rows) for ch in r[:127])
        assert drawn > 127  # every column has at least one glyph on average
        labels = [float(r[128:].replace(",", "")) for r in plot(rows) if r[128:].strip()]
        lo, hi = data.low[-127:].min(), data.high[-127:].max()
        span = hi - lo
        assert all(lo - span * 0.1 <= x <= hi + span * 0.1 for x in labels)
        assert rows[-1].startswith("┴")  # time axis


def ramp(n: int = 300) -> ChartData:
    """Candles rising by 1 each, with both EMAs, the bands, volume and an RSI series."""
    c = 100.0 + np.arange(n, dtype=np.float64)
    o = c - 0.5
    rsi = np.linspace(10.0, 90.0, n)
    return make(
        o,
        c + 0.5,
        o - 0.5,
        c,
        volume=np.arange(1, n + 1, dtype=np.float64),
        overlays=[
            ("ema_fast", c - 1),
            ("ema_slow", c - 3),
            ("bb_upper", c + 2),
            ("bb_middle", c),
            ("bb_lower", c - 2),
        ],
        indicators={"rsi": rsi},
        instrument="UNITTEST/BTC",
    )


def test_legend_names_the_instrument_and_each_overlay_with_its_colour_and_value() -> None:
    data = ramp()
    strips = render_chart(data, 160, 30, PALETTE, ChartView())
    legend = strips[0].text
    assert legend.startswith(f"UNITTEST/BTC C {fmt_price(399.0)}")
    # Labels and colours come from the display hints of the default signal configuration.
    assert f"EMA 9 {fmt_price(398.0)}" in legend and f"EMA 21 {fmt_price(396.0)}" in legend
    assert f"BB 20 2 {fmt_price(401.0)}/{fmt_price(399.0)}/{fmt_price(397.0)}" in legend
    assert f"vol {fmt_price(300.0)}" in legend
    assert legend.rstrip().endswith("LIVE ●")
    # However long the legend, the status keeps its place at the right.
    for width in range(60, 161):
        assert (
            render_chart(data, width, 30, PALETTE).__getitem__(0).text.rstrip().endswith("LIVE ●")
        ), width
    colours = {seg.text: seg.style.color.name for seg in strips[0] if seg.style.color}
    assert colours["EMA 9"] == VARIABLE_DEFAULTS["chart-ma-1"]
    assert colours["EMA 21"] == VARIABLE_DEFAULTS["chart-ma-2"]
    assert colours["BB 20 2"] == VARIABLE_DEFAULTS["chart-ma-3"]


def test_every_overlay_is_drawn_in_its_colour() -> None:
    # A flat market: each overlay on its own row, away from the candles.
    n = 80
    c = np.full(n, 100.0)
    levels = {"ema_fast": 104.0, "ema_slow": 96.0, "bb_upper": 108.0, "bb_lower": 92.0}
    data = make(c, c + 0.2, c - 0.2, c, overlays=[(k, np.full(n, v)) for k, v in levels.items()])
    strips = render_chart(data, AXIS_WIDTH + 1 + n, 40, PALETTE, NO_OSC)
    seen = set()
    for strip in strips[1:]:
        for seg in strip:
            if seg.text.strip("▔▁") == "" and seg.text.strip() and seg.style.color:
                seen.add(seg.style.color.name)
    assert {VARIABLE_DEFAULTS[k] for k in ("chart-ma-1", "chart-ma-2", "chart-ma-3")} <= seen


def test_volume_bars_scale_to_the_largest_visible_volume() -> None:
    data = ramp(40)
    rows = grid(data, AXIS_WIDTH + 1 + 40, 30)
    r = split_rows(30, False)
    volume = rows[r.volume_top : r.volume_top + r.volume]
    # The last candle has the largest volume: a full bar in every volume row.
    assert all(row[39] == "█" for row in volume)
    # The first has 1/40 of it: an empty column but for the bottom row's lowest block.
    assert [row[0] for row in volume[:-1]] == [" "] * (r.volume - 1)
    assert volume[-1][0] in " ▁"


def test_rsi_pane_draws_its_zones_and_current_value() -> None:
    data = ramp(147)  # exactly the 147 plot columns of a 160-wide chart
    rows = grid(data, 160, 40, ChartView(oscillator="rsi"))
    r = split_rows(40, True)
    assert rows[r.osc_title].startswith("─ RSI 14 90 ")
    pane = rows[r.osc_top : r.osc_top + r.osc]
    labels = [row[148:].strip() for row in pane]
    assert "70" in labels and "30" in labels and labels[0] == "100" and labels[-1] == "0"
    # The curve rises from 10 to 90: it starts low on the left and ends high on the right.
    braille = [[j for j, ch in enumerate(row[:147]) if "⠀" <= ch <= "⣿"] for row in pane]
    assert braille[-1] and min(braille[-1]) < 10
    assert braille[0] and max(braille[0]) > 137


def test_macd_histogram_grows_from_zero() -> None:
    n = 60
    c = np.full(n, 100.0)
    hist = np.where(np.arange(n) < 30, -1.0, 1.0)
    data = make(
        c,
        c + 1,
        c - 1,
        c,
        indicators={"macd": hist * 2, "macd_signal": hist, "macd_hist": hist},
    )
    rows = grid(data, AXIS_WIDTH + 1 + n, 40, ChartView(oscillator="macd"))
    r = split_rows(40, True)
    assert "macd 2" in rows[r.osc_title] and "hist 1" in rows[r.osc_title]
    pane = rows[r.osc_top : r.osc_top + r.osc]
    zero = next(i for i, row in enumerate(pane) if row.rstrip().endswith("0"))
    above = "".join(row[10] for row in pane[:zero])
    below = "".join(row[50] for row in pane[zero + 1 :])
    assert "█" not in above and "█" in "".join(row[50] for row in pane[: zero + 1])
    assert "█" in "".join(row[10] for row in pane[zero:]) and "█" not in below


def test_zoom_out_draws_several_candles_a_column_and_zoom_in_widens_them() -> None:
    data = ramp(400)
    width = AXIS_WIDTH + 1 + 50
    from tui.chart import window

    assert window(400, 50, ChartView(zoom=-2)).start == 200  # 4 candles a column
    assert window(400, 50, ChartView(zoom=1)).start == 375  # 2 columns a candle
    out = grid(data, width, 30, ChartView(zoom=-2, oscillator=None))
    assert "4:1" in out[0] and "LIVE" in out[0]
    wide = grid(data, width, 30, ChartView(zoom=1, oscillator=None))
    # Every second column is the gap between candles.
    body = [row[:50] for row in plot(wide)]
    assert all(set(row[1::2]) <= set(" ▔▁") for row in body)


def test_the_cursor_marks_its_candle_and_the_legend_shows_its_values() -> None:
    data = ramp(100)
    width = AXIS_WIDTH + 1 + 100
    rows = grid(data, width, 30, ChartView(cursor=50))
    assert f"C {fmt_price(150.0)}" in rows[0] and f"EMA 9 {fmt_price(149.0)}" in rows[0]
    assert "INSPECT" in rows[0]
    assert any(row[50] == "┆" for row in plot(rows, True))
    assert "┴01-01 00:50" in rows[-1]
