"""Step back: checkpoints of a BacktestEngine and deterministic re-simulation from them.

:class:`Rewinder` drives an engine one ``step()`` at a time, as the replay does, and
snapshots the engine's mutable state every ``every`` steps. Going back to step ``k``
restores the nearest snapshot at or before ``k`` and steps forward again with ``step()``,
the very code path that got there the first time, so the state reached is the state
reached going forward: the same events, positions, orders, cash and equity.

The brain is the only part that may not repeat itself (an LLM samples, a server may be
gone). The rewinder wraps it in :class:`RecordedBrain`, which remembers every answer by
the step it was given for; re-simulated steps, and steps taken forward again after going
back, get the recorded answer and the brain is not asked again (the risk guard and the
broker process that answer as before). What a re-simulation does not restore: the
brain's own call statistics count the replayed answers again (with near-zero latency).
"""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass
from typing import Any

from engine.backtest.engine import BacktestEngine
from engine.types import Decision, StepEvent

CHECKPOINT_EVERY = 512  # steps between snapshots: at most this many re-simulated steps
# The engine's attributes that change while it steps (engine.reset() sets them). The
# equity array is not among them: a re-simulated step writes its own sample again.
STATE = (
    "broker",
    "guard",
    "step_index",
    "decisions",
    "stats",
    "_last_brain_step",
    "_last_loss_step",
    "_model_fills",
    "_eq_const",
    "_eq_coef",
    "_watch",
)


class RecordedBrain:
    """A brain that remembers its answers by step: a step it was asked at before gets the
    same answer again (until ``reset``), so history repeats after going back."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.answers: dict[int, Decision] = {}

    def __getattr__(self, name: str) -> Any:  # name, model, ... of the wrapped brain
        return getattr(self.inner, name)

    def decide(self, batch: Any, portfolio: Any, persona: Any, on_reasoning: Any = None) -> Any:
        if batch.step in self.answers:
            return self.answers[batch.step]
        decision = self.inner.decide(batch, portfolio, persona, on_reasoning)
        self.answers[batch.step] = decision
        return decision

    def reset(self) -> None:
        self.answers.clear()
        reset = getattr(self.inner, "reset", None)
        if callable(reset):
            reset()


@dataclass
class Rewound:
    """The result of going back: the engine has done ``steps_done`` steps, and ``event``
    is the last of them as stepping forward produced it (None at the very start)."""

    steps_done: int
    event: StepEvent | None


class Rewinder:
    """Steps an engine forward and back; see the module docstring."""

    def __init__(self, engine: BacktestEngine, every: int = CHECKPOINT_EVERY) -> None:
        if every < 1:
            raise ValueError(f"checkpoint interval must be at least 1, got {every}")
        self.engine = engine
        self.every = every
        if not isinstance(engine.brain, RecordedBrain):
            engine.brain = RecordedBrain(engine.brain)
        self.brain: RecordedBrain = engine.brain
        self._marks: list[int] = []  # step_index of each snapshot, ascending
        self._snapshots: dict[int, dict[str, Any]] = {}

    @property
    def step_index(self) -> int:
        return self.engine.step_index

    def step(self) -> StepEvent | None:
        """The engine's next step, snapshotting first on every ``every``-th step."""
        e = self.engine
        if e.step_index % self.every == 0 and e.step_index not in self._snapshots:
            self._save()
        return e.step()

    def reset(self) -> None:
        """Back to the first step; the snapshots stay valid (same window, same brain)."""
        self.engine.reset()

    def back(self, steps: int = 1) -> Rewound:
        """Go back ``steps`` steps (not before the first)."""
        return self.rewind_to(self.engine.step_index - steps)

    def rewind_to(self, steps_done: int) -> Rewound:
        """Leave the engine as it was after ``steps_done`` steps going forward."""
        e = self.engine
        target = max(0, min(steps_done, e.step_index))
        if target == 0:
            e.reset()
            return Rewound(0, None)
        # The last event is stepped again, so restore a snapshot from before it.
        i = bisect.bisect_right(self._marks, target - 1) - 1
        if i < 0:  # driven forward some other way: re-simulate from the start
            e.reset()
        else:
            self._restore(self._marks[i])
        event = None
        while e.step_index < target:
            event = e.step()
        return Rewound(target, event)

    def _save(self) -> None:
        e = self.engine
        state = {name: getattr(e, name) for name in STATE}
        self._snapshots[e.step_index] = copy.deepcopy(state, _shared(e))
        bisect.insort(self._marks, e.step_index)

    def _restore(self, mark: int) -> None:
        e = self.engine
        state = copy.deepcopy(self._snapshots[mark], _shared(e))
        for name, value in state.items():
            setattr(e, name, value)


def _shared(engine: BacktestEngine) -> dict[int, Any]:
    """A deepcopy memo that keeps what never changes shared: the market data, the
    persona and config, and the immutable records (fills, trades, decisions)."""
    keep: list[Any] = [engine.analysis, engine.persona, engine.config, engine.brain]
    keep.extend(engine._rows)
    keep.append(engine._dense)
    broker = engine.broker
    keep.append(broker.config)
    for arrays in broker._arrays.values():
        keep.extend(arrays)
    keep.extend(broker.fills)
    keep.extend(broker.trades)
    keep.extend(broker.rejections)
    keep.extend(engine.decisions)
    return {id(obj): obj for obj in keep}
