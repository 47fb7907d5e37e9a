"""Trading personas: data, not code. One TOML file per persona.

A persona file looks like this (every key but ``name`` has a default)::

    name = "scalper"
    description = "Fast in, fast out on momentum bursts."
    style = "You are a scalper..."       # the style text an LLM prompt uses
    risk_per_trade = 0.005               # fraction of equity at risk per trade
    max_position_fraction = 0.25         # cap on one position's notional / equity
    max_open_positions = 3
    allowed_directions = ["long", "short"]
    entry_threshold = 0.5                # rule brain: weighted score needed to act
    stop_atr = 1.0                       # stop distance in ATR multiples
    target_atr = 1.5                     # take-profit distance in ATR multiples
    max_holding_candles = 60             # 0 = no limit
    cooldown_after_loss = 5              # candles without new entries after a loss

    [signal_weights]                     # signal kind -> weight (missing kinds: 0)
    rsi_oversold = 1.0

    [trailing]                           # optional
    mode = "atr"                         # "atr" or "percent"
    distance = 1.0
    activation = 0.5

    [brain]                              # options for LLM brains
    model = "phi3:mini"
    temperature = 0.2
    seed = 42
    num_predict = 400
    num_ctx = 4096
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from engine.errors import TapedeckError
from engine.types import TrailingMode, TrailingSpec

BUILTIN_PACKAGE = "engine.brain.personas"

MAX_ABS_WEIGHT = 10.0


class PersonaError(TapedeckError, ValueError):
    """A persona file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class TradingPersona:
    name: str
    description: str = ""
    style: str = ""
    risk_per_trade: float = 0.01
    max_position_fraction: float = 0.5
    max_open_positions: int = 2
    allowed_directions: tuple[str, ...] = ("long", "short")
    signal_weights: Mapping[str, float] = field(default_factory=dict)
    entry_threshold: float = 0.5
    stop_atr: float = 1.5
    target_atr: float = 3.0
    trailing: TrailingSpec | None = None  # without its ATR: bound when a plan is made
    max_holding_candles: int = 0
    cooldown_after_loss: int = 0
    brain: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def allows(self, direction: str) -> bool:
        return direction in self.allowed_directions

    def record(self) -> dict[str, Any]:
        """The persona as plain data (the run log's and the fingerprint's): every field
        but the file path; the trailing spec without ``atr``, which a persona never has."""
        data = asdict(self)
        data.pop("source", None)
        if data["trailing"] is not None:
            data["trailing"].pop("atr", None)
        return data

    def fingerprint(self) -> str:
        """A stable hash of everything that affects decisions (not the file path)."""
        data = self.record()
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_FLOAT_FIELDS = {
    "risk_per_trade": (0.0, 1.0),
    "max_position_fraction": (0.0, 10.0),
    "entry_threshold": (0.0, math.inf),
    "stop_atr": (0.0, math.inf),
    "target_atr": (0.0, math.inf),
}
_INT_FIELDS = {"max_open_positions": 1, "max_holding_candles": 0, "cooldown_after_loss": 0}
_KNOWN = {
    "name",
    "description",
    "style",
    "allowed_directions",
    "signal_weights",
    "trailing",
    "brain",
    *_FLOAT_FIELDS,
    *_INT_FIELDS,
}


def _err(src: str, fld: str, msg: str) -> PersonaError:
    return PersonaError(f"{src}: field '{fld}': {msg}")


