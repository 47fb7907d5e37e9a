"""The prompt an LLM brain sees: short, concrete, readable by a person.

Two parts. The constant part (persona, rules, answer format) comes first and is the
same text for every call of a persona, so llama.cpp reuses its evaluated prefix from
one call to the next. The market part comes last: facts as relations and events a
small model can use ("EMA 9 above EMA 21 by 0.4 ATR", "RSI 71, overbought above 70",
the last candles as % moves) rather than raw floats, written so that a difference the
signals depend on is never rounded away (the relation word comes from the exact
values; a gap too small for its digits reads "< 0.01 ATR").

Each asked instrument's facts are listed one a line under its name and kept in
``Prompt.facts``: the answer's ``why`` is a citation of one of them (the schema offers
those that state a direction as its choices, see :func:`citable`), so the model picks
its evidence instead of writing it. A fact that argues for one side starts with it, in
the answer's words that the grounding check reads ("long: ", "short: "): a signal its
detector's way, EMA 9 against EMA 21 and MACD against its signal line as a trend, RSI
outside 30..70 as the RSI detector reads it (overbought argues short). The
instructions end with examples of a quoted fact and its action in the answer's form
(``_EXAMPLES``).

No dates or clock times (they invite the model's memory of history): ages are counted
in candles. No text from code comments or schema descriptions reaches the model.
With ``anonymise`` the instruments are renamed A, B, ... and prices rebased to 100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import numfmt
from engine.brain.grounding import stated_direction
from engine.brain.persona import TradingPersona
from engine.brain.schema import allowed_actions, asked_instruments, schema_for
from engine.types import InstrumentContext, PortfolioState, Signal, SignalBatch

RSI_HIGH = 70.0
RSI_LOW = 30.0


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str  # the constant part
    user: str  # the market part
    schema: dict[str, Any]
    # model-facing name -> real instrument (only differs when anonymised)
    names: Mapping[str, str] = field(default_factory=dict)
    # model-facing name -> the facts listed under it (what its ``why`` may cite)
    facts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Everything the model sees, as one text: constant part first."""
        return f"{self.system}\n\n{self.user}"

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user},
        ]


def fmt_price(value: float) -> str:
    """A price as ``engine.numfmt`` writes it (six significant digits), 'n/a' when not finite."""
    return numfmt.fmt_price(value, missing="n/a")


def fmt_atr(value: float) -> str:
    """A distance in ATRs: one decimal from 1 on, two below; never a misleading 0."""
    v = abs(value)
    if v >= 9.95:
        return f"{v:.0f}"
    if v >= 0.995:
        return f"{v:.1f}"
    if v >= 0.005:
        return f"{v:.2f}"
    return "< 0.01"


def fmt_pct(value: float) -> str:
    """A signed % move with two decimals ('< 0.01%' keeps a tiny move's sign)."""
    if abs(value) < 0.005 and value != 0:
        return f"{'+' if value > 0 else '-'}<0.01%"
    return f"{value:+.2f}%"


def _ago(n: int) -> str:
    return "this candle" if n <= 0 else f"{n} candle{'s' if n > 1 else ''} ago"


def _candles(now: int, then: int, timeframe_ns: int | None) -> int:
    step = timeframe_ns or 60_000_000_000
    return max(0, round((now - then) / step))


# A quoted fact and its action in the answer's own form: an entry each way and a hold
# on weak evidence. Without them Gemma 3 270M opened long whatever the side of the
# fact it had just quoted (all 11 entries of the BTC bench; told to copy the side, it
# took the other one). Order matters to it: long, short, hold measured best (BTC, a
# later BTC window and the altcoins); short before long made it quote short facts
# and open long.
_EXAMPLES = (
    '"why":"long: 3 of 4 signals","do":"long", "why":"short: 2 of 3 signals","do":"short" '
    'or "why":"long: 1 of 2 signals","do":"hold"'
)


def constant_part(persona: TradingPersona) -> str:
    """Persona, rules and answer format: the same text for every call of a persona."""
    style = persona.style or persona.description or "You trade carefully."
    directions = " and ".join(persona.allowed_directions)
    return "\n".join(
        [
            f"You are a trader in a backtest. {style}",
            f"You may open {directions} positions, at most {persona.max_open_positions} "
            f"at a time. Your usual stop is {persona.stop_atr:g} ATR and your usual "
            f"target {persona.target_atr:g} ATR from the entry price.",
            "Read the market facts below. For each instrument named under Decide, answer "
            'in JSON: "why" is the one fact listed under that instrument that matters most '
            'for your action, quoted word for word; "do" is long or short (open a position '
            'that way), close or hold; "size" is small, medium or large; for an entry "stop" '
            'and "target" are distances in ATR. An entry goes the way of the fact it quotes: '
            "long for a fact marked long, short for a fact marked short. For example: "
            f"{_EXAMPLES}.",
        ]
    )


