"""persona@brain[:model] parsing (compare rows, the TUI picker, experiments)."""

from __future__ import annotations

import pytest

from engine.brain.spec import PersonaBrain, parse_persona_brain, parse_persona_brains
from engine.errors import TapedeckError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("momentum@rules", PersonaBrain("momentum", "rules")),
        ("momentum@llamacpp", PersonaBrain("momentum", "llamacpp")),
        ("scalper@ollama:phi3:mini", PersonaBrain("scalper", "ollama", "phi3:mini")),
        (" scalper @ ollama : phi3:mini ", PersonaBrain("scalper", "ollama", "phi3:mini")),
        ("momentum", PersonaBrain("momentum", "rules")),
        ("my@dir/p.toml@auto", PersonaBrain("my@dir/p.toml", "auto")),
    ],
)
def test_parse(text, expected):
    assert parse_persona_brain(text) == expected


def test_default_brain_and_labels():
    spec = parse_persona_brain("conservative", default_brain="llamacpp")
    assert spec == PersonaBrain("conservative", "llamacpp")
    assert spec.label == "conservative@llamacpp"
    assert parse_persona_brain("s@ollama:phi3:mini").label == "s@ollama:phi3:mini"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("momentum@gpt", r"unknown brain 'gpt'"),
        ("@rules", r"no persona"),
        ("scalper@ollama:", r"no model after"),
    ],
)
def test_errors(text, message):
    with pytest.raises(TapedeckError, match=message):
        parse_persona_brain(text)


def test_list_keeps_order_and_refuses_duplicates():
    specs = parse_persona_brains("momentum@rules, momentum@llamacpp,,scalper@ollama:phi3:mini")
    assert [s.label for s in specs] == [
        "momentum@rules",
        "momentum@llamacpp",
        "scalper@ollama:phi3:mini",
    ]
    with pytest.raises(TapedeckError, match="given twice"):
        parse_persona_brains("momentum,momentum@rules")
    with pytest.raises(TapedeckError, match="at least one persona"):
        parse_persona_brains(" , ")
