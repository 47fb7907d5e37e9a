"""Hand-built batches and portfolios for the AI brain tests (support module, no tests)."""

from __future__ import annotations

from engine.brain.persona import TradingPersona
from engine.types import (
    Direction,
    InstrumentContext,
    PortfolioState,
    Position,
    Side,
    Signal,
    SignalBatch,
    TrailingMode,
    TrailingSpec,
)

MINUTE = 60_000_000_000
T0 = 1_641_000_000_000_000_000


def persona(**kw: object) -> TradingPersona:
    base: dict[str, object] = {
        "name": "tester",
        "style": "You buy dips and cut losers fast.",
        "risk_per_trade": 0.01,
        "stop_atr": 1.5,
        "target_atr": 3.0,
        "trailing": TrailingSpec(TrailingMode.ATR, 1.0, 0.5),
        "brain": {"temperature": 0.0, "seed": 7, "num_predict": 300, "num_ctx": 2048},
    }
    base.update(kw)
    return TradingPersona(**base)  # type: ignore[arg-type]


def context(name: str = "BTC", price: float = 46_210.5, atr: float = 35.2, rsi: float = 27.9):
    return InstrumentContext(
        instrument=name,
        price=price,
        atr=atr,
        change_pct=-0.84,
        lookback=20,
        indicators={"rsi": rsi, "atr": atr, "ema_fast": price * 0.999, "ema_slow": price},
    )


def batch(
    *,
    time: int = T0,
    kinds: tuple[tuple[str, str, Direction], ...] = (("BTC", "rsi_oversold", Direction.LONG),),
    contexts: dict[str, InstrumentContext] | None = None,
    step: int = 30,
) -> SignalBatch:
    signals = tuple(
        Signal(inst, time - MINUTE, kind, direction, 0.72, 46_200.0, {"rsi": 27.9})
        for inst, kind, direction in kinds
    )
    ctx = contexts if contexts is not None else {"BTC": context()}
    return SignalBatch(time, time - 3 * MINUTE, step, signals, ctx)


def portfolio(time: int = T0, positions: tuple[Position, ...] = ()) -> PortfolioState:
    return PortfolioState(time, 30, 10_000.0, 10_000.0, positions)


def long_position(time: int = T0, entry: float = 46_000.0, pnl: float = 12.5) -> Position:
    return Position(
        "BTC",
        Side.LONG,
        0.05,
        entry,
        time - 12 * MINUTE,
        entry - 50.0,
        entry + 100.0,
        None,
        None,
        entry + 250.0,
        pnl,
        1.2,
    )
