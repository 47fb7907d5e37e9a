"""What every LLM brain shares: prompt, streaming reasoning, validation, retries, holds.

A backend implements :meth:`LLMBrain._complete` (one call to the model, streaming text
to a callback) and raises :class:`LLMFault` for anything that went wrong. ``decide``
never raises: every fault becomes a hold Decision with the reason in ``errors``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.brain.base import ReasoningCallback
from engine.brain.breaker import CircuitBreaker
from engine.brain.partial import partial_reasoning
from engine.brain.persona import TradingPersona
from engine.brain.prompt import Prompt, build_prompt
from engine.brain.schema import (
    Answer,
    AnswerError,
    check_answer,
    hold_plans,
    parse_answer,
    plans_from_answer,
)
from engine.types import Decision, PortfolioState, SignalBatch

DEFAULT_OPTIONS: dict[str, Any] = {
    "temperature": 0.2,
    "seed": 42,
    "num_predict": 400,
    "num_ctx": 4096,
}
OPTION_NAMES = tuple(DEFAULT_OPTIONS)
NO_ANSWER = "No usable answer from the model: holding."  # the reasoning of a failed call


class LLMFault(Exception):
    """One failed model call. ``retry`` says whether asking again may help."""

    def __init__(self, reason: str, *, retry: bool, model_output: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        # The model answered, badly: with the same seed it would answer the same again,
        # so the decision cache may remember the hold (faults of the road, not).
        self.model_output = model_output


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tokens: int  # generated tokens
    done_reason: str | None
    gen_seconds: float = 0.0  # time spent generating (for tokens/s)


@dataclass(frozen=True, slots=True)
class Asked:
    """The outcome of one ``ask``: the validated answer (None on failure) and the Decision."""

    answer: Answer | None
    decision: Decision
    prompt: Prompt
    repeatable_failure: bool = False  # every attempt failed on the model's own answer


def model_options(persona: TradingPersona, overrides: Mapping[str, Any] | None = None) -> dict:
    """Sampling options: defaults, then the persona's [brain] table, then explicit ones."""
    opts = dict(DEFAULT_OPTIONS)
    for source in (persona.brain, overrides or {}):
        for key in OPTION_NAMES:
            if source.get(key) is not None:
                opts[key] = source[key]
    return opts


