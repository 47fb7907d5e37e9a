"""The typed vocabulary: enums that write exactly the strings they replaced."""

from __future__ import annotations

import json

import pytest

from engine.brain.persona import builtin_personas, persona_from_dict
from engine.broker import Broker, BrokerConfig
from engine.runlog import _fill, _plain, _plan
from engine.types import (
    Action,
    ConflictKind,
    FillSide,
    OrderKind,
    SizeMode,
    TradePlan,
    TrailingMode,
    TrailingSpec,
)

LEGACY = {
    OrderKind: ("market", "limit", "adjust"),
    FillSide: ("buy", "sell"),
    SizeMode: ("risk", "equity"),
    TrailingMode: ("percent", "atr"),
    ConflictKind: ("same_instrument", "correlated"),
}


@pytest.mark.parametrize("enum", list(LEGACY))
def test_enum_values_serialise_as_the_old_strings(enum) -> None:
    assert tuple(m.value for m in enum) == LEGACY[enum]
    for member, text in zip(enum, LEGACY[enum], strict=True):
        assert member == text and hash(member) == hash(text)
        assert str(member) == f"{member}" == text
        assert json.dumps(member) == json.dumps(text)
        assert _plain(member) == text


def test_persona_fingerprints_are_those_recorded_before_the_typed_trailing() -> None:
    # Values computed at b7658c9, when a persona's trailing was its own TrailingConfig
    # type: the decision cache keys and run logs depend on them.
    recorded = {
        "conservative": "d5bad403c8e3455b",
        "mean-reversion": "871ec2001562a743",
        "momentum": "83eedaa07ce29ab3",
        "scalper": "4ef2a4333466786f",
    }
    assert {p.name: p.fingerprint() for p in builtin_personas()} == recorded


def test_persona_trailing_is_a_trailing_spec_without_atr() -> None:
    p = persona_from_dict({"name": "x", "trailing": {"mode": "atr", "distance": 2.0}})
    assert p.trailing == TrailingSpec(TrailingMode.ATR, 2.0, 0.0, None)
    assert p.trailing.mode is TrailingMode.ATR
    assert p.record()["trailing"] == {"mode": "atr", "distance": 2.0, "activation": 0.0}
    assert p.trailing.bound(12.5) == TrailingSpec(TrailingMode.ATR, 2.0, 0.0, 12.5)
    pct = TrailingSpec(TrailingMode.PERCENT, 0.01, 0.002)
    assert pct.bound(12.5) is not pct and pct.bound(12.5) == pct


def test_broker_records_typed_kinds_and_sides() -> None:
    broker = Broker(BrokerConfig(fees_bps=0, slippage_bps=0), ["BTC"])
    plan = TradePlan("BTC", Action.OPEN_SHORT, size=0.5, size_mode=SizeMode.EQUITY)
    order = broker.submit(plan, 0)
    assert order.kind is OrderKind.MARKET
    limit = broker.submit(TradePlan("BTC", Action.OPEN_LONG, 90.0, 0.5, SizeMode.EQUITY), 0)
    assert limit.kind is OrderKind.LIMIT
    (fill,) = broker.on_candle("BTC", 0, 0, 60, 89.0, 95.0, 85.0, 90.0)
    assert fill.side is FillSide.BUY and fill.price == 89.0
    (close,) = broker.close_all(60, {"BTC": 91.0})
    assert close.side is FillSide.SELL


def test_run_log_reads_back_the_enums() -> None:
    fill = _fill(
        {"time": 1, "instrument": "B", "order_id": 2, "side": "sell", "qty": 1.0, "price": 2.0}
        | {"fee": 0.0, "reason": "stop"}
    )
    assert fill.side is FillSide.SELL
    plan = _plan(
        {"instrument": "B", "action": "open_long", "size_mode": "equity"}
        | {"trailing": {"mode": "percent", "distance": 0.01}}
    )
    assert plan.size_mode is SizeMode.EQUITY and plan.trailing.mode is TrailingMode.PERCENT
