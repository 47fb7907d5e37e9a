"""An experiment's cell in the replay (issue 15, item 6): the cell's own configuration,
its [backtest] settings, brain options and persona@brain:model included; --best across
brains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.backtest import BacktestConfig
from engine.experiment.runner import ExperimentRunner
from engine.experiment.search import run_search
from engine.experiment.spec import load_experiment
from engine.experiment.store import META, ResultsError
from tests.fake_ollama import DIGEST, FakeOllama
from tui.main import build_parser, experiment_cell_spec
from tui.sources import CompareSource, ReplaySource, ReplaySpec, load_window

MODEL = "tiny:1b"  # not the Ollama brain's default model: the suffix must be honoured
SETTINGS = {"cash": 2500.0, "fees": 30.0, "slippage": 0.0, "intrabar": "open_distance"}


@pytest.fixture(scope="module")
def eth(alt_5m_files):
    return next(f for f in alt_5m_files if f.name.startswith("ETH"))


def _toml(value: object) -> str:
    return json.dumps(value)  # numbers, strings and lists of them read the same in TOML


def _write(path: Path, eth: Path, personas: list[str], tables: str = "") -> Path:
    path.write_text(
        f'name = "cells"\ndata = [{_toml(str(eth))}]\npersonas = {_toml(personas)}\n'
        '[windows]\nkind = "fixed"\nranges = [["2018-01-12", "2018-01-15"]]\n' + tables,
        encoding="utf-8",
    )
    return path


def _run(spec: Path, out: Path):
    with ExperimentRunner(load_experiment(spec), out, workers=1, progress="never") as runner:
        run_search(runner)
        return runner.store.frame()


def _replay(out: Path, *more: str):
    args = build_parser().parse_args(["replay", "--experiment", str(out), *more])
    return experiment_cell_spec(args)


def _to_end(source) -> dict:
    while source.step() is not None:  # step by step, as the replay screen does
        pass
    return source.metrics()


def test_a_cell_replays_with_the_experiments_backtest_settings(eth, tmp_path):
    table = "[backtest]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in SETTINGS.items())
    spec = _write(tmp_path / "e.toml", eth, ["momentum@rules"], table)
    out = tmp_path / "r"
    row = _run(spec, out).iloc[0]
    assert row["n_trades"] > 0
    replay, compare = _replay(out, "--cell", "0")
    assert compare is None
    assert replay.backtest == {
        "initial_cash": 2500.0,
        "fees_bps": 30.0,
        "slippage_bps": 0.0,
        "intrabar": "open_distance",
    }
    source = ReplaySource.from_spec(replay)
    assert source.config == BacktestConfig(
        initial_cash=2500.0, fees_bps=30.0, slippage_bps=0.0, intrabar="open_distance"
    )
    assert source.initial_cash == 2500.0
    metrics = _to_end(source)
    assert metrics["total_return_pct"] == row["total_return_pct"]
    assert metrics["n_trades"] == row["n_trades"]
    assert metrics["final_equity"] == row["final_equity"]
    # the same cell with the default settings ends elsewhere: the settings count
    plain = ReplaySpec(
        replay.paths, replay.persona, replay.brain, start=replay.start, end=replay.end
    )
    assert _to_end(ReplaySource.from_spec(plain))["final_equity"] != row["final_equity"]

    # results written before the settings were recorded: read from the experiment file
    meta_path = out / META
    meta = json.loads(meta_path.read_text())
    for key in ("backtest", "brain_options", "timeframe"):
        del meta[key]
    meta_path.write_text(json.dumps(meta))
    assert _replay(out, "--cell", "0")[0].backtest == replay.backtest
    spec.unlink()  # ... and when that file is gone too, a clear error
    with pytest.raises(ResultsError, match="predates the recorded \\[backtest\\] settings"):
        _replay(out, "--cell", "0")


@pytest.fixture
def fake():
    with FakeOllama(models={MODEL: DIGEST}) as server:
        yield server


def _llm_tables(fake: FakeOllama, cache: Path) -> str:
    return (
        f"[brains.ollama]\nhosts = [{_toml(fake.url)}]\ntimeout = 5.0\n"
        f"first_call_timeout = 5.0\ncache_path = {_toml(str(cache))}\n"
    )


def test_a_cell_replays_with_its_model_and_brain_options(eth, tmp_path, fake):
    cache = tmp_path / "cache.sqlite"
    spec = _write(tmp_path / "e.toml", eth, [f"momentum@ollama:{MODEL}"], _llm_tables(fake, cache))
    out = tmp_path / "r"
    row = _run(spec, out).iloc[0]
    assert row["error"] == "" and row["brain.calls"] > 0
    asked = len(fake.requests)
    replay, _ = _replay(out, "--cell", "0")
    assert replay.brain == "ollama"
    assert replay.brain_options == {
        "ollama": {
            "host": fake.url,
            "timeout": 5.0,
            "first_call_timeout": 5.0,
            "cache_path": str(cache),
            "model": MODEL,
        }
    }
    source = ReplaySource.from_spec(replay)
    assert source.brain_label == f"ollama/{MODEL}"
    metrics = _to_end(source)
    # the same prompts as the cell's (model, timeframe): every answer from the cache
    assert len(fake.requests) == asked
    assert metrics["total_return_pct"] == row["total_return_pct"]
    assert metrics["n_trades"] == row["n_trades"]


def test_the_best_configurations_compare_across_brains(eth, tmp_path, fake):
    cache = tmp_path / "cache.sqlite"
    personas = ["momentum@rules", f"momentum@ollama:{MODEL}", "scalper@rules"]
    table = _llm_tables(fake, cache) + "[backtest]\nfees = 20.0\n"
    frame = _run(_write(tmp_path / "e.toml", eth, personas, table), tmp_path / "r")
    assert (frame["error"] == "").all() and len(frame) == 3
    replay, compare = _replay(tmp_path / "r", "--best", "3", "--metric", "total_return_pct")
    assert compare is not None and len(compare) == 3
    assert sorted(e.rsplit("@", 1)[1] for e in compare) == sorted(
        ["rules", "rules", f"ollama:{MODEL}"]
    )
    source = CompareSource(
        load_window(replay),
        compare,
        replay.brain,
        config=BacktestConfig(**replay.backtest),
        brain_options=replay.brain_options,
    )
    assert sorted(source.persona_names) == sorted(
        ["momentum@rules", f"momentum@ollama:{MODEL}", "scalper@rules"]
    )
    asked = len(fake.requests)
    while source.step() is not None:
        pass
    assert len(fake.requests) == asked  # the cell's prompts again: all cached
    rows = frame.set_index("config")
    for name, metrics in source.metrics().items():
        assert metrics["total_return_pct"] == rows.loc[name, "total_return_pct"], name
        assert metrics["n_trades"] == rows.loc[name, "n_trades"], name
