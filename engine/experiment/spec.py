"""An experiment file: what to run. Parsing, validation, grid expansion and cell names.

    name = "stops"                       # optional, default: the file's stem
    data = ["eth.feather", "ltc.feather"]  # one instrument set named "all", or:
    [instruments]                        # named instrument sets (paths relative to this file)
    eth = ["eth.feather"]
    pair = ["eth.feather", "ltc.feather"]

    [[personas]]
    name = "momentum@rules"              # built-in name or .toml file, "@brain" optional
    brains = ["rules", "llamacpp"]       # instead of "@brain" (default ["rules"])
    [personas.grid]                      # persona fields -> values to try
    stop_atr = [1.5, 2, 3]
    entry_threshold = [0.8, 1.0]
    "trailing.distance" = [2, 3]         # nested fields with a dot

    [grid]                               # a grid every persona without its own uses

    [windows]                            # see engine.experiment.windows
    kind = "walk_forward"
    train = "10d"
    test = "5d"

    [backtest]                           # as the run command's options
    cash = 10000
    fees = 10
    slippage = 5
    intrabar = "stop_first"

    [brains.llamacpp]                    # options for one brain kind (make_brain keywords)
    n_threads = 2

    [search]
    method = "grid"                      # grid, random or optuna
    trials = 20                          # random/optuna: configurations to try
    objective = "sharpe"                 # metric to maximise (in-sample windows)
    seed = 0

    [[compare]]                          # statistics printed after the run
    a = "momentum@llamacpp"
    b = "momentum@rules"

A cell is one configuration (persona, its parameters, brain) on one instrument set in
one window; its id reads ``momentum@rules[stop_atr=1.5,entry_threshold=0.8]/pair/f02-oos``.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.brain.factory import BrainError
from engine.brain.persona import PersonaError, TradingPersona, load_persona, persona_from_dict
from engine.brain.spec import parse_persona_brain
from engine.errors import TapedeckError
from engine.experiment.windows import Window, WindowError, WindowPlan, parse_windows
from engine.fetch.store import StoreError, parse_ref, resolve_ref

OBJECTIVES = (
    "sharpe",
    "sortino",
    "calmar",
    "total_return_pct",
    "annual_return_pct",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate_pct",
    "expectancy_pct",
    "sqn",
    "net_pnl",
)
SEARCH_METHODS = ("grid", "random", "optuna")
DEFAULT_SET = "all"
_TOP_KEYS = {
    "name",
    "data",
    "instruments",
    "personas",
    "grid",
    "windows",
    "backtest",
    "brains",
    "search",
    "compare",
    "timeframe",
}
_BACKTEST_KEYS = {"cash": "initial_cash", "fees": "fees_bps", "slippage": "slippage_bps"}


class ExperimentError(TapedeckError, ValueError):
    """An experiment file that cannot be used; the message names the field."""


def fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Config:
    """One point of the grid: a persona with parameter overrides, and a brain."""

    persona: str  # as written in the file (built-in name or resolved .toml path)
    brain: str  # a brain kind
    params: tuple[tuple[str, Any], ...] = ()
    label: str = ""  # the persona's display name (its file stem or built-in name)
    model: str | None = None  # persona@brain:model

    @property
    def id(self) -> str:
        model = f":{self.model}" if self.model else ""
        head = f"{self.label or self.persona}@{self.brain}{model}"
        if not self.params:
            return head
        return head + "[" + ",".join(f"{k}={fmt_value(v)}" for k, v in self.params) + "]"

    def build_persona(self) -> TradingPersona:
        return persona_with(load_persona(self.persona), self.params)


@dataclass(frozen=True)
class Cell:
    config: Config
    instruments: str  # instrument set name
    window: Window

    @property
    def id(self) -> str:
        return f"{self.config.id}/{self.instruments}/{self.window.label}"

    @property
    def group(self) -> tuple[str, str]:
        """Cells of one group share the analysis (same candles, same signal config)."""
        return (self.instruments, self.window.label)


@dataclass(frozen=True)
class PersonaEntry:
    persona: str
    label: str
    brains: tuple[tuple[str, str | None], ...]  # (kind, model)
    grid: tuple[tuple[str, tuple[Any, ...]], ...]


@dataclass(frozen=True)
class Search:
    method: str = "grid"
    trials: int = 0
    objective: str = "sharpe"
    seed: int = 0


@dataclass(frozen=True)
class Experiment:
    name: str
    source: str
    instrument_sets: Mapping[str, tuple[str, ...]]  # set name -> absolute file paths
    personas: tuple[PersonaEntry, ...]
    windows: WindowPlan = field(default_factory=WindowPlan)
    backtest: Mapping[str, Any] = field(default_factory=dict)  # BacktestConfig keywords
    brain_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    search: Search = field(default_factory=Search)
    compare: tuple[tuple[str, str], ...] = ()
    timeframe: str | None = None

    def configs(self) -> list[Config]:
        """Every configuration of the grid, in file order (personas, brains, grid)."""
        out: list[Config] = []
        for entry in self.personas:
            keys = [k for k, _ in entry.grid]
            for brain, model in entry.brains:
                for values in itertools.product(*(v for _, v in entry.grid)):
                    params = tuple(zip(keys, values, strict=True))
                    out.append(Config(entry.persona, brain, params, entry.label, model))
        ids = [c.id for c in out]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ExperimentError(f"{self.source}: configuration {dupes[0]!r} is listed twice")
        return out

    def windows_for(self, span: tuple[int, int]) -> list[Window]:
        try:
            return self.windows.windows(span)
        except WindowError as exc:
            raise ExperimentError(f"{self.source}: {exc}") from None

    def cells(
        self, spans: Mapping[str, tuple[int, int]], configs: Sequence[Config] | None = None
    ) -> list[Cell]:
        """Every cell: configurations × instrument sets × windows (``spans``: set -> the
        candles' time span, which rolling and walk-forward windows divide)."""
        configs = self.configs() if configs is None else configs
        windows = {name: self.windows_for(spans[name]) for name in self.instrument_sets}
        return [
            Cell(config, name, window)
            for config in configs
            for name in self.instrument_sets
            for window in windows[name]
        ]

    def backtest_config(self) -> Any:
        from engine.backtest import BacktestConfig

        return BacktestConfig(**dict(self.backtest))


# ------------------------------------------------------------------------- personas
def persona_table(persona: TradingPersona) -> dict[str, Any]:
    """The persona as the TOML table that would load it."""
    data = persona.record()
    data["allowed_directions"] = list(persona.allowed_directions)
    if data["trailing"] is None:
        del data["trailing"]
    else:
        data["trailing"]["mode"] = str(
            getattr(persona.trailing.mode, "value", persona.trailing.mode)
        )
    return data


def persona_with(base: TradingPersona, params: Sequence[tuple[str, Any]]) -> TradingPersona:
    """``base`` with fields replaced (``trailing.distance`` names a nested field),
    validated like a persona file: PersonaError names the field."""
    if not params:
        return base
    data = persona_table(base)
    for key, value in params:
        head, _, tail = key.partition(".")
        if tail:
            table = data.get(head)
            if table is None:
                table = data[head] = {}
            if not isinstance(table, dict):
                raise PersonaError(f"field '{key}': {head} is not a table")
            table[tail] = value
        else:
            data[head] = value
    return persona_from_dict(data, source=base.source or base.name)


# ------------------------------------------------------------------------- parsing
def _err(source: str, fld: str, msg: str) -> ExperimentError:
    return ExperimentError(f"{source}: field '{fld}': {msg}")


def _str_list(source: str, fld: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _err(source, fld, f"expected a list of text, got {value!r}")
    return list(value)


def _paths(source: str, fld: str, value: Any, base: Path) -> tuple[str, ...]:
    out = []
    for i, text in enumerate(_str_list(source, fld, value)):
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = base / path
        if not path.exists() and parse_ref(text) is not None:  # EXCHANGE:SYMBOL: the store
            try:
                path = Path(resolve_ref(text))
            except StoreError as exc:
                raise _err(source, f"{fld}[{i}]", str(exc)) from None
        if not path.exists():
            raise _err(source, f"{fld}[{i}]", f"{text}: no such file")
        out.append(str(path.resolve()))
    return tuple(out)


def _grid(source: str, fld: str, table: Any, base: TradingPersona) -> tuple:
    if table is None:
        return ()
    if not isinstance(table, Mapping):
        raise _err(source, fld, "expected a table of persona field = [values]")
    out = []
    for key, values in table.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise _err(source, f"{fld}.{key}", "expected at least one value")
        for v in values:
            try:
                persona_with(base, [(key, v)])
            except PersonaError as exc:
                detail = str(exc).split(": ", 1)[-1]
                raise _err(source, f"{fld}.{key}", f"{v!r}: {detail}") from None
        out.append((str(key), tuple(dict.fromkeys(values))))
    return tuple(out)


def _persona_entry(source: str, i: int, item: Any, top_grid: Any, base: Path) -> PersonaEntry:
    fld = f"personas[{i}]"
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        raise _err(source, fld, "expected a name or a table with name = ...")
    extra = sorted(set(item) - {"name", "brains", "grid"})
    if extra:
        raise _err(source, f"{fld}.{extra[0]}", "unknown field (known: name, brains, grid)")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _err(source, f"{fld}.name", "a persona name or .toml path is required")
    if "brains" in item:
        if "@" in name:
            raise _err(source, f"{fld}.brains", "give the brain either as name@brain or brains")
        texts = [f"{name}@{b}" for b in _str_list(source, f"{fld}.brains", item["brains"])]
    else:
        texts = [name]
    brains = []
    for j, text in enumerate(texts):
        try:
            spec = parse_persona_brain(text)
        except BrainError as exc:
            where = f"{fld}.brains[{j}]" if "brains" in item else f"{fld}.name"
            raise _err(source, where, str(exc)) from None
        brains.append((spec.brain, spec.model))
    persona_text = spec.persona
    if persona_text.endswith(".toml") or "/" in persona_text:
        path = Path(persona_text).expanduser()
        persona_text = str((base / path).resolve() if not path.is_absolute() else path)
    try:
        persona = load_persona(persona_text)
    except PersonaError as exc:
        raise _err(source, f"{fld}.name", str(exc)) from None
    grid_table = item.get("grid", top_grid)
    grid_fld = f"{fld}.grid" if "grid" in item else "grid"
    grid = _grid(source, grid_fld, grid_table, persona)
    label = Path(persona_text).stem if persona_text.endswith(".toml") else persona.name
    return PersonaEntry(persona_text, label, tuple(dict.fromkeys(brains)), grid)


def _backtest(source: str, table: Any) -> dict[str, Any]:
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise _err(source, "backtest", "expected a table (cash, fees, slippage, intrabar)")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in _BACKTEST_KEYS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _err(source, f"backtest.{key}", f"expected a number, got {value!r}")
            if not math.isfinite(value) or value < 0 or (key == "cash" and value <= 0):
                raise _err(source, f"backtest.{key}", f"out of range: {value!r}")
            out[_BACKTEST_KEYS[key]] = float(value)
        elif key == "intrabar":
            if value not in ("stop_first", "open_distance"):
                raise _err(source, "backtest.intrabar", "expected stop_first or open_distance")
            out["intrabar"] = value
        else:
            raise _err(
                source, f"backtest.{key}", "unknown field (known: cash, fees, slippage, intrabar)"
            )
    return out


def _search(source: str, table: Any) -> Search:
    if table is None:
        return Search()
    if not isinstance(table, Mapping):
        raise _err(source, "search", "expected a table (method, trials, objective, seed)")
    extra = sorted(set(table) - {"method", "trials", "objective", "seed"})
    if extra:
        raise _err(source, f"search.{extra[0]}", "unknown field (method, trials, objective, seed)")
    method = table.get("method", "grid")
    if method not in SEARCH_METHODS:
        raise _err(source, "search.method", f"expected one of {', '.join(SEARCH_METHODS)}")
    trials = table.get("trials", 0)
    seed = table.get("seed", 0)
    for key, value in (("trials", trials), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _err(source, f"search.{key}", f"expected a whole number >= 0, got {value!r}")
    if method != "grid" and trials <= 0:
        raise _err(source, "search.trials", f"method {method} needs trials > 0")
    objective = table.get("objective", "sharpe")
    if objective not in OBJECTIVES:
        raise _err(source, "search.objective", f"expected one of {', '.join(OBJECTIVES)}")
    return Search(method, trials, objective, seed)


def _compare(source: str, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err(source, "compare", "expected [[compare]] tables with a = ... and b = ...")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"a", "b"}:
            raise _err(source, f"compare[{i}]", "expected a table with exactly a and b")
        if not all(isinstance(item[k], str) for k in ("a", "b")):
            raise _err(source, f"compare[{i}]", "a and b must be configuration names")
        out.append((item["a"], item["b"]))
    return tuple(out)


def experiment_from_dict(
    data: Mapping[str, Any], source: str = "<experiment>", base: Path | None = None
) -> Experiment:
    """Validate a parsed experiment table; ExperimentError names the field."""
    base = base or Path.cwd()
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _err(source, unknown[0], f"unknown field (known: {', '.join(sorted(_TOP_KEYS))})")
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        raise _err(source, "name", "expected text")
    if "data" in data and "instruments" in data:
        raise _err(source, "instruments", "give either data = [...] or [instruments], not both")
    if "instruments" in data:
        table = data["instruments"]
        if not isinstance(table, Mapping) or not table:
            raise _err(source, "instruments", "expected a table of set name = [files]")
        sets = {str(k): _paths(source, f"instruments.{k}", v, base) for k, v in table.items()}
        for k in sets:
            if "/" in k or not k.strip():
                raise _err(source, f"instruments.{k}", "a set name may not hold '/'")
    elif "data" in data:
        sets = {DEFAULT_SET: _paths(source, "data", data["data"], base)}
    else:
        raise _err(source, "data", "required: the candle files (or an [instruments] table)")
    personas_raw = data.get("personas")
    if personas_raw is None:
        raise _err(source, "personas", "required: at least one persona")
    if not isinstance(personas_raw, list) or not personas_raw:
        raise _err(source, "personas", "expected a list of personas")
    top_grid = data.get("grid")
    personas = tuple(
        _persona_entry(source, i, item, top_grid, base) for i, item in enumerate(personas_raw)
    )
    try:
        windows = parse_windows(data.get("windows"))
    except WindowError as exc:
        raise ExperimentError(f"{source}: {exc}") from None
    brains = data.get("brains", {})
    if not isinstance(brains, Mapping) or not all(isinstance(v, Mapping) for v in brains.values()):
        raise _err(source, "brains", "expected [brains.KIND] tables of options")
    for kind, table in brains.items():
        hosts = table.get("hosts")
        if hosts is not None and (
            not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts)
        ):
            raise _err(source, f"brains.{kind}.hosts", "expected a list of server addresses")
    timeframe = data.get("timeframe")
    if timeframe is not None and not isinstance(timeframe, str):
        raise _err(source, "timeframe", "expected text such as '5m'")
    exp = Experiment(
        name=name.strip(),
        source=source,
        instrument_sets=sets,
        personas=personas,
        windows=windows,
        backtest=_backtest(source, data.get("backtest")),
        brain_options={str(k): dict(v) for k, v in brains.items()},
        search=_search(source, data.get("search")),
        compare=_compare(source, data.get("compare")),
        timeframe=timeframe,
    )
    exp.configs()  # duplicates are an error now, not after the data is loaded
    try:
        exp.backtest_config()
    except TapedeckError as exc:
        raise _err(source, "backtest", str(exc)) from None
    return exp


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML: {exc}") from None
    return experiment_from_dict(data, source=str(path), base=path.resolve().parent)
