"""BacktestEngine and Session on hand-made markets with batches injected by hand.

These pin the engine's own rules (time, RiskGuard, review, brain failures, stepping ==
run) independently of the signals layer; tests/test_backtest_real.py runs the whole
pipeline on the real data.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from engine.backtest import BacktestConfig, BacktestEngine, BacktestError, Session
from engine.brain.persona import TradingPersona
from engine.runlog import read_run_log, write_run_log
from engine.types import Action, ExitReason, Rejection, TradePlan, TrailingSpec
from tests.test_backtest_helpers import (
    MIN,
    T0,
    ScriptedBrain,
    chaos_script,
    injected_analysis,
    random_walk,
    series,
    signal_config,
)

PERSONA = TradingPersona(
    name="tester", risk_per_trade=0.02, max_position_fraction=0.5, max_open_positions=3
)


def _config(**kw) -> BacktestConfig:
    base = dict(signal=signal_config(), fees_bps=10.0, slippage_bps=0.0)
    base.update(kw)
    return BacktestConfig(**base)


def _engine(analysis, script, config=None, persona=PERSONA, **kw) -> BacktestEngine:
    brain = script if isinstance(script, ScriptedBrain) else ScriptedBrain(script)
    return BacktestEngine([], persona, brain, config or _config(), analysis=analysis, **kw)


def _six() -> object:
    return series(
        "AAA",
        [100, 101, 102, 103, 104, 105],
        [100.5, 101.5, 102.8, 103.5, 104.5, 105.5],
        [99.5, 100.5, 101.5, 102.5, 103.5, 104.5],
        [100.8, 101.6, 102.5, 103.2, 104.1, 105.2],
    )


def _open_then_close(batch, portfolio):
    if batch.step == 1:
        return [TradePlan("AAA", Action.OPEN_LONG, size=0.5, size_mode="equity", stop_loss=95.0)]
    if batch.step == 3:
        return [TradePlan("AAA", Action.CLOSE)]
    return []


def test_decision_at_a_close_fills_at_the_next_open_hand_computed() -> None:
    analysis = injected_analysis([_six()], {1: ["AAA"], 3: ["AAA"]})
    engine = _engine(analysis, _open_then_close, _config(review_positions=False))
    events = []
    while (event := engine.step()) is not None:
        events.append(event)
    assert [e.step for e in events] == list(range(6))
    assert engine.done and engine.step_index == engine.total_steps == 6

    qty = 10_000.0 * 0.5 / 102.0
    entry_fee = qty * 102.0 * 0.001
    # decided at the close of step 1: nothing fills in step 1 itself
    assert len(events[1].decisions) == 1 and events[1].fills == ()
    assert events[1].batch is not None and events[1].batch.step == 1
    (fill,) = events[2].fills
    assert (fill.time, fill.price, fill.side, fill.reason) == (T0 + 2 * MIN, 102.0, "buy", "entry")
    assert fill.qty == pytest.approx(qty, rel=1e-12)
    assert fill.fee == pytest.approx(entry_fee, rel=1e-12)
    cash = 10_000.0 - qty * 102.0 - entry_fee
    assert events[2].cash == pytest.approx(cash, rel=1e-12)
    assert events[2].equity == pytest.approx(cash + qty * 102.5, rel=1e-12)
    assert events[3].equity == pytest.approx(cash + qty * 103.2, rel=1e-12)
    (pos,) = events[3].positions
    assert pos.instrument == "AAA" and pos.side == "long" and pos.stop_loss == 95.0
    # close decided at step 3 fills at step 4's open
    assert events[3].fills == () and events[3].trades == ()
    (exit_fill,) = events[4].fills
    (trade,) = events[4].trades
    assert (exit_fill.time, exit_fill.price, exit_fill.reason) == (T0 + 4 * MIN, 104.0, "signal")
    exit_fee = qty * 104.0 * 0.001
    assert trade.exit_reason == ExitReason.SIGNAL
    assert trade.pnl == pytest.approx(qty * 2.0 - entry_fee - exit_fee, rel=1e-12)
    final = cash + qty * 102.0 + qty * 2.0 - exit_fee
    assert events[4].equity == pytest.approx(final, rel=1e-12)
    assert events[5].equity == pytest.approx(final, rel=1e-12)
    assert events[5].positions == () and events[5].orders == ()
    result = engine.result()
    assert result.equity_values.tolist() == [e.equity for e in events]
    assert result.equity_times.tolist() == [T0 + (i + 1) * MIN for i in range(6)]
    assert result.final_equity == pytest.approx(final, rel=1e-12)
    assert result.brain_stats["calls"] == 2 and result.brain_stats["batches"] == 2


def _limits_that_never_fill(batch, portfolio):
    plan = TradePlan("AAA", Action.OPEN_LONG, size=0.5, size_mode="equity", stop_loss=95.0)
    if batch.step == 1:  # below every later low: expires after its two candles
        return [replace(plan, entry_price=98.0, expiry_candles=2)]
    if batch.step == 4:  # still pending at the end of the data: cancelled there
        return [replace(plan, entry_price=100.0)]
    return []


def test_rejections_leave_the_broker_in_events_result_and_run_log(tmp_path) -> None:
    analysis = injected_analysis([_six()], {1: ["AAA"], 4: ["AAA"]})
    config = _config(review_positions=False)
    engine = _engine(analysis, _limits_that_never_fill, config)
    events = []
    while (event := engine.step()) is not None:
        events.append(event)
    # order 1 was first fillable in candle 2, so candle 4 (open T0 + 4 min) is past it
    expired = Rejection(T0 + 4 * MIN, "AAA", 1, "expired after 2 candles")
    # the last step closes at T0 + 6 min, where the end of data cancels order 2
    cancelled = Rejection(T0 + 6 * MIN, "AAA", 2, "cancelled: end_of_data")
    assert [e.rejections for e in events] == [(), (), (), (), (expired,), (cancelled,)]
    stepped = engine.result()
    fast = _engine(analysis, _limits_that_never_fill, config).run()
    assert stepped.rejections == fast.rejections == (expired, cancelled)
    assert stepped.fills == () and stepped.trades == ()

    path = write_run_log(tmp_path / "run.jsonl", fast, persona=PERSONA, config=config)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x for x in lines if x["type"] == "rejection"] == [
        {"type": "rejection", "time": T0 + 4 * MIN, "instrument": "AAA", "order_id": 1}
        | {"reason": "expired after 2 candles"},
        {"type": "rejection", "time": T0 + 6 * MIN, "instrument": "AAA", "order_id": 2}
        | {"reason": "cancelled: end_of_data"},
    ]
    assert read_run_log(path).rejections == [expired, cancelled]


def test_step_event_lists_only_the_instruments_present_at_that_step() -> None:
    a = random_walk("AAA", 8, 1)
    b = random_walk("BBB", 8, 2, drop=[3, 4])
    analysis = injected_analysis([a, b], {2: ["AAA", "BBB"], 3: ["AAA"]})
    engine = _engine(analysis, lambda batch, p: [])
    events = [engine.step() for _ in range(8)]
    assert engine.step() is None
    assert [c.instrument for c in events[3].candles] == ["AAA"]
    assert set(events[3].indicators) == {"AAA"}
    assert [c.instrument for c in events[2].candles] == ["AAA", "BBB"]
    assert events[2].indicators["BBB"]["close"] == events[2].candles[1].close
    assert [s.instrument for s in events[2].signals] == ["AAA", "BBB"]
    assert events[5].candles[1].close == float(b.close[3])  # BBB's 4th candle closes at step 5
    assert events[4].batch is None and events[4].signals == ()


def test_the_brain_is_asked_only_for_batches_with_signals_and_for_reviews() -> None:
    walk = random_walk("AAA", 40, 3)
    analysis = injected_analysis([walk], {1: ["AAA"]}, atr={"AAA": 0.5})

    def script(batch, portfolio):
        if batch.step == 1:
            return [TradePlan("AAA", Action.OPEN_LONG, size=0.3, size_mode="equity", stop_loss=60)]
        if batch.step == 11:
            return [TradePlan("AAA", Action.CLOSE)]
        return []

    brain = ScriptedBrain(script)
    _engine(analysis, brain, _config(review_interval=5)).run()
    assert [step for step, _ in brain.calls] == [1, 6, 11]
    # a review batch carries no signals but the context of every instrument
    brain2 = ScriptedBrain(script)
    engine = _engine(analysis, brain2, _config(review_interval=5))
    events = [engine.step() for _ in range(12)]
    assert events[6].decisions and events[6].batch is None
    assert brain2.calls[1][1].positions[0].instrument == "AAA"
    brain3 = ScriptedBrain(script)
    _engine(analysis, brain3, _config(review_positions=False)).run()
    assert [step for step, _ in brain3.calls] == [1]


def test_review_interval_defaults_to_the_aggregation_window() -> None:
    assert _config(signal=signal_config(window=7)).review_steps() == 7
    assert _config(signal=signal_config(window=7), review_interval=2).review_steps() == 2


def test_a_brain_that_raises_becomes_a_hold_decision_and_the_replay_goes_on() -> None:
    walk = random_walk("AAA", 30, 4)
    analysis = injected_analysis([walk], {2: ["AAA"], 5: ["AAA"]})

    def script(batch, portfolio):
        if batch.step == 2:
            raise RuntimeError("model server went away")
        return [TradePlan("AAA", Action.OPEN_LONG, size=0.2, size_mode="equity", stop_loss=50)]

    engine = _engine(analysis, script, _config(review_positions=False))
    result = engine.run()
    first, second = result.decisions
    assert first.plans == () and first.errors == (
        "brain raised RuntimeError: model server went away",
    )
    assert first.brain == "script" and first.time == int(analysis.times[2])
    assert second.errors == () and second.plans[0].action == Action.OPEN_LONG
    assert result.fills[0].time == int(walk.open_time[6])
    assert result.brain_stats["errors"] == 1 and result.brain_stats["calls"] == 2


def test_every_decision_passes_the_risk_guard() -> None:
    analysis = injected_analysis([_six()], {1: ["AAA"]})

    def script(batch, portfolio):
        return [
            TradePlan("AAA", Action.OPEN_LONG, size=0.9, size_mode="equity", stop_loss=95.0),
            TradePlan("ZZZ", Action.OPEN_LONG, size=0.1, size_mode="equity", stop_loss=1.0),
        ]

    result = _engine(analysis, script, _config(review_positions=False)).run()
    (decision,) = result.decisions
    assert decision.plans[0].size == 0.5  # clamped to max_position_fraction
    assert decision.plans[1].action == Action.HOLD  # unknown instrument
    assert any("clamped" in c for c in decision.corrections)
    assert any("unknown instrument" in c for c in decision.corrections)
    assert result.fills[0].qty == pytest.approx(10_000 * 0.5 / 102.0, rel=1e-12)
    assert result.brain_stats["corrections"] == len(decision.corrections)


def test_broker_refusals_are_recorded_in_the_decision() -> None:
    analysis = injected_analysis([_six()], {1: ["AAA"]})
    script = lambda batch, p: [  # noqa: E731
        TradePlan("AAA", Action.OPEN_LONG, size=0.01, stop_loss=99.0)
    ]
    engine = _engine(analysis, script, _config(review_positions=False))
    # the guard lets few plans through that the broker refuses; force one
    engine.broker.submit = lambda plan, time, step, fraction, **kw: "market closed"
    result = engine.run()
    (decision,) = result.decisions
    assert result.fills == ()
    assert decision.corrections == ("broker refused open_long AAA: market closed",)
    assert result.brain_stats["refused"] == 1


def test_atr_trail_uses_the_atr_at_decision_time() -> None:
    walk = random_walk("AAA", 20, 5)
    atr = np.linspace(1.0, 2.9, 20)
    analysis = injected_analysis([walk], {4: ["AAA"]}, atr={"AAA": atr})

    def script(batch, portfolio):
        price = batch.context["AAA"].price
        return [
            TradePlan(
                "AAA",
                Action.OPEN_LONG,
                size=0.2,
                size_mode="equity",
                stop_loss=price * 0.8,
                trailing=TrailingSpec("atr", 3.0, 0.0),
            )
        ]

    engine = _engine(analysis, script, _config(review_positions=False))
    events = [engine.step() for _ in range(6)]
    assert events[4].decisions[0].plans[0].trailing.atr == atr[4]
    (pos,) = events[5].positions
    assert pos.trailing.atr == atr[4] != atr[5]


def test_on_reasoning_receives_the_brains_text() -> None:
    analysis = injected_analysis([_six()], {1: ["AAA"], 3: ["AAA"]})
    seen: list[str] = []
    _engine(analysis, lambda b, p: [], on_reasoning=seen.append).run()
    assert seen == ["step 1: 0 plan(s)", "step 3: 0 plan(s)"]


def _chaos_market(seed: int, n: int = 360):
    a = random_walk("AAA", n, seed)
    b = random_walk("BBB", n, seed + 100, start=20.0, drop=range(50, 58))
    c = random_walk("CCC", n, seed + 200, start=0.0005, drop=[0, 1, 2, 200])
    rng = np.random.default_rng(seed)
    stream_steps = n
    steps = sorted(set(rng.integers(3, stream_steps - 1, size=n // 8).tolist()))
    batches = {}
    for s in steps:
        names = [
            x for x, ser in (("AAA", a), ("BBB", b), ("CCC", c)) if T0 + s * MIN in ser.open_time
        ]
        if names:
            batches[s] = names
    atr = {
        "AAA": np.abs(a.high - a.low) + 0.05,
        "BBB": np.abs(b.high - b.low) + 0.01,
        "CCC": np.abs(c.high - c.low) + 1e-6,
    }
    return injected_analysis([a, b, c], batches, atr=atr)


LIMITED = TradingPersona(
    name="limited",
    risk_per_trade=0.02,
    max_position_fraction=0.5,
    max_open_positions=2,
    max_holding_candles=7,
    cooldown_after_loss=5,
)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize(
    ("intrabar", "persona"),
    [("stop_first", PERSONA), ("open_distance", PERSONA), ("stop_first", LIMITED)],
)
def test_stepping_equals_run_on_every_action(seed: int, intrabar: str, persona) -> None:
    analysis = _chaos_market(seed)
    config = _config(slippage_bps=5.0, review_interval=4, intrabar=intrabar)
    stepped = _engine(analysis, chaos_script(seed), config, persona=persona)
    events = []
    while (event := stepped.step()) is not None:
        events.append(event)
    a = stepped.result()
    fast = _engine(analysis, chaos_script(seed), config, persona=persona)
    b = fast.run()
    assert len(a.fills) > 10 and len(a.trades) > 5
    # the brain saw the same portfolios (trailing stops included) at the same steps
    assert stepped.brain.calls == fast.brain.calls
    assert {t.exit_reason for t in a.trades} >= {ExitReason.STOP, ExitReason.SIGNAL}
    assert a.decisions == b.decisions
    assert a.fills == b.fills
    assert a.trades == b.trades
    assert np.array_equal(a.equity_values, b.equity_values)
    assert np.array_equal(a.equity_times, b.equity_times)
    assert a.brain_stats == {**b.brain_stats, "mean_latency_s": a.brain_stats["mean_latency_s"]}
    # the events hold exactly the same record, step by step
    assert [f for e in events for f in e.fills] == list(a.fills)
    assert [d for e in events for d in e.decisions] == list(a.decisions)
    assert [t for e in events for t in e.trades] == list(a.trades)
    assert a.rejections == b.rejections and len(a.rejections) > 0
    assert [r for e in events for r in e.rejections] == list(a.rejections)
    # the equity model agrees with the broker's own valuation
    if persona is LIMITED:
        assert ExitReason.TIME_LIMIT in {t.exit_reason for t in a.trades}
        assert any("cooling down" in c for d in a.decisions for c in d.corrections)
    probe = _engine(analysis, chaos_script(seed), config, persona=persona)
    for _ in range(len(analysis)):
        event = probe.step()
        broker_equity = probe.broker.equity(analysis.prices_at(event.step))
        assert event.equity == pytest.approx(broker_equity, rel=1e-12, abs=1e-9)


def test_advance_to_gives_the_same_state_as_stepping() -> None:
    analysis = _chaos_market(9)
    config = _config(slippage_bps=5.0, review_interval=4)
    stepped = _engine(analysis, chaos_script(9), config)
    for _ in range(200):
        last = stepped.step()
    jumped = _engine(analysis, chaos_script(9), config)
    event = jumped.advance_to(199)
    assert event.step == last.step == 199
    assert (event.cash, event.equity, event.positions, event.orders) == (
        last.cash,
        last.equity,
        last.positions,
        last.orders,
    )
    assert jumped.broker.fills == stepped.broker.fills


def test_reset_starts_over_with_the_same_outcome() -> None:
    analysis = _chaos_market(7)
    engine = _engine(analysis, chaos_script(7), _config(review_interval=4))
    first = engine.run()
    assert engine.done and engine.step() is None
    engine.reset()
    assert engine.step_index == 0 and not engine.done
    second = engine.run()
    assert first.fills == second.fills and first.decisions == second.decisions


def test_progress_is_reported_up_to_the_total() -> None:
    analysis = _chaos_market(8)
    seen: list[tuple[int, int]] = []
    engine = _engine(analysis, chaos_script(8))
    first = engine.run(progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(analysis), len(analysis))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # running a finished engine again reports completion and changes nothing
    again: list[tuple[int, int]] = []
    second = engine.run(progress=lambda done, total: again.append((done, total)))
    assert again == [(len(analysis), len(analysis))]
    assert second.fills == first.fills
    assert np.array_equal(second.equity_values, first.equity_values)


def test_session_shares_the_analysis_and_keeps_brokers_apart() -> None:
    analysis = _chaos_market(11)
    personas = [PERSONA, TradingPersona(name="other", max_position_fraction=0.2)]
    made = []

    def factory(persona):
        brain = ScriptedBrain(chaos_script(11 if persona.name == "tester" else 12))
        made.append(brain)
        return brain

    config = _config(review_interval=4)
    session = Session([], personas, factory, config, analysis=analysis)
    assert list(session.engines) == ["tester", "other"]
    assert all(e.analysis is analysis for e in session.engines.values())
    assert session.engines["tester"].broker is not session.engines["other"].broker
    first = session.step()
    assert set(first) == {"tester", "other"} and first["tester"].step == 0
    results = session.run()
    alone = _engine(analysis, chaos_script(12), config, persona=personas[1]).run()
    assert results["other"].fills == alone.fills
    assert results["other"].decisions == alone.decisions
    assert results["tester"].fills != results["other"].fills
    assert session.done and session.step() == {}


def test_session_rejects_duplicate_personas() -> None:
    analysis = _chaos_market(1)
    with pytest.raises(BacktestError, match="distinct"):
        Session(
            [],
            [PERSONA, PERSONA],
            lambda p: ScriptedBrain(lambda b, q: []),
            _config(),
            analysis=analysis,
        )


def test_one_instrument_merge_is_its_own_close_times() -> None:
    from engine.data.stream import merge

    walk = random_walk("AAA", 50, 3, drop=[5, 6, 30])
    stream = merge([walk])
    assert stream.instruments == ("AAA",)
    assert np.array_equal(stream.times, walk.close_time)
    assert np.array_equal(stream.candle_index, np.arange(len(walk))[None, :])
    assert stream.candle_index.dtype == np.int64
    assert stream.series["AAA"] is walk


def test_the_personas_holding_limit_reaches_the_broker() -> None:
    walk = random_walk("AAA", 30, 6)
    analysis = injected_analysis([walk], {2: ["AAA"]})
    persona = TradingPersona(name="patient", max_position_fraction=0.5, max_holding_candles=4)

    def script(batch, portfolio):
        price = batch.context["AAA"].price
        return [
            TradePlan("AAA", Action.OPEN_LONG, size=0.2, size_mode="equity", stop_loss=price * 0.6)
        ]

    result = _engine(analysis, script, _config(review_positions=False), persona=persona).run()
    (trade,) = result.trades
    assert trade.exit_reason == ExitReason.TIME_LIMIT
    # entered at candle 3's open, out at the open of candle 3 + 4
    assert (trade.entry_time, trade.exit_time) == (int(walk.open_time[3]), int(walk.open_time[7]))


def test_step_at_maps_a_time_to_the_step_that_closes_then_or_next() -> None:
    analysis = injected_analysis([_six()], {})
    assert analysis.step_at(T0) == 0  # before the first close: the first step
    assert analysis.step_at(T0 + MIN) == 0
    assert analysis.step_at(T0 + MIN + 1) == 1
    assert analysis.step_at(T0 + 6 * MIN) == 5
    assert analysis.step_at(T0 + 7 * MIN) == 6 == len(analysis)


def test_mixing_step_advance_and_run_gives_the_same_result() -> None:
    analysis = _chaos_market(13)
    config = _config(slippage_bps=5.0, review_interval=4)
    whole = _engine(analysis, chaos_script(13), config).run()
    mixed = _engine(analysis, chaos_script(13), config)
    for _ in range(50):
        mixed.step()
    mixed.advance_to(150)
    for _ in range(30):
        mixed.step()
    result = mixed.run()
    assert result.decisions == whole.decisions
    assert result.fills == whole.fills
    assert np.array_equal(result.equity_values, whole.equity_values)
    assert result.metrics["final_equity"] == whole.metrics["final_equity"]


def test_config_errors_are_user_errors() -> None:
    with pytest.raises(BacktestError, match="review_interval must be >= 0"):
        _config(review_interval=-1)
    with pytest.raises(ValueError, match="intrabar"):
        _config(intrabar="sometimes")


def test_a_loosening_trail_adjust_is_refused_and_recorded_in_the_decision() -> None:
    analysis = injected_analysis([_six()], {1: ["AAA"], 4: ["AAA"]})
    trail = TrailingSpec("percent", 0.01)

    def script(batch, portfolio):
        if batch.step == 1:
            return [
                TradePlan(
                    "AAA",
                    Action.OPEN_LONG,
                    size=0.5,
                    size_mode="equity",
                    stop_loss=95.0,
                    trailing=trail,
                )
            ]
        if batch.step == 4:
            return [TradePlan("AAA", Action.ADJUST, trailing=TrailingSpec("percent", 0.05))]
        return []

    result = _engine(analysis, script, _config(review_positions=False)).run()
    last = result.decisions[-1]
    (note,) = [c for c in last.corrections if "trail never moves back" in c]
    # entered at 102 (step 2), extreme 104.5 by step 4: the 1% trail is at 103.455,
    # the 5% one would be at 99.275
    assert note == (
        "broker refused adjust AAA: a trail never moves back: the new trailing would give "
        "a looser trail"
    )
