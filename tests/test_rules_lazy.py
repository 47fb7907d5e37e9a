"""Decisions made when read: the rule brain's hold oracle and the engine's DecisionLog.

run() records a decision the oracle knows to be holds only as what it was asked, and
makes it on first read. These tests show that the oracle never calls a decision that
acts "holds only" (hypothesis, against the brain itself), that its score bounds are
tight, and that lazy runs give the eager runs' decisions item by item, and their run
logs byte for byte, on real data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.backtest import BacktestConfig, BacktestEngine
from engine.backtest.analysis import analyse
from engine.backtest.decisions import DecisionLog, Later, Unexplained
from engine.brain.persona import builtin_persona_names, load_persona
from engine.brain.rules import (
    SCORE_TOLERANCE,
    HoldOracle,
    RuleBrain,
    score_bounds,
    score_signals,
)
from engine.data import load, load_many, select
from engine.runlog import write_run_log
from engine.types import Action, Decision, PortfolioState, Side
from tests.test_rules import DIRECTION_OF, batch, make_persona, portfolio, position, sig

INSTRUMENTS = ("AAA", "BBB", "CCC")
KINDS = sorted(DIRECTION_OF)


class _Analysis:
    """What the oracle reads of a MarketAnalysis: the batches with signals by step."""

    def __init__(self, batches: dict[int, Any]) -> None:
        self.batch_by_step = batches
        self.batch_steps = np.array(sorted(batches), dtype=np.int64)


signals_st = st.lists(
    st.tuples(
        st.sampled_from(INSTRUMENTS),
        st.sampled_from(KINDS),
        st.one_of(st.floats(0.0, 1.0), st.just(1.0), st.just(0.5)),
        st.integers(1, 3),
    ),
    max_size=8,
)
weights_st = st.dictionaries(
    st.sampled_from(KINDS),
    st.one_of(st.floats(-2.0, 2.0), st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0])),
)
book_st = st.dictionaries(
    st.sampled_from(INSTRUMENTS),
    st.tuples(
        st.sampled_from([Side.LONG, Side.SHORT]),
        st.one_of(st.none(), st.floats(80.0, 120.0)),  # stop (either side of the price)
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    signals=signals_st,
    weights=weights_st,
    book=book_st,
    threshold=st.one_of(st.floats(0.0, 3.0), st.sampled_from([0.5, 1.0, 1.5])),
    pending=st.sets(st.sampled_from(INSTRUMENTS)),
    max_open=st.integers(1, 3),
    last_loss=st.one_of(st.none(), st.integers(40, 50)),
    directions=st.sampled_from([["long", "short"], ["long"], ["short"]]),
)
def test_a_decision_called_holds_only_holds(
    signals, weights, book, threshold, pending, max_open, last_loss, directions
) -> None:
    """Whatever the book, pending orders, cooldown and limits: when the oracle says
    holds only, the brain's own decision holds everything (and a review always does)."""
    from tests.test_rules import pending_order

    persona = make_persona(
        entry_threshold=threshold,
        signal_weights=weights,
        max_open_positions=max_open,
        allowed_directions=directions,
    )
    sigs = [sig(inst, kind, strength, count) for inst, kind, strength, count in signals]
    b = batch(sigs)
    oracle = HoldOracle(_Analysis({b.step: b}) if sigs else _Analysis({}), persona)
    positions = tuple(position(inst, side, stop) for inst, (side, stop) in sorted(book.items()))
    orders = tuple(pending_order(inst) for inst in sorted(pending - book.keys()))
    pf = portfolio(positions, orders, last_loss_step=last_loss)
    brain = RuleBrain(persona)
    if sigs and oracle.holds(b.step, False, pf):
        decision = brain.decide(b, pf, persona)
        assert all(p.action is Action.HOLD for p in decision.plans), decision.reasoning
    flat_book = portfolio((), orders, last_loss_step=last_loss)
    if sigs and oracle.holds(b.step, False, flat_book):
        flat = brain.decide(b, flat_book, persona)
        assert all(p.action is Action.HOLD for p in flat.plans)
    if sigs and oracle.flat_quiet[0]:
        assert oracle.holds(b.step, False, flat_book)
    assert oracle.holds(b.step, True, pf)
    review = brain.decide(batch([], {}), pf, persona)
    assert all(p.action is Action.HOLD for p in review.plans)


