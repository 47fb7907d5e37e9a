"""The Brain interface: a SignalBatch and the portfolio in, a Decision out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from engine.brain.persona import TradingPersona
from engine.types import Decision, PortfolioState, SignalBatch

ReasoningCallback = Callable[[str], None]
"""Receives the reasoning text written so far (the whole text, not a delta)."""


@runtime_checkable
class Brain(Protocol):
    """A decision maker. ``name`` is the backend ("rules", "ollama", "llamacpp");
    ``model`` the model it uses ("" for rules).

    ``decide`` must never raise for a bad answer or an unreachable model: it returns a
    Decision holding (action hold) with the reason in ``errors``. Its plans are raw: the
    engine passes every Decision through RiskGuard before anything reaches the broker.
    """

    name: str
    model: str

    def decide(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        on_reasoning: ReasoningCallback | None = None,
    ) -> Decision: ...