def _number(src: str, fld: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(src, fld, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise _err(src, fld, f"expected a finite number, got {value!r}")
    return float(value)


# Types of the [brain] options every LLM brain understands; other keys pass through to
# the brain, which checks them itself.
_BRAIN_TEXT = ("model", "host", "base_url", "api_key", "keep_alive")
_BRAIN_POSITIVE = ("timeout", "first_call_timeout")
_BRAIN_WHOLE = {"seed": -(2**63), "num_predict": 1, "num_ctx": 1, "max_tokens": 1, "top_k": 1}
_BRAIN_RANGES = {"temperature": (0.0, 5.0), "top_p": (0.0, 1.0)}


def _brain_options(src: str, table: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in table.items():
        fld = f"brain.{key}"
        if key in _BRAIN_TEXT and not isinstance(value, str):
            raise _err(src, fld, f"expected text, got {value!r}")
        if key in _BRAIN_POSITIVE and _number(src, fld, value) <= 0:
            raise _err(src, fld, f"expected a positive number of seconds, got {value!r}")
        if key in _BRAIN_WHOLE and (
            isinstance(value, bool) or not isinstance(value, int) or value < _BRAIN_WHOLE[key]
        ):
            raise _err(src, fld, f"expected a whole number >= {_BRAIN_WHOLE[key]}, got {value!r}")
        if key in _BRAIN_RANGES:
            lo, hi = _BRAIN_RANGES[key]
            v = _number(src, fld, value)
            if not lo <= v <= hi:
                raise _err(src, fld, f"{v} is outside [{lo}, {hi}]")
    return dict(table)


def persona_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> TradingPersona:
    """Validate a parsed persona table; raises PersonaError naming the field."""
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise _err(source, unknown[0], f"unknown field (known: {', '.join(sorted(_KNOWN))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _err(source, "name", "a non-empty string is required")
    kwargs: dict[str, Any] = {"name": name.strip(), "source": source}
    for fld in ("description", "style"):
        if fld in data:
            if not isinstance(data[fld], str):
                raise _err(source, fld, f"expected text, got {data[fld]!r}")
            kwargs[fld] = data[fld].strip()
    for fld, (lo, hi) in _FLOAT_FIELDS.items():
        if fld in data:
            v = _number(source, fld, data[fld])
            if not lo < v <= hi and not (fld == "entry_threshold" and v == 0):
                raise _err(source, fld, f"{v} is outside ({lo}, {hi}]")
            kwargs[fld] = v
    for fld, lo in _INT_FIELDS.items():
        if fld in data:
            v = data[fld]
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise _err(source, fld, f"expected a whole number >= {lo}, got {v!r}")
            kwargs[fld] = v
    if "allowed_directions" in data:
        dirs = data["allowed_directions"]
        if not isinstance(dirs, list) or not dirs or any(d not in ("long", "short") for d in dirs):
            raise _err(source, "allowed_directions", f"expected a list of long/short, got {dirs!r}")
        kwargs["allowed_directions"] = tuple(dict.fromkeys(dirs))
    if "signal_weights" in data:
        weights = data["signal_weights"]
        if not isinstance(weights, Mapping):
            raise _err(source, "signal_weights", "expected a table of signal kind = weight")
        # The signals layer owns the kinds; imported here so that a persona without
        # weights loads without numpy.
        from engine.signals.registry import SIGNAL_KINDS

        parsed: dict[str, float] = {}
        for k, v in weights.items():
            if k not in SIGNAL_KINDS:
                raise _err(
                    source,
                    f"signal_weights.{k}",
                    f"unknown signal kind (known: {', '.join(SIGNAL_KINDS)})",
                )
            w = _number(source, f"signal_weights.{k}", v)
            if abs(w) > MAX_ABS_WEIGHT:
                raise _err(
                    source,
                    f"signal_weights.{k}",
                    f"{w} is outside [-{MAX_ABS_WEIGHT}, {MAX_ABS_WEIGHT}]",
                )
            parsed[str(k)] = w
        kwargs["signal_weights"] = parsed
    if "trailing" in data:
        t = data["trailing"]
        if not isinstance(t, Mapping):
            raise _err(source, "trailing", "expected a table with mode, distance, activation")
        extra = sorted(set(t) - {"mode", "distance", "activation"})
        if extra:
            raise _err(
                source, f"trailing.{extra[0]}", "unknown field (known: mode, distance, activation)"
            )
        mode = t.get("mode", "atr")
        if mode not in tuple(TrailingMode):
            raise _err(source, "trailing.mode", f"expected 'atr' or 'percent', got {mode!r}")
        dist = _number(source, "trailing.distance", t.get("distance", 1.0))
        act = _number(source, "trailing.activation", t.get("activation", 0.0))
        if dist <= 0:
            raise _err(source, "trailing.distance", f"must be > 0, got {dist}")
        if mode == "percent" and dist >= 1:
            raise _err(
                source,
                "trailing.distance",
                f"a percent trail is a fraction of the price (0.02 = 2%), must be < 1, got {dist}",
            )
        if act < 0:
            raise _err(source, "trailing.activation", f"must be >= 0, got {act}")
        kwargs["trailing"] = TrailingSpec(TrailingMode(mode), dist, act)
    if "brain" in data:
        if not isinstance(data["brain"], Mapping):
            raise _err(source, "brain", "expected a table of brain options")
        kwargs["brain"] = _brain_options(source, data["brain"])
    return TradingPersona(**kwargs)


def load_persona_file(path: str | Path) -> TradingPersona:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PersonaError(f"{path}: cannot read persona file: {exc.strerror or exc}") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise PersonaError(f"{path}: persona file is UTF-16 text; save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PersonaError(
            f"{path}: not a text persona file (byte {exc.start} is not UTF-8); expected TOML"
        ) from None
    if "\x00" in text:
        raise PersonaError(f"{path}: not a text persona file (it holds NUL bytes); expected TOML")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PersonaError(f"{path}: not valid TOML: {exc}") from None
    return persona_from_dict(data, source=str(path))


def builtin_persona_names() -> list[str]:
    """The built-ins as their names spell them (``mean-reversion``, file ``mean_reversion``)."""
    folder = resources.files(BUILTIN_PACKAGE)
    stems = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))
    return [s.replace("_", "-") for s in stems]


def builtin_file_name(name: str) -> str:
    """The file of a built-in persona: ``mean-reversion`` -> ``mean_reversion.toml``."""
    return name.strip().lower().replace("-", "_") + ".toml"


def load_persona(name_or_path: str | Path) -> TradingPersona:
    """A built-in persona by name (``mean-reversion`` and ``mean_reversion`` both name
    the file ``mean_reversion.toml``), or any TOML file by path."""
    text = str(name_or_path)
    builtins = builtin_persona_names()
    key = text.strip().lower().replace("_", "-")
    # A built-in name wins over a same-named directory in the working folder; anything
    # that looks like a path (or is an existing file) is read as a file.
    looks_like_path = text.endswith(".toml") or "/" in text or "\\" in text
    if looks_like_path or (key not in builtins and Path(text).is_file()):
        return load_persona_file(text)
    if key not in builtins:
        known = ", ".join(builtins)
        raise PersonaError(
            f"unknown persona {text!r}: built-in personas are {known}, or give a .toml path"
        )
    resource = resources.files(BUILTIN_PACKAGE) / builtin_file_name(key)
    with resources.as_file(resource) as p:
        return load_persona_file(p)


def builtin_personas() -> list[TradingPersona]:
    """Every built-in persona, in file-name order."""
    return [load_persona(name) for name in builtin_persona_names()]
