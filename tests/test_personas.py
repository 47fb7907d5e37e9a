"""Personas as data: the built-ins load and differ; malformed files name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.brain.factory import BrainError, brain_kinds, make_brain, register_brain
from engine.brain.persona import (
    PersonaError,
    builtin_file_name,
    builtin_persona_names,
    builtin_personas,
    load_persona,
    persona_from_dict,
)
from engine.brain.rules import RuleBrain
from engine.errors import TapedeckError
from engine.signals import SIGNAL_KINDS
from engine.types import TrailingMode, TrailingSpec

REQUIRED = {"scalper", "conservative", "momentum", "mean-reversion"}


def test_every_builtin_loads_with_a_description_and_a_style() -> None:
    names = builtin_persona_names()
    assert set(names) >= REQUIRED
    for name in names:
        p = load_persona(name)
        assert p.name and p.description and len(p.style) > 80, name
        assert p.source.endswith(builtin_file_name(name))
        assert p.name == name  # one spelling: the list, the file's name field, the messages
        assert set(p.signal_weights) <= set(SIGNAL_KINDS)
        assert any(w != 0 for w in p.signal_weights.values())


def test_hyphenated_and_file_names_reach_the_same_persona() -> None:
    a = load_persona("mean-reversion")
    b = load_persona("mean_reversion")
    assert a == b and a.name == "mean-reversion"


def test_builtins_differ_in_behaviour_parameters() -> None:
    ps = {p.name: p for p in builtin_personas()}
    fields = (
        "risk_per_trade",
        "max_open_positions",
        "allowed_directions",
        "entry_threshold",
        "stop_atr",
        "target_atr",
        "trailing",
        "max_holding_candles",
        "cooldown_after_loss",
    )
    for a in ps.values():
        for b in ps.values():
            if a is not b:
                assert dict(a.signal_weights) != dict(b.signal_weights)
                assert sum(getattr(a, f) != getattr(b, f) for f in fields) >= 3, (a.name, b.name)
    assert ps["conservative"].allowed_directions == ("long",)
    assert ps["conservative"].max_open_positions == 1
    assert ps["scalper"].entry_threshold < ps["momentum"].entry_threshold
    assert ps["scalper"].max_holding_candles < ps["momentum"].max_holding_candles
    assert ps["mean-reversion"].trailing is None
    assert ps["mean-reversion"].signal_weights["bb_breakout_up"] < 0  # fades breakouts
    assert len({p.fingerprint() for p in ps.values()}) == len(ps)


def test_a_user_file_loads_by_path(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        'name = "mine"\nrisk_per_trade = 0.02\n[signal_weights]\nrsi_oversold = 2\n'
        '[trailing]\nmode = "percent"\ndistance = 0.01\n'
    )
    p = load_persona(str(f))
    assert (p.name, p.risk_per_trade, p.source) == ("mine", 0.02, str(f))
    assert p.signal_weights == {"rsi_oversold": 2.0}
    assert p.trailing == TrailingSpec(TrailingMode.PERCENT, 0.01, 0.0)
    assert p.trailing.mode is TrailingMode.PERCENT
    assert load_persona(f) == p


def test_a_builtin_name_wins_over_a_same_named_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scalper").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_persona("scalper").name == "scalper"


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    return f


BASE = 'name = "x"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x\n', "not valid TOML"),
        (BASE + "colour = 3\n", "field 'colour': unknown field"),
        (BASE + 'risk_per_trade = "lots"\n', "field 'risk_per_trade': expected a number"),
        (BASE + "risk_per_trade = 2.0\n", "field 'risk_per_trade': 2.0 is outside (0.0, 1.0]"),
        (BASE + "stop_atr = 0\n", "field 'stop_atr': 0.0 is outside"),
        (BASE + "entry_threshold = -1\n", "field 'entry_threshold'"),
        (
            BASE + "max_open_positions = 0\n",
            "field 'max_open_positions': expected a whole number >= 1",
        ),
        (BASE + "max_open_positions = 1.5\n", "field 'max_open_positions'"),
        (BASE + "cooldown_after_loss = true\n", "field 'cooldown_after_loss'"),
        (BASE + 'allowed_directions = ["up"]\n', "field 'allowed_directions'"),
        (BASE + "allowed_directions = []\n", "field 'allowed_directions'"),
        (BASE + 'allowed_directions = "long"\n', "field 'allowed_directions'"),
        (BASE + "description = 5\n", "field 'description': expected text"),
        ("description = 'no name'\n", "field 'name': a non-empty string is required"),
        (BASE + "signal_weights = 3\n", "field 'signal_weights'"),
        (
            BASE + "[signal_weights]\nrsi_oversld = 1\n",
            "field 'signal_weights.rsi_oversld': unknown signal kind",
        ),
        (
            BASE + "[signal_weights]\nrsi_oversold = 'high'\n",
            "field 'signal_weights.rsi_oversold': expected a number",
        ),
        (
            BASE + "[signal_weights]\nrsi_oversold = 50\n",
            "field 'signal_weights.rsi_oversold': 50.0 is outside",
        ),
        (BASE + "[signal_weights]\nrsi_oversold = nan\n", "expected a finite number"),
        (BASE + "[trailing]\nmode = 'fast'\n", "field 'trailing.mode'"),
        (BASE + "[trailing]\ndistance = 0\n", "field 'trailing.distance': must be > 0"),
        (BASE + "[trailing]\nactivation = -1\n", "field 'trailing.activation': must be >= 0"),
        (BASE + "[trailing]\nstep = 1\n", "field 'trailing.step': unknown field"),
        (BASE + "trailing = 1\n", "field 'trailing'"),
        (BASE + "brain = 'fast'\n", "field 'brain'"),
    ],
)
def test_malformed_persona_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    f = _write(tmp_path, text)
    with pytest.raises(PersonaError) as info:
        load_persona(str(f))
    assert str(info.value).startswith(f"{f}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip() or "TOML" in message
    assert isinstance(info.value, TapedeckError)


def test_missing_file_and_unknown_name_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PersonaError, match=r"nope\.toml: cannot read persona file"):
        load_persona(str(tmp_path / "nope.toml"))
    with pytest.raises(
        PersonaError, match=r"unknown persona 'yolo': built-in personas are .*scalper"
    ):
        load_persona("yolo")


def test_persona_from_dict_names_its_source() -> None:
    with pytest.raises(PersonaError, match=r"^<dict>: field 'stop_atr'"):
        persona_from_dict({"name": "x", "stop_atr": "far"})


# -- factory ---------------------------------------------------------------------------


def test_make_brain_rules() -> None:
    p = load_persona("momentum")
    brain = make_brain("rules", p)
    assert isinstance(brain, RuleBrain) and brain.persona is p and brain.name == "rules"
    assert "rules" in brain_kinds()


def test_unknown_brain_kind_lists_the_choices() -> None:
    with pytest.raises(BrainError, match=r"unknown brain 'gpt9': choose one of .*rules") as info:
        make_brain("gpt9", load_persona("scalper"))
    assert isinstance(info.value, TapedeckError)


def test_bad_option_is_a_brain_error() -> None:
    with pytest.raises(BrainError, match="does not accept option"):
        make_brain("rules", load_persona("scalper"), temperature=0.3)


def test_register_brain_extends_the_choices() -> None:
    register_brain("echo", lambda persona, **opts: RuleBrain(persona))
    try:
        assert "echo" in brain_kinds()
        assert isinstance(make_brain("echo", load_persona("scalper")), RuleBrain)
    finally:
        from engine.brain import factory

        factory._registered.pop("echo")
