"""Candlestick chart drawn with Textual's Line API.

Each candle is one column; each cell holds two vertical "half rows" (upper and lower
half blocks), so the price resolution is twice the height. The whole visible window is
turned into strips at once with numpy (character and style grids, then one Segment per
run of equal style) and cached until the data, the size or the theme changes;
``render_line`` only returns a cached strip.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tui.format import axis_decimals, fmt_clock

if TYPE_CHECKING:
    from tui.pane import View

# Style slots of the style grid.
EMPTY, UP, DOWN, MA1, MA2, MA3, ENTRY, STOP, TARGET, TRAIL = range(10)
BUY, SELL, SIG_LONG, SIG_SHORT, SIG_NEUTRAL, AXIS = range(10, 16)
MA_SLOTS = (MA1, MA2, MA3)
LINE_SLOTS = {"entry": ENTRY, "stop": STOP, "target": TARGET, "trail": TRAIL}
_SLOT_VARIABLES = {
    UP: "candle-up",
    DOWN: "candle-down",
    MA1: "chart-ma-1",
    MA2: "chart-ma-2",
    MA3: "chart-ma-3",
    ENTRY: "chart-entry",
    STOP: "chart-stop",
    TARGET: "chart-target",
    TRAIL: "chart-trail",
    BUY: "signal-long",
    SELL: "signal-short",
    SIG_LONG: "signal-long",
    SIG_SHORT: "signal-short",
    SIG_NEUTRAL: "signal-neutral",
    AXIS: "chart-axis",
}

SP = ord(" ")
FULL, UPPER, LOWER = ord("█"), ord("▀"), ord("▄")
WICK, WICK_UP, WICK_DOWN = ord("│"), ord("╵"), ord("╷")
MA_TOP, MA_BOTTOM = ord("▔"), ord("▁")
HLINE = ord("╌")
MARK_BUY, MARK_SELL = ord("▲"), ord("▼")
SIG_UP, SIG_DOWN, SIG_DOT = ord("↑"), ord("↓"), ord("•")

AXIS_WIDTH = 12  # right-hand price labels


@dataclass
class ChartData:
    """What the chart shows: columns of one instrument plus annotations.

    ``overlays`` are (name, values aligned with the candles); ``lines`` are (kind, price)
    with kind one of entry/stop/target/trail; ``fills`` are (candle index, "buy"/"sell");
    ``signals`` are (candle index, "long"/"short"/"neutral").
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    overlays: list[tuple[str, np.ndarray]] = field(default_factory=list)
    lines: list[tuple[str, float]] = field(default_factory=list)
    fills: list[tuple[int, str]] = field(default_factory=list)
    signals: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @classmethod
    def empty(cls) -> ChartData:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z, z)


def palette_from_variables(variables: dict[str, str], background: str | None = None) -> list[Style]:
    styles = [Style(bgcolor=background) if background else Style()] * 16
    styles = list(styles)
    for slot, var in _SLOT_VARIABLES.items():
        color = variables.get(var)
        styles[slot] = Style(color=color, bgcolor=background) if color else Style()
    return styles


def _put_text(
    chars: np.ndarray, styles: np.ndarray, row: int, col: int, text: str, slot: int
) -> None:
    width = chars.shape[1]
    if not 0 <= row < chars.shape[0] or col >= width:
        return
    text = text[: max(0, width - col)]
    if not text:
        return
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    chars[row, col : col + codes.shape[0]] = codes
    styles[row, col : col + codes.shape[0]] = slot


