"""The HTML report: one self-contained page (inline CSS, SVG and a few lines of JS).

Nothing is loaded from anywhere: the page works offline and from a mail attachment.
One run shows its candles with trades, equity, drawdown, metrics and the trades with
each one's decision (reasoning, persona, brain); several runs add a comparison table
and their equity curves on one chart, then one section per run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from engine.atomic import write_text_atomic
from engine.numfmt import fmt_price
from engine.report.model import ReportRun, TradeView
from engine.report.svg import candle_chart, drawdown_chart, equity_chart
from engine.timeutil import to_iso

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
.legend-row { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
"""

# Hovering a trade's mark highlights its row and the reverse; clicking a row shows its mark.
JS = """
(function () {
  function mark(id, on) {
    document.querySelectorAll('[data-trade="' + id + '"]').forEach(function (el) {
      el.classList.toggle('hl', on);
    });
  }
  document.querySelectorAll('[data-trade]').forEach(function (el) {
    var id = el.getAttribute('data-trade');
    el.addEventListener('mouseenter', function () { mark(id, true); });
    el.addEventListener('mouseleave', function () { mark(id, false); });
    if (el.tagName === 'TR') {
      el.addEventListener('click', function () {
        var g = document.querySelector('g[data-trade="' + id + '"]');
        if (g) { g.closest('svg').scrollIntoView({behavior: 'smooth', block: 'center'}); }
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
            f'<tr data-trade="{run_id}-t{tv.number}"><td>{tv.number}</td>'
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
