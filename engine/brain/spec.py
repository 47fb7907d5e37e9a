"""``persona@brain[:model]``: one row of a comparison, as text.

``momentum@rules``, ``momentum@llamacpp``, ``scalper@ollama:phi3:mini`` (the model is
everything after the first ``:`` of the brain part, so Ollama tags keep their own ``:``),
or a bare ``momentum`` that takes the default brain. The persona part may be a built-in
name or a ``.toml`` path; the brain part must be a known brain kind. Used by
``tapedeck compare --personas``, the TUI's compare picker and the experiment helper.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.brain.factory import BrainError, brain_kinds


@dataclass(frozen=True, slots=True)
class PersonaBrain:
    persona: str  # built-in name or .toml path, as given
    brain: str  # a brain kind
    model: str | None = None  # None: the brain's default (or the command's --model)

    @property
    def label(self) -> str:
        """``persona@brain[:model]``: what a table row or a result is called."""
        model = f":{self.model}" if self.model else ""
        return f"{self.persona}@{self.brain}{model}"


def parse_persona_brain(text: str, default_brain: str = "rules") -> PersonaBrain:
    """One ``persona@brain[:model]``; BrainError (a TapedeckError) says what is wrong."""
    raw = text.strip()
    persona, at, rest = raw.rpartition("@")
    if not at:
        persona, rest = raw, default_brain
    persona = persona.strip()
    kind, colon, model = rest.strip().partition(":")
    kind, model = kind.strip(), model.strip()
    if not persona:
        raise BrainError(f"{text!r}: no persona before '@' (e.g. momentum@rules)")
    if kind not in brain_kinds():
        raise BrainError(
            f"{text!r}: unknown brain {kind!r} after '@': choose one of {', '.join(brain_kinds())}"
        )
    if colon and not model:
        raise BrainError(f"{text!r}: no model after ':' (e.g. scalper@ollama:phi3:mini)")
    return PersonaBrain(persona, kind, model or None)


def parse_persona_brains(
    items: str | Iterable[str], default_brain: str = "rules"
) -> list[PersonaBrain]:
    """A comma-separated list (or an iterable) of specs; each label at most once."""
    parts = items.split(",") if isinstance(items, str) else list(items)
    specs = [parse_persona_brain(p, default_brain) for p in parts if p.strip()]
    if not specs:
        raise BrainError("--personas needs at least one persona, e.g. momentum@rules,momentum")
    seen: set[str] = set()
    for spec in specs:
        if spec.label in seen:
            raise BrainError(f"{spec.label} is given twice")
        seen.add(spec.label)
    return specs
