"""Signals on real exchange data (../shared/data), and the ``signals`` CLI command."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from engine.cli import main
from engine.data import load, load_many
from engine.data.stream import merge
from engine.signals import (
    DEFAULT_DETECTORS,
    KINDS,
    StreamDetector,
    default_signal_config,
    detect_series,
    detect_stream,
)


@pytest.fixture(scope="module")
def alt_run(alt_5m_files: list[Path]):
    stream = merge(load_many(alt_5m_files))
    per, batches = detect_stream(stream, default_signal_config())
    return stream, per, batches


def test_eight_altcoins_batches_mix_instruments_and_flag_conflicts(alt_run) -> None:
    stream, _, batches = alt_run
    assert len(stream.instruments) == 8
    multi = [b for b in batches if len({s.instrument for s in b.signals}) >= 3]
    assert len(multi) > 100
    kinds = Counter(c.kind for b in batches for c in b.conflicts)
    assert kinds["same_instrument"] > 50 and kinds["correlated"] > 0
    for b in batches:
        views: dict[str, set[str]] = {}
        for s in b.signals:
            views.setdefault(s.instrument, set()).add(str(s.direction))
        mixed = sorted(n for n, v in views.items() if {"long", "short"} <= v)
        flagged = sorted(c.instruments[0] for c in b.conflicts if c.kind == "same_instrument")
        assert mixed == flagged
        for c in b.conflicts:
            if c.kind == "correlated":
                a, z = c.instruments
                sides = sorted("".join(sorted(views[n] - {"neutral"})) for n in (a, z))
                assert sides == ["long", "short"]
        # every instrument that has started carries its context, with the ATR
        assert all(ctx.atr == ctx.atr for ctx in b.context.values() if ctx.lookback >= 15)
        assert {s.instrument for s in b.signals} <= set(b.context)


def test_eight_altcoins_step_by_step_equals_vectorised(alt_run) -> None:
    stream, per, batches = alt_run
    sd = StreamDetector(stream.instruments, default_signal_config())
    stepped, fired = [], []
    for step in stream.steps():
        signals, batch = sd.on_step(step)
        fired.extend(signals)
        if batch is not None:
            stepped.append(batch)
    last = sd.finish()
    if last is not None:
        stepped.append(last)
    vec_signals = sorted(
        (s.time, s.instrument, s.kind, s.direction) for r in per.values() for s in r.signals
    )
    assert sorted((s.time, s.instrument, s.kind, s.direction) for s in fired) == vec_signals
    assert [(b.step, [(s.instrument, s.kind, s.count) for s in b.signals]) for b in batches] == [
        (b.step, [(s.instrument, s.kind, s.count) for s in b.signals]) for b in stepped
    ]
    assert [b.conflicts for b in batches] == [b.conflicts for b in stepped]


def test_btc_default_set_gives_batches_in_the_tens_per_240_candles(btc_1m_csv: Path) -> None:
    series = load(btc_1m_csv)
    stream = merge([series])
    per, batches = detect_stream(stream, default_signal_config())
    per_240 = len(batches) * 240 / len(series)
    assert 10 <= per_240 <= 30, per_240
    kinds = Counter(s.kind for s in per[series.instrument].signals)
    assert set(kinds) == {k for name in DEFAULT_DETECTORS for k in KINDS[name]}
    assert all(0.0 <= s.strength <= 1.0 for s in per[series.instrument].signals)


def test_gappy_file_runs_and_signals_land_on_real_candles(unittest_1m_feather: Path) -> None:
    series = load(unittest_1m_feather)
    result = detect_series(series, default_signal_config())
    close_times = set(series.close_time.tolist())
    assert result.signals and all(s.time in close_times for s in result.signals)


# -- CLI ----------------------------------------------------------------------------------


def test_cli_json_matches_the_library(alt_5m_files: list[Path], capsys) -> None:
    files = [str(p) for p in alt_5m_files[:2]]
    assert main(["signals", *files, "--json", "--window", "3", "--detectors", "rsi,bb"]) == 0
    out = json.loads(capsys.readouterr().out)
    stream = merge(load_many(files))
    config = default_signal_config().with_detectors("rsi,bb_breakout,bb_touch")
    config = dataclasses.replace(config, window=3)
    per, batches = detect_stream(stream, config)
    signals = [s for r in per.values() for s in r.signals]
    assert len(out["signals"]) == len(signals)
    assert out["batches"] == len(batches)
    assert out["candles"] == sum(len(s) for s in stream.series.values())
    assert {s["kind"] for s in out["signals"]} <= {
        "rsi_oversold",
        "rsi_overbought",
        "bb_breakout_up",
        "bb_breakout_down",
        "bb_touch_lower",
        "bb_touch_upper",
    }
    first = out["signals"][0]
    assert set(first) >= {"time", "instrument", "kind", "direction", "strength", "evidence"}
    assert [s["time_ns"] for s in out["signals"]] == sorted(s["time_ns"] for s in out["signals"])


def test_cli_text_prints_signals_and_summary(alt_5m_files: list[Path], capsys) -> None:
    assert main(["signals", str(alt_5m_files[3]), "--detectors", "rsi"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("rsi_oversold" in line and "rsi=" in line for line in lines)
    assert "batches:" in lines[-1] and "per 240 steps" in lines[-1]


def test_cli_unknown_detector_is_a_one_line_error(capsys) -> None:
    assert main(["signals", "nofile.csv", "--detectors", "rsi,nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown detector 'nonsense'" in err