@settings(max_examples=300, deadline=None)
@given(signals=signals_st, weights=weights_st)
@example(  # a small net between large opposite sums: the allowance is of the sums
    signals=[
        ("CCC", "bb_breakout_up", 1.0, 3),
        ("CCC", "bb_touch_lower", 0.9375, 2),
        ("CCC", "rsi_overbought", 0.8125, 2),
        ("CCC", "rsi_overbought", 0.9375, 2),
    ],
    weights={"bb_breakout_up": 1.8125, "bb_touch_lower": -2.0, "rsi_overbought": 0.5},
)
def test_score_bounds_hold_every_score_and_are_tight(signals, weights) -> None:
    persona = make_persona(signal_weights=weights)
    sigs = [sig(inst, kind, strength, count) for inst, kind, strength, count in signals]
    b = batch(sigs)
    bound, lean, codes = score_bounds(_Analysis({b.step: b}), persona)
    for inst in {s.instrument for s in sigs}:
        score = score_signals(inst, [s for s in sigs if s.instrument == inst], weights)
        upper = max(float(bound[0, codes[inst]]), 0.0)
        assert abs(score.score) <= upper
        side = int(lean[0, codes[inst]])
        assert side * score.score >= 0 and side * score.net >= 0  # a certain side is right
        if abs(score.net) > 1e-6:  # and a clear one is known
            assert side == (1 if score.net > 0 else -1)
        # tight: only the rounding allowance (SCORE_TOLERANCE of the terms' absolute
        # sum, and the rounding of the bound's own sums) above it
        if score.score != 0:
            terms = score.long_terms + score.short_terms + score.neutral_terms
            slack = SCORE_TOLERANCE * sum(abs(t.value) for t in terms)
            assert upper - abs(score.score) <= slack * (1 + 1e-9) + 1e-12 * (1 + upper)


def test_a_weight_that_is_not_a_number_is_never_called_quiet() -> None:
    b = batch([sig("AAA", "rsi_oversold", 0.2)])
    persona = make_persona(signal_weights={"rsi_oversold": 1.0})
    object.__setattr__(persona, "signal_weights", {"rsi_oversold": math.nan})
    oracle = HoldOracle(_Analysis({b.step: b}), persona)
    assert not oracle.flat_quiet.any()
    assert not oracle.holds(b.step, False, portfolio())


# -- the log ---------------------------------------------------------------------------


def _decision(step: int) -> Decision:
    return Decision(step, "rules", "", (), f"made for {step}")


