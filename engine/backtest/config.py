"""How a backtest runs: money settings for the broker, the signal set for the analysis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.broker import BrokerConfig
from engine.errors import TapedeckError

if TYPE_CHECKING:
    from engine.signals import SignalConfig

ProgressCallback = Callable[[int, int], None]
"""Receives (steps done, total steps) during ``run()``."""


class BacktestError(TapedeckError):
    """A backtest that cannot be set up as asked."""


def _default_signal_config() -> SignalConfig:
    from engine.signals import default_signal_config

    return default_signal_config()


@dataclass(frozen=True)
class BacktestConfig:
    """How a backtest runs. Money settings go to the broker, ``signal`` to the analysis.

    ``review_positions``: while a position is open, the brain is also asked (with a
    batch holding no signals, only the market context) once ``review_interval`` steps
    have passed since it was last asked; 0 means the signal aggregation window (at
    least 1). ``close_at_end`` closes what is open at the last close (``end_of_data``).
    """

    initial_cash: float = 10_000.0
    fees_bps: float = 10.0
    slippage_bps: float = 5.0
    intrabar: str = "stop_first"
    leverage: float = 1.0
    signal: SignalConfig = field(default_factory=_default_signal_config)
    review_positions: bool = True
    review_interval: int = 0
    close_at_end: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.review_interval, bool) or not isinstance(self.review_interval, int):
            raise BacktestError(
                f"review_interval must be a whole number, got {self.review_interval!r}"
            )
        if self.review_interval < 0:
            raise BacktestError(f"review_interval must be >= 0, got {self.review_interval}")
        self.broker_config()  # the broker's own checks, at configuration time

    def broker_config(self) -> BrokerConfig:
        return BrokerConfig(
            initial_cash=self.initial_cash,
            fees_bps=self.fees_bps,
            slippage_bps=self.slippage_bps,
            intrabar=self.intrabar,
            leverage=self.leverage,
        )

    def review_steps(self) -> int:
        if self.review_interval > 0:
            return int(self.review_interval)
        window = getattr(self.signal, "window", 1)
        return max(1, int(window)) if isinstance(window, int | float) else 1
