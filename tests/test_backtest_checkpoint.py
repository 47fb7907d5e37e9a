"""Step back: a rewound engine is in exactly the state that stepping forward reached."""

from __future__ import annotations

import ast
import inspect
import random
import textwrap

import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.backtest.analysis import analyse
from engine.backtest.checkpoint import RecordedBrain, Rewinder
from engine.brain.factory import make_brain
from engine.brain.persona import load_persona
from engine.data import load_many
from engine.data.sample import SAMPLE_PATHS


@pytest.fixture(scope="module")
def market():
    series = load_many([str(p) for p in SAMPLE_PATHS])
    return series, analyse(series, BacktestConfig().signal)


def engine_for(market, persona: str = "scalper", brain=None) -> BacktestEngine:
    series, analysis = market
    p = load_persona(persona)
    return BacktestEngine(series, p, brain or make_brain("rules", p), analysis=analysis)


def same(a, b) -> bool:
    """Equal records, NaN equal to NaN (warm-up indicators are NaN)."""
    return repr(a) == repr(b)


def forward(market, persona: str = "scalper", brain=None) -> list:
    engine = engine_for(market, persona, brain)
    return [engine.step() for _ in range(engine.total_steps)]


@pytest.mark.parametrize("every", [1, 7, 64])
def test_rewinding_to_random_steps_gives_the_forward_state(market, every) -> None:
    events = forward(market)
    assert sum(len(e.trades) for e in events) > 20  # the window has things to get right
    rewinder = Rewinder(engine_for(market), every=every)
    rng = random.Random(every)
    for _ in range(rewinder.engine.total_steps):
        rewinder.step()
    for k in sorted(rng.sample(range(1, len(events)), 12), reverse=True)[:6] + [
        rng.randrange(1, len(events)) for _ in range(6)
    ]:
        here = rewinder.engine.step_index
        rewound = rewinder.rewind_to(min(k, here))
        k = rewound.steps_done
        ev = rewound.event
        assert rewinder.engine.step_index == k
        assert same(ev, events[k - 1]), k
        assert ev.positions == events[k - 1].positions and ev.equity == events[k - 1].equity
        # Going on from there repeats the forward run.
        for j in range(k, min(k + 5, len(events))):
            assert same(rewinder.step(), events[j]), j


def test_back_one_step_at_a_time_and_to_the_start(market) -> None:
    events = forward(market)
    rewinder = Rewinder(engine_for(market), every=16)
    for _ in range(100):
        rewinder.step()
    for k in range(99, 0, -1):
        rewound = rewinder.back()
        assert rewound.steps_done == k and same(rewound.event, events[k - 1])
    start = rewinder.back()
    assert start.steps_done == 0 and start.event is None
    assert rewinder.engine.step_index == 0 and not rewinder.engine.broker.fills
    assert same(rewinder.step(), events[0])


def test_a_rewound_run_ends_with_the_forward_result(market) -> None:
    straight = engine_for(market)
    straight.run()
    expected = straight.result()
    rewinder = Rewinder(engine_for(market), every=100)
    for _ in range(3000):
        rewinder.step()
    rewinder.rewind_to(1234)
    while rewinder.step() is not None:
        pass
    got = rewinder.engine.result()
    assert got.trades == expected.trades and got.fills == expected.fills
    assert (got.equity_values == expected.equity_values).all()
    assert same(got.metrics, expected.metrics)


class MoodyBrain:
    """Answers differently every time it is asked (an LLM at temperature 1)."""

    name = "moody"
    model = "m1"

    def __init__(self, persona) -> None:
        self._inner = make_brain("rules", persona)
        self.calls = 0

    def decide(self, batch, portfolio, persona, on_reasoning=None):
        self.calls += 1
        decision = self._inner.decide(batch, portfolio, persona, on_reasoning)
        if self.calls % 2:  # every other call it stays out
            return type(decision)(decision.time, self.name, self.model, (), f"call {self.calls}")
        return decision


def test_a_brain_that_never_answers_the_same_is_not_asked_again(market) -> None:
    persona = load_persona("scalper")
    brain = MoodyBrain(persona)
    rewinder = Rewinder(engine_for(market, brain=brain), every=50)
    events = [rewinder.step() for _ in range(1500)]
    calls = brain.calls
    assert calls > 10 and isinstance(rewinder.engine.brain, RecordedBrain)
    assert rewinder.engine.brain.name == "moody"  # the wrapper shows the brain's name
    rewound = rewinder.rewind_to(700)
    assert same(rewound.event, events[699])
    assert brain.calls == calls  # the recorded answers were used
    for j in range(700, 1500):
        assert same(rewinder.step(), events[j]), j
    assert brain.calls == calls


def test_a_checkpoint_is_not_changed_by_what_follows_it(market) -> None:
    rewinder = Rewinder(engine_for(market), every=1000)
    events = [rewinder.step() for _ in range(2500)]
    for _ in range(3):  # restoring the same snapshot again and again
        assert same(rewinder.rewind_to(1500).event, events[1499])
        for _ in range(900):
            rewinder.step()


def test_the_snapshot_holds_every_attribute_that_reset_sets() -> None:
    """A new piece of engine state must be snapshotted too (or a step back misses it)."""
    from engine.backtest.checkpoint import STATE

    tree = ast.parse(textwrap.dedent(inspect.getsource(BacktestEngine.reset)))
    assigned = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }
    assert assigned - {"_equity"} == set(STATE)