def test_decision_log_makes_each_later_item_once_on_read() -> None:
    made: list[int] = []

    def make(later: Later) -> Decision:
        made.append(later.step)
        return _decision(later.step)

    log = DecisionLog(make)
    pf = PortfolioState(0, 0, 1.0, 1.0, ())
    log.append(_decision(1))
    log.defer(Later(2, False, pf))
    log.defer(Later(3, True, pf))
    assert len(log) == 3 and log.pending == 2 and made == []
    snap = log.snapshot()
    log.append(_decision(4))
    assert len(snap) == 3  # not affected by later appends
    assert log[-2] == _decision(3) and made == [3]
    assert log[1:] == (_decision(2), _decision(3), _decision(4)) and made == [3, 2]
    assert list(log) == [_decision(i) for i in (1, 2, 3, 4)] and made == [3, 2]
    assert log == tuple(_decision(i) for i in (1, 2, 3, 4))
    assert tuple(_decision(i) for i in (1, 2, 3, 4)) == log
    assert log != [_decision(1)] and log.pending == 0
    assert snap == [_decision(i) for i in (1, 2, 3)] and made == [3, 2, 2, 3]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), max_size=5),
    st.sampled_from([1.0, 7]),  # an int cash does not fit the typed rows
    st.one_of(st.none(), st.integers(0, 99)),
    st.booleans(),
)
def test_a_run_of_deferred_decisions_is_what_deferring_each_records(
    items, cash, last_loss, held
) -> None:
    positions = (position("AAA", Side.LONG, 90.0),) if held else ()
    book = PortfolioState(0, 0, cash, 2.0, positions, (), last_loss)
    steps, reviews = [s for s, _ in items], [r for _, r in items]
    times = [s * 60 for s in steps]
    one, run = DecisionLog(_decision_of), DecisionLog(_decision_of)
    one.append(_decision(-1))
    run.append(_decision(-1))
    for step, review, time in zip(steps, reviews, times, strict=True):
        later = PortfolioState(time, step, cash, 2.0, positions, (), last_loss)
        one.defer(Later(step, review, later))
    run.defer_run(steps, reviews, times, book)
    assert run.laters() == one.laters() and len(run) == len(one) == len(steps) + 1
    assert [type(x.portfolio.cash) for x in run.laters()] == [type(cash)] * len(steps)
    assert list(run) == list(one)


def _decision_of(later: Later) -> Decision:
    return _decision(later.step)


def test_the_oracle_told_a_batch_row_says_what_it_finds_itself(alt8) -> None:
    _, analysis = alt8
    for name in builtin_persona_names():
        persona = load_persona(name)
        oracle = HoldOracle(analysis, persona)
        first = analysis.instruments[0]
        books = [
            portfolio(),
            portfolio((position(first, Side.LONG, 1e-5),), ()),
            portfolio((position(first, Side.SHORT, 1e-5),), (), last_loss_step=3000),
        ]
        for j, step in enumerate(analysis.batch_steps.tolist()[:3000]):
            for book in books:
                assert oracle.holds(step, False, book, j) == oracle.holds(step, False, book)


def test_a_log_without_a_maker_refuses_to_defer() -> None:
    with pytest.raises(ValueError):
        DecisionLog().defer(Later(1, False, PortfolioState(0, 0, 1.0, 1.0, ())))


# -- real data -------------------------------------------------------------------------


def _deferred(log: DecisionLog) -> tuple[int, int]:
    """(decisions not made yet, of which asked with a position open), before reading."""
    items = log.laters()
    return len(items), sum(1 for i in items if i.portfolio.positions)


def _unexplained(log: DecisionLog) -> int:
    """Decisions whose reasoning is not made yet (before reading)."""
    return sum(type(item) is Unexplained for item in log._items)


@pytest.fixture(scope="module")
def alt8(alt_5m_files):
    series = load_many(alt_5m_files)
    return series, analyse(series, BacktestConfig().signal)


