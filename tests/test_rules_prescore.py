"""The rule brain's pre-scoring: run() skips, while flat, the batches that cannot act,
and everything it returns stays bit-identical to the run that asks the brain every time."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.backtest.analysis import analyse
from engine.brain.persona import builtin_persona_names, load_persona
from engine.brain.rules import RuleBrain, prescore
from engine.data import load, load_many, select
from engine.types import Action


def _same(a, b) -> None:
    assert a.decisions == b.decisions
    assert a.trades == b.trades
    assert a.fills == b.fills
    assert a.rejections == b.rejections
    np.testing.assert_array_equal(a.equity_values, b.equity_values)
    np.testing.assert_array_equal(a.equity_times, b.equity_times)
    assert repr(a.metrics) == repr(b.metrics)  # floats by repr: bit for bit
    sa = {k: v for k, v in a.brain_stats.items() if k != "mean_latency_s"}
    sb = {k: v for k, v in b.brain_stats.items() if k != "mean_latency_s"}
    assert sa == sb


@pytest.fixture(scope="module")
def alt8(alt_5m_files):
    series = load_many(alt_5m_files)
    return series, analyse(series, BacktestConfig().signal)


@pytest.mark.parametrize("name", builtin_persona_names())
def test_pre_scoring_changes_nothing_on_eight_instruments(alt8, name):
    series, analysis = alt8
    persona = load_persona(name)
    runs = [
        BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis, prescore=p).run()
        for p in (True, False)
    ]
    _same(*runs)
    assert len(runs[0].trades) > 0


@pytest.mark.parametrize("name", ["momentum", "conservative"])
def test_pre_scoring_changes_nothing_on_btc_minutes(btc_1m_csv, name):
    series = [load(btc_1m_csv)]
    analysis = analyse(series, BacktestConfig().signal)
    persona = load_persona(name)
    on = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis)
    off = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis, prescore=False)
    assert on._quiet is not None and on._quiet.any()  # it does skip batches here
    _same(on.run(), off.run())


def test_pre_scoring_with_a_jump_then_steps_equals_stepping(alt8):
    series, analysis = alt8
    persona = load_persona("scalper")
    jumped = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis)
    jumped.advance_to(2_000)
    while jumped.step() is not None:
        pass
    stepped = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis)
    while stepped.step() is not None:
        pass
    _same(jumped.result(), stepped.result())


def test_a_batch_marked_quiet_is_all_holds_when_flat(alt8):
    """prescore() against the brain itself, batch by batch, with an empty book."""
    from engine.types import PortfolioState

    _, analysis = alt8
    for name in builtin_persona_names():
        persona = load_persona(name)
        mask = prescore(analysis, persona)
        assert mask.shape == analysis.batch_steps.shape
        assert 0 < mask.sum() < len(mask)
        brain = RuleBrain(persona)
        for b, step in enumerate(analysis.batch_steps.tolist()[:1500]):
            batch = analysis.batch_by_step[step]
            flat = PortfolioState(batch.time, step, 1e4, 1e4, (), (), None)
            decision = brain.decide(batch, flat, persona)
            acts = any(p.action is not Action.HOLD for p in decision.plans)
            if not mask[b]:
                assert not acts, (name, step)
            elif acts is False:
                # able to act but holding: only a reason other than the score may hold
                assert all(
                    "below threshold" not in p.rationale for p in decision.plans if p.confidence
                )


def test_a_window_short_of_signals_still_runs(btc_1m_csv):
    series = [select(load(btc_1m_csv), last=300)]
    persona = load_persona("momentum")
    _same(
        BacktestEngine(series, persona, RuleBrain(persona)).run(),
        BacktestEngine(series, persona, RuleBrain(persona), prescore=False).run(),
    )
