"""Inline SVG charts for the HTML report: candles with trades, equity, drawdown.

Drawn here, in Python, so the report needs no chart library and no network: a long
window is bucketed into at most ``max_bars`` candles (open of the first, highest high,
lowest low, close of the last), trades are placed by time and price, and every mark
carries a ``<title>`` the browser shows on hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

from engine.numfmt import fmt_price
from engine.report.model import Candles, TradeView
from engine.timeutil import timeframe_to_ns, to_iso

W, LEFT, RIGHT, TOP, BOTTOM = 1000, 96, 12, 10, 24
UP, DOWN = "#1a9850", "#d73027"
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477")


def _num(v: float) -> str:
    return f"{v:.1f}"


def _time_label(ns: int, span_ns: int) -> str:
    iso = to_iso(int(ns))
    return iso[5:16].replace("T", " ") if span_ns > 86_400e9 else iso[11:16]


class _Frame:
    """Linear time (x) and value (y) scales of one panel."""

    def __init__(self, t0: int, t1: int, lo: float, hi: float, height: int) -> None:
        if not hi > lo:
            pad = abs(hi) * 0.01 or 1.0
            lo, hi = lo - pad, hi + pad
        self.t0, self.t1 = t0, max(t1, t0 + 1)
        self.lo, self.hi = lo, hi
        self.height = height
        self.pw = W - LEFT - RIGHT
        self.ph = height - TOP - BOTTOM

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * self.pw

    def y(self, v: float) -> float:
        return TOP + (self.hi - v) / (self.hi - self.lo) * self.ph

    def axes(self, fmt) -> str:
        parts = []
        for i in range(5):
            v = self.lo + (self.hi - self.lo) * i / 4
            y = self.y(v)
            parts.append(
                f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{_num(y)}" y2="{_num(y)}"/>'
                f'<text class="ylab" x="{LEFT - 6}" y="{_num(y + 4)}">{escape(fmt(v))}</text>'
            )
        span = self.t1 - self.t0
        for i in range(5):
            t = self.t0 + span * i / 4
            anchor = "start" if i == 0 else "end" if i == 4 else "middle"
            parts.append(
                f'<text class="xlab" text-anchor="{anchor}" x="{_num(self.x(t))}" '
                f'y="{self.height - 6}">{escape(_time_label(int(t), span))}</text>'
            )
        return "".join(parts)

    def svg(self, body: str, label: str, cls: str) -> str:
        return (
            f'<svg class="{cls}" viewBox="0 0 {W} {self.height}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{self.pw}" height="{self.ph}"/>'
            f"{body}</svg>"
        )


def bucket(c: Candles, max_bars: int) -> tuple[np.ndarray, ...]:
    """(time, open, high, low, close) with at most ``max_bars`` rows."""
    n = len(c.open_time)
    k = max(1, math.ceil(n / max_bars))
    if k == 1:
        return c.open_time, c.open, c.high, c.low, c.close
    starts = np.arange(0, n, k)
    ends = np.minimum(starts + k, n) - 1
    return (
        c.open_time[starts],
        c.open[starts],
        np.maximum.reduceat(c.high, starts),
        np.minimum.reduceat(c.low, starts),
        c.close[ends],
    )


def candle_chart(
    c: Candles, trades: Sequence[TradeView], run_id: str, *, max_bars: int = 400, height: int = 360
) -> str:
    """Candles of one instrument with each trade's entry, exit, stop and target."""
    if len(c.open_time) == 0:
        return ""
    t, o, h, lo, cl = bucket(c, max_bars)
    tf = timeframe_to_ns(c.timeframe)
    t1 = int(c.open_time[-1]) + tf
    mine = [tv for tv in trades if tv.trade.instrument == c.instrument]
    levels = [v for tv in mine for v in (tv.stop, tv.target) if v is not None and math.isfinite(v)]
    low = min(float(lo.min()), *levels) if levels else float(lo.min())
    high = max(float(h.max()), *levels) if levels else float(h.max())
    pad = (high - low) * 0.04
    f = _Frame(int(t[0]), t1, low - pad, high + pad, height)
    k = math.ceil(len(c.open_time) / len(t))  # candles per drawn bar
    width = max(f.pw * k * tf / (f.t1 - f.t0) * 0.7, 0.6)
    paths: dict[str, list[str]] = {"up": [], "down": []}
    wicks: dict[str, list[str]] = {"up": [], "down": []}
    for i in range(len(t)):
        kind = "up" if cl[i] >= o[i] else "down"
        x = f.x(t[i] + k * tf / 2)
        top, bottom = f.y(max(o[i], cl[i])), f.y(min(o[i], cl[i]))
        paths[kind].append(
            f"M{_num(x - width / 2)} {_num(top)}h{_num(width)}v{_num(max(bottom - top, 0.6))}"
            f"h{_num(-width)}z"
        )
        wicks[kind].append(f"M{_num(x)} {_num(f.y(h[i]))}V{_num(f.y(lo[i]))}")
    body = [f.axes(fmt_price)]
    for kind, colour in (("up", UP), ("down", DOWN)):
        body.append(f'<path class="wick" stroke="{colour}" d="{"".join(wicks[kind])}"/>')
        body.append(f'<path class="candle-{kind}" fill="{colour}" d="{"".join(paths[kind])}"/>')
    for tv in mine:
        body.append(_trade_marks(f, tv, run_id, tf))
    label = f"{c.instrument} {c.timeframe} candles with {len(mine)} trades"
    return f.svg("".join(body), label, "chart candles")


