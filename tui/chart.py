"""Candlestick chart with legend, overlays, volume and an oscillator pane (Textual Line API).

The widget's rows, top to bottom: a legend (instrument, close, each overlay's colour and
value, live/history/inspect status), the price plot (candles, overlays, position lines,
fill markers, price axis on the right), a signal lane, volume bars, the oscillator pane
(title row, then curves with their zones) and the time axis. On short widgets the
oscillator keeps three rows ("folds into the chart's bottom rows") or goes.

Each candle is one column at zoom 0; zooming in widens candles (2 or 3 columns, one of
them a gap), zooming out draws 2, 4, 8 or 16 candles per column (open of the first,
close of the last, extreme high and low, summed volume). Each cell holds two vertical
"half rows", so the price resolution is twice the height; oscillator curves are braille
(four dots a row). The whole frame is built at once with numpy (character and style
grids, then one Segment per run of equal style) and cached until the data, the view, the
size or the theme changes; ``render_line`` only returns a cached strip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tui.format import axis_decimals, fmt_clock, fmt_price, fmt_time
from tui.hints import ChartHints, Oscillator, default_hints, legend_groups

if TYPE_CHECKING:
    from tui.pane import View

# Style slots of the style grid.
EMPTY, UP, DOWN, MA1, MA2, MA3, ENTRY, STOP, TARGET, TRAIL = range(10)
BUY, SELL, SIG_LONG, SIG_SHORT, SIG_NEUTRAL, AXIS = range(10, 16)
TEXT, VOL_UP, VOL_DOWN, ZONE, CURSOR, STATUS, OSC1, OSC2, VOLUME = range(16, 25)
N_SLOTS = 25
MA_SLOTS = (MA1, MA2, MA3)
OSC_SLOTS = (OSC1, OSC2)
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
    TEXT: "foreground",
    VOL_UP: "candle-up",
    VOL_DOWN: "candle-down",
    ZONE: "chart-axis",
    CURSOR: "accent",
    STATUS: "warning",
    OSC1: "chart-ma-1",
    OSC2: "chart-ma-2",
    VOLUME: "chart-axis",
}
_DIM_SLOTS = {VOL_UP, VOL_DOWN, ZONE, VOLUME}
_BOLD_SLOTS = {CURSOR, STATUS}

SP = ord(" ")
FULL, UPPER, LOWER = ord("█"), ord("▀"), ord("▄")
WICK, WICK_UP, WICK_DOWN = ord("│"), ord("╵"), ord("╷")
MA_TOP, MA_BOTTOM = ord("▔"), ord("▁")
HLINE, ZONE_LINE, CURSOR_LINE = ord("╌"), ord("┄"), ord("┆")
MARK_BUY, MARK_SELL = ord("▲"), ord("▼")
SIG_UP, SIG_DOWN, SIG_DOT = ord("↑"), ord("↓"), ord("•")
BLOCKS = np.array([ord(c) for c in " ▁▂▃▄▅▆▇█"], dtype="<u4")
BRAILLE = 0x2800
# braille dot bits, row 0..3 from the top: left column, right column
_DOTS_LEFT = np.array([0x01, 0x02, 0x04, 0x40], dtype=np.uint32)
_DOTS_RIGHT = np.array([0x08, 0x10, 0x20, 0x80], dtype=np.uint32)

AXIS_WIDTH = 12  # right-hand price labels
ZOOMS = (-4, -3, -2, -1, 0, 1, 2)  # <0: 2**-z candles a column; >0: z+1 columns a candle
TIME_LABEL_EVERY = 16


@dataclass
class ChartData:
    """What the chart shows: columns of one instrument plus annotations.

    ``overlays`` are (value key, values aligned with the candles), drawn as the display
    hints say (``hints``, from tui.hints); ``indicators`` holds every other series by
    name (the oscillators read theirs there); ``lines`` are (kind, price) with kind one of
    entry/stop/target/trail; ``fills`` are (candle index, "buy"/"sell"); ``signals`` are
    (candle index, "long"/"short"/"neutral").
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    overlays: list[tuple[str, np.ndarray]] = field(default_factory=list)
    indicators: dict[str, np.ndarray] = field(default_factory=dict)
    lines: list[tuple[str, float]] = field(default_factory=list)
    fills: list[tuple[int, str]] = field(default_factory=list)
    signals: list[tuple[int, str]] = field(default_factory=list)
    instrument: str = ""
    hints: ChartHints | None = None  # None: the default signal configuration's

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @classmethod
    def empty(cls) -> ChartData:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z, z)


