"""The answer an LLM brain must give, and its translation into absolute TradePlans.

Small models are poor at arithmetic, so the answer speaks in ATR multiples and size
tiers; :func:`plans_from_answer` turns them into prices with the batch's context.
``reasoning`` comes first so that it streams before the plans.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.brain.persona import TradingPersona
from engine.risk import is_number, tradeable
from engine.types import (
    Action,
    PortfolioState,
    SignalBatch,
    SizeMode,
    TradePlan,
    TrailingMode,
    TrailingSpec,
)

SCHEMA_VERSION = 1

ActionName = Literal["open_long", "open_short", "close", "hold"]
SizeTier = Literal["small", "medium", "large"]

# Fraction of the persona's risk_per_trade that each size tier puts at risk (RiskGuard
# caps a plan at the persona's risk, so "large" is exactly that).
SIZE_TIERS: dict[str, float] = {"small": 0.5, "medium": 0.75, "large": 1.0}

MAX_STOP_ATR = 10.0
CONFIDENCE_CHOICES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
STOP_CHOICES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
TARGET_CHOICES = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0)
MAX_TARGET_ATR = 20.0


class InstrumentAnswer(BaseModel):
    """One instrument's plan. The schema offers a few values for the numbers (choices
    suit small models, and constrained decoding grammars ignore numeric bounds);
    validation accepts any value in range, whatever the backend."""

    model_config = ConfigDict(extra="forbid")

    instrument: str
    action: ActionName
    confidence: float = Field(ge=0.0, le=1.0, json_schema_extra={"enum": list(CONFIDENCE_CHOICES)})
    size: SizeTier
    stop_atr: float = Field(gt=0.0, le=MAX_STOP_ATR, json_schema_extra={"enum": list(STOP_CHOICES)})
    target_atr: float = Field(
        gt=0.0, le=MAX_TARGET_ATR, json_schema_extra={"enum": list(TARGET_CHOICES)}
    )
    trailing: bool


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasoning: str = Field(max_length=2000)
    plans: list[InstrumentAnswer] = Field(max_length=16)


class AnswerError(ValueError):
    """An answer that parsed but makes no sense for this batch (the reason is the text)."""


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


@functools.cache
def _base_schema() -> dict[str, Any]:
    return Answer.model_json_schema()


def answer_schema(instruments: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON schema of :class:`Answer`, inlined (no $ref: llama.cpp's grammar and small
    models both do better flat), instrument names restricted to the batch's when given."""
    return copy.deepcopy(shared_answer_schema(tuple(instruments or ())))


@functools.lru_cache(maxsize=64)
def answer_schema_text(instruments: tuple[str, ...]) -> str:
    """:func:`answer_schema` as compact JSON text (what the prompt shows)."""
    return json.dumps(shared_answer_schema(instruments), separators=(",", ":"))


@functools.lru_cache(maxsize=64)
def shared_answer_schema(instruments: tuple[str, ...]) -> dict[str, Any]:
    """:func:`answer_schema`, cached and shared: read it, never change it."""
    schema = copy.deepcopy(_base_schema())
    item = schema.pop("$defs")["InstrumentAnswer"]
    if instruments:
        item["properties"]["instrument"] = {"type": "string", "enum": list(instruments)}
        # One plan per instrument: an empty list is the lazy answer small models give.
        schema["properties"]["plans"]["minItems"] = len(instruments)
        schema["properties"]["plans"]["maxItems"] = len(instruments)
    schema["properties"]["plans"]["items"] = item
    # Keep the token cost down: constrained decoding still needs reasoning bounded.
    schema["properties"]["reasoning"]["maxLength"] = 200
    schema["properties"]["reasoning"]["minLength"] = 10
    return _strip_titles(schema)


def parse_answer(text: str) -> Answer:
    """Parse and validate the model's JSON text; raises AnswerError with a short reason."""
    try:
        return Answer.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        kind = "invalid JSON" if first["type"] == "json_invalid" else "invalid answer"
        raise AnswerError(f"{kind}: {where}: {first['msg']}") from None


def _open_instruments(portfolio: PortfolioState) -> set[str]:
    return {p.instrument for p in portfolio.positions}


def check_answer(answer: Answer, batch: SignalBatch, portfolio: PortfolioState) -> None:
    """Reject answers that are valid JSON but nonsense for this batch."""
    known = set(batch.context)
    seen: set[str] = set()
    for plan in answer.plans:
        if plan.instrument not in known:
            raise AnswerError(f"nonsense answer: unknown instrument {plan.instrument!r}")
        if plan.instrument in seen:
            raise AnswerError(f"nonsense answer: two plans for {plan.instrument}")
        seen.add(plan.instrument)
        for name in ("confidence", "stop_atr", "target_atr"):
            if not is_number(getattr(plan, name)):
                raise AnswerError(f"nonsense answer: {plan.instrument}: {name} is not finite")
        ctx = batch.context[plan.instrument]
        if plan.action in ("open_long", "open_short") and not tradeable(ctx):
            raise AnswerError(f"nonsense answer: {plan.instrument}: no ATR to place a stop with")


def plans_from_answer(
    answer: Answer,
    batch: SignalBatch,
    portfolio: PortfolioState,
    persona: TradingPersona,
) -> tuple[TradePlan, ...]:
    """Absolute TradePlans anchored at the batch's prices and ATRs (market entries)."""
    plans: list[TradePlan] = []
    for item in answer.plans:
        ctx = batch.context[item.instrument]
        action = Action(item.action)
        if action in (Action.HOLD, Action.CLOSE):
            plans.append(
                TradePlan(
                    item.instrument,
                    action,
                    confidence=item.confidence,
                    rationale=answer.reasoning[:200],
                )
            )
            continue
        sign = 1.0 if action is Action.OPEN_LONG else -1.0
        trailing = None
        if item.trailing:
            cfg = persona.trailing
            if cfg is not None and cfg.mode == TrailingMode.PERCENT:
                trailing = cfg.bound(None)
            else:
                distance = cfg.distance if cfg is not None else item.stop_atr
                activation = cfg.activation if cfg is not None else 0.0
                trailing = TrailingSpec(TrailingMode.ATR, distance, activation, atr=ctx.atr)
        plans.append(
            TradePlan(
                item.instrument,
                action,
                entry_price=None,
                size=persona.risk_per_trade * SIZE_TIERS[item.size],
                size_mode=SizeMode.RISK,
                stop_loss=ctx.price - sign * item.stop_atr * ctx.atr,
                take_profit=ctx.price + sign * item.target_atr * ctx.atr,
                trailing=trailing,
                confidence=item.confidence,
                rationale=answer.reasoning[:200],
            )
        )
    return tuple(plans)


def hold_plans(batch: SignalBatch) -> tuple[TradePlan, ...]:
    """One explicit hold per instrument of the batch (what a failed call decides)."""
    return tuple(TradePlan(name, Action.HOLD) for name in sorted(batch.context))
