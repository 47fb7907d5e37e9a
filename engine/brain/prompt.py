"""The prompt an LLM brain sees: short, concrete, readable by a person.

No dates or clock times (they invite the model's memory of history): ages are counted
in candles. Numbers are rounded to what matters, so equal market states give equal
prompts (the decision cache keys on the prompt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine import numfmt
from engine.brain.persona import TradingPersona
from engine.brain.schema import SIZE_TIERS, answer_schema_text, shared_answer_schema
from engine.types import PortfolioState, SignalBatch

SYSTEM_TEXT = (
    "You are a trading assistant in a backtest. You read signals and answer with JSON only."
)

# Indicator values shown in the prompt, in this order, when the context has them.
SHOWN_INDICATORS = (
    "rsi",
    "macd",
    "macd_signal",
    "ema_fast",
    "ema_slow",
    "bb_upper",
    "bb_lower",
    "adx",
    "stoch_k",
    "volume_z",
)
MAX_SHOWN = 6


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str
    user: str
    schema: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything the model sees, as one readable text (the TUI shows it on request)."""
        return f"{self.system}\n\n{self.user}"

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user},
        ]


def fmt_price(value: float) -> str:
    """A price as ``engine.numfmt`` writes it (six significant digits), 'n/a' when not finite."""
    return numfmt.fmt_price(value, missing="n/a")


def _fmt_num(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}" if abs(value) < 1000 else fmt_price(value)


def _age(now: int, then: int, timeframe_ns: int | None) -> str:
    if timeframe_ns:
        n = max(0, round((now - then) / timeframe_ns))
        return "this candle" if n == 0 else f"{n} candle{'s' if n > 1 else ''} ago"
    minutes = max(0, round((now - then) / 60e9))
    return "just now" if minutes == 0 else f"{minutes} min ago"


def _held_for(now: int, then: int, timeframe_ns: int | None) -> str:
    if timeframe_ns:
        return f"{max(0, round((now - then) / timeframe_ns))} candles"
    return f"{max(0, round((now - then) / 60e9))} min"


def build_prompt(
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
    *,
    timeframe_ns: int | None = None,
) -> Prompt:
    """The prompt for one batch. ``timeframe_ns`` lets ages be counted in candles."""
    instruments = tuple(sorted(batch.context))
    schema = shared_answer_schema(instruments)  # read-only, shared between prompts
    lines: list[str] = []
    style = persona.style or persona.description or "You trade carefully."
    lines.append(f"Persona {persona.name}: {style}")
    directions = " and ".join(persona.allowed_directions)
    lines.append(
        f"Allowed: {directions} trades, at most {persona.max_open_positions} open positions. "
        f"Usual stop {persona.stop_atr:g} ATR, usual target {persona.target_atr:g} ATR."
    )
    lines.append("")
    lines.append("Market now:")
    for name in instruments:
        ctx = batch.context[name]
        parts = [
            f"price {fmt_price(ctx.price)}",
            f"ATR {fmt_price(ctx.atr)}",
            f"{ctx.change_pct:+.2f}% over {ctx.lookback} candles",
        ]
        shown = [
            f"{k} {_fmt_num(float(ctx.indicators[k]))}"
            for k in SHOWN_INDICATORS
            if k in ctx.indicators and math.isfinite(float(ctx.indicators[k]))
        ][:MAX_SHOWN]
        lines.append(f"- {name}: " + ", ".join(parts + shown))
    lines.append("")
    lines.append("Signals:")
    if not batch.signals:
        lines.append("- none (review open positions)")
    for sig in batch.signals:
        count = f" x{sig.count}" if sig.count > 1 else ""
        lines.append(
            f"- {sig.instrument} {sig.kind}{count}: {sig.direction.value}, "
            f"strength {sig.strength:.2f}, {_age(batch.time, sig.time, timeframe_ns)}"
        )
    for conflict in batch.conflicts:
        lines.append(f"- conflict: {conflict.detail}")
    lines.append("")
    lines.append(
        f"Account: equity {portfolio.equity:.2f}, cash {portfolio.cash:.2f}, "
        f"{len(portfolio.positions)} open positions."
    )
    for pos in portfolio.positions:
        stop = fmt_price(pos.stop_loss) if pos.stop_loss is not None else "none"
        target = fmt_price(pos.take_profit) if pos.take_profit is not None else "none"
        lines.append(
            f"- {pos.instrument} {pos.side.value} from {fmt_price(pos.entry_price)}, "
            f"PnL {pos.unrealized_pnl:+.2f}, stop {stop}, target {target}, "
            f"held {_held_for(batch.time, pos.entry_time, timeframe_ns)}"
        )
    lines.append("")
    tiers = ", ".join(f"{k} = {v:g}x risk" for k, v in SIZE_TIERS.items())
    lines.append(
        "Give one plan per instrument: open_long, open_short, close (an open position) "
        "or hold. stop_atr and target_atr are distances from the price in ATRs "
        f"(e.g. 1.5). Size: {tiers}. Reasoning: one or two short sentences first."
    )
    lines.append("JSON schema: " + answer_schema_text(instruments))
    return Prompt(SYSTEM_TEXT, "\n".join(lines), schema)
