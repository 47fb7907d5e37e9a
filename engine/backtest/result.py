"""What a finished backtest gives back, and the brain's call statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.types import Decision, Fill, Rejection, Trade


@dataclass(frozen=True, eq=False)
class BacktestResult:
    persona: str
    brain: str
    model: str
    trades: tuple[Trade, ...]
    fills: tuple[Fill, ...]
    decisions: Sequence[Decision]  # a DecisionLog: holds only made when first read
    equity_times: np.ndarray
    equity_values: np.ndarray
    metrics: dict[str, Any]
    brain_stats: dict[str, Any]
    steps: int
    rejections: tuple[Rejection, ...] = ()  # orders the broker refused or dropped, in order

    @property
    def final_equity(self) -> float:
        return float(self.equity_values[-1]) if len(self.equity_values) else math.nan


@dataclass
class BrainStats:
    calls: int = 0  # decide() invocations
    skipped: int = 0  # batches and reviews an LLM brain held without a call (its gate)
    batches: int = 0  # of which for a batch with signals
    reviews: int = 0  # of which for a position review
    cache_hits: int = 0
    tokens: int = 0
    latency_s: float = 0.0  # wall clock, summed (a decision made when read adds none)
    corrections: int = 0
    errors: int = 0
    refused: int = 0  # plans the broker refused
    grounded: int = 0  # decisions whose reasoning passed the grounding check
    ungrounded: int = 0  # decisions whose reasoning failed it

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "skipped": self.skipped,
            "batches": self.batches,
            "reviews": self.reviews,
            "cache_hits": self.cache_hits,
            "tokens": self.tokens,
            "mean_latency_s": self.latency_s / self.calls if self.calls else 0.0,
            "corrections": self.corrections,
            "errors": self.errors,
            "refused": self.refused,
            "grounded_share": (
                self.grounded / (self.grounded + self.ungrounded)
                if self.grounded + self.ungrounded
                else None
            ),
        }