class LLMBrain:
    """Base class of the LLM brains (Ollama, llama.cpp)."""

    name = "llm"

    def __init__(
        self,
        model: str,
        *,
        retries: int = 1,
        options: Mapping[str, Any] | None = None,
        timeframe_ns: int | None = None,
    ) -> None:
        self.model = model
        self.retries = max(0, int(retries))
        self.options = dict(options or {})
        self.timeframe_ns = timeframe_ns
        self.breaker = CircuitBreaker(f"{self.name} model {model}")
        self.stats: dict[str, float] = {
            "calls": 0,
            "failed_calls": 0,
            "valid_answers": 0,
            "invalid_answers": 0,
            "tokens": 0,
            "gen_seconds": 0.0,
        }

    # -- backend --------------------------------------------------------------------
    def identity(self) -> str:
        """What identifies the model's weights for the decision cache."""
        return self.model

    def _complete(
        self,
        prompt: Prompt,
        options: dict[str, Any],
        on_text: Callable[[str], None],
    ) -> Completion:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------
    def prompt_for(
        self, batch: SignalBatch, portfolio: PortfolioState, persona: TradingPersona
    ) -> Prompt:
        return build_prompt(batch, portfolio, persona, timeframe_ns=self.timeframe_ns)

    def decide(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        on_reasoning: ReasoningCallback | None = None,
    ) -> Decision:
        return self.ask(batch, portfolio, persona, on_reasoning).decision

    def ask(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        on_reasoning: ReasoningCallback | None = None,
        prompt: Prompt | None = None,
    ) -> Asked:
        start = time.perf_counter()
        errors: list[str] = []
        try:
            prompt = prompt or self.prompt_for(batch, portfolio, persona)
        except Exception as exc:  # a context the prompt cannot describe
            decision = self._hold(batch, [f"prompt: {type(exc).__name__}: {exc}"], start, None)
            return Asked(None, decision, Prompt("", "", {}))
        blocked = self.breaker.blocked()
        if blocked is not None:  # a server that does not answer is not asked again yet
            return Asked(None, self._hold(batch, [blocked], start, prompt), prompt)
        options = model_options(persona, self.options)
        tokens = 0
        repeatable = True
        for attempt in range(self.retries + 1):
            opts = dict(options)
            if attempt and opts.get("seed") is not None:
                opts["seed"] = int(opts["seed"]) + attempt  # same seed, same bad answer
            shown = [""]

            def on_text(text: str, shown: list[str] = shown) -> None:
                reasoning = partial_reasoning(text)
                if reasoning is not None and reasoning != shown[0]:
                    shown[0] = reasoning
                    _notify(on_reasoning, reasoning)

            self.stats["calls"] += 1
            try:
                completion = self._complete(prompt, opts, on_text)
                tokens += completion.tokens
                self.stats["tokens"] += completion.tokens
                self.stats["gen_seconds"] += completion.gen_seconds
                if completion.done_reason == "length":
                    raise LLMFault(
                        f"answer cut off after {completion.tokens} tokens "
                        f"(done_reason length): raise num_predict (now {opts['num_predict']})",
                        retry=False,
                        model_output=True,
                    )
                try:
                    answer = parse_answer(completion.text)
                    check_answer(answer, batch, portfolio)
                except AnswerError as exc:
                    self.stats["invalid_answers"] += 1
                    raise LLMFault(str(exc), retry=True, model_output=True) from None
            except LLMFault as fault:
                repeatable = repeatable and fault.model_output
                if fault.model_output:
                    self.breaker.success()  # a bad answer is still an answer
                else:
                    self.breaker.failure(fault.reason)
                self.stats["failed_calls"] += 1
                errors.append(f"{self.name} attempt {attempt + 1}: {fault.reason}")
                if not fault.retry:
                    break
                continue
            except Exception as exc:  # never let a backend surprise stop the replay
                repeatable = False
                self.breaker.failure(f"{type(exc).__name__}: {exc}")
                self.stats["failed_calls"] += 1
                errors.append(f"{self.name} attempt {attempt + 1}: {type(exc).__name__}: {exc}")
                continue
            self.stats["valid_answers"] += 1
            self.breaker.success()
            _notify(on_reasoning, answer.reasoning)
            decision = self.decision_from_answer(
                answer,
                batch,
                portfolio,
                persona,
                prompt=prompt,
                latency_s=time.perf_counter() - start,
                tokens=tokens,
                errors=tuple(errors),
            )
            return Asked(answer, decision, prompt)
        hold = self._hold(batch, errors, start, prompt, tokens)
        return Asked(None, hold, prompt, repeatable_failure=repeatable)

    def decision_from_answer(
        self,
        answer: Answer,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        *,
        prompt: Prompt | None,
        latency_s: float = 0.0,
        tokens: int = 0,
        cache_hit: bool = False,
        errors: tuple[str, ...] = (),
    ) -> Decision:
        return Decision(
            time=batch.time,
            brain=self.name,
            model=self.model,
            plans=plans_from_answer(answer, batch, portfolio, persona),
            reasoning=answer.reasoning,
            latency_s=latency_s,
            tokens=tokens,
            cache_hit=cache_hit,
            errors=errors,
            prompt=prompt.text if prompt is not None else None,
        )

    def hold_decision(
        self,
        batch: SignalBatch,
        errors: tuple[str, ...],
        *,
        prompt: Prompt | None,
        latency_s: float = 0.0,
        cache_hit: bool = False,
    ) -> Decision:
        """The hold a failed call decides (also what a cached failure replays)."""
        return Decision(
            time=batch.time,
            brain=self.name,
            model=self.model,
            plans=hold_plans(batch),
            reasoning=NO_ANSWER,
            latency_s=latency_s,
            cache_hit=cache_hit,
            errors=errors or ("no answer",),
            prompt=prompt.text if prompt is not None else None,
        )

    def _hold(
        self,
        batch: SignalBatch,
        errors: list[str],
        start: float,
        prompt: Prompt | None,
        tokens: int = 0,
    ) -> Decision:
        decision = self.hold_decision(
            batch, tuple(errors), prompt=prompt, latency_s=time.perf_counter() - start
        )
        return dataclasses.replace(decision, tokens=tokens)

    def close(self) -> None:
        """Release the backend's resources (connections, model memory)."""


def _notify(callback: ReasoningCallback | None, text: str) -> None:
    if callback is None:
        return
    # A display callback must not decide the trade.
    with contextlib.suppress(Exception):
        callback(text)
