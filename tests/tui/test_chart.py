"""The candlestick chart: glyphs, visible window, price scales from 40,000 to 0.00001."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tui.chart import AXIS_WIDTH, ChartData, palette_from_variables, render_chart
from tui.theming import VARIABLE_DEFAULTS

PALETTE = palette_from_variables(VARIABLE_DEFAULTS)


def make(o, h, lo, c, **kw) -> ChartData:
    n = len(o)
    t = np.arange(n, dtype=np.int64) * 60_000_000_000
    return ChartData(t, *(np.asarray(x, dtype=np.float64) for x in (o, h, lo, c)), **kw)


def grid(data: ChartData, width: int, height: int, offset: int = 0) -> list[str]:
    return [s.text for s in render_chart(data, width, height, PALETTE, offset)]


def column(rows: list[str], j: int, plot_h: int) -> str:
    return "".join(r[j] for r in rows[:plot_h])


def test_hand_drawn_candles() -> None:
    # Two candles over the price range 0..10 on 5 plot rows (10 half rows). With the 4%
    # padding the scale is (10 - 1) / 10.8 half rows per unit, top price 10.4.
    data = make([2, 8], [10, 9], [0, 1], [8, 2])
    rows = grid(data, AXIS_WIDTH + 1 + 2, 7)
    up, down = column(rows, 0, 5), column(rows, 1, 5)
    # Price range -0.4..10.4 (4% padding), 10 half rows: half(p) = rint((10.4 - p) * 9 / 10.8).
    # Up candle: high 10 -> 0, body 8..2 -> 2..7, low 0 -> 9: wick, 3 body cells, wick.
    assert up == "│███│"
    # Down candle: high 9 -> 1, low 1 -> 8: half wicks at both ends.
    assert down == "╷███╵"
    # The down candle is drawn in the down colour, the up candle in the up colour.
    strips = render_chart(data, AXIS_WIDTH + 3, 7, PALETTE)
    style_up = strips[2].crop(0, 1)
    style_down = strips[2].crop(1, 2)
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
    strips = render_chart(data, width, height, PALETTE)
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
    # Scrolled back by 100 candles: the window ending 100 candles before the last.
    back = ChartData(
        *(a[-180:-100] for a in (full.open_time, full.open, full.high, full.low, full.close))
    )
    assert grid(full, width, 20, offset=100) == grid(back, width, 20)


def test_btc_and_tiny_altcoin_prices_draw_the_same_shape() -> None:
    rng = np.random.default_rng(3)
    c = 1 + np.cumsum(rng.normal(0, 0.01, 150))
    o = c + rng.normal(0, 0.004, 150)
    h, lo = np.maximum(o, c) + 0.003, np.minimum(o, c) - 0.003
    btc = make(o * 40_000, h * 40_000, lo * 40_000, c * 40_000)
    alt = make(o * 1e-5, h * 1e-5, lo * 1e-5, c * 1e-5)
    width = AXIS_WIDTH + 1 + 150
    g_btc, g_alt = grid(btc, width, 24), grid(alt, width, 24)
    plot = slice(0, 150)
    assert [r[plot] for r in g_btc[:22]] == [r[plot] for r in g_alt[:22]]
    labels_alt = [float(r[151:].replace(",", "")) for r in g_alt[:22] if r[151:].strip()]
    assert labels_alt and all(0.8e-5 < x < 1.3e-5 for x in labels_alt)
    assert len(set(labels_alt)) == len(labels_alt)  # enough decimals to tell them apart
    labels_btc = [float(r[151:].replace(",", "")) for r in g_btc[:22] if r[151:].strip()]
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
    plot_h = height - 2
    stop_rows = [i for i, r in enumerate(rows[:plot_h]) if "S 8" in r]
    target_rows = [i for i, r in enumerate(rows[:plot_h]) if "T 16" in r]
    assert len(stop_rows) == 1 and len(target_rows) == 1
    assert target_rows[0] < stop_rows[0]  # higher price, higher row
    assert "╌" in rows[stop_rows[0]][:4]
    # Lines widen the scale: the stop is the lowest price, near the bottom.
    assert stop_rows[0] >= plot_h - 2 and target_rows[0] <= 1
    assert "▲" in column(rows, 1, plot_h) and "▼" in column(rows, 3, plot_h)
    buy_row = column(rows, 1, plot_h).index("▲")
    assert buy_row > max(i for i, ch in enumerate(column(rows, 1, plot_h)) if ch in "█▀▄│╵╷")
    assert rows[plot_h][:4] == "↑ ↓ "


def test_overlay_is_drawn_where_the_candles_leave_room() -> None:
    c = np.linspace(100, 120, 60)
    data = make(c, c + 0.2, c - 0.2, c + 0.1, overlays=[("ema_20", 220 - c)])
    rows = grid(data, AXIS_WIDTH + 1 + 60, 20)
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
        drawn = sum(ch in "█▀▄│╵╷" for r in rows[:28] for ch in r[:127])
        assert drawn > 127  # every column has at least one glyph on average
        labels = [float(r[128:].replace(",", "")) for r in rows[:28] if r[128:].strip()]
        lo, hi = data.low[-127:].min(), data.high[-127:].max()
        span = hi - lo
        assert all(lo - span * 0.1 <= x <= hi + span * 0.1 for x in labels)
        assert rows[-1].startswith("┴")  # time axis
