"""The HTML report: one self-contained page (inline CSS, SVG and a few lines of JS).

Nothing is loaded from anywhere: the page works offline and from a mail attachment.
One run shows its candles with trades, equity, drawdown, metrics and the trades with
each one's decision (reasoning, persona, brain); several runs add a comparison table
and their equity curves on one chart, then one section per run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import numpy as np

from engine.atomic import write_text_atomic
from engine.numfmt import fmt_price
from engine.report.model import Candles, ReportRun, TradeView
from engine.report.svg import candle_chart, drawdown_chart, equity_chart
from engine.timeutil import timeframe_to_ns, to_iso

MAX_ZOOM_CANDLES = 300_000  # candles embedded for the trade zoom (about 40 bytes each)

CSS = """
:root { color-scheme: light; --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#ffffff;
  --up:#1a9850; --down:#d73027; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; padding: 24px; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; color: var(--muted); }
.sub { color: var(--muted); margin: 0 0 16px; }
section.run { border-top: 2px solid var(--line); margin-top: 28px; }
svg.chart { width: 100%; height: auto; display: block; background: #fff; }
svg .plot { fill: #fbfcfe; stroke: var(--line); }
svg .grid { stroke: #eef0f4; stroke-width: 1; }
svg .ylab { font-size: 11px; fill: var(--muted); text-anchor: end; }
svg .xlab, svg .legend { font-size: 11px; fill: var(--muted); }
svg .wick { stroke-width: 1; fill: none; }
svg .equity { fill: none; stroke-width: 1.6; }
svg .drawdown { fill: rgba(215,48,39,.25); stroke: var(--down); stroke-width: 1; }
svg .stop { stroke: var(--down); stroke-dasharray: 5 3; stroke-width: 1.3; }
svg .target { stroke: var(--up); stroke-dasharray: 5 3; stroke-width: 1.3; }
svg .path { stroke-width: 1.2; stroke-dasharray: 2 2; }
svg .path.win { stroke: var(--up); } svg .path.loss { stroke: var(--down); }
svg .entry.long { fill: #2458d6; } svg .entry.short { fill: #b7359d; }
svg .exit { stroke: #fff; stroke-width: 1.2; }
svg .exit.win { fill: var(--up); } svg .exit.loss { fill: var(--down); }
svg .trade.hl .entry, svg .trade.hl .exit { stroke: #111; stroke-width: 2.5; }
svg .trade.hl line { stroke-width: 2.5; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right;
  vertical-align: top; white-space: nowrap; }
th { background: #f5f6f8; position: sticky; top: 0; }
td.l, th.l { text-align: left; } td.why { white-space: normal; text-align: left; }
table.metrics { width: auto; min-width: 360px; }
tr.hl td { background: #fff7d6; }
.pos { color: var(--up); } .neg { color: var(--down); }
details summary { cursor: pointer; color: #2458d6; }
details pre { white-space: pre-wrap; font: 12px/1.4 ui-monospace, monospace; margin: 6px 0;
  background: #f7f8fa; padding: 8px; border-radius: 4px; max-width: 760px; }
.note { color: #8a5300; }
.scroll { overflow-x: auto; }
.zoom { min-height: 24px; } tr[data-trade] { cursor: pointer; }
svg .bar-up { fill: var(--up); stroke: var(--up); }
svg .bar-down { fill: var(--down); stroke: var(--down); }
.legend-row { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
"""

# Hovering a trade's mark highlights its row and the reverse; clicking a row shows its mark.
JS = """
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var candles = {};
  document.querySelectorAll('script.candles').forEach(function (el) {
    candles[el.getAttribute('data-run') + '|' + el.getAttribute('data-inst')] =
      JSON.parse(el.textContent);
  });
  function mark(id, on) {
    document.querySelectorAll('[data-trade="' + id + '"]').forEach(function (el) {
      el.classList.toggle('hl', on);
    });
  }
  function first(d, ms) {  // index of the first candle opening at or after ms
    var lo = 0, hi = d.t.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (d.t0 + d.t[mid] * d.tf < ms) { lo = mid + 1; } else { hi = mid; }
    }
    return Math.min(lo, d.t.length - 1);
  }
  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function label(text, attrs, parent) { el('text', attrs, parent).textContent = text; }
  function iso(ms) { return new Date(ms).toISOString().slice(0, 16).replace('T', ' '); }
  function zoom(row) {
    var id = row.getAttribute('data-trade'), run = id.split('-')[0];
    var d = candles[run + '|' + row.getAttribute('data-inst')];
    var box = document.getElementById('zoom-' + run);
    if (!d || !box || !d.t.length) { return; }
    var et = +row.getAttribute('data-et'), xt = +row.getAttribute('data-xt');
    var ie = first(d, et), ix = first(d, xt);
    var pad = Math.max(30, Math.round((ix - ie) * 0.6));
    var i0 = Math.max(0, ie - pad), i1 = Math.min(d.t.length - 1, ix + pad);
    var k = Math.max(1, Math.ceil((i1 - i0 + 1) / 240));
    var bars = [], levels = [];
    for (var i = i0; i <= i1; i += k) {
      var j = Math.min(i + k - 1, i1), h = -Infinity, l = Infinity;
      for (var m = i; m <= j; m++) { h = Math.max(h, d.h[m]); l = Math.min(l, d.l[m]); }
      bars.push({t: d.t0 + d.t[i] * d.tf, o: d.o[i], h: h, l: l, c: d.c[j]});
      levels.push(h, l);
    }
    var lv = {ep: +row.getAttribute('data-ep'), xp: +row.getAttribute('data-xp'),
      stop: parseFloat(row.getAttribute('data-stop')),
      target: parseFloat(row.getAttribute('data-target'))};
    Object.keys(lv).forEach(function (key) { if (isFinite(lv[key])) { levels.push(lv[key]); } });
    var lo = Math.min.apply(null, levels), hi = Math.max.apply(null, levels);
    var padp = (hi - lo) * 0.05 || Math.abs(hi) * 0.01 || 1; lo -= padp; hi += padp;
    var W = 1000, H = 300, L = 96, R = 12, T = 10, B = 24;
    var ts = bars[0].t, te = d.t0 + d.t[i1] * d.tf + d.tf;
    function x(ms) { return L + (ms - ts) / (te - ts) * (W - L - R); }
    function y(p) { return T + (hi - p) / (hi - lo) * (H - T - B); }
    var svg = el('svg', {'class': 'chart zoomed', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'trade ' + id + ' up close'});
    el('rect', {'class': 'plot', x: L, y: T, width: W - L - R, height: H - T - B}, svg);
    for (var q = 0; q < 5; q++) {
      var v = lo + (hi - lo) * q / 4;
      el('line', {'class': 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v)}, svg);
      label(v.toPrecision(6), {'class': 'ylab', x: L - 6, y: y(v) + 4}, svg);
    }
    label(iso(ts), {'class': 'xlab', x: L, y: H - 6}, svg);
    label(iso(te), {'class': 'xlab', x: W - R, y: H - 6, 'text-anchor': 'end'}, svg);
    var wBar = Math.max((W - L - R) / bars.length * 0.7, 1);
    bars.forEach(function (b) {
      var cls = b.c >= b.o ? 'bar-up' : 'bar-down', cx = x(b.t + k * d.tf / 2);
      el('line', {'class': cls, x1: cx, x2: cx, y1: y(b.h), y2: y(b.l)}, svg);
      var top = y(Math.max(b.o, b.c));
      el('rect', {'class': cls, x: cx - wBar / 2, y: top, width: wBar,
        height: Math.max(y(Math.min(b.o, b.c)) - top, 1)}, svg);
    });
    var g = el('g', {'class': 'trade hl'}, svg), xe = x(et), xx = Math.max(x(xt), xe + 2);
    if (isFinite(lv.stop)) {
      el('line', {'class': 'stop', x1: xe, x2: xx, y1: y(lv.stop), y2: y(lv.stop)}, g);
    }
    if (isFinite(lv.target)) {
      el('line', {'class': 'target', x1: xe, x2: xx, y1: y(lv.target), y2: y(lv.target)}, g);
    }
    var side = row.getAttribute('data-side'), win = +row.getAttribute('data-pnl') > 0;
    el('line', {'class': 'path ' + (win ? 'win' : 'loss'), x1: xe, y1: y(lv.ep), x2: x(xt),
      y2: y(lv.xp)}, g);
    var dy = side === 'long' ? 11 : -11;
    el('path', {'class': 'entry ' + side,
      d: 'M' + xe + ' ' + y(lv.ep) + 'l-6 ' + dy + 'h12z'}, g);
    el('circle', {'class': 'exit ' + (win ? 'win' : 'loss'), cx: x(xt), cy: y(lv.xp), r: 5}, g);
    box.innerHTML = '';
    var h3 = document.createElement('h3');
    h3.textContent = 'trade #' + id.split('-t')[1] + ' up close: ' +
      row.getAttribute('data-inst') + ' ' + side + ', ' + iso(et) + ' to ' + iso(xt);
    box.appendChild(h3);
    box.appendChild(svg);
    box.setAttribute('data-shown', id);
  }
  document.querySelectorAll('[data-trade]').forEach(function (node) {
    var id = node.getAttribute('data-trade');
    node.addEventListener('mouseenter', function () { mark(id, true); });
    node.addEventListener('mouseleave', function () { mark(id, false); });
    if (node.tagName === 'TR') {
      node.addEventListener('click', function () {
        zoom(node);
        var box = document.getElementById('zoom-' + id.split('-')[0]);
        if (box) { box.scrollIntoView({behavior: 'smooth', block: 'center'}); }
      });
    }
  });
  document.body.setAttribute('data-ready', 'yes');
})();
"""


def metrics_table(runs: Sequence[ReportRun]) -> str:
    """One column per run; rows labelled and formatted as the terminal tables do."""
    from engine.commands.tables import fmt_metric, metric_label, scalar_items

    keys: list[str] = []
    for r in runs:
        keys += [k for k, _ in scalar_items(r.metrics) if k not in keys]
    head = "".join(f"<th>{escape(r.title)}</th>" for r in runs)
    rows = []
    for k in keys:
        cells = "".join(f"<td>{escape(fmt_metric(k, r.metrics.get(k)))}</td>" for r in runs)
        rows.append(f'<tr><td class="l">{escape(metric_label(k))}</td>{cells}</tr>')
    brain = "".join(f"<td>{escape(r.brain_label)}</td>" for r in runs)
    persona = "".join(f"<td>{escape(r.persona)}</td>" for r in runs)
    return (
        f'<table class="metrics"><thead><tr><th class="l">metric</th>{head}</tr></thead><tbody>'
        f'<tr><td class="l">persona</td>{persona}</tr><tr><td class="l">brain</td>{brain}</tr>'
        f"{''.join(rows)}</tbody></table>"
    )


def instrument_table(run: ReportRun) -> str:
    """Per-instrument metrics (when the run had several instruments)."""
    from engine.commands.tables import fmt_metric, metric_label, scalar_items

    groups = {
        str(k): v
        for key, value in run.metrics.items()
        if isinstance(value, Mapping)
        for k, v in value.items()
        if isinstance(v, Mapping)
    }
    if len(groups) < 2:
        return ""
    keys: list[str] = []
    for g in groups.values():
        keys += [k for k, _ in scalar_items(g) if k not in keys]
    head = "".join(f"<th>{escape(n)}</th>" for n in groups)
    rows = "".join(
        f'<tr><td class="l">{escape(metric_label(k))}</td>'
        + "".join(f"<td>{escape(fmt_metric(k, g.get(k)))}</td>" for g in groups.values())
        + "</tr>"
        for k in keys
    )
    return (
        f'<h3>per instrument</h3><table class="metrics per-instrument"><thead><tr>'
        f'<th class="l">metric</th>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def _money(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    cls = "pos" if v > 0 else "neg" if v < 0 else ""
    return f'<span class="{cls}">{v:,.2f}</span>' if abs(v) >= 0.01 else f"{v:.3g}"


def _opt_price(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else fmt_price(v)


def _short(ns: int) -> str:
    return to_iso(ns).replace("T", " ").removesuffix("Z")


def _why(tv: TradeView, run: ReportRun) -> str:
    if tv.decision is None:
        return '<span class="note">no opening decision in the log</span>'
    d = tv.decision
    head = f"{_short(d.time)} · persona {run.persona} · brain {d.brain} {d.model}".strip()
    rationale = tv.plan.rationale if tv.plan is not None else ""
    extra = "".join(
        f"\n{label}: {'; '.join(items)}"
        for label, items in (("corrections", d.corrections), ("errors", d.errors))
        if items
    )
    return (
        f"<details><summary>{escape(rationale or 'decision')}</summary>"
        f"<pre>{escape(head)}\n\n{escape(d.reasoning)}{escape(extra)}</pre></details>"
    )


def _row_data(tv: TradeView) -> str:
    """What the page's script needs to draw a trade up close (times in ms)."""
    t = tv.trade
    values = {
        "inst": t.instrument,
        "side": str(getattr(t.side, "value", t.side)),
        "et": t.entry_time // 1_000_000,
        "xt": t.exit_time // 1_000_000,
        "ep": repr(float(t.entry_price)),
        "xp": repr(float(t.exit_price)),
        "pnl": repr(float(t.pnl)),
        "stop": "" if tv.stop is None else repr(float(tv.stop)),
        "target": "" if tv.target is None else repr(float(tv.target)),
    }
    return " ".join(f'data-{k}="{escape(str(v))}"' for k, v in values.items())


def candle_data(c: Candles, run_id: str) -> str:
    """The candles as JSON for the trade zoom (times in timeframe steps from the first)."""
    tf_ms = timeframe_to_ns(c.timeframe) // 1_000_000
    t = np.asarray(c.open_time) // 1_000_000
    t0 = int(t[0]) if len(t) else 0
    data = {
        "t0": t0,
        "tf": tf_ms,
        "t": ((t - t0) // tf_ms).astype(np.int64).tolist(),
        **{
            k: [float(f"{v:.10g}") for v in np.asarray(col, dtype=np.float64).tolist()]
            for k, col in (("o", c.open), ("h", c.high), ("l", c.low), ("c", c.close))
        },
    }
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<script type="application/json" class="candles" data-run="{run_id}" '
        f'data-inst="{escape(c.instrument)}">{text}</script>'
    )


def trades_table(run: ReportRun, run_id: str) -> str:
    if not run.trades:
        return "<p>no trades</p>"
    head = (
        "<tr><th>#</th><th class='l'>instrument</th><th class='l'>side</th>"
        "<th class='l'>entry (UTC)</th><th>entry</th><th class='l'>exit (UTC)</th><th>exit</th>"
        "<th>qty</th><th>pnl</th><th>fees</th><th class='l'>exit reason</th>"
        "<th>stop</th><th>target</th><th class='l'>decision</th></tr>"
    )
    rows = []
    for tv in run.trades:
        t = tv.trade
        reason = str(getattr(t.exit_reason, "value", t.exit_reason))
        if t.ambiguous:
            reason += " (ambiguous)"
        rows.append(
            f'<tr data-trade="{run_id}-t{tv.number}" {_row_data(tv)}><td>{tv.number}</td>'
            f'<td class="l">{escape(t.instrument)}</td>'
            f'<td class="l">{escape(str(getattr(t.side, "value", t.side)))}</td>'
            f'<td class="l">{_short(t.entry_time)}</td><td>{fmt_price(t.entry_price)}</td>'
            f'<td class="l">{_short(t.exit_time)}</td><td>{fmt_price(t.exit_price)}</td>'
            f"<td>{t.qty:.6g}</td><td>{_money(t.pnl)}</td><td>{t.fees:.4g}</td>"
            f'<td class="l">{escape(reason)}</td><td>{_opt_price(tv.stop)}</td>'
            f'<td>{_opt_price(tv.target)}</td><td class="why">{_why(tv, run)}</td></tr>'
        )
    return (
        f'<div class="scroll"><table class="trades"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def run_section(run: ReportRun, run_id: str) -> str:
    parts = [
        f'<section class="run" id="{run_id}"><h2>{escape(run.title)}</h2>',
        f'<p class="sub">persona <b>{escape(run.persona)}</b> · brain '
        f"<b>{escape(run.brain_label)}</b> · {len(run.trades)} trades</p>",
    ]
    parts += [f'<p class="note">{escape(n)}</p>' for n in run.notes]
    for c in run.candles:
        parts.append(f"<h3>{escape(c.instrument)} {escape(c.timeframe)}</h3>")
        parts.append(candle_chart(c, run.trades, run_id))
    parts.append(
        '<p class="legend-row">▲ long entry · ▼ short entry · ● exit (green: profit, red: '
        "loss) · dashed red: stop · dashed green: target</p>"
    )
    if run.trades and sum(len(c.open_time) for c in run.candles) <= MAX_ZOOM_CANDLES:
        parts += [candle_data(c, run_id) for c in run.candles if len(c.open_time)]
        parts.append(
            f'<div class="zoom" id="zoom-{run_id}"><p class="legend-row">click a trade in the '
            "table below to see it up close here</p></div>"
        )
    parts.append("<h3>equity</h3>")
    parts.append(equity_chart([(run.title, run.equity_times, run.equity_values)]))
    parts.append("<h3>drawdown</h3>")
    parts.append(drawdown_chart(run.equity_times, run.equity_values))
    parts.append("<h3>metrics</h3>")
    parts.append(metrics_table([run]))
    parts.append(instrument_table(run))
    parts.append(f"<h3>trades ({len(run.trades)})</h3>")
    parts.append(trades_table(run, run_id))
    parts.append("</section>")
    return "".join(parts)


def render(runs: Sequence[ReportRun], title: str = "tapedeck report") -> str:
    """The whole page as one string."""
    if not runs:
        raise ValueError("a report needs at least one run")
    body = [f"<h1>{escape(title)}</h1>"]
    names = ", ".join(f"{r.title} ({r.persona}, {r.brain_label})" for r in runs)
    body.append(f'<p class="sub">{escape(names)}</p>')
    if len(runs) > 1:
        body.append("<h2>comparison</h2>")
        body.append(equity_chart([(r.title, r.equity_times, r.equity_values) for r in runs]))
        body.append(metrics_table(runs))
    body += [run_section(r, f"r{i}") for i, r in enumerate(runs)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}<script>{JS}</script></body></html>\n"
    )


def write_report(
    path: str | Path, runs: Sequence[ReportRun], title: str = "tapedeck report"
) -> Path:
    """Write the report atomically; returns the path."""
    return write_text_atomic(path, render(runs, title))
