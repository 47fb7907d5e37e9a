"""The backtest: one engine per persona over a merged market stream, and sessions of several.

``engine`` replays; ``analysis`` is the per-step market index the engines share;
``watch`` finds the steps where ``run()`` must stop (its fast-forward event watch);
``config`` and ``result`` are what goes in and what comes out.
"""

from engine.backtest.config import BacktestConfig, BacktestError, ProgressCallback
from engine.backtest.engine import BacktestEngine
from engine.backtest.result import BacktestResult, BrainStats
from engine.backtest.session import BrainFactory, Session

__all__ = [
    "BacktestConfig",
    "BacktestEngine",
    "BacktestError",
    "BacktestResult",
    "BrainFactory",
    "BrainStats",
    "ProgressCallback",
    "Session",
]
