"""What every LLM brain shares: prompt, streaming reasoning, validation, retries, holds.

A backend implements :meth:`LLMBrain._complete` (one call to the model, streaming text
to a callback) and raises :class:`LLMFault` for anything that went wrong. ``decide``
never raises: every fault becomes a hold Decision with the reason in ``errors``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.brain.base import ReasoningCallback
from engine.brain.breaker import CircuitBreaker
from engine.brain.gate import skip_reason
from engine.brain.grounding import check_grounding
from engine.brain.partial import partial_reasoning, partial_reasons
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
    "num_predict": 200,
    "num_ctx": 4096,
}
OPTION_NAMES = tuple(DEFAULT_OPTIONS)
NO_ANSWER = "No usable answer from the model: holding."  # the reasoning of a failed call
# The calls before a server's first answer may load the model: unless told otherwise,
# they get this many timeouts (two: with the breaker's budget of three timeouts, a
# server that never answers still costs at most three).
FIRST_CALL_FACTOR = 2.0


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
    prompt_tokens: int = 0  # tokens of the prompt (0: the backend does not say)
    reused_tokens: int = 0  # of which served from the backend's cached prefix


@dataclass(frozen=True, slots=True)
class Asked:
    """The outcome of one ``ask``: the validated answer (None on failure) and the Decision."""

    answer: Answer | None
    decision: Decision
    prompt: Prompt
    repeatable_failure: bool = False  # every attempt failed on the model's own answer
    raw: str | None = None  # the last text the model gave


def read_answer(text: str, prompt: Prompt) -> Answer:
    """Parse the model's text and give its instruments back their real names."""
    answer = parse_answer(text)
    names = prompt.names
    if not names:
        return answer
    unknown = [k for k in answer.plans if k not in names]
    if unknown:
        raise AnswerError(f"nonsense answer: unknown instrument {unknown[0]!r}")
    return Answer(plans={names[k]: v for k, v in answer.plans.items()})


def streamed_reasoning(text: str, prompt: Prompt) -> str | None:
    """The reasoning of an answer still being written, as ``Answer.reasoning`` will read:
    every asked instrument's reason so far (``NAME: reason`` each when several are asked),
    or None before the first has begun."""
    if len(prompt.schema.get("properties", {})) <= 1:
        return partial_reasoning(text)
    reasons = partial_reasons(text)
    if not reasons:
        return None
    names = prompt.names
    return " ".join(f"{names.get(k, k)}: {why.strip()}" for k, why in reasons)