def _indicator_facts(ctx: InstrumentContext, signals: list[Signal], tf: int | None, now: int):
    ind = ctx.indicators
    atr = ctx.atr if math.isfinite(ctx.atr) and ctx.atr > 0 else None
    out: list[str] = []

    def gap(a: float, b: float) -> str:
        if atr is None:
            return f"{fmt_pct((a / b - 1) * 100 if b else 0.0).lstrip('+-')}"
        return f"{fmt_atr((a - b) / atr)} ATR"

    fast, slow = ind.get("ema_fast"), ind.get("ema_slow")
    if fast is not None and slow is not None:
        side = "above" if fast > slow else "below" if fast < slow else "equal to"
        text = f"EMA 9 {side} EMA 21" + (f" by {gap(fast, slow)}" if fast != slow else "")
        cross = next((s for s in signals if s.kind.startswith("ema_cross")), None)
        if cross is not None:
            way = "up" if cross.direction.value == "long" else "down"
            text += f", crossed {way} {_ago(_candles(now, cross.time, tf))}"
        out.append(_lean(fast - slow) + text)
    rsi = ind.get("rsi")
    if rsi is not None:
        # the RSI detector's reading: overbought argues short, oversold long
        text = f"RSI {rsi:.0f}"
        if rsi > RSI_HIGH:
            text = f"{_lean(-1)}{text}, overbought above {RSI_HIGH:g}"
        elif rsi < RSI_LOW:
            text = f"{_lean(1)}{text}, oversold below {RSI_LOW:g}"
        out.append(text)
    macd, sig = ind.get("macd"), ind.get("macd_signal")
    if macd is not None and sig is not None:
        side = "above" if macd > sig else "below" if macd < sig else "on"
        text = f"MACD {side} its signal line"
        if macd != sig:
            text += f" by {gap(macd, sig)}"
        if atr is not None:
            text += f", MACD {'above' if macd >= 0 else 'below'} zero"
        out.append(_lean(macd - sig) + text)
    upper, lower = ind.get("bb_upper"), ind.get("bb_lower")
    if upper is not None and lower is not None and upper > lower:
        price = ctx.price
        if price > upper:
            out.append(f"price above the upper Bollinger band by {gap(price, upper)}")
        elif price < lower:
            out.append(f"price below the lower Bollinger band by {gap(lower, price)}")
        else:
            where = (price - lower) / (upper - lower) * 100
            out.append(f"price at {where:.0f}% of the Bollinger band width")
    adx = ind.get("adx")
    if adx is not None:
        out.append(f"ADX {adx:.0f} ({'trending' if adx >= 25 else 'no clear trend'})")
    vz = ind.get("volume_z")
    if vz is not None:
        side = "above" if vz >= 0 else "below"
        out.append(f"volume {abs(vz):.1f} standard deviations {side} average")
    return out


def _lean(delta: float) -> str:
    """The side a fact argues for, first, in the answer's own words ("" when none): a
    small model that picks a fact by its first word picks the side first."""
    return "long: " if delta > 0 else "short: " if delta < 0 else ""


def _signal_text(sig: Signal, now: int, tf: int | None) -> str:
    count = f" (x{sig.count})" if sig.count > 1 else ""
    side = {"long": 1, "short": -1}.get(sig.direction.value, 0)
    return (
        f"{_lean(side)}signal {sig.kind}{count}, {_ago(_candles(now, sig.time, tf))}, "
        f"strength {sig.strength:.2f}"
    )


def _signal_balance(signals: list[Signal]) -> str:
    """Which way the instrument's signals point, counted."""
    longs = sum(1 for s in signals if s.direction.value == "long")
    shorts = sum(1 for s in signals if s.direction.value == "short")
    if longs == shorts:
        return f"signals point both ways, {longs} long and {shorts} short"
    # one direction word only, so that the fact states one direction
    return f"{_lean(longs - shorts)}{max(longs, shorts)} of {len(signals)} signals"


@dataclass(frozen=True, slots=True)
class MarketPart:
    text: str
    facts: dict[str, tuple[str, ...]]  # shown instrument name -> its fact lines


