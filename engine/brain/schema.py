"""The answer an LLM brain must give, and its translation into absolute TradePlans.

The answer is one JSON object keyed by the instruments the prompt asks about (those
with a signal in the batch or an open position), each with its ``why`` first (so it
streams before the plan), then ``do`` (the action), ``size`` (a tier) and, for an
entry, ``stop`` and ``target`` as ATR multiples::

    {"BTC": {"why": "long: RSI 28, oversold below 30", "do": "long",
             "size": "small", "stop": 1.5, "target": 3}}

``do`` is ``long`` or ``short`` (open a position that way), ``close`` or ``hold``: the
words the facts are marked with, which a small model carries over from the fact it has
just quoted better than ``open_long``/``open_short`` (Gemma 3 270M after ``"do":"open_``
preferred ``long`` whatever it had quoted). Parsing also takes ``open_long`` and
``open_short``; the parsed answer holds the engine's names.

``why`` is the fact the model cites: the constraining schema offers exactly the fact
lines the prompt lists under that instrument (an enum), so the model chooses its
evidence instead of writing it. Parsing accepts any text there (a backend that ignores
the schema, an older cached answer); the grounding check judges it either way.

Small models are poor at arithmetic, so the answer speaks in ATR multiples and size
tiers; :func:`plans_from_answer` turns them into prices with the batch's context. The
JSON schema that constrains decoding has no descriptions (nothing from here reaches
the model) and offers per instrument only the actions that make sense there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.brain.persona import TradingPersona
from engine.risk import is_number, tradeable
from engine.types import Action, PortfolioState, SignalBatch, SizeMode, TradePlan

SCHEMA_VERSION = 3  # 3: why is one of the instrument's facts

ActionName = Literal["open_long", "open_short", "close", "hold"]
# what the answer says for an entry -> the engine's action
ENTRY_WORDS: dict[str, str] = {"long": "open_long", "short": "open_short"}


def is_entry(action: str) -> bool:
    """Whether an answer's ``do`` opens a position (either spelling)."""
    return action in ENTRY_WORDS or action.startswith("open_")


SizeTier = Literal["small", "medium", "large"]

# Fraction of the persona's risk_per_trade that each size tier puts at risk (RiskGuard
# caps a plan at the persona's risk, so "large" is exactly that). Also the plan's
# confidence.
SIZE_TIERS: dict[str, float] = {"small": 0.5, "medium": 0.75, "large": 1.0}

MAX_STOP_ATR = 10.0
MAX_TARGET_ATR = 20.0
# What the constraining schema offers (grammars ignore numeric bounds; choices suit
# small models); validation accepts any value in range, whatever the backend.
STOP_CHOICES = (0.5, 1, 1.5, 2, 2.5, 3)
TARGET_CHOICES = (1, 1.5, 2, 3, 4, 5, 6)
WHY_MAX = 160  # characters of reasoning per instrument


class InstrumentAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    why: str = Field(min_length=1, max_length=400)
    do: ActionName
    size: SizeTier = "small"
    stop: float | None = Field(default=None, gt=0.0, le=MAX_STOP_ATR)
    target: float | None = Field(default=None, gt=0.0, le=MAX_TARGET_ATR)

    @field_validator("do", mode="before")
    @classmethod
    def _engine_name(cls, value: Any) -> Any:
        return ENTRY_WORDS.get(value, value) if isinstance(value, str) else value


class Answer(BaseModel):
    """The parsed answer: instrument -> its plan, in the order the model wrote them."""

    model_config = ConfigDict(extra="forbid")

    plans: dict[str, InstrumentAnswer]

    @property
    def reasoning(self) -> str:
        """The reasons as one text: the sentence alone for one instrument, else
        ``NAME: sentence`` per instrument."""
        if len(self.plans) == 1:
            return next(iter(self.plans.values())).why.strip()
        return " ".join(f"{name}: {a.why.strip()}" for name, a in self.plans.items())

    def to_json(self) -> str:
        """The answer as the model's own JSON form (what the cache stores)."""
        return json.dumps(
            {k: v.model_dump(exclude_none=True) for k, v in self.plans.items()},
            separators=(",", ":"),
        )


class AnswerError(ValueError):
    """An answer that parsed but makes no sense for this batch (the reason is the text)."""


def asked_instruments(batch: SignalBatch, portfolio: PortfolioState) -> tuple[str, ...]:
    """The instruments the answer must cover: a signal in the batch or a position open."""
    held = {p.instrument for p in portfolio.positions}
    wanted = {s.instrument for s in batch.signals} | held
    return tuple(name for name in sorted(batch.context) if name in wanted)


def allowed_actions(
    name: str, portfolio: PortfolioState, persona: TradingPersona
) -> tuple[str, ...]:
    """What makes sense on ``name`` now, as the answer says it: close or hold a position;
    else an entry the persona allows (``long``, ``short``, while it has room) or hold."""
    if any(p.instrument == name for p in portfolio.positions):
        return ("hold", "close")
    if len(portfolio.positions) >= persona.max_open_positions:
        return ("hold",)
    opens = tuple(d for d in ENTRY_WORDS if persona.allows(d))
    return (*opens, "hold")


