"""Plan checks: RiskGuard, and the one set of checks every layer uses.

RiskGuard checks every plan of every brain before it reaches the broker. A plan that can
be repaired sensibly is repaired (a size over the persona's cap is clamped, a stop on the
wrong side of the entry is recomputed from the ATR, ...); one that cannot is turned into
hold. Every change is recorded as one readable line in ``Decision.corrections``, so a
user sees exactly what the brain asked for and why it was not done as asked.

The checks themselves (what is a number, a price, a stop on the wrong side, a trailing
spec, a market context a stop can be placed in) are the functions below; RiskGuard, the
broker (:func:`entry_problem`, its last line of defence at submission) and the LLM
answer check (``engine.brain.schema.check_answer``) all use them. This module sits
below the brains: it imports the persona type only for annotations (a persona is used
duck-typed), so brains can import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from engine.numfmt import fmt_price
from engine.types import (
    Action,
    Decision,
    InstrumentContext,
    PortfolioState,
    Position,
    Side,
    SignalBatch,
    SizeMode,
    TradePlan,
    TrailingMode,
    TrailingSpec,
)

if TYPE_CHECKING:
    from engine.brain.persona import TradingPersona

SIZE_MODES = tuple(SizeMode)
TRAILING_MODES = tuple(TrailingMode)


# ------------------------------------------------------------------------ plan checks
def is_number(x: object) -> bool:
    """A finite real number (a bool is not one)."""
    if type(x) is float:  # the common case, first
        return math.isfinite(x)
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def is_price(x: object) -> bool:
    """A finite number above 0."""
    if type(x) is float:  # the common case, first (NaN and inf fail)
        return 0.0 < x < math.inf
    return is_number(x) and x > 0  # type: ignore[operator]


def is_candle_count(x: object) -> bool:
    """A whole number of candles, at least 1 (a bool is not one)."""
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def is_size_mode(x: object) -> bool:
    return x in SIZE_MODES


def is_trailing_mode(x: object) -> bool:
    return x in TRAILING_MODES


def is_activation(x: object) -> bool:
    """A trailing activation: a finite number >= 0."""
    return is_number(x) and x >= 0  # type: ignore[operator]


def stop_wrong_side(sign: float, ref: float, stop: float) -> bool:
    """A stop at or beyond ``ref`` in the trade's direction (``sign`` +1 long, -1 short)."""
    return sign * (ref - stop) <= 0


def target_wrong_side(sign: float, ref: float, target: float) -> bool:
    """A target at or behind ``ref`` in the trade's direction."""
    return sign * (target - ref) <= 0


def too_far(ref: float, level: float, max_fraction: float) -> bool:
    """``level`` further from ``ref`` than ``max_fraction`` of ``ref``."""
    return abs(level - ref) > max_fraction * ref


def tradeable(ctx: InstrumentContext | None) -> bool:
    """A market context with a valid price and ATR: what placing a stop in ATR needs."""
    return ctx is not None and is_price(ctx.price) and is_price(ctx.atr)


def entry_problem(plan: TradePlan, max_fraction: float) -> str | None:
    """Why the broker cannot take the entry ``plan`` as it stands, else None. The
    broker's own numbers only: RiskGuard has repaired what it could before."""
    sign = 1.0 if plan.action == Action.OPEN_LONG else -1.0
    if not is_price(plan.size):
        return f"size must be a positive number, got {plan.size!r}"
    if not is_size_mode(plan.size_mode):
        return f"size_mode must be 'risk' or 'equity', got {plan.size_mode!r}"
    if not is_price(max_fraction):
        return f"max_position_fraction must be positive, got {max_fraction!r}"
    stop, target, ref = plan.stop_loss, plan.take_profit, plan.entry_price
    for name, v in (("stop_loss", stop), ("take_profit", target), ("entry_price", ref)):
        if v is not None and not is_price(v):
            return f"{name} must be a positive price, got {v!r}"
    if stop is None and plan.size_mode == SizeMode.RISK:
        return "risk sizing needs a stop_loss"
    t = plan.trailing
    if t is not None and (why := trailing_problem(t)) is not None:
        return why
    if plan.expiry_candles is not None and not is_candle_count(plan.expiry_candles):
        return f"expiry_candles must be a whole number >= 1, got {plan.expiry_candles!r}"
    if ref is not None:
        if stop is not None and stop_wrong_side(sign, ref, stop):
            return f"stop {stop} is on the wrong side of the limit {ref}"
        if target is not None and target_wrong_side(sign, ref, target):
            return f"take profit {target} is on the wrong side of the limit {ref}"
    if stop is not None and target is not None and target_wrong_side(sign, stop, target):
        return f"stop {stop} and take profit {target} are inverted"
    return None


