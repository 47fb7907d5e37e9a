"""One cell of a results table as a replay: its files, window, persona, brain, model,
brain options and backtest settings.

The persona of a grid point (a built-in with parameters changed) is written as a TOML
file into the results folder (``personas/``), so the replay loads it like any persona
file. The experiment's ``[backtest]`` settings (cash, fees, slippage, intrabar) and
``[brains.KIND]`` options come from ``experiment.json`` (older folders: from the
experiment file it names), so the cell replays exactly as it ran.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.atomic import write_text_atomic
from engine.experiment.spec import Config, persona_table
from engine.experiment.store import META, ResultsError, read_table


@dataclass(frozen=True)
class CellReplay:
    cell: str
    paths: list[str]
    start: str
    end: str
    persona: str  # built-in name or a .toml path
    brain: str
    model: str | None
    backtest: dict[str, Any] = field(default_factory=dict)  # BacktestConfig keywords
    brain_options: dict[str, Any] = field(default_factory=dict)  # make_brain keywords
    timeframe: str | None = None  # the experiment's timeframe for files that lack one

    @property
    def entry(self) -> str:
        """``persona@brain[:model]``, as the compare screen takes it."""
        return f"{self.persona}@{self.brain}" + (f":{self.model}" if self.model else "")


@dataclass(frozen=True)
class Settings:
    """What an experiment ran every cell with, beyond the cell's own row."""

    backtest: dict[str, Any]
    brain_options: dict[str, dict[str, Any]]
    timeframe: str | None


def experiment_settings(results: str | Path) -> Settings:
    """The ``[backtest]``, ``[brains.KIND]`` and timeframe of the experiment that wrote
    ``results``: from its ``experiment.json``, else from the experiment file it names."""
    folder = Path(results)
    meta_path = (folder if folder.is_dir() else folder.parent) / META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(
            f"{meta_path}: cannot read what the experiment ran with: {exc}"
        ) from None
    if "backtest" in meta:
        return Settings(
            dict(meta["backtest"] or {}),
            {str(k): dict(v) for k, v in (meta.get("brain_options") or {}).items()},
            meta.get("timeframe"),
        )
    from engine.experiment.spec import load_experiment

    source = meta.get("source") or ""
    if not source or not Path(source).is_file():
        raise ResultsError(
            f"{meta_path} predates the recorded [backtest] settings and its experiment file "
            f"{source or '(none)'} is gone: run the experiment again to replay its cells"
        )
    exp = load_experiment(source)
    return Settings(
        dict(exp.backtest), {k: dict(v) for k, v in exp.brain_options.items()}, exp.timeframe
    )


def find_cell(frame: pd.DataFrame, cell: str) -> dict[str, Any]:
    """A row by cell id, by unique id prefix, or by its row number in the table."""
    ids = frame["cell"].tolist()
    if cell in ids:
        return frame.iloc[ids.index(cell)].to_dict()
    if cell.isdigit() and int(cell) < len(ids):
        return frame.iloc[int(cell)].to_dict()
    matches = [i for i, c in enumerate(ids) if c.startswith(cell)]
    if len(matches) == 1:
        return frame.iloc[matches[0]].to_dict()
    if not matches:
        raise ResultsError(
            f"no cell {cell!r} in the results ({len(ids)} cells; ids or row numbers)"
        )
    raise ResultsError(f"{cell!r} names {len(matches)} cells, e.g. {ids[matches[0]]}: give one")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} to TOML")