@dataclass(frozen=True)
class ChartView:
    """Which part of the data is shown and how.

    ``end`` is one past the last visible candle (None: follow the live edge); ``zoom`` one
    of ZOOMS; ``cursor`` the inspected candle (None: not inspecting); ``oscillator`` the
    name of the oscillator pane's choice (None: no oscillator pane).
    """

    end: int | None = None
    zoom: int = 0
    cursor: int | None = None
    oscillator: str | None = "rsi"

    @property
    def live(self) -> bool:
        return self.end is None


@dataclass(frozen=True)
class Window:
    """The candles a view shows: ``start:end``, ``per`` candles a bar, ``width`` columns a bar."""

    start: int
    end: int
    per: int
    width: int

    @property
    def bars(self) -> int:
        return -(-(self.end - self.start) // self.per)

    def bar_of(self, candle: int) -> int:
        """Bar (0-based, left to right) holding ``candle``; bars are aligned on ``end``."""
        return self.bars - 1 - (self.end - 1 - candle) // self.per


def bar_geometry(zoom: int) -> tuple[int, int]:
    """(candles a bar, columns a bar) of a zoom level."""
    return (2**-zoom, 1) if zoom < 0 else (1, zoom + 1)


def plot_width(width: int) -> int:
    return max(0, width - AXIS_WIDTH - 1)


def window(n: int, plot_w: int, view: ChartView) -> Window:
    per, cols = bar_geometry(view.zoom)
    capacity = (plot_w // cols) * per
    end = n if view.end is None else max(0, min(n, view.end))
    count = min(capacity, end)
    return Window(end - count, end, per, cols)


@dataclass(frozen=True)
class Rows:
    """How a widget's height is split: legend 1, plot, signal lane 1, volume, oscillator
    (title 1 + curves), time axis 1."""

    plot: int
    volume: int
    osc: int  # curve rows, the title row not counted; 0: no oscillator pane

    @property
    def lane(self) -> int:
        return 1 + self.plot

    @property
    def volume_top(self) -> int:
        return self.lane + 1

    @property
    def osc_title(self) -> int:
        return self.volume_top + self.volume

    @property
    def osc_top(self) -> int:
        return self.osc_title + 1


def split_rows(height: int, with_oscillator: bool) -> Rows:
    osc = 0
    if with_oscillator:
        osc = 6 if height >= 40 else 5 if height >= 30 else 3 if height >= 14 else 0
    volume = 3 if height >= 40 else 2 if height >= 24 else 1
    plot = height - 3 - volume - (osc + 1 if osc else 0)
    return Rows(max(0, plot), volume, osc)


def palette_from_variables(variables: dict[str, str], background: str | None = None) -> list[Style]:
    base = Style(bgcolor=background) if background else Style()
    styles = [base] * N_SLOTS
    for slot, var in _SLOT_VARIABLES.items():
        color = variables.get(var)
        styles[slot] = (
            Style(
                color=color,
                bgcolor=background,
                dim=slot in _DIM_SLOTS,
                bold=slot in _BOLD_SLOTS,
            )
            if color
            else base
        )
    return styles


def _put_text(
    chars: np.ndarray, styles: np.ndarray, row: int, col: int, text: str, slot: int
) -> int:
    """Write ``text`` at (row, col), cut at the right edge; returns the column after it."""
    width = chars.shape[1]
    if not 0 <= row < chars.shape[0] or col >= width or col < 0:
        return col
    text = text[: max(0, width - col)]
    if not text:
        return col
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    chars[row, col : col + codes.shape[0]] = codes
    styles[row, col : col + codes.shape[0]] = slot
    return col + codes.shape[0]


def _bins(win: Window) -> np.ndarray:
    """First candle of every bar (bars aligned on the window's end)."""
    firsts = win.end - win.per * np.arange(win.bars, 0, -1)
    return np.maximum(firsts, win.start)


def _aggregate(win: Window, values: np.ndarray, how: str) -> np.ndarray:
    v = values[win.start : win.end]
    if win.per == 1:
        return v
    idx = _bins(win) - win.start
    if how == "first":
        return v[idx]
    if how == "last":
        return v[np.append(idx[1:], len(v)) - 1]
    if how == "max":
        return np.maximum.reduceat(v, idx)
    if how == "min":
        return np.minimum.reduceat(v, idx)
    return np.add.reduceat(v, idx)


def _expand(cells: np.ndarray, cols: int, gap: bool) -> np.ndarray:
    """Each bar column ``cols`` wide; with ``gap`` its last column stays blank."""
    if cols == 1:
        return cells
    out = np.repeat(cells, cols, axis=1)
    if gap:
        out[:, cols - 1 :: cols] = SP
    return out


def render_chart(
    data: ChartData,
    width: int,
    height: int,
    palette: list[Style],
    view: ChartView | None = None,
) -> list[Strip]:
    """Strips for a ``width`` x ``height`` chart of ``data`` as ``view`` says."""
    view = view or ChartView()
    width, height = max(width, 1), max(height, 1)
    chars = np.full((height, width), SP, dtype="<u4")
    styles = np.zeros((height, width), dtype=np.uint8)
    plot_w = plot_width(width)
    hints = data.hints or default_hints()
    osc = hints.oscillator(view.oscillator) if view.oscillator else None
    rows = split_rows(height, osc is not None)
    n = len(data)
    win = window(n, plot_w, view)
    if win.end <= win.start or rows.plot < 2:
        msg = "waiting for candles" if n == 0 else "too small"
        _put_text(chars, styles, height // 2, max(0, (width - len(msg)) // 2), msg, AXIS)
        return _to_strips(chars, styles, palette)

    bars = win.bars
    cols = win.width
    span_cols = bars * cols
    o = _aggregate(win, data.open, "first")
    h = _aggregate(win, data.high, "max")
    lo = _aggregate(win, data.low, "min")
    c = _aggregate(win, data.close, "last")

    # -- price plot ------------------------------------------------------------------
    top = 1
    plot_h = rows.plot
    p_lo, p_hi = float(np.nanmin(lo)), float(np.nanmax(h))
    overlay_values = {k: _aggregate(win, v, "last") for k, v in data.overlays}
    for v in overlay_values.values():
        finite = v[np.isfinite(v)]
        if finite.size:  # the bands and averages stay on the chart, as in TradingView
            p_lo, p_hi = min(p_lo, float(finite.min())), max(p_hi, float(finite.max()))
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
    upper, lower = kind[0::2], kind[1::2]
    cell = np.full((plot_h, bars), SP, dtype="<u4")
    cell[(upper == 2) & (lower == 2)] = FULL
    cell[(upper == 2) & (lower != 2)] = UPPER
    cell[(upper != 2) & (lower == 2)] = LOWER
    cell[(upper == 1) & (lower == 1)] = WICK
    cell[(upper == 1) & (lower == 0)] = WICK_UP
    cell[(upper == 0) & (lower == 1)] = WICK_DOWN
    bar_slot = np.where(c >= o, UP, DOWN).astype(np.uint8)
    cell_style = np.where(cell != SP, bar_slot[None, :], EMPTY).astype(np.uint8)
    cell = _expand(cell, cols, gap=True)
    cell_style = _expand(cell_style, cols, gap=False)
    cell_style[cell == SP] = EMPTY

    # Overlays where the candles leave room (one glyph per column, its half row).
    all_cols = np.arange(span_cols)
    for ov in hints.overlays:
        values = overlay_values.get(ov.key)
        if values is None:
            continue
        v = np.repeat(values, cols)
        ok = np.isfinite(v) & (v >= p_lo) & (v <= p_hi)
        if not ok.any():
            continue
        hr = to_half(np.where(ok, v, p_lo))[ok]
        r, cc = hr // 2, all_cols[ok]
        free = cell[r, cc] == SP
        r, cc, hr = r[free], cc[free], hr[free]
        cell[r, cc] = np.where(hr % 2 == 0, MA_TOP, MA_BOTTOM)
        cell_style[r, cc] = MA_SLOTS[ov.slot - 1]

    chars[top : top + plot_h, :span_cols] = cell
    styles[top : top + plot_h, :span_cols] = cell_style

    line_rows: list[tuple[int, str, float]] = []
    for kind_name, price in data.lines:
        if price is None or not math.isfinite(price) or kind_name not in LINE_SLOTS:
            continue
        row = top + int(to_half(np.array([price]))[0]) // 2
        slot = LINE_SLOTS[kind_name]
        free = chars[row, :span_cols] == SP
        chars[row, :span_cols][free] = HLINE
        styles[row, :span_cols][free] = slot
        line_rows.append((row, kind_name, price))

    last_bar = bars - 1
    for i, side in data.fills:
        if win.start <= i < win.end:
            j = last_bar - (win.end - 1 - i) // win.per
            x = j * cols
            if side == "buy":
                row = top + min(plot_h - 1, int(wick_bot[j]) // 2 + 1)
                chars[row, x], styles[row, x] = MARK_BUY, BUY
            else:
                row = top + max(0, int(wick_top[j]) // 2 - 1)
                chars[row, x], styles[row, x] = MARK_SELL, SELL

    lane = rows.lane
    lane_chars, lane_styles = chars[lane], styles[lane]
    for i, direction in data.signals:
        if win.start <= i < win.end:
            x = (last_bar - (win.end - 1 - i) // win.per) * cols
            if direction == "long":
                lane_chars[x], lane_styles[x] = SIG_UP, SIG_LONG
            elif direction == "short":
                lane_chars[x], lane_styles[x] = SIG_DOWN, SIG_SHORT
            elif lane_chars[x] == SP:
                lane_chars[x], lane_styles[x] = SIG_DOT, SIG_NEUTRAL

    # -- volume ----------------------------------------------------------------------
    if data.volume is not None and len(data.volume) == n and rows.volume:
        vol = np.nan_to_num(_aggregate(win, data.volume, "sum"), nan=0.0)
        vmax = float(vol.max()) if len(vol) else 0.0
        if vmax > 0:
            eighths = np.rint(vol / vmax * rows.volume * 8).astype(np.int32)
            for k in range(rows.volume):
                fill = np.clip(eighths - 8 * (rows.volume - 1 - k), 0, 8)
                glyphs = _expand(BLOCKS[fill][None, :], cols, gap=True)[0]
                r = rows.volume_top + k
                chars[r, :span_cols] = glyphs
                # one dim colour: a run per row, not one per column, in the frame's strips
                styles[r, :span_cols] = VOLUME

    # -- oscillator ------------------------------------------------------------------
    cursor = view.cursor
    shown = cursor if cursor is not None and win.start <= cursor < win.end else win.end - 1
    if osc is not None and rows.osc:
        _draw_oscillator(chars, styles, data, win, rows, osc, plot_w, shown)

    # -- inspect cursor ---------------------------------------------------------------
    if cursor is not None and win.start <= cursor < win.end:
        x = win.bar_of(cursor) * cols
        bottom = rows.osc_top + rows.osc if rows.osc else rows.osc_title
        col = chars[top:bottom, x]
        free = col == SP
        col[free] = CURSOR_LINE
        styles[top:bottom, x][free] = CURSOR

    # -- price axis ------------------------------------------------------------------
    decimals = axis_decimals(p_hi - p_lo, plot_h)
    ax = plot_w + 1
    chars[top : top + plot_h, plot_w] = ord("┤")
    styles[top : top + plot_h, plot_w] = AXIS
    step = 4 if plot_h >= 12 else 2
    for row in range(0, plot_h, step):
        price = p_hi - (row * 2 + 0.5) / scale
        _put_text(chars, styles, top + row, ax, f"{price:,.{decimals}f}", AXIS)
    for row, kind_name, price in line_rows:
        label = f"{kind_name[0].upper()} {price:,.{decimals}f}"
        _put_text(chars, styles, row, ax, label, LINE_SLOTS[kind_name])

    # -- time axis -------------------------------------------------------------------
    _time_axis(chars, styles, data, win, height - 1, cursor)

    # -- legend ----------------------------------------------------------------------
    _legend(chars, styles, data, hints, shown, view, n, win)
    return _to_strips(chars, styles, palette)


def _time_axis(
    chars: np.ndarray,
    styles: np.ndarray,
    data: ChartData,
    win: Window,
    row: int,
    cursor: int | None,
) -> None:
    """A clock label every few columns (with the date where the day changes); while
    inspecting, only the cursor's date and time."""
    cols = win.width
    plot_w = plot_width(chars.shape[1])
    if cursor is not None and win.start <= cursor < win.end:
        label = "┴" + fmt_time(int(data.open_time[cursor]))[5:]
        x = min(win.bar_of(cursor) * cols, max(0, plot_w - len(label)))
        _put_text(chars, styles, row, x, label, CURSOR)
        return
    firsts = _bins(win)
    last_day = None
    free_from = 0
    for j in range(0, win.bars, max(1, TIME_LABEL_EVERY // cols)):
        x = j * cols
        t = int(data.open_time[firsts[j]])
        day = t // 86_400_000_000_000
        label = "┴" + (fmt_clock(t) if day == last_day else fmt_time(t)[5:])
        if x < free_from or x + len(label) > plot_w:
            continue
        last_day = day
        free_from = _put_text(chars, styles, row, x, label, AXIS) + 1


def _legend(
    chars: np.ndarray,
    styles: np.ndarray,
    data: ChartData,
    hints: ChartHints,
    i: int,
    view: ChartView,
    n: int,
    win: Window,
) -> None:
    width = chars.shape[1]
    if view.cursor is not None:
        when = fmt_time(int(data.open_time[i]))[5:]
        status, short, slot = f"INSPECT {when} · esc live", f"◆ {when[6:]} esc", CURSOR
    elif view.live:
        status, short, slot = "LIVE ●", "LIVE ●", SIG_LONG
    else:
        status, short = f"◀ {n - win.end:,} back · f live", f"◀ {n - win.end:,} · f"
        slot = STATUS
    per, cols = bar_geometry(view.zoom)
    zoom = f"{per}:1  " if per > 1 else f"1:{cols}  " if cols > 1 else ""
    head = len(data.instrument) + 2 + len(fmt_price(float(data.close[i]))) + 2
    status = zoom + status
    if head + len(status) + 1 > width:
        status = short
    status_col = max(0, width - len(status) - 1)
    col = _put_text(chars, styles, 0, 0, data.instrument + " ", TEXT) if data.instrument else 0
    col = _put_text(chars, styles, 0, col, f"C {fmt_price(float(data.close[i]))}", TEXT)
    values = {k: float(v[i]) for k, v in data.overlays}
    entries = [
        (label, slot_of, vals) for label, slot_of, vals in legend_groups(hints.overlays, values)
    ]
    if data.volume is not None and len(data.volume) == n:
        entries.append(("vol", AXIS, [float(data.volume[i])]))
    for label, s, vals in entries:
        text_vals = "/".join(fmt_price(v) if math.isfinite(v) else "-" for v in vals)
        if col + 3 + len(label) + len(text_vals) >= status_col - 1:
            break  # the status always keeps its place
        slot_label = MA_SLOTS[s - 1] if label != "vol" else AXIS
        col = _put_text(chars, styles, 0, col + 2, label, slot_label)
        col = _put_text(chars, styles, 0, col + 1, text_vals, TEXT)
    _put_text(chars, styles, 0, max(col + 1, status_col), status, slot)


def _draw_oscillator(
    chars: np.ndarray,
    styles: np.ndarray,
    data: ChartData,
    win: Window,
    rows: Rows,
    osc: Oscillator,
    plot_w: int,
    shown: int,
) -> None:
    """The oscillator's title row (values at candle ``shown``) and its curves."""
    cols = win.width
    bars = win.bars
    span_cols = bars * cols
    r0, nrows = rows.osc_top, rows.osc
    series = {k: data.indicators.get(k) for k in (*osc.lines, osc.histogram) if k}
    present = {k: v for k, v in series.items() if v is not None and len(v) == len(data)}
    values = {k: float(v[shown]) for k, v in present.items()}
    title_row = rows.osc_title
    chars[title_row, :plot_w] = ord("─")
    styles[title_row, :plot_w] = AXIS
    col = _put_text(chars, styles, title_row, 1, f" {osc.title} ", TEXT)
    labels = osc.labels or ("",) * len(osc.lines)
    for k, label, slot in zip(osc.lines, labels, OSC_SLOTS, strict=False):
        if k in values:
            text = f"{label} {_osc_fmt(values[k])} " if label else f"{_osc_fmt(values[k])} "
            col = _put_text(chars, styles, title_row, col, text, slot)
    if osc.histogram and osc.histogram in values:
        v = values[osc.histogram]
        slot = UP if v >= 0 else DOWN
        col = _put_text(chars, styles, title_row, col, f"hist {_osc_fmt(v)} ", slot)
    _put_text(chars, styles, title_row, col + 1, " o: next ", AXIS)
    if not present:
        _put_text(chars, styles, r0, 1, f"{osc.title}: not computed for this data", AXIS)
        return

    agg = {k: _aggregate(win, v, "last") for k, v in present.items()}
    finite = [a[np.isfinite(a)] for a in agg.values()]
    finite = [a for a in finite if a.size]
    if osc.scale is not None:
        lo, hi = osc.scale
    elif finite:
        lo = float(min(a.min() for a in finite))
        hi = float(max(a.max() for a in finite))
        if osc.histogram:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        for z in osc.zones:
            lo, hi = min(lo, z), max(hi, z)
        if hi <= lo:
            hi = lo + 1.0
        pad = (hi - lo) * 0.05
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = 0.0, 1.0
    dots = nrows * 4

    def to_dot(v: np.ndarray) -> np.ndarray:
        return np.clip(np.rint((hi - v) / (hi - lo) * (dots - 1)), 0, dots - 1).astype(np.int32)

    def value_row(v: float) -> int:
        return r0 + int(to_dot(np.array([v]))[0]) // 4

    area_c = chars[r0 : r0 + nrows, :span_cols]
    area_s = styles[r0 : r0 + nrows, :span_cols]
    guides = list(osc.zones) + ([0.0] if osc.histogram else [])
    for z in guides:
        if lo <= z <= hi:
            r = value_row(z)
            chars[r, :span_cols] = ZONE_LINE
            styles[r, :span_cols] = ZONE
    if osc.histogram and osc.histogram in agg:
        _draw_histogram(area_c, area_s, agg[osc.histogram], to_dot, cols)
    for k, slot in zip(osc.lines, OSC_SLOTS, strict=False):
        if k not in agg:
            continue
        v = np.repeat(agg[k], cols)
        ok = np.isfinite(v)
        if not ok.any():
            continue
        d = to_dot(np.where(ok, v, lo))
        prev = np.concatenate(([d[0]], d[:-1]))
        prev_ok = np.concatenate(([False], ok[:-1]))
        a = np.where(prev_ok, np.minimum(prev, d), d)
        b = np.where(prev_ok, np.maximum(prev, d), d)
        dot_row = np.arange(dots)[:, None]
        left = (dot_row >= a[None, :]) & (dot_row <= b[None, :]) & ok[None, :]
        right = (dot_row == d[None, :]) & ok[None, :]
        bits = left.reshape(nrows, 4, -1) * _DOTS_LEFT[None, :, None]
        bits = bits + right.reshape(nrows, 4, -1) * _DOTS_RIGHT[None, :, None]
        code = bits.sum(axis=1).astype(np.uint32)
        on = code > 0
        existing = area_c[on]
        braille = (existing >= BRAILLE) & (existing < BRAILLE + 256)
        merged = np.where(braille, existing | code[on], BRAILLE + code[on])
        area_c[on] = merged
        area_s[on] = slot
    # value labels on the right: the range ends and the guides
    ax = plot_w + 1
    chars[r0 : r0 + nrows, plot_w] = ord("┤")
    styles[r0 : r0 + nrows, plot_w] = AXIS
    labels = [(r0, hi), (r0 + nrows - 1, lo)] if nrows >= 3 else []
    labels += [(value_row(z), z) for z in guides if lo <= z <= hi]
    for r, v in labels:
        _put_text(chars, styles, r, ax, " " * AXIS_WIDTH, AXIS)
        _put_text(chars, styles, r, ax, _osc_fmt(v), AXIS)


def _draw_histogram(
    area_c: np.ndarray, area_s: np.ndarray, values: np.ndarray, to_dot, cols: int
) -> None:
    """Bars from the zero line, a half cell of resolution: full blocks, then a half block
    at the bar's end when it covers only part of its last cell."""
    nrows = area_c.shape[0]
    zero = int(to_dot(np.array([0.0]))[0])
    ok = np.isfinite(values)
    d = to_dot(np.where(ok, values, 0.0))
    a, b = np.minimum(d, zero), np.maximum(d, zero)  # dot range covered, top to bottom
    row = np.arange(nrows)[:, None]
    top_dot, bottom_dot = row * 4, row * 4 + 3
    covered = np.minimum(bottom_dot, b[None, :]) - np.maximum(top_dot, a[None, :]) + 1
    covered = np.where(ok[None, :] & (a != b)[None, :], np.clip(covered, 0, 4), 0)
    up = (values >= 0)[None, :]
    glyph = np.full(covered.shape, SP, dtype="<u4")
    glyph[covered >= 3] = FULL
    half = (covered >= 1) & (covered < 3)
    glyph[half & up] = LOWER
    glyph[half & ~up] = UPPER
    slot = np.where(up, VOL_UP, VOL_DOWN).astype(np.uint8)
    slot = np.broadcast_to(slot, glyph.shape)
    glyph = _expand(glyph, cols, gap=True)
    slot = _expand(np.where(glyph[:, ::cols] != SP, slot, EMPTY).astype(np.uint8), cols, False)
    mask = glyph != SP
    area_c[mask] = glyph[mask]
    area_s[mask] = slot[mask]


def _osc_fmt(v: float) -> str:
    if math.isfinite(v) and v == int(v) and abs(v) < 1e6:
        return f"{int(v)}"
    if not math.isfinite(v):
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2g}"


def _to_strips(chars: np.ndarray, styles: np.ndarray, palette: list[Style]) -> list[Strip]:
    """One Segment per run of equal style; the runs of every row found in one pass (each
    row start is a cut, so no run crosses rows)."""
    height, width = chars.shape
    raw = chars.tobytes().decode("utf-32-le")
    change = np.ones((height, width), dtype=bool)
    change[:, 1:] = styles[:, 1:] != styles[:, :-1]
    cuts = np.flatnonzero(change.ravel())
    row_first = np.searchsorted(cuts, np.arange(height + 1) * width).tolist()
    slots = styles.ravel()[cuts].tolist()
    bounds = cuts.tolist()
    bounds.append(height * width)
    segments = [
        Segment(raw[a:b], palette[slot])
        for a, b, slot in zip(bounds, bounds[1:], slots, strict=False)
    ]
    return [Strip(segments[row_first[r] : row_first[r + 1]], width) for r in range(height)]


class CandleChart(Widget):
    """The focused instrument's candles; ``set_data`` replaces what is shown, the view
    methods (zoom, pan, follow, inspect, oscillator) change how."""

    DEFAULT_CSS = """
    CandleChart { height: 1fr; min-height: 8; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ):
        super().__init__(name=name, id=id, classes=classes)
        self._data = ChartData.empty()
        self.view = ChartView()
        self._cache: list[Strip] | None = None
        self._cache_key: tuple | None = None
        self._version = 0

    @property
    def data(self) -> ChartData:
        return self._data

    def set_data(self, data: ChartData) -> None:
        self._data = data
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self.refresh()

    def update_from(self, view: View) -> None:
        """The pane protocol (tui.pane): the focused instrument's candles (the legend
        inside the chart names it)."""
        self.set_data(view.model.chart_data(view.focus))

    def reset(self) -> None:
        self._set_view(replace(self.view, end=None, cursor=None))

    def _set_view(self, view: ChartView) -> None:
        if view != self.view:
            self.view = view
            self._changed()

    @property
    def window(self) -> Window:
        return window(len(self._data), plot_width(self.size.width), self.view)

    @property
    def visible_candles(self) -> int:
        per, cols = bar_geometry(self.view.zoom)
        return max(1, plot_width(self.size.width) // cols * per)

    def pan(self, candles: int) -> None:
        """Scroll back (positive) or forward (negative); reaching the latest follows it."""
        n = len(self._data)
        if n == 0:
            return
        end = (n if self.view.end is None else self.view.end) - candles
        end = max(min(n, self.visible_candles), end)
        self._set_view(replace(self.view, end=None if end >= n else end))

    def follow(self) -> None:
        self._set_view(replace(self.view, end=None))

    def zoom(self, delta: int) -> None:
        """One zoom level in (delta 1) or out (-1); the right edge stays where it is."""
        i = ZOOMS.index(self.view.zoom)
        zoom = ZOOMS[max(0, min(len(ZOOMS) - 1, i + delta))]
        self._set_view(replace(self.view, zoom=zoom))
        if self.view.cursor is not None:
            self._keep_visible(self.view.cursor)

    def set_oscillator(self, name: str | None) -> None:
        self._set_view(replace(self.view, oscillator=name))

    def inspect(self, candle: int | None) -> None:
        """Put the cursor on ``candle`` (clamped to the data), or remove it (None)."""
        if candle is None:
            self._set_view(replace(self.view, cursor=None))
            return
        n = len(self._data)
        if n == 0:
            return
        candle = max(0, min(n - 1, candle))
        self._set_view(replace(self.view, cursor=candle))
        self._keep_visible(candle)

    def _keep_visible(self, candle: int) -> None:
        win = self.window
        n = len(self._data)
        if candle >= win.end:
            end = candle + 1
        elif candle < win.start:
            end = candle + self.visible_candles
        else:
            return
        self._set_view(replace(self.view, end=None if end >= n else end))

    def _palette(self) -> list[Style]:
        variables = self.app.theme_variables
        return palette_from_variables(variables, self.background_colors[1].hex)

    def frame(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        key = (self._version, width, height, self.app.theme)
        if self._cache is None or key != self._cache_key:
            self._cache = render_chart(self._data, width, height, self._palette(), self.view)
            self._cache_key = key
        return self._cache

    def render_line(self, y: int) -> Strip:
        strips = self.frame()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width)


__all__ = ["CandleChart", "ChartData", "ChartView", "render_chart"]
