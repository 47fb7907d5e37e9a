"""Building the LLM brains for ``make_brain``: "ollama", "llamacpp", "openai" and "auto".

Options (keyword arguments of ``make_brain``; the persona's ``[brain]`` table gives
defaults for model, host, keep_alive and timeout):

- ``model``: Ollama model name, or for llamacpp a GGUF file path
- ``host``, ``keep_alive``, ``timeout``, ``retries``: Ollama connection (``host`` and
  ``timeout`` also for "openai": the base URL such as http://127.0.0.1:8080/v1)
- ``first_call_timeout``: seconds for the calls before the server's first answer, which
  may load the model (default twice ``timeout``; also the persona's [brain] field)
- ``anonymise``: instruments renamed A, B, ... and prices rebased to 100 in prompts
- ``gate`` (default True): hold without a model call when nothing weighs enough
- ``n_threads``: llama.cpp threads
- ``cache`` (default True; env ``TAPEDECK_NO_CACHE=1`` turns it off), ``cache_path``,
  ``cache_mode`` ("exact" or "similar")
- ``timeframe``: e.g. "1m", so the prompt counts ages in candles
- ``announce``: receives the line saying which brain "auto" chose and why
  (default: printed on stderr)

An explicitly chosen brain that cannot start raises a TapedeckError with the fix.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from engine.brain.base import Brain
from engine.brain.persona import TradingPersona
from engine.errors import TapedeckError
from engine.timeutil import timeframe_to_ns


class BrainStartError(TapedeckError):
    """A chosen brain that cannot start; the message says how to fix it."""


_COMMON = {
    "cache",
    "cache_path",
    "cache_mode",
    "timeframe",
    "retries",
    "announce",
    "no_cache",
    "anonymise",
    "gate",
}
_OLLAMA = {"model", "host", "keep_alive", "timeout", "first_call_timeout"}
# llama.cpp loads the weights before a call's deadline starts: first_call_timeout is
# accepted (``auto`` may pick it) and has nothing to lengthen
_LLAMACPP = {"model", "model_path", "n_threads", "n_ctx", "timeout", "first_call_timeout"}
_OPENAI = {"model", "host", "timeout", "first_call_timeout"}


def _llm_common(opts: dict[str, Any]) -> dict[str, Any]:
    """What every LLM brain's constructor takes from the options."""
    return {
        "retries": int(opts.get("retries", 1)),
        "timeframe_ns": _timeframe_ns(opts),
        "anonymise": bool(opts.get("anonymise", False)),
        "gate": bool(opts.get("gate", True)),
    }


def _check_options(kind: str, opts: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(opts) - allowed - _COMMON)
    if unknown:
        raise BrainStartError(
            f"brain {kind!r} does not accept option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed | _COMMON))})"
        )


def _timeframe_ns(opts: dict[str, Any]) -> int | None:
    tf = opts.get("timeframe")
    if not tf:
        return None
    try:
        return timeframe_to_ns(str(tf))
    except ValueError as exc:
        raise BrainStartError(str(exc)) from None


def _with_cache(brain: Any, opts: dict[str, Any]) -> Brain:
    enabled = opts.get("cache", True) and not opts.get("no_cache", False)
    if os.environ.get("TAPEDECK_NO_CACHE", "") not in ("", "0"):
        enabled = False
    if not enabled:
        return brain
    from engine.brain.cache import CacheDamagedError, CachingBrain, DecisionCache

    try:
        cache = DecisionCache(opts.get("cache_path"))
    except CacheDamagedError as exc:  # a damaged cache costs the cache, never the run
        print(f"tapedeck: warning: {exc}; running without it", file=sys.stderr)
        return brain
    return CachingBrain(brain, cache, opts.get("cache_mode", "exact"))


def _first_call_timeout(persona: TradingPersona, opts: dict[str, Any]) -> float | None:
    """The option, else the persona's [brain] field, else None (twice the timeout)."""
    value = opts.get("first_call_timeout") or persona.brain.get("first_call_timeout")
    return None if value is None else float(value)


def _ollama(persona: TradingPersona, opts: dict[str, Any]) -> Any:
    from engine.brain.ollama_brain import OllamaBrain

    table = persona.brain
    return OllamaBrain(
        opts.get("model") or table.get("model"),
        host=opts.get("host") or table.get("host"),
        timeout=float(opts.get("timeout") or table.get("timeout") or 120.0),
        first_call_timeout=_first_call_timeout(persona, opts),
        keep_alive=opts.get("keep_alive") or table.get("keep_alive") or "10m",
        **_llm_common(opts),
    )


