"""The whole pipeline on real data: determinism, no lookahead, stepping == run, several
instruments and personas.

Real files (../shared/data/real): the 1-minute BTC file (its first 8,000 candles keep
this quick) and the eight 5-minute altcoin files merged. Brains: the RuleBrain with the
built-in personas, default signal configuration (window 5).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from engine.backtest import BacktestConfig, BacktestEngine, Session
from engine.backtest.analysis import analyse
from engine.brain.persona import load_persona
from engine.brain.rules import RuleBrain
from engine.data import load, load_many, select
from engine.runlog import read_run_log, write_run_log

PERSONAS = ("scalper", "momentum", "mean_reversion")


@pytest.fixture(scope="module")
def btc(btc_1m_csv):
    series = load(btc_1m_csv)
    return select(series, end=int(series.open_time[8_000]))


@pytest.fixture(scope="module")
def alts(alt_5m_files):
    return load_many(alt_5m_files)


def _engine(series_list, persona_name, config=None, analysis=None) -> BacktestEngine:
    persona = load_persona(persona_name)
    return BacktestEngine(
        series_list, persona, RuleBrain(persona), config or BacktestConfig(), analysis=analysis
    )


def _stepped(engine: BacktestEngine):
    events = []
    while (event := engine.step()) is not None:
        events.append(event)
    return events, engine.result()


def _same_run(a, b) -> None:
    assert a.decisions == b.decisions
    assert a.fills == b.fills
    assert a.trades == b.trades
    assert np.array_equal(a.equity_values, b.equity_values)
    assert np.array_equal(a.equity_times, b.equity_times)


@pytest.mark.parametrize("persona", ["scalper", "momentum"])
def test_stepping_equals_run_on_btc(btc, persona) -> None:
    analysis = analyse([btc], BacktestConfig().signal)
    events, stepped = _stepped(_engine([btc], persona, analysis=analysis))
    ran = _engine([btc], persona, analysis=analysis).run()
    assert len(ran.trades) > 20
    _same_run(stepped, ran)
    assert [f for e in events for f in e.fills] == list(ran.fills)
    assert [d for e in events for d in e.decisions] == list(ran.decisions)
    assert [e.equity for e in events] == ran.equity_values.tolist()
    assert stepped.brain_stats["calls"] == ran.brain_stats["calls"]
    assert ran.brain_stats["calls"] == ran.brain_stats["batches"] + ran.brain_stats["reviews"]
    assert ran.brain_stats["batches"] == sum(1 for b in analysis.batches if b.signals)


def test_run_logs_of_two_identical_runs_are_byte_identical(btc, tmp_path) -> None:
    paths = []
    for name in ("a", "b"):
        engine = _engine([btc], "scalper")  # a fresh analysis each time too
        result = engine.run()
        path = tmp_path / f"{name}.jsonl"
        write_run_log(
            path,
            result,
            persona=engine.persona,
            config=engine.config,
            analysis=engine.analysis,
        )
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    log = read_run_log(paths[0])
    assert log.trades == list(result.trades)
    assert log.fills == list(result.fills)
    assert log.decisions == list(result.decisions)
    assert log.equity_values.tolist() == result.equity_values.tolist()
    assert log.config["data"][0]["candles"] == len(btc)
    assert log.config["persona"]["name"] == "scalper"
    assert log.config["settings"]["signal"]["window"] == engine.config.signal.window


def _prefix_equals_full(series_list, persona, prefix_steps) -> int:
    config = BacktestConfig(close_at_end=False)
    full = _engine(series_list, persona, config)
    full.advance_to(prefix_steps - 1)  # the full data, replayed up to the prefix's last step
    seen = full.result()
    end_time = int(seen.equity_times[-1])
    cut = [select(s, end=end_time) for s in series_list]  # the candles closed by then
    part = _engine(cut, persona, config).run()
    assert part.steps == seen.steps == prefix_steps
    assert len(full.analysis) > prefix_steps
    _same_run(part, seen)
    return len(part.trades)


def test_no_lookahead_on_btc(btc) -> None:
    # a prefix ending where an aggregation window closes (window 5) sees the same batches
    assert _prefix_equals_full([btc], "scalper", 5_000) > 10


def test_no_lookahead_on_eight_instruments(alts) -> None:
    assert _prefix_equals_full(alts, "momentum", 3_000) > 10


def test_eight_instruments_merged_in_a_session(alts) -> None:
    config = BacktestConfig()
    session = Session(alts, PERSONAS, lambda p: RuleBrain(p), config)
    analysis = session.analysis
    assert len(analysis.instruments) == 8 and len(analysis) == 5_760
    assert all(e.analysis is analysis for e in session.engines.values())
    # stepping the session persona by persona equals each persona's fast run
    assert list(session.engines) == ["scalper", "momentum", "mean-reversion"]
    events = {name: [] for name in session.engines}
    while step := session.step():
        for name, event in step.items():
            events[name].append(event)
    for file_name, name in zip(PERSONAS, session.engines, strict=True):
        stepped = session.engines[name].result()
        ran = _engine(alts, file_name, config, analysis=analysis).run()
        _same_run(stepped, ran)
        assert len(events[name]) == 5_760
    momentum = session.engines["momentum"].result()
    traded = Counter(t.instrument for t in momentum.trades)
    assert len(traded) >= 5, traded
    # steps where an instrument has a gap list only the instruments present there
    ada = analysis.stream.present("ADA/BTC")
    gap_step = int(np.flatnonzero(~ada)[0])
    event = events["momentum"][gap_step]
    assert "ADA/BTC" not in {c.instrument for c in event.candles}
    assert len(event.candles) == int((analysis.stream.candle_index[:, gap_step] >= 0).sum())
    assert set(event.indicators) == {c.instrument for c in event.candles}
    # the brain sees batches that span several instruments
    assert any(len({s.instrument for s in b.signals}) >= 3 for b in analysis.batches)
    # one cash wallet: equity is cash plus the open positions, at every step
    for e in events["momentum"][::97]:
        value = sum(
            p.qty * p.entry_price + p.unrealized_pnl for p in e.positions
        )  # margin (leverage 1) + unrealised PnL
        assert e.equity == pytest.approx(e.cash + value, rel=1e-9)
