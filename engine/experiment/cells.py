"""Running cells: each one an ordinary backtest (``BacktestEngine.run``) of its window.

The candles of every instrument set travel to a worker once (``Payload``); a worker
keeps the market analysis of the last few (instrument set, window) groups, so the
cells of one group that reach the same worker share one ``analyse`` (indicators,
signals, batches). What a cell gives back is one flat row of the results table.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import signal
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.data.errors import DataError
from engine.experiment.spec import Cell, Config
from engine.experiment.windows import Window
from engine.timeutil import to_iso
from engine.types import InstrumentSeries

ANALYSES_KEPT = 4
# metrics that describe the window rather than the outcome (the row has the window)
_SKIPPED_METRICS = {"start", "end", "initial_cash"}
NONDETERMINISTIC = ("elapsed_s", "brain.mean_latency_s")
"""Columns that measure wall-clock time: they differ between two runs of the same cell."""


@dataclass(frozen=True)
class Payload:
    """Everything a worker needs besides the cells: sent to each worker once."""

    sets: Mapping[str, Sequence[InstrumentSeries]]
    files: Mapping[str, Sequence[str]]
    backtest: Mapping[str, Any] = field(default_factory=dict)
    brain_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def load_sets(files: Mapping[str, Sequence[str]], timeframe: str | None = None) -> dict:
    """Each instrument set's candles, every file read once."""
    from engine.data import load_many

    out: dict[str, list[InstrumentSeries]] = {}
    for name, paths in files.items():
        out[name] = list(load_many(list(paths), timeframe=timeframe))
    return out


def span_of(series: Sequence[InstrumentSeries]) -> tuple[int, int]:
    """First open time and end of the last candle over the set."""
    return (
        min(int(s.open_time[0]) for s in series),
        max(int(s.close_time[-1]) for s in series),
    )


def window_series(
    series: Sequence[InstrumentSeries], start: int, end: int
) -> list[InstrumentSeries]:
    """The set's candles with ``start <= open_time < end`` (instruments with none dropped)."""
    from engine.data import select

    out = []
    for s in series:
        try:
            out.append(select(s, start=start, end=end))
        except DataError:
            continue
    return out


def window_candles(payload: Payload) -> Callable[[str, Window], int]:
    """How many candles an instrument set has in a window (all its instruments)."""
    import numpy as np

    @functools.cache
    def count(instruments: str, window: Window) -> int:
        bounds = [window.start, window.end]
        return sum(
            int(np.diff(np.searchsorted(s.open_time, bounds))[0]) for s in payload.sets[instruments]
        )

    return count


_analyses: OrderedDict[tuple, Any] = OrderedDict()
_lock = threading.Lock()


@dataclass
class AnalysisCount:
    """Analyses this process computed, and their seconds (the pool's schedule uses it)."""

    made: int = 0
    seconds: float = 0.0


analysis_count = AnalysisCount()


def _analysis(payload: Payload, cell: Cell, config: Any) -> tuple[list[InstrumentSeries], Any]:
    from engine.backtest.analysis import analyse

    w = cell.window
    key = (payload.token, cell.instruments, w.start, w.end, repr(config.signal))
    with _lock:
        hit = _analyses.get(key)
        if hit is not None:
            _analyses.move_to_end(key)
            return hit
    started = time.perf_counter()
    series = window_series(payload.sets[cell.instruments], w.start, w.end)
    if not series:
        raise DataError(f"no candles in window {w.describe()}")
    value = (series, analyse(series, config.signal, keep_batches=True))  # shared by cells
    with _lock:
        analysis_count.made += 1
        analysis_count.seconds += time.perf_counter() - started
        _analyses[key] = value
        while len(_analyses) > ANALYSES_KEPT:
            _analyses.popitem(last=False)
    return value


