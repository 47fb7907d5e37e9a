"""Running experiments on real data: cells equal ordinary backtests, the pool equals one
process, a killed run resumes, and a real Dask cluster gives the same table."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.brain.rules import RuleBrain
from engine.data import load_many, select
from engine.experiment.cells import NONDETERMINISTIC
from engine.experiment.runner import ExperimentRunner
from engine.experiment.schedule import chunked
from engine.experiment.search import run_search
from engine.experiment.spec import experiment_from_dict, load_experiment
from engine.experiment.store import ResultStore, read_table

REPO = Path(__file__).resolve().parent.parent


def _spec(files, **extra) -> dict:
    return {
        "name": "t",
        "instruments": {"pair": [str(f) for f in files]},
        "personas": [
            {"name": "momentum@rules", "grid": {"stop_atr": [1.5, 3.0]}},
            "scalper@rules",
        ],
        "windows": {"kind": "walk_forward", "train": "4d", "test": "3d", "step": "4d"},
        **extra,
    }


@pytest.fixture(scope="module")
def pair(alt_5m_files):
    return [f for f in alt_5m_files if f.name.startswith(("ETH", "LTC"))]


def _stable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in NONDETERMINISTIC if c in frame]).reset_index(drop=True)


def _run(spec: dict, out: Path, **kw) -> pd.DataFrame:
    exp = experiment_from_dict(spec, source="t.toml")
    with ExperimentRunner(exp, out, progress="never", **kw) as runner:
        run_search(runner)
        return runner.store.frame()


def test_a_cell_is_the_ordinary_backtest_of_its_window(pair, tmp_path):
    frame = _run(_spec(pair), tmp_path / "r", workers=1)
    # 3 configs x 4 folds (8 windows over 20 days: 4+3 days, moved on by 4 days)
    assert len(frame) == 3 * 8
    assert (frame["error"] == "").all()
    row = frame[frame["cell"] == "momentum@rules[stop_atr=1.5]/pair/f02-oos"].iloc[0]
    assert (row["window_start"], row["window_end"]) == (
        "2018-01-18T04:55:00Z",
        "2018-01-21T04:55:00Z",
    )
    series = [select(s, start=row["window_start"], end=row["window_end"]) for s in load_many(pair)]
    from engine.brain.persona import load_persona
    from engine.experiment.spec import persona_with

    persona = persona_with(load_persona("momentum"), [("stop_atr", 1.5)])
    result = BacktestEngine(series, persona, RuleBrain(persona), BacktestConfig()).run()
    assert row["total_return_pct"] == result.metrics["total_return_pct"]
    assert row["sharpe"] == result.metrics["sharpe"]
    assert row["n_trades"] == len(result.trades) > 0
    assert row["brain.calls"] == result.brain_stats["calls"]
    assert row["param.stop_atr"] == 1.5


def test_the_pool_gives_the_table_of_one_process(pair, tmp_path):
    one = _run(_spec(pair), tmp_path / "one", workers=1)
    two = _run(_spec(pair), tmp_path / "two", workers=2)
    pd.testing.assert_frame_equal(_stable(one), _stable(two))
    # the CSV holds the same rows as the Parquet file
    csv = pd.read_csv(tmp_path / "two" / "cells.csv")
    assert csv["cell"].tolist() == two["cell"].tolist()


def test_chunks_keep_a_group_together_unless_workers_would_idle(pair):
    exp = experiment_from_dict(_spec(pair), source="t.toml")
    cells = exp.cells({"pair": (1515560100 * 10**9, 1517288400 * 10**9)})
    one = chunked(cells, 1)
    assert all(len({c.group for c in chunk}) == 1 for chunk in one)
    assert len(one) == 8  # 8 windows, 3 configs each
    assert sorted(c.id for chunk in chunked(cells, 4, cap=2) for c in chunk) == sorted(
        c.id for c in cells
    )


def test_the_table_is_written_at_the_first_rows_then_at_most_every_20_writes_time(tmp_path):
    store = ResultStore(tmp_path, ["a", "b", "c"], {"name": "t"})
    store.add([{"cell": "b", "x": 1.0}])
    assert read_table(tmp_path)["cell"].tolist() == ["b"]  # at once
    store.add([{"cell": "a", "x": 2.0}])  # within 20 times the first write's time
    assert read_table(tmp_path)["cell"].tolist() == ["b"]
    store.flush(only_if_pending=True)
    assert read_table(tmp_path)["cell"].tolist() == ["a", "b"]  # in the experiment's order
    written = (tmp_path / "cells.parquet").stat().st_ino  # a rewrite renames a new file
    store.flush(only_if_pending=True)  # nothing new: not rewritten
    assert (tmp_path / "cells.parquet").stat().st_ino == written
    store._next_flush = 0.0  # as when the time has passed
    store.add([{"cell": "c", "x": 3.0}])
    assert read_table(tmp_path)["cell"].tolist() == ["a", "b", "c"]
    assert pd.read_csv(tmp_path / "cells.csv")["cell"].tolist() == ["a", "b", "c"]


def _write_spec(tmp_path: Path, files) -> Path:
    lines = [
        'name = "killed"',
        f"data = [{', '.join(repr(str(f)) for f in files)}]",
        "[[personas]]",
        'name = "momentum@rules"',
        "[personas.grid]",
        "stop_atr = [1.5, 2.0, 3.0]",
        "[[personas]]",
        'name = "scalper"',
        "[windows]",
        'kind = "rolling"',
        'size = "2d"',
        'step = "2d"',
    ]
    spec = tmp_path / "killed.toml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "experiment", *args, "--progress", "never"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kw,
    )


def test_an_experiment_killed_mid_run_resumes_without_losing_or_repeating_a_cell(pair, tmp_path):
    spec = _write_spec(tmp_path, pair)
    out = tmp_path / "results"
    # 4 configs x 10 rolling windows (2 days, every 2 days, over 20 days)
    total = len(load_experiment(spec).configs()) * 10
    proc = _cli(str(spec), "--out", str(out), "--workers", "2")
    killed_with = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "cells.parquet").exists():
            done = len(read_table(out))
            if 0 < done < total:
                os.killpg(proc.pid, signal.SIGKILL)  # the pool's processes too
                killed_with = done
                break
        time.sleep(0.01)
    proc.wait(30)
    assert killed_with is not None, "the run finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    partial = read_table(out)
    assert killed_with <= len(partial) < total  # a table written whole, never half
    assert partial["cell"].is_unique
    finished_before = dict(zip(partial["cell"], partial["total_return_pct"], strict=True))

    resumed = _cli(str(spec), "--out", str(out), "--workers", "2")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert f"{len(partial)} already in" in err.decode()
    assert f"{total - len(partial)} cells run" in err.decode()
    final = read_table(out)
    assert len(final) == total and final["cell"].is_unique
    for cell, value in finished_before.items():  # kept, not run again
        assert final.loc[final["cell"] == cell, "total_return_pct"].item() == value

    clean = _cli(str(spec), "--out", str(tmp_path / "clean"), "--workers", "1")
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err.decode()
    pd.testing.assert_frame_equal(_stable(final), _stable(read_table(tmp_path / "clean")))


@pytest.fixture()
def dask_cluster(tmp_path):
    pytest.importorskip("distributed")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    scheduler_file = tmp_path / "scheduler.json"
    common = {"cwd": REPO, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            **common,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.exists(), "the dask scheduler did not start"
        time.sleep(0.2)  # the file is written, then filled
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dask",
                        "worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--no-nanny",
                    ],
                    **common,
                )
            )
        import json

        from distributed import Client

        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):  # ours alone, started above: no graceful close needed
            p.kill()
        for p in procs:
            p.wait(30)


def test_a_dask_cluster_gives_the_table_of_the_local_run(pair, tmp_path, dask_cluster):
    spec = _spec(pair)
    local = _run(spec, tmp_path / "local", workers=2)
    remote = _run(spec, tmp_path / "cluster", cluster=dask_cluster)
    assert len(remote) == 24 and (remote["error"] == "").all()
    pd.testing.assert_frame_equal(_stable(local), _stable(remote))


def test_a_cell_opens_in_the_replay_exactly_as_it_ran(pair, tmp_path):
    import argparse

    from tui.main import build_parser, experiment_cell_spec
    from tui.sources import ReplaySource

    frame = _run(_spec(pair), tmp_path / "r", workers=1)
    cell = "momentum@rules[stop_atr=1.5]/pair/f03-oos"
    args = build_parser().parse_args(
        ["replay", "--experiment", str(tmp_path / "r"), "--cell", cell]
    )
    spec, compare = experiment_cell_spec(args)
    assert compare is None
    assert spec.persona.endswith(".toml") and spec.brain == "rules"
    source = ReplaySource.from_spec(spec)
    assert source.persona.stop_atr == 1.5
    while source.step() is not None:  # step by step, as the replay screen does
        pass
    row = frame[frame["cell"] == cell].iloc[0]
    metrics = source.metrics()
    assert metrics["total_return_pct"] == row["total_return_pct"]
    assert metrics["n_trades"] == row["n_trades"]
    # a cell by row number; a wrong id is one clear error
    by_number = argparse.Namespace(**{**vars(args), "cell": "0"})
    assert experiment_cell_spec(by_number)[0].start == frame.iloc[0]["window_start"]
    from engine.experiment.store import ResultsError

    with pytest.raises(ResultsError, match="no cell 'nope'"):
        experiment_cell_spec(argparse.Namespace(**{**vars(args), "cell": "nope"}))


def test_random_search_runs_n_configurations_of_the_grid(pair, tmp_path):
    spec = _spec(pair, search={"method": "random", "trials": 2, "seed": 5})
    frame = _run(spec, tmp_path / "r", workers=1)
    configs = list(dict.fromkeys(frame["config"]))
    assert len(configs) == 2 and len(frame) == 2 * 8
    grid = {c.id for c in experiment_from_dict(spec, source="t").configs()}
    assert set(configs) <= grid
    again = _run(spec, tmp_path / "again", workers=1)  # the seed decides
    assert list(dict.fromkeys(again["config"])) == configs


def test_optuna_chooses_configurations_by_the_in_sample_objective(pair, tmp_path):
    pytest.importorskip("optuna")
    from engine.experiment.search import objective_value

    spec = _spec(pair, search={"method": "optuna", "trials": 4, "objective": "sharpe"})
    exp = experiment_from_dict(spec, source="t.toml")
    with ExperimentRunner(exp, tmp_path / "o", workers=1, progress="never") as runner:
        ran = run_search(runner)
        frame = runner.store.frame()
    assert 1 <= len(ran) <= 4  # a configuration proposed twice runs once
    assert set(frame["config"]) == {c.id for c in ran}
    assert len(frame) == 8 * len(ran) and frame["cell"].is_unique
    rows = frame[frame["config"] == ran[0].id].to_dict("records")
    expected = np.mean([r["sharpe"] for r in rows if r["role"] == "is"])
    assert objective_value(rows, "sharpe") == pytest.approx(expected)


def test_llm_cells_spread_over_the_hosts_the_same_way_everywhere():
    from engine.experiment.cells import pick_host

    hosts = ["http://127.0.0.1:11434", "http://127.0.0.1:11435"]
    ids = [f"momentum@ollama[stop_atr={s}]" for s in range(40)]
    chosen = [pick_host(hosts, i) for i in ids]
    assert set(chosen) == set(hosts)
    assert chosen == [pick_host(hosts, i) for i in ids]


def test_the_command_prints_statistics_and_fails_clearly(pair, tmp_path, capsys):
    from engine import cli

    args = ["experiment", "--data", *map(str, pair), "--persona", "momentum"]
    args += ["--persona", "scalper@rules", "--grid", "stop_atr=1.5,3", "--walk-forward", "5d:5d"]
    args += ["--out", str(tmp_path / "cli"), "--workers", "1", "--progress", "never"]
    code = cli.main([*args, "--compare", "momentum@rules[stop_atr=3]", "scalper@rules[stop_atr=3]"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "per configuration (out-of-sample windows)" in out.out
    assert "parameter stability (return %, out-of-sample)" in out.out
    # headers in words, the share of windows with a positive return in percent
    for header in ("return % mean", "sharpe max", "windows > 0", "out-of-sample return %"):
        assert header in out.out
    assert "total_return_pct" not in out.out
    rows = [line for line in out.out.splitlines() if line.startswith("│") and "@rules[" in line]
    positive = [row.split("│")[-2].strip() for row in rows]
    assert positive and all(p.endswith("%") for p in positive[:4]), positive
    assert "momentum@rules[stop_atr=3] beat scalper@rules[stop_atr=3] in " in out.out
    assert "of 3 out-of-sample windows; mean return difference" in out.out
    assert "24 cells run" in out.err  # 4 configs x 3 folds x (in + out of sample)
    assert cli.main([*args]) == 0
    assert "24 already in" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(f'data = ["{pair[0]}"]\npersonas = ["momentum"]\n[grid]\nstop_atr = [0]\n')
    assert cli.main(["experiment", str(bad)]) == 2
    assert "field 'grid.stop_atr': 0" in capsys.readouterr().err


def test_the_best_configurations_open_side_by_side_in_compare(pair, tmp_path):
    from tui.main import build_parser, experiment_cell_spec
    from tui.sources import CompareSource, load_window

    frame = _run(_spec(pair), tmp_path / "r", workers=1)
    folder = str(tmp_path / "r")
    args = build_parser().parse_args(
        ["replay", "--experiment", folder, "--best", "3", "--metric", "total_return_pct"]
    )
    spec, personas = experiment_cell_spec(args)
    oos = frame[frame["role"] == "oos"]
    ranking = oos.groupby("config")["total_return_pct"].mean().sort_values(ascending=False)
    best = ranking.index[0]
    # the best configuration's last out-of-sample window, all three on it
    assert spec.start == oos[oos["config"] == best].iloc[-1]["window_start"]
    source = CompareSource(load_window(spec), personas, spec.brain)
    assert len(set(source.persona_names)) == 3
    while source.step() is not None:
        pass
    window = oos[oos["window_start"] == spec.start].set_index("config")
    for name, metrics in source.metrics().items():
        config = name.replace("(", "@rules[", 1)[:-1] + "]" if "(" in name else f"{name}@rules"
        assert metrics["total_return_pct"] == window.loc[config, "total_return_pct"]
    assert sorted(source.persona_names) == sorted(
        c.replace("@rules[", "(").replace("]", ")").removesuffix("@rules")
        for c in ranking.index[:3]
    )


def test_llm_cells_share_the_decision_cache_and_spread_over_servers(pair, tmp_path):
    from engine.experiment.cells import pick_host
    from tests.fake_ollama import FakeOllama

    with FakeOllama() as a, FakeOllama() as b:
        spec = {
            "name": "llm",
            "data": [str(pair[0])],
            "personas": [{"name": "momentum@ollama:phi3:mini", "grid": {"stop_atr": [1, 2, 3, 4]}}],
            "windows": {"kind": "fixed", "ranges": [["2018-01-12", "2018-01-13"]]},
            "brains": {
                "ollama": {
                    "hosts": [a.url, b.url],
                    "timeout": 5.0,
                    "cache_path": str(tmp_path / "cache.sqlite"),
                }
            },
        }
        first = _run(spec, tmp_path / "one", workers=2)
        asked = len(a.requests) + len(b.requests)
        assert (first["error"] == "").all(), first["error"].tolist()
        assert asked == first["brain.calls"].sum() > 0
        assert (first["brain.cache_hits"] == 0).all()
        hosts = {pick_host([a.url, b.url], c) for c in first["config"]}
        assert {a.url for s in [a] if s.requests} | {b.url for s in [b] if s.requests} == hosts
        # a second experiment over the same cells asks no server: every answer is cached
        second = _run(spec, tmp_path / "two", workers=2)
        assert len(a.requests) + len(b.requests) == asked
        assert (second["brain.cache_hits"] == second["brain.calls"]).all()
        counted = ["brain.cache_hits", "brain.tokens"]  # a cached answer costs no token
        pd.testing.assert_frame_equal(
            _stable(first).drop(columns=counted), _stable(second).drop(columns=counted)
        )


def test_ctrl_c_ends_the_pool_at_once_and_keeps_the_finished_cells(pair, tmp_path):
    spec = _write_spec(tmp_path, pair)
    text = spec.read_text().replace('size = "2d"', 'size = "1d"').replace('"2d"', '"3h"')
    spec.write_text(text)  # 4 configs x 153 windows: far more than a few seconds
    out = tmp_path / "results"
    proc = _cli(str(spec), "--out", str(out), "--workers", "2")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "cells.parquet").exists():
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does: the whole group
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err.decode()
    assert time.monotonic() - started < 20  # the pool's workers were ended, not awaited
    kept = read_table(out)
    assert 0 < len(kept) < 4 * 153 and kept["cell"].is_unique


def test_the_table_is_not_rewritten_more_than_once_a_second_however_fast_it_writes(
    tmp_path, monkeypatch
):
    import engine.experiment.store as store_module

    now = [100.0]
    monkeypatch.setattr(store_module.time, "monotonic", lambda: now[0])  # writes take 0 s
    store = ResultStore(tmp_path, ["a", "b", "c"], {"name": "t"})
    store.add([{"cell": "a", "x": 1.0}])
    now[0] += 0.9
    store.add([{"cell": "b", "x": 2.0}])
    assert read_table(tmp_path)["cell"].tolist() == ["a"]  # 0.9 s after the last write
    now[0] += 0.1
    store.add([{"cell": "c", "x": 3.0}])
    assert read_table(tmp_path)["cell"].tolist() == ["a", "b", "c"]  # a second after it
