"""Brain selection: ``make_brain("rules", persona)``.

A brain kind maps to "module:callable"; the callable takes ``(persona, **opts)`` and
returns a Brain. Modules are imported only when their kind is asked for, so an
optional LLM client is never needed for a rule-based run. To add a backend, add one
line to ``BRAIN_KINDS`` (or call ``register_brain`` at run time).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from engine.brain.base import Brain
from engine.brain.persona import TradingPersona
from engine.errors import TapedeckError

BRAIN_KINDS: dict[str, str] = {
    "rules": "engine.brain.rules:RuleBrain",
    # LLM brains (helper "ai"; options and the "auto" rule in engine/brain/selection.py)
    "ollama": "engine.brain.selection:build_ollama",
    "llamacpp": "engine.brain.selection:build_llamacpp",
    "openai": "engine.brain.selection:build_openai",
    "auto": "engine.brain.selection:build_auto",
}

BrainBuilder = Callable[..., Brain]
_registered: dict[str, BrainBuilder] = {}


class BrainError(TapedeckError, ValueError):
    """A brain that cannot be built as asked (unknown kind, bad option)."""


def brain_kinds() -> list[str]:
    return sorted({*BRAIN_KINDS, *_registered})


def register_brain(kind: str, builder: BrainBuilder) -> None:
    """Add (or replace) a brain kind at run time; ``builder(persona, **opts) -> Brain``."""
    _registered[kind] = builder


def _builder(kind: str) -> BrainBuilder:
    if kind in _registered:
        return _registered[kind]
    if kind not in BRAIN_KINDS:
        raise BrainError(f"unknown brain {kind!r}: choose one of {', '.join(brain_kinds())}")
    module_name, _, attr = BRAIN_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def make_brain(kind: str, persona: TradingPersona, **opts: Any) -> Brain:
    """Build the brain ``kind`` for ``persona``; TapedeckError for an unknown kind/option."""
    builder = _builder(kind)
    try:
        inspect.signature(builder).bind(persona, **opts)
    except TypeError:
        raise BrainError(
            f"brain {kind!r} does not accept option(s) {', '.join(sorted(opts))}"
        ) from None
    except ValueError:  # no introspectable signature: let the call decide
        pass
    return builder(persona, **opts)