def trailing_problem(t: TrailingSpec) -> str | None:
    """Why the broker cannot take the trailing spec ``t``, else None (``entry_problem``'s
    check of a plan's trailing)."""
    if not is_trailing_mode(t.mode) or not is_price(t.distance):
        return f"trailing must have mode percent/atr and a positive distance, got {t!r}"
    if t.mode == TrailingMode.PERCENT and t.distance >= 1:
        return f"a percent trailing distance must be below 1, got {t.distance!r}"
    if not is_activation(t.activation):
        return f"trailing activation must be >= 0, got {t.activation!r}"
    return None


class _Refused(Exception):
    """The plan cannot be repaired: it becomes hold with this reason."""


@dataclass(slots=True)
class _Ledger:
    """What the decision has used so far (slots, instruments), as plans are checked."""

    positions: dict[str, Position]
    pending: set[str]
    open_count: int
    acted: dict[str, Action]  # instrument -> the action already accepted for it


class RiskGuard:
    """Validates Decisions against the known instruments and the persona's limits.

    ``max_entry_distance_atr`` / ``max_entry_distance_pct``: a limit entry further
    from the market than both of these (ATR multiples, fraction of price) is refused.
    ``max_stop_distance_pct``: a stop further than this fraction of the entry is
    treated as nonsense and recomputed; ``max_target_distance_pct`` likewise.
    """

    def __init__(
        self,
        instruments: Iterable[str],
        persona: TradingPersona,
        *,
        max_entry_distance_atr: float = 10.0,
        max_entry_distance_pct: float = 0.05,
        max_stop_distance_pct: float = 0.5,
        max_target_distance_pct: float = 1.0,
    ) -> None:
        self.instruments = frozenset(instruments)
        self.persona = persona
        self.max_entry_distance_atr = max_entry_distance_atr
        self.max_entry_distance_pct = max_entry_distance_pct
        self.max_stop_distance_pct = max_stop_distance_pct
        self.max_target_distance_pct = max_target_distance_pct

    def validate(
        self,
        decision: Decision,
        portfolio: PortfolioState,
        context: SignalBatch | Mapping[str, InstrumentContext] | None = None,
    ) -> Decision:
        """The decision with every plan valid for the broker, corrections appended."""
        if not decision.plans:
            return decision
        contexts: Mapping[str, InstrumentContext]
        if isinstance(context, SignalBatch):
            contexts = context.context
        else:  # (not ``context or {}``: a lazy mapping would count its items)
            contexts = {} if context is None else context
        held, orders = portfolio.positions, portfolio.pending_orders
        positions = {p.instrument: p for p in held} if held else {}
        pending = {o.instrument for o in orders} if orders else set()
        open_count = len(positions)
        if pending:
            open_count += len(pending - positions.keys())
        ledger = _Ledger(positions, pending, open_count, {})
        plans: list[TradePlan | None] = [None] * len(decision.plans)
        notes: list[str] = []
        # A close frees its slot for an entry on another instrument in the same decision,
        # wherever the brain listed it, so closes are checked first; but not one that
        # follows a plan for its own instrument (that order is what the broker executes).
        order: list[int] = [0]
        if len(plans) > 1:
            seen: set[str] = set()
            early: list[int] = []
            for i, plan in enumerate(decision.plans):
                if plan.action == Action.CLOSE and plan.instrument not in seen:
                    early.append(i)
                seen.add(plan.instrument)
            order = early + [i for i in range(len(plans)) if i not in early]
        for i in order:
            plans[i], plan_notes = self._check(decision.plans[i], portfolio, contexts, ledger)
            notes += plan_notes
        if not notes and tuple(plans) == decision.plans:
            return decision
        return replace(decision, plans=tuple(plans), corrections=(*decision.corrections, *notes))

    # -- one plan -------------------------------------------------------------------

    def _check(
        self,
        plan: TradePlan,
        portfolio: PortfolioState,
        contexts: Mapping[str, InstrumentContext],
        ledger: _Ledger,
    ) -> tuple[TradePlan, list[str]]:
        inst = str(plan.instrument)
        action = plan.action
        if type(action) is not Action:
            try:
                action = Action(action)
            except ValueError:
                return _to_hold(plan, f"unknown action {plan.action!r}")
            plan = replace(plan, action=action)
        if inst not in self.instruments:
            known = ", ".join(sorted(self.instruments))
            return _to_hold(plan, f"unknown instrument {inst!r} (known: {known})", action)
        if action is Action.HOLD:
            notes = []
            return self._common(plan, notes), _labelled(inst, action, notes)
        # One plan per instrument, except an open right after a close: a flip (or a
        # fresh entry) that the broker executes in order at the same open.
        earlier = ledger.acted.get(inst)
        is_open = action in (Action.OPEN_LONG, Action.OPEN_SHORT)
        if earlier is not None and not (earlier is Action.CLOSE and is_open):
            return _to_hold(plan, "a second plan for the same instrument in one decision", action)
        notes: list[str] = []
        try:
            if action is Action.CLOSE:
                if inst not in ledger.positions:
                    raise _Refused("no open position to close")
                checked = plan
                del ledger.positions[inst]
                ledger.open_count -= 1
            elif action is Action.ADJUST:
                checked = self._adjust(plan, contexts.get(inst), ledger, notes)
            else:
                checked = self._open(plan, action, portfolio, contexts.get(inst), ledger, notes)
        except _Refused as why:
            hold, refusal = _to_hold(plan, str(why), action)
            return hold, [*_labelled(inst, action, notes), *refusal]
        checked = self._common(checked, notes)
        ledger.acted[inst] = action
        return checked, _labelled(inst, action, notes)

    def _open(
        self,
        plan: TradePlan,
        action: Action,
        portfolio: PortfolioState,
        ctx: InstrumentContext | None,
        ledger: _Ledger,
        notes: list[str],
    ) -> TradePlan:
        persona, inst = self.persona, plan.instrument
        direction = "long" if action is Action.OPEN_LONG else "short"
        if not persona.allows(direction):
            allowed = "/".join(persona.allowed_directions)
            raise _Refused(
                f"{direction} is not allowed for persona {persona.name} ({allowed} only)"
            )
        if persona.cooldown_after_loss > 0 and portfolio.last_loss_step is not None:
            left = persona.cooldown_after_loss - (portfolio.step - portfolio.last_loss_step)
            if left > 0:
                raise _Refused(f"cooling down after a loss ({left} more step(s))")
        if inst in ledger.positions:
            side = Side(ledger.positions[inst].side).value
            raise _Refused(f"a {side} position is already open (close it first)")
        if inst in ledger.pending:
            raise _Refused("an entry order is already pending")
        if ledger.open_count >= persona.max_open_positions:
            raise _Refused(
                f"would exceed the persona's {persona.max_open_positions} open position(s)"
            )
        if ctx is None or not is_price(ctx.price):
            raise _Refused("no market price for the instrument at this time")
        price = float(ctx.price)
        atr = float(ctx.atr) if is_price(ctx.atr) else None
        sign = 1.0 if direction == "long" else -1.0

        entry = plan.entry_price
        if entry is not None:
            if not is_price(entry):
                notes.append(f"entry {entry!r} is not a valid price; placed at market instead")
                entry = None
            else:
                limit = max(
                    self.max_entry_distance_pct * price,
                    self.max_entry_distance_atr * (atr or 0.0),
                )
                if abs(entry - price) > limit:
                    raise _Refused(
                        f"entry {fmt_price(entry)} is too far from the market {fmt_price(price)} "
                        f"(more than {fmt_price(limit)})"
                    )
                entry = float(entry)
        ref = entry if entry is not None else price

        size_mode, size = plan.size_mode, plan.size
        if not is_size_mode(size_mode):
            notes.append(f"size mode {size_mode!r} unknown; using risk {persona.risk_per_trade:g}")
            size_mode, size = SizeMode.RISK, persona.risk_per_trade
        by_risk = size_mode == SizeMode.RISK
        cap = persona.risk_per_trade if by_risk else persona.max_position_fraction
        what = "risk per trade" if by_risk else "max position fraction"
        if not is_price(size):
            notes.append(
                f"size {size!r} is not a positive number; set to the persona's {what} {cap:g}"
            )
            size = cap
        elif size > cap:
            notes.append(f"size {size:g} over the persona's {what} {cap:g}; clamped")
            size = cap

        stop = plan.stop_loss
        problem = "missing stop"
        if stop is not None:
            far = self.max_stop_distance_pct
            problem = _level_problem("stop", stop, sign, ref, stop_wrong_side, far)
        if problem:
            new_stop = ref - sign * persona.stop_atr * atr if atr else None
            if new_stop is None or new_stop <= 0:
                raise _Refused(f"{problem} and no ATR to recompute it")
            notes.append(
                f"{problem}; recomputed as {fmt_price(new_stop)} ({persona.stop_atr:g} ATR)"
            )
            stop = new_stop

        target = plan.take_profit
        problem = None
        if target is not None:
            far = self.max_target_distance_pct
            problem = _level_problem("target", target, sign, ref, target_wrong_side, far)
        if problem:
            new_target = ref + sign * persona.target_atr * atr if atr else None
            if new_target is not None and new_target > 0:
                notes.append(
                    f"{problem}; recomputed as {fmt_price(new_target)} ({persona.target_atr:g} ATR)"
                )
            else:
                notes.append(f"{problem}; removed (no ATR to recompute it)")
                new_target = None
            target = new_target

        trailing = self._trailing(plan.trailing, atr, ref, notes)
        ledger.open_count += 1
        size, stop = float(size), float(stop)
        target = None if target is None else float(target)
        if (  # the same objects (float() of a float is itself): the plan as it came
            entry is plan.entry_price
            and size is plan.size
            and size_mode is plan.size_mode
            and stop is plan.stop_loss
            and target is plan.take_profit
            and trailing is plan.trailing
        ):
            return plan
        return replace(
            plan,
            entry_price=entry,
            size=size,
            size_mode=size_mode,
            stop_loss=stop,
            take_profit=target,
            trailing=trailing,
        )

    def _adjust(
        self,
        plan: TradePlan,
        ctx: InstrumentContext | None,
        ledger: _Ledger,
        notes: list[str],
    ) -> TradePlan:
        pos = ledger.positions.get(plan.instrument)
        if pos is None:
            raise _Refused("no open position to adjust")
        price = float(ctx.price) if ctx is not None and is_price(ctx.price) else pos.last_price
        atr = float(ctx.atr) if ctx is not None and is_price(ctx.atr) else None
        side = pos.side
        if type(side) is not Side:
            side = Side(side)
        sign = 1.0 if side is Side.LONG else -1.0
        # None keeps the position's current value, so the broker always gets all three.
        stop = pos.stop_loss if plan.stop_loss is None else plan.stop_loss
        if stop is not None and stop != pos.stop_loss:
            if not is_price(stop):
                notes.append(f"stop {stop!r} is not a valid price; kept {fmt_price(pos.stop_loss)}")
                stop = pos.stop_loss
            elif stop_wrong_side(sign, price, stop):
                notes.append(
                    f"stop {fmt_price(stop)} on the wrong side of the price {fmt_price(price)}; "
                    f"kept {fmt_price(pos.stop_loss)}"
                )
                stop = pos.stop_loss
        target = pos.take_profit if plan.take_profit is None else plan.take_profit
        if target is not None and target != pos.take_profit:
            if not is_price(target):
                notes.append(
                    f"target {target!r} is not a valid price; kept {fmt_price(pos.take_profit)}"
                )
                target = pos.take_profit
            elif target_wrong_side(sign, price, target):
                notes.append(
                    f"target {fmt_price(target)} on the wrong side of the price "
                    f"{fmt_price(price)}; "
                    f"kept {fmt_price(pos.take_profit)}"
                )
                target = pos.take_profit
        trailing = pos.trailing
        if plan.trailing is not None and plan.trailing != pos.trailing:
            trailing = self._trailing(plan.trailing, atr, price, notes, fallback=pos.trailing)
        if notes and (stop, target, trailing) == (pos.stop_loss, pos.take_profit, pos.trailing):
            raise _Refused("nothing valid left to adjust")
        return replace(plan, stop_loss=stop, take_profit=target, trailing=trailing)

    def _trailing(
        self,
        spec: TrailingSpec | None,
        atr: float | None,
        price: float,
        notes: list[str],
        fallback: TrailingSpec | None = None,
    ) -> TrailingSpec | None:
        if spec is None:
            return None
        # (the fallback is made only when the spec is refused: most are not)
        if not is_trailing_mode(spec.mode):
            return self._instead(f"trailing mode {spec.mode!r} unknown", atr, fallback, notes)
        if not is_price(spec.distance):
            why = f"trailing distance {spec.distance!r} invalid"
            return self._instead(why, atr, fallback, notes)
        if spec.mode == TrailingMode.PERCENT and spec.distance >= self.max_stop_distance_pct:
            why = f"trailing distance {spec.distance:g} of price is absurd"
            return self._instead(why, atr, fallback, notes)
        activation = spec.activation
        if not is_activation(activation):
            notes.append(f"trailing activation {activation!r} invalid; set to 0")
            activation = 0.0
        spec_atr = spec.atr
        if spec.mode == TrailingMode.ATR:
            if not is_price(spec_atr):
                if not atr:
                    why = "trailing in ATR without a valid ATR"
                    fallback = self._instead(why, atr, fallback, notes)
                    if fallback is not None and fallback.mode == TrailingMode.PERCENT:
                        return fallback
                    return None
                spec_atr = atr
            if spec.distance * float(spec_atr) >= self.max_stop_distance_pct * price:
                why = f"trailing distance {spec.distance:g} ATR is absurd"
                return self._instead(why, atr, fallback, notes)
        if activation == spec.activation and spec_atr == spec.atr:
            return spec
        return replace(spec, activation=float(activation), atr=spec_atr)

    def _fallback(self, atr: float | None, fallback: TrailingSpec | None) -> TrailingSpec | None:
        """The trailing used instead of a refused one: ``fallback``, else the persona's."""
        if fallback is None and self.persona.trailing is not None:
            t = self.persona.trailing
            if t.mode == TrailingMode.PERCENT or atr:
                fallback = t.bound(atr)
        return fallback

    def _instead(
        self, why: str, atr: float | None, fallback: TrailingSpec | None, notes: list[str]
    ) -> TrailingSpec | None:
        """A refused trailing: the fallback, with a note saying so."""
        fallback = self._fallback(atr, fallback)
        instead = "the persona's trailing" if fallback is not None else "no trailing"
        notes.append(f"{why}; using {instead}")
        return fallback

    def _common(self, plan: TradePlan, notes: list[str]) -> TradePlan:
        conf = plan.confidence
        expiry = plan.expiry_candles
        if (
            type(conf) is float
            and 0.0 <= conf <= 1.0
            and (expiry is None or (type(expiry) is int and expiry > 0))
        ):
            return plan  # (the common case: nothing to correct)
        if not is_number(conf):
            notes.append(f"confidence {conf!r} invalid; set to 0")
            conf = 0.0
        elif not 0.0 <= conf <= 1.0:
            clamped = min(max(float(conf), 0.0), 1.0)
            notes.append(f"confidence {conf:g} outside 0..1; clamped to {clamped:g}")
            conf = clamped
        if expiry is not None and not is_candle_count(expiry):
            notes.append(f"expiry {expiry!r} is not a positive whole number of candles; removed")
            expiry = None
        if conf == plan.confidence and expiry == plan.expiry_candles:
            return plan
        return replace(plan, confidence=float(conf), expiry_candles=expiry)