def answer_schema(
    instruments: Sequence[str],
    actions: Mapping[str, Sequence[str]] | None = None,
    whys: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The JSON schema that constrains decoding (a fresh copy). ``whys`` gives an
    instrument's ``why`` as a choice of those texts (its facts) instead of free text."""
    acts = actions or {}
    facts = whys or {}
    every = (*ENTRY_WORDS, "close", "hold")
    items = tuple((n, tuple(acts.get(n, every)), tuple(facts.get(n, ()))) for n in instruments)
    return json.loads(_schema_text(items))


@functools.lru_cache(maxsize=256)
def _schema_text(items: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]) -> str:
    props: dict[str, Any] = {}
    for name, actions, whys in items:
        why: dict[str, Any] = (
            {"type": "string", "enum": list(whys)}
            if whys
            else {"type": "string", "minLength": 10, "maxLength": WHY_MAX}
        )
        plan: dict[str, Any] = {
            "why": why,
            "do": {"type": "string", "enum": list(actions)},
            "size": {"type": "string", "enum": list(SIZE_TIERS)},
        }
        required = ["why", "do", "size"]
        if any(is_entry(a) for a in actions):
            plan["stop"] = {"type": "number", "enum": list(STOP_CHOICES)}
            plan["target"] = {"type": "number", "enum": list(TARGET_CHOICES)}
        props[name] = {
            "type": "object",
            "properties": plan,
            "required": required,
            "additionalProperties": False,
        }
    schema = {
        "type": "object",
        "properties": props,
        "required": [n for n, _, _ in items],
        "additionalProperties": False,
    }
    return json.dumps(schema, separators=(",", ":"))


def schema_for(
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
    whys: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The constraining schema of one prompt: its instruments, their actions and (with
    ``whys``) the facts each one's reason is chosen from."""
    names = asked_instruments(batch, portfolio)
    acts = {n: allowed_actions(n, portfolio, persona) for n in names}
    return answer_schema(names, acts, whys)


def parse_answer(text: str) -> Answer:
    """Parse and validate the model's JSON text; raises AnswerError with a short reason."""
    try:
        data = json.loads(text, strict=False)  # a raw line break inside a string is fine
    except (ValueError, TypeError) as exc:
        raise AnswerError(f"invalid JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise AnswerError("invalid answer: not a JSON object keyed by instrument")
    try:
        return Answer.model_validate({"plans": data})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "answer"
        raise AnswerError(f"invalid answer: {where}: {first['msg']}") from None


def check_answer(
    answer: Answer,
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona | None = None,
) -> None:
    """Reject answers that are valid JSON but nonsense for this batch."""
    known = set(batch.context)
    held = {p.instrument for p in portfolio.positions}
    for name, plan in answer.plans.items():
        if name not in known:
            raise AnswerError(f"nonsense answer: unknown instrument {name!r}")
        for field in ("stop", "target"):
            value = getattr(plan, field)
            if value is not None and not is_number(value):
                raise AnswerError(f"nonsense answer: {name}: {field} is not finite")
        if plan.do == "close" and name not in held:
            raise AnswerError(f"nonsense answer: {name}: close without an open position")
        if plan.do.startswith("open_"):
            if persona is not None and not persona.allows(plan.do[5:]):
                raise AnswerError(f"nonsense answer: {name}: {plan.do} is not allowed")
            if not tradeable(batch.context[name]):
                raise AnswerError(f"nonsense answer: {name}: no ATR to place a stop with")


def plans_from_answer(
    answer: Answer,
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
) -> tuple[TradePlan, ...]:
    """Absolute TradePlans anchored at the batch's prices and ATRs (market entries); an
    instrument the answer does not cover holds."""
    plans: list[TradePlan] = []
    for name in sorted(batch.context):
        item = answer.plans.get(name)
        if item is None:
            plans.append(TradePlan(name, Action.HOLD))
            continue
        ctx = batch.context[name]
        action = Action(item.do)
        rationale = item.why.strip()[:200]
        confidence = SIZE_TIERS[item.size]
        if action in (Action.HOLD, Action.CLOSE):
            plans.append(TradePlan(name, action, confidence=confidence, rationale=rationale))
            continue
        sign = 1.0 if action is Action.OPEN_LONG else -1.0
        stop = item.stop or persona.stop_atr
        target = item.target or persona.target_atr
        trailing = persona.trailing.bound(ctx.atr) if persona.trailing is not None else None
        plans.append(
            TradePlan(
                name,
                action,
                entry_price=None,
                size=persona.risk_per_trade * SIZE_TIERS[item.size],
                size_mode=SizeMode.RISK,
                stop_loss=ctx.price - sign * stop * ctx.atr,
                take_profit=ctx.price + sign * target * ctx.atr,
                trailing=trailing,
                confidence=confidence,
                rationale=rationale,
            )
        )
    return tuple(plans)


def hold_plans(batch: SignalBatch) -> tuple[TradePlan, ...]:
    """One explicit hold per instrument of the batch (what a failed call decides)."""
    return tuple(TradePlan(name, Action.HOLD) for name in sorted(batch.context))
