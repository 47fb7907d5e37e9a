"""The JSON records of ``run --json``, ``compare --json`` and ``personas --json``."""

from __future__ import annotations

from typing import Any

from engine.brain.persona import TradingPersona
from engine.export import TRADE_COLUMNS, trade_record
from engine.plain import plain

TRADE_KEYS = TRADE_COLUMNS  # the columns of run --json's trades and of --trades-csv


def result_record(result: Any) -> dict[str, Any]:
    """The JSON object of ``run --json``: metrics, trades and the brain's statistics."""
    return plain(
        {
            "metrics": dict(result.metrics),
            "trades": [trade_record(t) for t in result.trades],
            "brain": {"kind": result.brain, "model": result.model, **dict(result.brain_stats)},
        }
    )


def persona_record(p: TradingPersona, file_name: str) -> dict[str, Any]:
    """One built-in persona of ``personas --json``."""
    trailing = None
    if p.trailing is not None:
        trailing = {
            "mode": p.trailing.mode,
            "distance": p.trailing.distance,
            "activation": p.trailing.activation,
        }
    return {
        "name": p.name,
        "file": file_name,
        "description": p.description,
        "allowed_directions": list(p.allowed_directions),
        "risk_per_trade": p.risk_per_trade,
        "max_open_positions": p.max_open_positions,
        "entry_threshold": p.entry_threshold,
        "stop_atr": p.stop_atr,
        "target_atr": p.target_atr,
        "trailing": trailing,
        "max_holding_candles": p.max_holding_candles,
        "cooldown_after_loss": p.cooldown_after_loss,
        "signal_weights": dict(p.signal_weights),
    }
