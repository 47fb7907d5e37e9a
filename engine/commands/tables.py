"""The report tables of the headless commands (rich): metrics, trades, compare, personas.

Metrics are formatted by ``fmt_metric`` (percentages, durations, times, ``–`` for
missing); prices by the one price formatter, ``engine.numfmt.fmt_price``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.numfmt import fmt_price
from engine.timeutil import to_iso
from engine.types import InstrumentSeries, Trade

_PERCENT_HINTS = ("return", "drawdown", "win_rate", "exposure")


def console() -> Console:
    """Stdout console; piped output gets a wide one so tables never wrap."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)
    return out


def fmt_duration(ns: float) -> str:
    """Nanoseconds as '1d 02:03' (days, hours:minutes), with ':SS' only when the seconds
    are not zero: '3d 04:05:06'."""
    seconds = round(ns / 1e9)
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")
    return f"{days}d {clock}" if days else clock


def short_time(ns: int) -> str:
    """'2022-01-01 10:00:00' (UTC)."""
    return to_iso(ns).replace("T", " ").removesuffix("Z")


def fmt_metric(key: str, value: Any) -> str:
    """One metric as the tables show it; the key says what kind of number it is."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and math.isfinite(value):
        if key in ("start", "end") or key.endswith("_time"):
            return short_time(int(value))
        if key.endswith("_ns"):
            return fmt_duration(float(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–" if math.isnan(value) else ("∞" if value > 0 else "-∞")
        if key.endswith("_pct"):
            return f"{value:,.2f}%"
        if any(h in key for h in _PERCENT_HINTS) and not key.endswith(("_s", "_ns", "_steps")):
            return f"{value * 100:,.2f}%" if abs(value) <= 10 else f"{value:,.2f}"
        if abs(value) >= 100:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


def scalar_items(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The rows a table shows: scalars only, and ``trade_fees`` only when it differs from
    ``fees_paid`` (positions still open paid entry fees), so a figure appears once."""
    items = [(k, v) for k, v in metrics.items() if not isinstance(v, Mapping | list | tuple)]
    paid, closed = metrics.get("fees_paid"), metrics.get("trade_fees")
    if isinstance(paid, float) and isinstance(closed, float) and math.isclose(paid, closed):
        items = [(k, v) for k, v in items if k != "trade_fees"]
    return items


_LABELS = {
    "n_bars": "bars",
    "n_trades": "trades",
    "n_fills": "fills",
    "trade_fees": "fees of closed trades",
    "expectancy": "expectancy (mean pnl)",
    "expectancy_pct": "expectancy (mean return)",
    "buy_hold_return_pct": "buy & hold return",
}


def metric_label(key: str) -> str:
    """A key as a person reads it: no unit suffix (the value shows it), no underscores:
    ``max_drawdown_duration_ns`` -> 'max drawdown duration', ``mean_latency_s`` ->
    'mean latency (s)'."""
    if key in _LABELS:
        return _LABELS[key]
    if key.endswith("_s"):
        return key.removesuffix("_s").replace("_", " ") + " (s)"
    return key.removesuffix("_ns").removesuffix("_pct").replace("_", " ")


def window_text(series: Sequence[InstrumentSeries]) -> str:
    names = ", ".join(f"{s.instrument} {s.timeframe}" for s in series)
    first = min(int(s.open_time[0]) for s in series)
    last = max(int(s.close_time[-1]) for s in series)
    return f"{names} · {to_iso(first)} → {to_iso(last)}"