@pytest.mark.parametrize("name", builtin_persona_names())
def test_lazy_decisions_equal_eager_ones_item_by_item(alt8, name, tmp_path) -> None:
    series, analysis = alt8
    persona = load_persona(name)
    lazy = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis).run()
    eager = BacktestEngine(
        series, persona, RuleBrain(persona), analysis=analysis, prescore=False
    ).run()
    assert isinstance(lazy.decisions, DecisionLog)
    deferred, held = _deferred(lazy.decisions)
    assert _deferred(eager.decisions) == (0, 0)
    assert deferred > len(lazy.decisions) / 2 and held > 0
    # the decisions that act are made without their reasoning, explained when read
    assert _unexplained(lazy.decisions) == len(lazy.decisions) - deferred > 0
    assert _unexplained(eager.decisions) == 0
    assert len(lazy.decisions) == len(eager.decisions)
    for i, (a, b) in enumerate(zip(lazy.decisions, eager.decisions, strict=True)):
        assert a == b, i
    paths = [tmp_path / "lazy.jsonl", tmp_path / "eager.jsonl"]
    for path, result in zip(paths, (lazy, eager), strict=True):
        write_run_log(path, result, persona=persona, analysis=analysis)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_lazy_decisions_on_btc_minutes_equal_eager_ones(btc_1m_csv) -> None:
    full = load(btc_1m_csv)
    series = [select(full, end=int(full.open_time[20_000]))]
    analysis = analyse(series, BacktestConfig().signal)
    for name in ("momentum", "scalper"):
        persona = load_persona(name)
        lazy = BacktestEngine(series, persona, RuleBrain(persona), analysis=analysis).run()
        eager = BacktestEngine(
            series, persona, RuleBrain(persona), analysis=analysis, prescore=False
        ).run()
        deferred, held = _deferred(lazy.decisions)
        assert deferred > 0 and held > 0
        assert _unexplained(lazy.decisions) == len(lazy.decisions) - deferred > 0
        made = list(lazy.decisions)
        assert made == list(eager.decisions)
        assert _unexplained(lazy.decisions) == 0
        assert all(d.reasoning.startswith(f"{persona.name}: threshold") for d in made)
        assert lazy.brain_stats["calls"] == eager.brain_stats["calls"]


def test_a_side_lost_in_rounding_is_not_taken_for_the_position_s() -> None:
    """long 0.3 against short 0.1 + 0.2 nets -5.6e-17 in floats: the score is -1.0 with
    the confirmation, which closes a long. No side may be called certain there."""
    persona = make_persona(
        entry_threshold=1.0,
        signal_weights={
            "rsi_oversold": 1.0,
            "rsi_overbought": 1.0,
            "macd_cross_down": 1.0,
            "volume_spike": 1.0,
        },
    )
    sigs = [
        sig("AAA", "rsi_oversold", 0.3),
        sig("AAA", "rsi_overbought", 0.1),
        sig("AAA", "macd_cross_down", 0.2),
        sig("AAA", "volume_spike", 1.0),
    ]
    b = batch(sigs)
    _, lean, codes = score_bounds(_Analysis({b.step: b}), persona)
    assert lean[0, codes["AAA"]] == 0
    pf = portfolio((position("AAA", Side.LONG, 90.0),))
    decision = RuleBrain(persona).decide(b, pf, persona)
    assert decision.plans[0].action is Action.CLOSE  # (then the flip to short)
    assert not HoldOracle(_Analysis({b.step: b}), persona).holds(b.step, False, pf)


def test_the_oracle_reads_each_book_it_is_shown_not_the_last_one() -> None:
    """The oracle keeps the last book's facts (run() asks about one book for many
    steps): asked in turn about other books, and the first again, each answer is a
    fresh oracle's, and the brain's own decision agrees with it."""
    from tests.test_rules import pending_order

    b = batch([sig("AAA", "rsi_oversold", 1.0), sig("BBB", "rsi_overbought", 0.2)])
    persona = make_persona()
    oracle = HoldOracle(_Analysis({b.step: b}), persona)
    books = {
        "flat": portfolio(),
        "short AAA": portfolio((position("AAA", Side.SHORT, 104.0),)),
        "long AAA": portfolio((position("AAA", Side.LONG, 96.0),)),
        "AAA pending": portfolio(orders=(pending_order("AAA"),)),
        "cooling down": portfolio(last_loss_step=48),
    }
    expected = {"flat": False, "short AAA": False, "long AAA": True, "AAA pending": True}
    expected["cooling down"] = True
    brain = RuleBrain(persona)
    for name in [*books, *books, "short AAA", "short AAA", "flat", "long AAA"]:
        book = books[name]
        assert oracle.holds(b.step, False, book) is expected[name], name
        assert (
            HoldOracle(_Analysis({b.step: b}), persona).holds(b.step, False, book)
            is (expected[name])
        )
        acts = any(p.action != Action.HOLD for p in brain.decide(b, book).plans)
        assert acts is not expected[name], name
