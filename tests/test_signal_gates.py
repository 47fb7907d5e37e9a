"""The gates over every event at once (``gate_events``) equal the step runner's gate,
call by call, for any sequence of event codes and any cooldown."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.signals.base import Detector
from engine.signals.detector import StrategyRunner, fire_array
from engine.signals.detectors.bollinger import BollingerBreakout, BollingerConfig
from engine.signals.detectors.macd import MacdConfig, MacdDetector
from engine.signals.detectors.rsi import RsiConfig, RsiDetector
from engine.signals.detectors.stoch import StochConfig, StochCross


class OddGate(RsiDetector):
    """A gate of its own and no ``gate_events``: gated event by event."""

    def gate(self, state, code: int) -> int:
        return 1 if code % 3 == 0 else -1


def detectors(cooldown: int) -> list[Detector]:
    return [
        BollingerBreakout(BollingerConfig(cooldown=cooldown)),  # edge gate
        RsiDetector(RsiConfig(cooldown=cooldown)),  # zone gate
        MacdDetector(MacdConfig(cooldown=cooldown)),  # cross gate
        StochCross(StochConfig(cooldown=cooldown)),  # cross gate inside a zone
        OddGate(RsiConfig(cooldown=cooldown)),
    ]


def stepped(detector: Detector, codes: np.ndarray) -> list[list[int]]:
    runner = StrategyRunner(detector)
    fired = []
    for i, code in enumerate(codes.tolist()):
        kind = runner.step(i, code)
        if kind >= 0:
            fired.append([i, kind])
    return fired


@settings(max_examples=300, deadline=None)
@given(
    codes=st.lists(st.integers(0, 15), max_size=80),
    cooldown=st.integers(0, 6),
)
def test_every_gate_at_once_fires_as_the_step_runner(codes: list[int], cooldown: int) -> None:
    array = np.array(codes, dtype=np.int64)
    for detector in detectors(cooldown):
        assert fire_array(detector, array).tolist() == stepped(detector, array), detector.name


def test_a_gate_of_its_own_without_gate_events_is_gated_event_by_event() -> None:
    codes = np.array([0, 3, 1, 6, 0, 9, 2], dtype=np.int64)
    assert fire_array(OddGate(RsiConfig(cooldown=0)), codes).tolist() == [[1, 1], [3, 1], [5, 1]]
