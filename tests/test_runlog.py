"""Run log: JSONL layout, round trip, determinism rules (timing left out unless asked)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from engine.brain.persona import TradingPersona
from engine.runlog import RunLogError, read_run_log, run_log_lines, write_run_log
from engine.types import (
    Action,
    Decision,
    ExitReason,
    Fill,
    Side,
    Trade,
    TradePlan,
    TrailingSpec,
)

T0 = 1_640_995_200_000_000_000
MIN = 60_000_000_000


@dataclass
class FakeResult:
    persona: str = "tester"
    brain: str = "rules"
    model: str = ""
    steps: int = 4
    decisions: tuple = ()
    fills: tuple = ()
    trades: tuple = ()
    equity_times: Any = None
    equity_values: Any = None
    metrics: dict = field(default_factory=dict)
    brain_stats: dict = field(default_factory=dict)


def _result(latency: float = 0.0123) -> FakeResult:
    plan = TradePlan(
        "BTC/USDT",
        Action.OPEN_LONG,
        size=0.01,
        stop_loss=41_000.5,
        take_profit=43_000.25,
        trailing=TrailingSpec("atr", 1.5, 0.5, atr=123.456),
        confidence=0.75,
        rationale="ema cross",
    )
    decision = Decision(
        time=T0 + MIN,
        brain="rules",
        model="",
        plans=(plan, TradePlan("ETH/USDT", Action.HOLD)),
        reasoning="score 0.8 >= 0.5",
        latency_s=latency,
        corrections=("size capped",),
        errors=(),
    )
    fills = (
        Fill(T0 + 2 * MIN, "BTC/USDT", 1, "buy", 0.1, 42_000.0, 4.2, "entry"),
        Fill(T0 + 3 * MIN, "BTC/USDT", 1, "sell", 0.1, 41_000.5, 4.1, "stop", ambiguous=True),
    )
    trade = Trade(
        "BTC/USDT",
        Side.LONG,
        T0 + 2 * MIN,
        42_000.0,
        T0 + 3 * MIN,
        41_000.5,
        0.1,
        -108.25,
        8.3,
        ExitReason.STOP,
        ambiguous=True,
    )
    return FakeResult(
        decisions=(decision,),
        fills=fills,
        trades=(trade,),
        equity_times=np.array([T0 + i * MIN for i in range(4)], dtype=np.int64),
        equity_values=np.array([10_000.0, 10_000.0, 9_995.8, 9_891.75]),
        metrics={"total_return": -0.010825, "sharpe": float("nan"), "brain_latency_s": latency},
        brain_stats={"calls": 1, "cache_hits": 0, "mean_latency_s": latency, "corrections": 1},
    )


def test_layout_order_and_types(tmp_path) -> None:
    path = write_run_log(tmp_path / "run.jsonl", _result())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds == ["config", "decision", "fill", "fill", "trade"] + ["equity"] * 4 + ["metrics"]
    assert records[0]["version"] == 1
    assert records[0]["brain"] == {"model": "", "name": "rules"}
    # NaN is not JSON: it is written as null
    assert records[-1]["metrics"]["sharpe"] is None


def test_round_trip_gives_back_the_records(tmp_path) -> None:
    result = _result(latency=0.0)
    log = read_run_log(write_run_log(tmp_path / "run.jsonl", result))
    assert tuple(log.decisions) == result.decisions
    assert tuple(log.fills) == result.fills
    assert tuple(log.trades) == result.trades
    assert log.equity_times.tolist() == result.equity_times.tolist()
    assert log.equity_values.tolist() == result.equity_values.tolist()
    assert log.brain_stats == {"calls": 1, "cache_hits": 0, "corrections": 1}
    assert log.metrics["total_return"] == -0.010825


def test_timing_is_left_out_so_identical_runs_give_identical_bytes(tmp_path) -> None:
    a = write_run_log(tmp_path / "a.jsonl", _result(latency=0.0123))
    b = write_run_log(tmp_path / "b.jsonl", _result(latency=0.9876))
    assert a.read_bytes() == b.read_bytes()
    log = read_run_log(a)
    assert log.decisions[0].latency_s == 0.0
    assert "mean_latency_s" not in log.brain_stats
    assert "brain_latency_s" not in log.metrics


def test_timing_kept_on_request(tmp_path) -> None:
    log = read_run_log(write_run_log(tmp_path / "t.jsonl", _result(0.5), timing=True))
    assert log.decisions[0].latency_s == 0.5
    assert log.brain_stats["mean_latency_s"] == 0.5


def test_equity_is_sampled_with_a_stride_that_keeps_the_last_step() -> None:
    n = 25
    result = _result()
    result.equity_times = np.arange(n, dtype=np.int64) * MIN
    result.equity_values = np.arange(n, dtype=np.float64)
    lines = list(run_log_lines(result, max_equity_samples=10))
    eq = [json.loads(x) for x in lines if '"type":"equity"' in x]
    assert [r["equity"] for r in eq] == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0]


def test_persona_is_written_without_its_path() -> None:
    persona = TradingPersona(name="calm", risk_per_trade=0.005, source="/some/where/calm.toml")
    first = json.loads(next(iter(run_log_lines(_result(), persona=persona))))
    assert first["persona"]["name"] == "calm"
    assert "source" not in first["persona"]
    assert first["persona"]["fingerprint"] == persona.fingerprint()


def test_bad_files_are_reported_with_the_line(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type":"config","version":1}\n{"type":"fill","time":1}\n')
    with pytest.raises(RunLogError, match="line 2"):
        read_run_log(path)
    path.write_text('{"type":"fill"}\n'.replace("fill", "metrics"))
    with pytest.raises(RunLogError, match="no config line"):
        read_run_log(path)
    with pytest.raises(RunLogError, match="cannot read"):
        read_run_log(tmp_path / "missing.jsonl")


def test_floats_survive_exactly(tmp_path) -> None:
    result = _result(0.0)
    result.equity_values = np.array([0.1 + 0.2, 1e-12, 123456789.123456789, math.pi])
    log = read_run_log(write_run_log(tmp_path / "f.jsonl", result))
    assert log.equity_values.tolist() == result.equity_values.tolist()