def _llamacpp(persona: TradingPersona, opts: dict[str, Any]) -> Any:
    from engine.brain.llamacpp_brain import LlamaCppBrain
    from engine.brain.llm import model_options

    path = opts.get("model_path") or opts.get("model")
    if path is None and str(persona.brain.get("model", "")).endswith(".gguf"):
        path = persona.brain["model"]
    return LlamaCppBrain(
        path,
        # the persona's num_ctx, else the LLM default (4096): eight instruments' prompt
        # and answer need more than 2048 tokens
        n_ctx=int(opts.get("n_ctx") or min(int(model_options(persona)["num_ctx"]), 4096)),
        n_threads=opts.get("n_threads"),
        timeout=float(opts.get("timeout") or 300.0),
        **_llm_common(opts),
    )


def _openai(persona: TradingPersona, opts: dict[str, Any], probe: bool = False) -> Any:
    from engine.brain.openai_brain import OpenAIBrain

    table = persona.brain
    model = opts.get("model") or table.get("openai_model")
    return OpenAIBrain(
        None if model is None else str(model),
        host=opts.get("host") or table.get("openai_host"),
        timeout=2.0 if probe else float(opts.get("timeout") or table.get("timeout") or 120.0),
        first_call_timeout=None if probe else _first_call_timeout(persona, opts),
        connect_timeout=1.0 if probe else 5.0,
        **_llm_common(opts),
    )


def build_ollama(persona: TradingPersona, **opts: Any) -> Brain:
    """An OllamaBrain that answers now: server up, model pulled (else BrainStartError)."""
    _check_options("ollama", opts, _OLLAMA)
    brain = _ollama(persona, opts)
    reason = brain.check()
    if reason is not None:
        raise BrainStartError(reason)
    return _with_cache(brain, opts)


def build_llamacpp(persona: TradingPersona, **opts: Any) -> Brain:
    """The embedded llama.cpp brain (EmbeddedModelError, a TapedeckError, says the fix)."""
    _check_options("llamacpp", opts, _LLAMACPP)
    return _with_cache(_llamacpp(persona, opts), opts)


def build_openai(persona: TradingPersona, **opts: Any) -> Brain:
    """An OpenAI-compatible brain whose server answers and has the model (else
    BrainStartError); without --model, the first model the server lists."""
    _check_options("openai", opts, _OPENAI)
    brain = _openai(persona, opts)
    reason = brain.check()
    if reason is not None:
        brain.close()
        raise BrainStartError(reason)
    return _with_cache(brain, opts)


def choose(persona: TradingPersona, **opts: Any) -> tuple[str, str]:
    """Which brain "auto" picks, and why: ollama, else an OpenAI-compatible server,
    else llamacpp, else rules."""
    from engine.brain.llamacpp_brain import llama_cpp_available
    from engine.brain.ollama_brain import OllamaBrain

    probe = OllamaBrain(
        opts.get("model") or persona.brain.get("model"),
        host=opts.get("host") or persona.brain.get("host"),
        timeout=2.0,
        connect_timeout=1.0,
    )
    why_not = probe.check()
    probe.close()
    if why_not is None:
        return "ollama", f"Ollama at {probe.host} answers and has {probe.model}"
    other = _openai(persona, opts, probe=True)
    no_openai = other.check()
    other.close()
    if no_openai is None:
        where = f"the OpenAI-compatible server at {other.host}"
        return "openai", f"{why_not}; {where} has {other.model}"
    why_not = f"{why_not}; and {no_openai}"
    if not llama_cpp_available():
        return "rules", f"{why_not}; and llama-cpp-python is not installed"
    try:
        from engine.brain.llamacpp_brain import default_model_path

        if not (opts.get("model_path") or str(opts.get("model", "")).endswith(".gguf")):
            default_model_path()
    except TapedeckError as exc:
        return "rules", f"{why_not}; and {exc}"
    return "llamacpp", f"{why_not}; using the embedded llama.cpp model"


def build_auto(persona: TradingPersona, **opts: Any) -> Brain:
    announce: Callable[[str], None] = opts.pop("announce", None) or _stderr
    _check_options("auto", opts, _OLLAMA | _LLAMACPP | _OPENAI)
    kind, why = choose(persona, **opts)
    if kind == "ollama":
        brain = _with_cache(_ollama(persona, opts), opts)
    elif kind == "openai":
        brain = _openai(persona, opts)
        brain.check()  # learns the model when none was named
        brain = _with_cache(brain, opts)
    elif kind == "llamacpp":
        # An Ollama model name is no GGUF path: the embedded brain keeps its default.
        embedded = {k: v for k, v in opts.items() if k != "model" or str(v).endswith(".gguf")}
        try:
            brain = _with_cache(_llamacpp(persona, embedded), opts)
        except TapedeckError as exc:
            kind, why = "rules", f"{why}, but it cannot start: {exc}"
    if kind == "rules":
        from engine.brain.rules import RuleBrain

        brain = RuleBrain(persona)
    announce(f"brain auto: using {kind} ({why})")
    brain.selection = (kind, why)  # type: ignore[union-attr]
    return brain


def _stderr(text: str) -> None:
    print(f"tapedeck: {text}", file=sys.stderr)
