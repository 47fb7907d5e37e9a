"""The rule brain deciding from a batch's signal columns (``BatchView``), as run() asks it.

run() does not make the batches the brain decides on: it hands the brain a
``BatchView`` (time, step, contexts, and the merged signals as rows read from the
columns), and the batch is made only if something reads its signals. These tests hold
the view's decision to the brain's decision on the batch itself, on every batch of real
runs, for every built-in persona, with books flat and holding positions; and show that
run() makes no batch until a decision's reasoning is read.
"""

from __future__ import annotations

import dataclasses

import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.backtest.analysis import analyse
from engine.brain.persona import builtin_persona_names, load_persona
from engine.brain.rules import RuleBrain, _rows, _view_rows
from engine.data import load, load_many
from engine.signals.aggregator import BatchList, BatchView
from engine.types import Action, Order, PortfolioState, Position, Side, TradePlan


@pytest.fixture(scope="module")
def btc_1m(btc_1m_csv):
    series = [load(btc_1m_csv)]
    return series, analyse(series, BacktestConfig().signal)


@pytest.fixture(scope="module")
def alt8(alt_5m_files):
    series = load_many(alt_5m_files)
    return series, analyse(series, BacktestConfig().signal)


def _position(name: str, side: Side, price: float, stop: float | None) -> Position:
    return Position(name, side, 1.0, price, 0, stop, None, None, None, price, 0.0, 0.1)


def _pending(name: str, price: float) -> Order:
    plan = TradePlan(name, Action.OPEN_LONG, entry_price=price, size=0.01, stop_loss=price * 0.9)
    return Order(1, name, Side.LONG, "limit", 0, plan, price, None)


def _books(view: BatchView) -> list[PortfolioState]:
    """Books to decide the batch with: flat; flat but cooling down after a loss with an
    order pending; every instrument with signals held (long and short by turns: reviews,
    tightened stops, closes and flips); only the first held (entries compete with it)."""
    names = sorted({row[0] for row in _view_rows(view)})
    price = {n: view.context[n].price for n in names}
    step, time = view.step, view.time

    def book(positions=(), pending=(), loss=None) -> PortfolioState:
        return PortfolioState(time, step, 10_000.0, 10_000.0, tuple(positions), pending, loss)

    sides = [Side.LONG, Side.SHORT]
    held = [
        _position(n, sides[i % 2], price[n], None if i % 3 else price[n] * (0.5 + i % 2))
        for i, n in enumerate(names)
    ]
    return [
        book(),
        book(pending=(_pending(names[0], price[names[0]]),), loss=step - 1),
        book(held),
        book(held[:1]),
    ]


@pytest.mark.parametrize("workload", ["btc_1m", "alt8"])
@pytest.mark.parametrize("name", builtin_persona_names())
def test_the_view_decides_as_the_batch_on_every_batch(request, workload, name) -> None:
    """For every batch with signals, every book: ``decide_unexplained`` on the view is
    ``decide`` on the batch without its reasoning (plans, rationales, confidences equal),
    without making the batch; ``decide`` on the view is ``decide`` on the batch."""
    _, analysis = request.getfixturevalue(workload)
    assert isinstance(analysis.batches, BatchList)
    persona = load_persona(name)
    brain = RuleBrain(persona)
    acted = {Action.OPEN_LONG: 0, Action.OPEN_SHORT: 0, Action.CLOSE: 0, Action.ADJUST: 0}
    steps = analysis.batch_steps.tolist()
    assert len(steps) > 1000
    for row, step in enumerate(steps):
        batch = analysis.batch_by_step[step]
        view = analysis.batch_view(step, row)
        assert isinstance(view, BatchView)
        assert (view.time, view.window_start, view.step) == (
            batch.time,
            batch.window_start,
            batch.step,
        )
        # real strengths lie in [0, 1] and counts are >= 1: the rows are the signals'
        assert _view_rows(view) == _rows(batch.signals)
        for book in _books(view):
            eager = brain.decide(batch, book)
            unexplained = brain.decide_unexplained(view, book)
            assert view._batch is None  # the decision made no batch
            assert unexplained == dataclasses.replace(eager, reasoning=""), (step, book)
            # (and on the batch itself: the Signals' rows, not the columns)
            assert brain.decide_unexplained(batch, book) == unexplained, (step, book)
            for plan in eager.plans:
                acted[plan.action] = acted.get(plan.action, 0) + 1
        assert brain.decide(view, _books(view)[2]) == brain.decide(batch, _books(view)[2])
        assert view._batch == batch  # the reasoning read the batch's signals
    # the books made the brain take every kind of action somewhere
    assert all(acted[a] > 0 for a in (Action.CLOSE, Action.ADJUST)), acted
    assert acted[Action.OPEN_LONG] + acted[Action.OPEN_SHORT] > 0, acted


def test_the_views_rows_follow_the_batches_that_hold_signals(alt8) -> None:
    """``batch_view`` by step and by row (``batch_steps`` index) give the same batch."""
    _, analysis = alt8
    steps = analysis.batch_steps.tolist()
    for row in (0, 1, len(steps) // 2, len(steps) - 1):
        by_step, by_row = analysis.batch_view(steps[row]), analysis.batch_view(steps[row], row)
        assert (by_step.step, _view_rows(by_step)) == (by_row.step, _view_rows(by_row))
        assert by_step.batch == analysis.batch_by_step[steps[row]]
    with pytest.raises(KeyError):
        analysis.batch_view(steps[0] - 1)


@pytest.mark.parametrize("name", ["scalper", "momentum"])
def test_run_makes_no_batch_until_a_reasoning_is_read(btc_1m, name, monkeypatch) -> None:
    """run() decides on views: no batch is made while it runs; reading the decisions
    makes the batches their reasoning needs, and they equal an eager run's."""
    series, analysis = btc_1m
    persona = load_persona(name)
    made: list[int] = []
    make = BatchList._make

    def counted(self, j, context=None):
        made.append(j)
        return make(self, j, context)

    monkeypatch.setattr(BatchList, "_make", counted)
    lazy = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis).run()
    assert made == [] and lazy.brain_stats["calls"] > 100
    decisions = list(lazy.decisions)
    assert made and any(p.action is not Action.HOLD for d in decisions for p in d.plans)
    eager = BacktestEngine(
        series, persona, RuleBrain(persona), analysis=analysis, prescore=False
    ).run()
    assert decisions == list(eager.decisions)
    assert lazy.trades == eager.trades