def _trade_marks(f: _Frame, tv: TradeView, run_id: str, tf: int) -> str:
    tr = tv.trade
    side = str(getattr(tr.side, "value", tr.side))
    xe, xx = f.x(tr.entry_time), f.x(tr.exit_time)
    ye, yx = f.y(tr.entry_price), f.y(tr.exit_price)
    win = tr.pnl > 0
    tip = (
        f"#{tv.number} {tr.instrument} {side}: in {fmt_price(tr.entry_price)} at "
        f"{to_iso(tr.entry_time)}, out {fmt_price(tr.exit_price)} at {to_iso(tr.exit_time)} "
        f"({getattr(tr.exit_reason, 'value', tr.exit_reason)}), pnl {tr.pnl:,.2f}"
    )
    parts = [f'<g class="trade" data-trade="{run_id}-t{tv.number}"><title>{escape(tip)}</title>']
    end = max(xx, xe + 2)
    for value, cls in ((tv.stop, "stop"), (tv.target, "target")):
        if value is not None and math.isfinite(value):
            y = _num(f.y(value))
            parts.append(
                f'<line class="{cls}" x1="{_num(xe)}" x2="{_num(end)}" y1="{y}" y2="{y}"/>'
            )
    parts.append(
        f'<line class="path {"win" if win else "loss"}" x1="{_num(xe)}" y1="{_num(ye)}" '
        f'x2="{_num(xx)}" y2="{_num(yx)}"/>'
    )
    if side == "long":  # a triangle pointing up under the entry; down above it for shorts
        tri = f"M{_num(xe)} {_num(ye)}l-6 11h12z"
    else:
        tri = f"M{_num(xe)} {_num(ye)}l-6 -11h12z"
    parts.append(f'<path class="entry {side}" d="{tri}"/>')
    parts.append(
        f'<circle class="exit {"win" if win else "loss"}" cx="{_num(xx)}" cy="{_num(yx)}" r="4.5"/>'
    )
    parts.append("</g>")
    return "".join(parts)


def _polyline(f: _Frame, times: np.ndarray, values: np.ndarray, max_points: int = 2000) -> str:
    n = len(times)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int)) if n else []
    return " ".join(f"{_num(f.x(times[i]))},{_num(f.y(values[i]))}" for i in idx)


def equity_chart(lines: Sequence[tuple[str, np.ndarray, np.ndarray]], *, height: int = 260) -> str:
    """One equity line per run (several runs: one colour each, with a legend)."""
    lines = [(name, t, v) for name, t, v in lines if len(t)]
    if not lines:
        return ""
    t0 = min(int(t[0]) for _, t, _ in lines)
    t1 = max(int(t[-1]) for _, t, _ in lines)
    lo = min(float(np.nanmin(v)) for _, _, v in lines)
    hi = max(float(np.nanmax(v)) for _, _, v in lines)
    pad = (hi - lo) * 0.05
    f = _Frame(t0, t1, lo - pad, hi + pad, height)
    body = [f.axes(lambda v: f"{v:,.0f}")]
    for i, (name, t, v) in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        body.append(
            f'<polyline class="equity" stroke="{colour}" points="{_polyline(f, t, v)}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        if len(lines) > 1:
            y = TOP + 14 + 16 * i
            body.append(
                f'<rect x="{LEFT + 10}" y="{y - 9}" width="12" height="4" fill="{colour}"/>'
                f'<text class="legend" x="{LEFT + 28}" y="{y - 4}">{escape(name)}</text>'
            )
    return f.svg("".join(body), "equity", "chart equity")


def drawdown(values: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak, in percent (0 at a new high, negative below)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return v
    peak = np.maximum.accumulate(v)
    return (v / peak - 1.0) * 100.0


def drawdown_chart(times: np.ndarray, values: np.ndarray, *, height: int = 160) -> str:
    if not len(times):
        return ""
    dd = drawdown(values)
    lo = min(float(dd.min()), -0.01)
    f = _Frame(int(times[0]), int(times[-1]), lo * 1.05, 0.0, height)
    pts = _polyline(f, times, dd)
    first, last = _num(f.x(times[0])), _num(f.x(times[-1]))
    zero = _num(f.y(0.0))
    body = f.axes(lambda v: f"{v:.1f}%") + (
        f'<polygon class="drawdown" points="{first},{zero} {pts} {last},{zero}">'
        f"<title>max drawdown {float(dd.min()):.2f}%</title></polygon>"
    )
    return f.svg(body, "drawdown", "chart drawdown")