def metrics_table(title: str, metrics: Mapping[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in scalar_items(metrics):
        table.add_row(metric_label(key), fmt_metric(key, value))
    return table


def _keys(groups: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for g in groups:
        keys += [k for k, _ in scalar_items(g) if k not in keys]
    return keys


def nested_tables(metrics: Mapping[str, Any]) -> list[Table]:
    """Per-instrument (or other nested) metrics as one table: rows = keys, columns = groups."""
    tables = []
    for key, value in metrics.items():
        if not isinstance(value, Mapping) or not value:
            continue
        groups = {k: v for k, v in value.items() if isinstance(v, Mapping)}
        if len(groups) < 2:  # one instrument: the overall table already says it all
            continue
        table = Table(title=key.replace("_", " "), title_justify="left")
        table.add_column("metric")
        names = list(groups)
        for name in names:
            table.add_column(str(name), justify="right")
        for k in _keys(list(groups.values())):
            table.add_row(metric_label(k), *(fmt_metric(k, groups[n].get(k)) for n in names))
        tables.append(table)
    return tables


def trades_table(trades: Sequence[Trade], limit: int) -> Table | None:
    """The last ``limit`` trades (None when there is nothing to show)."""
    if limit <= 0 or not trades:
        return None
    shown = list(trades[-limit:])
    title = (
        f"trades ({len(trades)})"
        if len(shown) == len(trades)
        else (f"trades (the last {len(shown)} of {len(trades)})")
    )
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("instrument", "left"),
        ("side", "left"),
        ("entry (UTC)", "left"),
        ("entry price", "right"),
        ("exit (UTC)", "left"),
        ("exit price", "right"),
        ("qty", "right"),
        ("pnl", "right"),
        ("fees", "right"),
        ("exit", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    first = len(trades) - len(shown) + 1
    for i, t in enumerate(shown, start=first):
        pnl = f"{t.pnl:,.2f}" if abs(t.pnl) >= 0.01 else f"{t.pnl:.3g}"
        style = "green" if t.pnl > 0 else "red" if t.pnl < 0 else ""
        reason = str(getattr(t.exit_reason, "value", t.exit_reason))
        table.add_row(
            str(i),
            t.instrument,
            str(getattr(t.side, "value", t.side)),
            short_time(t.entry_time),
            fmt_price(t.entry_price),
            short_time(t.exit_time),
            fmt_price(t.exit_price),
            f"{t.qty:.6g}",
            f"[{style}]{pnl}[/]" if style else pnl,
            f"{t.fees:.4g}",
            reason + (" (ambiguous)" if t.ambiguous else ""),
        )
    return table


SUMMARY = (
    ("P&L", "metrics", "net_pnl"),
    ("return", "metrics", "total_return_pct"),
    ("max drawdown", "metrics", "max_drawdown_pct"),
    ("sharpe", "metrics", "sharpe"),
    ("trades", "metrics", "n_trades"),
    ("brain calls", "brain_stats", "calls"),
    ("cache hits", "brain_stats", "cache_hits"),
    ("mean latency ms", "brain_stats", "mean_latency_s"),
    ("tokens", "brain_stats", "tokens"),
    ("grounded", "brain_stats", "grounded_share"),
)


def latency_ms(seconds: float) -> str:
    """A brain's mean latency in milliseconds, as the replay shows it (a rule brain's
    microseconds are '<0.1', not an exponent)."""
    ms = seconds * 1000
    if ms == 0 or ms >= 0.1:
        return f"{ms:,.1f}"
    return "<0.1"


def summary_table(results: Mapping[str, Any]) -> Table:
    """One row per persona (or persona@brain): P&L and risk beside what the brain cost."""
    table = Table(title="summary", title_justify="left")
    table.add_column("persona@brain" if any("@" in n for n in results) else "persona")
    for label, _, _ in SUMMARY:
        table.add_column(label, justify="right")
    for name, r in results.items():
        cells = []
        for _, source, key in SUMMARY:
            value = getattr(r, source).get(key)
            if key == "grounded_share" and value is not None:
                cells.append(f"{value:.0%}")
            elif key == "mean_latency_s" and value is not None:
                cells.append(latency_ms(value))
            else:
                cells.append(fmt_metric(key, value))
        table.add_row(name, *cells)
    return table


def compare_table(results: Mapping[str, Any]) -> Table:
    """Several personas' metrics and brain statistics side by side."""
    table = Table(title="metrics", title_justify="left")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for k in _keys([r.metrics for r in results.values()]):
        table.add_row(metric_label(k), *(fmt_metric(k, r.metrics.get(k)) for r in results.values()))
    brain_keys: list[str] = []
    for r in results.values():
        brain_keys += [k for k in r.brain_stats if k not in brain_keys]
    for k in brain_keys:
        table.add_row(
            f"brain {metric_label(k)}",
            *(fmt_metric(k, r.brain_stats.get(k)) for r in results.values()),
        )
    return table


def personas_table(records: Sequence[Mapping[str, Any]]) -> Table:
    """The built-in personas (records of ``records.persona_record``)."""
    table = Table(
        title="built-in personas (use a name, or any .toml file, with --persona)",
        title_justify="left",
    )
    for name in (
        "name",
        "directions",
        "threshold",
        "risk",
        "stop / target",
        "trailing",
        "hold max",
        "cooldown",
        "description",
    ):
        table.add_column(name)
    for r in records:
        t = r["trailing"]
        trail = (
            "–"
            if t is None
            else (f"{t['distance']:g} ATR" if t["mode"] == "atr" else f"{t['distance']:.2%}")
        )
        table.add_row(
            r["name"],
            "/".join(r["allowed_directions"]),
            f"{r['entry_threshold']:g}",
            f"{r['risk_per_trade']:.2%}",
            f"{r['stop_atr']:g} / {r['target_atr']:g} ATR",
            trail,
            str(r["max_holding_candles"] or "–"),
            str(r["cooldown_after_loss"] or "–"),
            r["description"],
        )
    return table