def _level_problem(
    what: str,
    level: float,
    sign: float,
    ref: float,
    wrong_side: Callable[[float, float, float], bool],
    max_fraction: float,
) -> str | None:
    """What is wrong with an entry's stop or target ``level`` (``what``), else None."""
    if not is_price(level):
        return f"{what} {level!r} is not a valid price"
    if wrong_side(sign, ref, level):
        return f"{what} {fmt_price(level)} on the wrong side of entry {fmt_price(ref)}"
    if too_far(ref, level, max_fraction):
        return f"{what} {fmt_price(level)} absurdly far from entry {fmt_price(ref)}"
    return None


def _labelled(instrument: str, action: Action, notes: list[str]) -> list[str]:
    """Each note prefixed with the plan it is about."""
    return [f"{instrument} {action.value}: {n}" for n in notes] if notes else notes


def _to_hold(
    plan: TradePlan, why: str, action: Action | None = None
) -> tuple[TradePlan, list[str]]:
    label = f"{plan.instrument} {action.value if action else plan.action}"
    hold = TradePlan(
        str(plan.instrument),
        Action.HOLD,
        confidence=min(max(float(plan.confidence), 0.0), 1.0)
        if is_number(plan.confidence)
        else 0.0,
        rationale=f"refused by risk guard: {why}",
    )
    return hold, [f"{label}: {why}; turned into hold"]