def grounding_of(answer: Answer, prompt: Prompt) -> tuple[str, ...]:
    """What of the answer's reasoning its prompt does not ground (empty: grounded)."""
    shown = {real: alias for alias, real in prompt.names.items()}
    reasons = {shown.get(k, k): (v.why, v.do) for k, v in answer.plans.items()}
    return check_grounding(
        reasons, prompt.system, prompt.user, prompt.names or shown, prompt.facts or None
    )


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
    remote = True  # calls go to a server: a circuit breaker stops asking a dead one

    def __init__(
        self,
        model: str,
        *,
        retries: int = 1,
        options: Mapping[str, Any] | None = None,
        timeframe_ns: int | None = None,
        anonymise: bool = False,
        gate: bool = True,
        timeout: float | None = None,
        first_call_timeout: float | None = None,
    ) -> None:
        self.model = model
        self.anonymise = bool(anonymise)
        self.gate = bool(gate)
        self.retries = max(0, int(retries))
        self.options = dict(options or {})
        self.timeframe_ns = timeframe_ns
        # Seconds one call may take (None: the backend keeps its own limit), and the calls
        # before the server's first answer, which may load the model.
        self.timeout = _seconds("timeout", timeout)
        if first_call_timeout is None and self.timeout is not None:
            first_call_timeout = FIRST_CALL_FACTOR * self.timeout
        self.first_call_timeout = _seconds("first_call_timeout", first_call_timeout)
        self.answered = False  # the server has answered once (the model is loaded)
        self.call_timeout_s = self.timeout  # what the call under way may take (ask sets it)
        # Only a brain that calls a server can be cut off from it (llama.cpp runs in-process).
        self.breaker = (
            CircuitBreaker(f"{self.name} model {model}", timeout_s=self.timeout)
            if self.remote
            else None
        )
        self.stats: dict[str, float] = {
            "calls": 0,
            "failed_calls": 0,
            "valid_answers": 0,
            "invalid_answers": 0,
            "tokens": 0,
            "gen_seconds": 0.0,
            "prompt_tokens": 0,
            "reused_tokens": 0,
            "skipped": 0,
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
    def next_call_timeout(self) -> float | None:
        """The seconds the next call may take: the first-call timeout until the server
        has answered once, then the timeout."""
        if not self.answered and self.first_call_timeout is not None:
            return self.first_call_timeout
        return self.timeout

    def prompt_for(
        self, batch: SignalBatch, portfolio: PortfolioState, persona: TradingPersona
    ) -> Prompt:
        return build_prompt(
            batch, portfolio, persona, timeframe_ns=self.timeframe_ns, anonymise=self.anonymise
        )

    def decide(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        on_reasoning: ReasoningCallback | None = None,
    ) -> Decision:
        skipped = self.skipped(batch, portfolio, persona)
        if skipped is not None:
            return skipped
        return self.ask(batch, portfolio, persona, on_reasoning).decision

    def skipped(
        self, batch: SignalBatch, portfolio: PortfolioState, persona: TradingPersona
    ) -> Decision | None:
        """The hold that needs no model call (see engine.brain.gate), or None."""
        if not self.gate:
            return None
        reason = skip_reason(batch, portfolio, persona, self.timeframe_ns)
        if reason is None:
            return None
        self.stats["skipped"] += 1
        return Decision(
            time=batch.time,
            brain=self.name,
            model=self.model,
            plans=hold_plans(batch),
            reasoning=reason,
        )

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
        blocked = self.breaker.blocked() if self.breaker is not None else None
        if blocked is not None:  # a server that does not answer is not asked again yet
            return Asked(None, self._hold(batch, [blocked], start, prompt), prompt)
        options = model_options(persona, self.options)
        tokens = 0
        repeatable = True
        raw: str | None = None
        for attempt in range(self.retries + 1):
            if attempt and self.breaker is not None:
                blocked = self.breaker.blocked()
                if blocked is not None:  # the failures so far opened it: no retry
                    errors.append(blocked)
                    break
            opts = dict(options)
            if attempt and opts.get("seed") is not None:
                opts["seed"] = int(opts["seed"]) + attempt  # same seed, same bad answer
            shown = [""]

            def on_text(text: str, shown: list[str] = shown) -> None:
                reasoning = streamed_reasoning(text, prompt)
                if reasoning is not None and reasoning != shown[0]:
                    shown[0] = reasoning
                    _notify(on_reasoning, reasoning)

            self.stats["calls"] += 1
            self.call_timeout_s = self.next_call_timeout()
            called = time.perf_counter()
            try:
                completion = self._complete(prompt, opts, on_text)
                self.answered = True
                raw = completion.text
                tokens += completion.tokens
                self.stats["tokens"] += completion.tokens
                self.stats["gen_seconds"] += completion.gen_seconds
                self.stats["prompt_tokens"] += completion.prompt_tokens
                self.stats["reused_tokens"] += completion.reused_tokens
                if completion.done_reason == "length":
                    raise LLMFault(
                        f"answer cut off after {completion.tokens} tokens "
                        f"(done_reason length): raise num_predict (now {opts['num_predict']})",
                        retry=False,
                        model_output=True,
                    )
                try:
                    answer = read_answer(completion.text, prompt)
                    check_answer(answer, batch, portfolio, persona)
                except AnswerError as exc:
                    self.stats["invalid_answers"] += 1
                    raise LLMFault(str(exc), retry=True, model_output=True) from None
            except LLMFault as fault:
                repeatable = repeatable and fault.model_output
                self.answered |= fault.model_output
                if self.breaker is not None and fault.model_output:
                    self.breaker.success()  # a bad answer is still an answer
                elif self.breaker is not None:
                    self.breaker.failure(
                        fault.reason, time.perf_counter() - called, self.next_call_timeout()
                    )
                self.stats["failed_calls"] += 1
                errors.append(f"{self.name} attempt {attempt + 1}: {fault.reason}")
                if not fault.retry:
                    break
                continue
            except Exception as exc:  # never let a backend surprise stop the replay
                repeatable = False
                if self.breaker is not None:
                    self.breaker.failure(
                        f"{type(exc).__name__}: {exc}",
                        time.perf_counter() - called,
                        self.next_call_timeout(),
                    )
                self.stats["failed_calls"] += 1
                errors.append(f"{self.name} attempt {attempt + 1}: {type(exc).__name__}: {exc}")
                continue
            self.stats["valid_answers"] += 1
            if self.breaker is not None:
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
                raw_answer=raw,
            )
            return Asked(answer, decision, prompt, raw=raw)
        hold = self._hold(batch, errors, start, prompt, tokens)
        hold = dataclasses.replace(hold, raw_answer=raw)
        return Asked(None, hold, prompt, repeatable_failure=repeatable, raw=raw)

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
        raw_answer: str | None = None,
    ) -> Decision:
        grounding = grounding_of(answer, prompt) if prompt is not None else ()
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
            raw_answer=raw_answer if raw_answer is not None else answer.to_json(),
            grounded=None if prompt is None else not grounding,
            grounding=grounding,
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


def _seconds(name: str, value: float | None) -> float | None:
    """A time limit: None, or a finite number of seconds above 0 (ValueError)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a finite number of seconds above 0, got {value!r}")
    return seconds


def _notify(callback: ReasoningCallback | None, text: str) -> None:
    if callback is None:
        return
    # A display callback must not decide the trade.
    with contextlib.suppress(Exception):
        callback(text)