def market_part(
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
    *,
    timeframe_ns: int | None = None,
    names: Mapping[str, str] | None = None,
    rebase: Mapping[str, float] | None = None,
) -> MarketPart:
    """The facts of this batch, as text and per instrument. ``names`` renames
    instruments, ``rebase`` divides the instrument's prices by a factor (anonymisation)."""
    now = batch.time
    alias = names or {}
    factor = rebase or {}
    asked = asked_instruments(batch, portfolio)
    held = {p.instrument: p for p in portfolio.positions}
    lines: list[str] = []
    facts: dict[str, tuple[str, ...]] = {}
    for name in asked:
        ctx = batch.context[name]
        shown = alias.get(name, name)
        scale = factor.get(name, 1.0)
        signals = [s for s in batch.signals if s.instrument == name]
        head = f"{shown}: price {fmt_price(ctx.price / scale)}"
        if math.isfinite(ctx.atr) and ctx.atr > 0 and ctx.price > 0:
            head += f", ATR {ctx.atr / ctx.price * 100:.2f}% of price"
        lines.append(head)
        if ctx.moves:
            moves = ", ".join(fmt_pct(m) for m in ctx.moves)
            lines.append(f"- last {len(ctx.moves)} candles, oldest first: {moves}")
        # the facts a reason may quote, one per line
        own: list[str] = []
        if ctx.lookback:
            own.append(f"{fmt_pct(ctx.change_pct)} over the last {ctx.lookback} candles")
        own.extend(_indicator_facts(ctx, signals, timeframe_ns, now))
        own.extend(_signal_text(sig, now, timeframe_ns) for sig in signals)
        if signals:
            own.append(_signal_balance(signals))
        pos = held.get(name)
        if pos is not None:
            own.append(_position_text(pos, ctx, now, timeframe_ns))
        lines.extend(f"- {fact}" for fact in own)
        facts[shown] = tuple(dict.fromkeys(own))
    for conflict in batch.conflicts:
        involved = [alias.get(i, i) for i in conflict.instruments]
        lines.append(f"Conflict: opposite signals on {', '.join(involved)}.")
    lines.append(
        f"Open positions: {len(portfolio.positions)} of at most {persona.max_open_positions}."
    )
    choices = "; ".join(
        f"{alias.get(n, n)} ({', '.join(allowed_actions(n, portfolio, persona))})" for n in asked
    )
    lines.append(f"Decide: {choices}")
    return MarketPart("\n".join(lines), facts)


def _position_text(pos: Any, ctx: InstrumentContext, now: int, tf: int | None) -> str:
    atr = ctx.atr if math.isfinite(ctx.atr) and ctx.atr > 0 else None
    sign = 1.0 if pos.side.value == "long" else -1.0
    move = (ctx.price / pos.entry_price - 1.0) * 100.0 * sign if pos.entry_price else 0.0
    text = f"open {pos.side.value} position, {fmt_pct(move)} since entry"
    if atr is not None:
        for label, level in (("stop", pos.stop_loss), ("target", pos.take_profit)):
            if level is not None:
                side = "below" if level < ctx.price else "above"
                text += f", {label} {fmt_atr((level - ctx.price) / atr)} ATR {side} price"
    return text + f", held {_candles(now, pos.entry_time, tf)} candles"


def build_prompt(
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
    *,
    timeframe_ns: int | None = None,
    anonymise: bool = False,
) -> Prompt:
    """The prompt for one batch. ``timeframe_ns`` lets ages be counted in candles."""
    names: dict[str, str] = {}
    rebase: dict[str, float] = {}
    if anonymise:
        for i, name in enumerate(sorted(batch.context)):
            names[name] = _letter(i)
            price = batch.context[name].price
            rebase[name] = price / 100.0 if math.isfinite(price) and price > 0 else 1.0
    market = market_part(
        batch, portfolio, persona, timeframe_ns=timeframe_ns, names=names, rebase=rebase
    )
    asked = asked_instruments(batch, portfolio)
    whys = {real: citable(market.facts[names.get(real, real)]) for real in asked}
    schema = schema_for(batch, portfolio, persona, whys)
    if names:
        schema["properties"] = {names[k]: v for k, v in schema["properties"].items()}
        schema["required"] = [names[k] for k in schema["required"]]
    shown = {names.get(n, n): n for n in batch.context}
    return Prompt(constant_part(persona), market.text, schema, shown, market.facts)


def citable(facts: Sequence[str]) -> tuple[str, ...]:
    """The facts a reason chooses from: those that state a direction (a relation marked
    bullish or bearish, a long or short signal, the signals' balance, an open position),
    so that the direction check judges every entry; all of them when none does."""
    leaning = tuple(f for f in facts if stated_direction(f) is not None)
    return leaning or tuple(facts)


def _letter(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out
