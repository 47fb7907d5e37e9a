"""Faults on screen (issue 12, items 7 and 13): a replay whose LLM server is a black hole
says the circuit breaker's message once and goes on holding; what loading repaired in
the data is a notification when the replay opens."""

from __future__ import annotations

from pathlib import Path

import pytest

import tui.replay
from engine.brain.breaker import CIRCUIT_OPEN
from engine.types import Action
from tests.fake_ollama import FakeOllama
from tests.tui.conftest import SIZE, jump, notices, settle
from tui.app import TapedeckApp
from tui.sources import ReplaySource, ReplaySpec

pytestmark = pytest.mark.anyio


async def test_a_black_hole_server_is_said_once_and_the_replay_goes_on_holding(
    sample_spec, sample_series, sample_analysis, monkeypatch
) -> None:
    # every brain error toasts at the next frame: only the breaker's own rule keeps its
    # message to one
    monkeypatch.setattr(tui.replay, "ERROR_TOAST_SECONDS", 0.0)
    with FakeOllama() as fake:
        fake.queue(*["hang"] * 50)
        timeout = {"host": fake.url, "timeout": 0.3, "first_call_timeout": 0.3, "cache": False}
        source = ReplaySource(
            sample_series,
            "momentum",
            "ollama",
            analysis=sample_analysis,
            brain_options={"ollama": timeout},
        )
        spec = ReplaySpec(sample_spec.paths, persona="momentum", brain="ollama", speed="10x")
        app = TapedeckApp(spec, source=source, history=False)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            for target in ("300", "600", "900"):  # several frames, several draws
                screen.jump_to(target)
                await settle(pilot)
                await pilot.pause(0.05)
            assert screen.steps_done == 900
            decisions = list(screen.model.decisions)
            asked = len(fake.requests)
            fake.release.set()
    # two calls of one timeout each, then the breaker: no third call
    assert asked == 2
    held = [d for d in decisions if d.errors and d.errors[0].startswith(CIRCUIT_OPEN)]
    assert len(held) >= 5 and decisions[2] is held[0]
    assert all(p.action is Action.HOLD for d in decisions for p in d.plans)
    said = [m for m in notices(app) if CIRCUIT_OPEN in m]
    assert len(said) == 1, notices(app)
    assert said[0].startswith("brain error: circuit open: ollama model phi3:mini failed 2 calls")


@pytest.fixture
def repaired_csv(tmp_path: Path) -> Path:
    from engine.data.sample import SAMPLE_PATHS

    lines = Path(SAMPLE_PATHS[0]).read_text().splitlines()[:801]
    for i in (100, 200, 300, 400):  # four rows with a negative low
        t, o, h, low, c, v = lines[i].split(",")
        lines[i] = ",".join([t, o, h, "-" + low, c, v])
    path = tmp_path / "BTC_USDT-1m.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_what_loading_repaired_is_a_notification_when_the_replay_opens(
    repaired_csv: Path,
) -> None:
    spec = ReplaySpec([str(repaired_csv)], persona="momentum", brain="rules")
    source = ReplaySource.from_spec(spec)
    assert len(source.series[0]) == 796
    app = TapedeckApp(spec, source=source, history=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        said = [m for m in notices(app) if repaired_csv.name in m]
        assert len(said) == 1, notices(app)
        assert "4 " in said[0] and "BTC" in said[0]
        screen = app.screen
        await jump(pilot, "100")
        assert screen.steps_done == 100  # the repaired data replays