def render_chart(
    data: ChartData, width: int, height: int, palette: list[Style], offset: int = 0
) -> list[Strip]:
    """Strips for a ``width`` x ``height`` chart; the window ends ``offset`` before the last."""
    width, height = max(width, 1), max(height, 1)
    chars = np.full((height, width), SP, dtype="<u4")
    styles = np.zeros((height, width), dtype=np.uint8)
    plot_w = width - AXIS_WIDTH - 1
    plot_h = height - 2  # last rows: signal lane, time axis
    n = len(data)
    end = max(0, n - max(0, offset))
    count = min(plot_w, end) if plot_w > 0 else 0
    if count <= 0 or plot_h < 2:
        msg = "waiting for candles" if n == 0 else "too small"
        _put_text(chars, styles, height // 2, max(0, (width - len(msg)) // 2), msg, AXIS)
        return _to_strips(chars, styles, palette)
    start = end - count
    o = data.open[start:end]
    h = data.high[start:end]
    lo = data.low[start:end]
    c = data.close[start:end]

    p_lo, p_hi = float(np.nanmin(lo)), float(np.nanmax(h))
    for _, price in data.lines:
        if price is not None and math.isfinite(price):
            p_lo, p_hi = min(p_lo, price), max(p_hi, price)
    span = p_hi - p_lo
    pad = span * 0.04 if span > 0 else max(abs(p_hi) * 1e-3, 1e-12)
    p_lo, p_hi = p_lo - pad, p_hi + pad
    half_rows = plot_h * 2
    scale = (half_rows - 1) / (p_hi - p_lo)

    def to_half(p: np.ndarray) -> np.ndarray:
        return np.clip(np.rint((p_hi - p) * scale), 0, half_rows - 1).astype(np.int32)

    wick_top, wick_bot = to_half(h), to_half(lo)
    body_top, body_bot = to_half(np.maximum(o, c)), to_half(np.minimum(o, c))
    idx = np.arange(half_rows, dtype=np.int32)[:, None]
    body = (idx >= body_top) & (idx <= body_bot)
    wick = (idx >= wick_top) & (idx <= wick_bot)
    kind = np.where(body, 2, np.where(wick, 1, 0)).astype(np.uint8)
    top, bot = kind[0::2], kind[1::2]
    cell = np.full((plot_h, count), SP, dtype="<u4")
    cell[(top == 2) & (bot == 2)] = FULL
    cell[(top == 2) & (bot != 2)] = UPPER
    cell[(top != 2) & (bot == 2)] = LOWER
    cell[(top == 1) & (bot == 1)] = WICK
    cell[(top == 1) & (bot == 0)] = WICK_UP
    cell[(top == 0) & (bot == 1)] = WICK_DOWN
    col_slot = np.where(c >= o, UP, DOWN).astype(np.uint8)
    cell_style = np.where(cell != SP, col_slot[None, :], EMPTY).astype(np.uint8)

    cols = np.arange(count)
    for k, (_, values) in enumerate(data.overlays[: len(MA_SLOTS)]):
        v = values[start:end]
        ok = np.isfinite(v) & (v >= p_lo) & (v <= p_hi)
        if not ok.any():
            continue
        hr = to_half(np.where(ok, v, p_lo))
        rows, cc = hr[ok] // 2, cols[ok]
        free = cell[rows, cc] == SP
        rows, cc, hr_ok = rows[free], cc[free], hr[ok][free]
        cell[rows, cc] = np.where(hr_ok % 2 == 0, MA_TOP, MA_BOTTOM)
        cell_style[rows, cc] = MA_SLOTS[k]

    chars[:plot_h, :count] = cell
    styles[:plot_h, :count] = cell_style

    line_rows: list[tuple[int, str, float]] = []
    for kind_name, price in data.lines:
        if price is None or not math.isfinite(price) or kind_name not in LINE_SLOTS:
            continue
        row = int(to_half(np.array([price]))[0]) // 2
        slot = LINE_SLOTS[kind_name]
        free = chars[row, :count] == SP
        chars[row, :count][free] = HLINE
        styles[row, :count][free] = slot
        line_rows.append((row, kind_name, price))

    for i, side in data.fills:
        j = i - start
        if 0 <= j < count:
            if side == "buy":
                row = min(plot_h - 1, int(wick_bot[j]) // 2 + 1)
                chars[row, j], styles[row, j] = MARK_BUY, BUY
            else:
                row = max(0, int(wick_top[j]) // 2 - 1)
                chars[row, j], styles[row, j] = MARK_SELL, SELL
    lane = plot_h
    for i, direction in data.signals:
        j = i - start
        if 0 <= j < count:
            if direction == "long":
                chars[lane, j], styles[lane, j] = SIG_UP, SIG_LONG
            elif direction == "short":
                chars[lane, j], styles[lane, j] = SIG_DOWN, SIG_SHORT
            elif chars[lane, j] == SP:
                chars[lane, j], styles[lane, j] = SIG_DOT, SIG_NEUTRAL

    # Price axis: a label every few rows, then the position lines' labels on top.
    decimals = axis_decimals(p_hi - p_lo, plot_h)
    ax = plot_w + 1
    chars[:plot_h, plot_w] = ord("┤")
    styles[:plot_h, plot_w] = AXIS
    step = 4 if plot_h >= 12 else 2
    for row in range(0, plot_h, step):
        price = p_hi - (row * 2 + 0.5) / scale
        _put_text(chars, styles, row, ax, f"{price:,.{decimals}f}", AXIS)
    for row, kind_name, price in line_rows:
        _put_text(
            chars,
            styles,
            row,
            ax,
            f"{kind_name[0].upper()} {price:,.{decimals}f}",
            LINE_SLOTS[kind_name],
        )

    # Time axis: a clock label every 16 columns, the date at the left.
    times = data.open_time[start:end]
    trow = height - 1
    for j in range(0, count - 5, 16):
        _put_text(chars, styles, trow, j, "┴" + fmt_clock(int(times[j])), AXIS)
    return _to_strips(chars, styles, palette)


def _to_strips(chars: np.ndarray, styles: np.ndarray, palette: list[Style]) -> list[Strip]:
    width = chars.shape[1]
    strips: list[Strip] = []
    raw = chars.tobytes().decode("utf-32-le")
    for r in range(chars.shape[0]):
        text = raw[r * width : (r + 1) * width]
        s = styles[r]
        cuts = np.flatnonzero(s[1:] != s[:-1]) + 1
        bounds = [0, *cuts.tolist(), width]
        segments = [Segment(text[a:b], palette[s[a]]) for a, b in itertools.pairwise(bounds)]
        strips.append(Strip(segments, width))
    return strips


class CandleChart(Widget):
    """The focused instrument's candles; ``set_data`` replaces what is shown."""

    DEFAULT_CSS = """
    CandleChart { height: 1fr; min-height: 8; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ):
        super().__init__(name=name, id=id, classes=classes)
        self._data = ChartData.empty()
        self._offset = 0
        self._cache: list[Strip] | None = None
        self._cache_key: tuple | None = None
        self._version = 0

    @property
    def data(self) -> ChartData:
        return self._data

    def set_data(self, data: ChartData) -> None:
        self._data = data
        self._version += 1
        self.refresh()

    def update_from(self, view: View) -> None:
        """The pane protocol (tui.pane): the focused instrument's candles."""
        self.set_data(view.model.chart_data(view.focus))
        self.border_title = f"Chart · {view.focus}"

    def reset(self) -> None:
        self.follow()

    def pan(self, candles: int) -> None:
        """Scroll back (positive) or forward (negative) in history; 0 follows the latest."""
        self._offset = max(0, min(len(self._data) - 1, self._offset + candles))
        self._version += 1
        self.refresh()

    def follow(self) -> None:
        self._offset = 0
        self._version += 1
        self.refresh()

    def _palette(self) -> list[Style]:
        variables = self.app.theme_variables
        return palette_from_variables(variables, self.background_colors[1].hex)

    def frame(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        key = (self._version, width, height, self.app.theme)
        if self._cache is None or key != self._cache_key:
            self._cache = render_chart(self._data, width, height, self._palette(), self._offset)
            self._cache_key = key
        return self._cache

    def render_line(self, y: int) -> Strip:
        strips = self.frame()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width)