def cell_brain_options(
    config: Config, brain_options: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``make_brain`` keywords of a configuration: its brain's ``[brains.KIND]`` table,
    one of its hosts, its model (the replay of a cell uses them too)."""
    opts = dict(brain_options.get(config.brain, {}))
    hosts = opts.pop("hosts", None)
    if hosts:  # several LLM servers: each configuration keeps to one of them
        opts["host"] = pick_host(list(hosts), config.id)
    if config.model:
        opts["model"] = config.model
    return opts


def make_cell_brain(config: Config, persona: Any, payload: Payload, timeframe: str) -> Any:
    from engine.brain.factory import make_brain

    opts = cell_brain_options(config, payload.brain_options)
    if config.brain != "rules":
        opts.setdefault("timeframe", timeframe)  # LLM prompts count ages in candles
    return make_brain(config.brain, persona, **opts)


def pick_host(hosts: Sequence[str], key: str) -> str:
    """One of ``hosts`` for ``key``, the same on every worker and every run."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return hosts[digest % len(hosts)]


def cell_row(cell: Cell, files: Sequence[str]) -> dict[str, Any]:
    """The identifying columns of a cell's row (the same before and after it runs)."""
    c, w = cell.config, cell.window
    row: dict[str, Any] = {
        "cell": cell.id,
        "config": c.id,
        "persona": c.label,
        "brain": c.brain,
        "model": c.model or "",
        "instruments": cell.instruments,
        "window": w.label,
        "role": w.role,
        "fold": w.fold,
        "window_start": to_iso(w.start),
        "window_end": to_iso(w.end),
        "persona_source": c.persona,
        "params": json.dumps([[k, v] for k, v in c.params]),
        "data": json.dumps(list(files)),
    }
    for k, v in c.params:
        row[f"param.{k}"] = v
    return row


def _scalar(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, int | float | str):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) if isinstance(value, float) else int(value)
    return None


def run_cell(payload: Payload, cell: Cell) -> dict[str, Any]:
    """One cell as a full backtest; an error is recorded in the row, never raised."""
    from engine.backtest import BacktestConfig, BacktestEngine

    row = cell_row(cell, payload.files[cell.instruments])
    started = time.perf_counter()
    try:
        config = BacktestConfig(**dict(payload.backtest))
        series, analysis = _analysis(payload, cell, config)
        persona = cell.config.build_persona()
        brain = make_cell_brain(cell.config, persona, payload, series[0].timeframe)
        engine = BacktestEngine(series, persona, brain, config, analysis=analysis)
        result = engine.run()
    except Exception as exc:  # one broken cell must not stop an experiment
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["elapsed_s"] = time.perf_counter() - started
        return row
    for key, value in result.metrics.items():
        if key in _SKIPPED_METRICS:
            continue
        scalar = _scalar(value)
        if scalar is not None:
            row[key] = scalar
    for key, value in result.brain_stats.items():
        row[f"brain.{key}"] = _scalar(value)
    row["decisions"] = len(result.decisions)
    row["steps"] = result.steps
    row["final_equity"] = float(result.final_equity)
    row["error"] = ""
    row["elapsed_s"] = time.perf_counter() - started
    return row


def run_cells(payload: Payload, cells: Sequence[Cell]) -> list[dict[str, Any]]:
    return [run_cell(payload, cell) for cell in cells]


# ------------------------------------------------------------------------- local pool
WARM_UP_CANDLES = 600
_warmed = False


def warm_up(payload: Payload) -> None:
    """A short backtest in the parent before the pool forks, so that the compiled
    (numba) kernels are loaded once and inherited instead of loaded by every worker;
    once per process (they stay loaded)."""
    global _warmed
    if _warmed:
        return
    _warmed = True
    from engine.backtest import BacktestConfig, BacktestEngine
    from engine.brain.persona import load_persona
    from engine.brain.rules import RuleBrain

    try:
        series = next(iter(payload.sets.values()))
        end = min(int(s.open_time[min(WARM_UP_CANDLES, len(s) - 1)]) for s in series)
        part = window_series(series, min(int(s.open_time[0]) for s in series), end)
        persona = load_persona("momentum")
        config = BacktestConfig(**dict(payload.backtest))
        BacktestEngine(part, persona, RuleBrain(persona), config).run()
    except Exception:  # only a warm-up: the cells themselves report any problem
        pass


def pool_worker(conn: Any, payload: Payload) -> None:
    """A local pool's process: runs each batch of cells it receives on ``conn`` until
    ``None`` and answers ``("rows", rows, seconds, analyses made, their seconds)``, or
    ``("error", message)`` for a failure outside the cells (then ends)."""
    # Ctrl+C reaches the whole process group: the parent alone handles it (and ends us)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while (cells := conn.recv()) is not None:
            started = time.perf_counter()
            made, spent = analysis_count.made, analysis_count.seconds
            rows = run_cells(payload, cells)
            took = time.perf_counter() - started
            conn.send(
                ("rows", rows, took, analysis_count.made - made, analysis_count.seconds - spent)
            )
    except EOFError:  # the parent is gone
        return
    except BaseException as exc:  # reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