def persona_toml(table: dict[str, Any]) -> str:
    """A persona table (``persona_table``) as TOML text: scalars first, then sub-tables."""
    lines = []
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in subtables:
        lines.append(f"\n[{key}]")
        lines += [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def _persona_of(folder: Path, row: dict[str, Any], rename: bool = False) -> str:
    """The row's persona as something ``load_persona`` reads: the built-in or file it
    came from, or (a grid point, or ``rename``: named after its configuration, so that
    several points of one persona can be compared) a TOML file in ``folder/personas``."""
    params = tuple(tuple(p) for p in json.loads(row["params"]))
    if not params and not rename:
        return str(row["persona_source"])
    config = Config(row["persona_source"], row["brain"], params, row["persona"])
    table = persona_table(config.build_persona())
    if rename:  # momentum(stop_atr=2): brackets would read as markup on screen
        name = config.id.replace(f"@{row['brain']}", "", 1)
        table["name"] = name.replace("[", "(", 1)[:-1] + ")" if params else name
    text = persona_toml(table)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = (folder if folder.is_dir() else folder.parent) / "personas"
    path.mkdir(exist_ok=True)
    target = path / f"{row['persona']}-{digest}.toml"
    if not target.exists():
        write_text_atomic(target, text)
    return str(target)


def best_configs(frame: pd.DataFrame, n: int, metric: str) -> list[str]:
    """The ``n`` configurations with the best mean ``metric`` over their evaluation
    (out-of-sample, else all) windows, best first."""
    from engine.experiment.stats import evaluation_rows

    rows, _ = evaluation_rows(frame)
    if metric not in rows:
        raise ResultsError(f"no metric {metric!r} in the results")
    means = rows.groupby("config", sort=True)[metric].mean().dropna()
    ranked = sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))
    return [config for config, _ in ranked[:n]]


def compare_cells(
    results: str | Path, n: int, metric: str, cell: str | None = None
) -> tuple[CellReplay, list[CellReplay]]:
    """The best ``n`` configurations (any brain) on one window: ``cell``'s, or the best
    configuration's last evaluation window; the replay of that cell and of one cell per
    configuration there, each persona named after its configuration."""
    from engine.experiment.stats import evaluation_rows

    folder = Path(results)
    frame = read_table(folder)
    if not 2 <= n <= 4:
        raise ResultsError(f"the compare screen shows 2 to 4 configurations, not {n}")
    best = best_configs(frame, len(frame), metric)
    if not best:
        raise ResultsError(f"no finished cell with a {metric} in {results}")
    if cell is not None:
        first = find_cell(frame, cell)
    else:
        rows, _ = evaluation_rows(frame)
        first = rows[rows["config"] == best[0]].iloc[-1].to_dict()
    same = frame[
        (frame["instruments"] == first["instruments"]) & (frame["window"] == first["window"])
    ]
    chosen = [c for c in best if c in set(same["config"])][:n]
    if len(chosen) < 2:
        raise ResultsError("fewer than two configurations ran in that window")
    settings = experiment_settings(folder)
    cells = [
        _cell_replay(folder, same[same["config"] == c].iloc[0].to_dict(), settings, rename=True)
        for c in chosen
    ]
    return _cell_replay(folder, first, settings), cells


def cell_replay(results: str | Path, cell: str) -> CellReplay:
    """What ``tapedeck replay`` needs to open ``cell`` of the results folder."""
    folder = Path(results)
    row = find_cell(read_table(folder), cell)
    return _cell_replay(folder, row, experiment_settings(folder))


def _cell_replay(
    folder: Path, row: dict[str, Any], settings: Settings, rename: bool = False
) -> CellReplay:
    from engine.experiment.cells import cell_brain_options

    model = None
    if "model" in row and isinstance(row["model"], str) and row["model"]:
        model = row["model"]
    params = tuple(tuple(p) for p in json.loads(row["params"]))
    config = Config(row["persona_source"], row["brain"], params, row["persona"], model)
    return CellReplay(
        cell=str(row["cell"]),
        paths=list(json.loads(row["data"])),
        start=str(row["window_start"]),
        end=str(row["window_end"]),
        persona=_persona_of(folder, row, rename),
        brain=str(row["brain"]),
        model=model,
        backtest=dict(settings.backtest),
        brain_options=cell_brain_options(config, settings.brain_options),
        timeframe=settings.timeframe,
    )
