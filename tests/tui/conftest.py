"""Fixtures for the TUI tests: the bundled sample, analysed once, and app builders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from rich.console import Console

from tui.app import TapedeckApp
from tui.playback import PlaybackScreen
from tui.sources import ReplaySource, ReplaySpec, load_window

SIZE = (160, 50)


@pytest.fixture(scope="session")
def sample_spec() -> ReplaySpec:
    from engine.data.sample import SAMPLE_PATHS

    return ReplaySpec(paths=[str(p) for p in SAMPLE_PATHS], persona="momentum", brain="rules")


@pytest.fixture(scope="session")
def sample_series(sample_spec):
    return load_window(sample_spec)


@pytest.fixture(scope="session")
def sample_analysis(sample_series):
    from engine.backtest import BacktestConfig
    from engine.backtest.analysis import analyse

    return analyse(sample_series, BacktestConfig().signal)


@pytest.fixture
def make_app(sample_spec, sample_series, sample_analysis) -> Callable[..., TapedeckApp]:
    def build(
        persona: str = "momentum",
        brain: str = "rules",
        speed: str = "10x",
        theme: str | None = None,
        history: bool = False,
    ) -> TapedeckApp:
        """``history``: open as the app does, with the warm-up drawn (else at step 0)."""
        source = ReplaySource(sample_series, persona, brain, analysis=sample_analysis)
        spec = ReplaySpec(sample_spec.paths, persona=persona, brain=brain, speed=speed)
        return TapedeckApp(spec, source=source, theme=theme, history=history)

    return build


async def settle(pilot, timeout: float = 30.0) -> None:
    """Wait until the screen's runner thread is idle and its result is drawn."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await pilot.pause()
    while True:
        screen = pilot.app.screen
        busy = isinstance(screen, PlaybackScreen) and (
            screen.runner.busy or screen._jump_target is not None
        )
        if not busy:
            break
        if loop.time() > deadline:
            raise TimeoutError("the engine did not finish in time")
        await asyncio.sleep(0.01)
    await pilot.pause()
    await pilot.pause()


async def jump(pilot, target: str) -> None:
    """Jump the replay screen to ``target`` (a step, time or +N) and wait until it is drawn."""
    pilot.app.screen.jump_to(target)
    await settle(pilot)


def notices(app) -> list[str]:
    """The messages of the app's notifications, oldest first."""
    return [str(n.message) for n in app._notifications]


def text_of(widget, width: int = 200) -> str:
    """The plain text a Static widget shows."""
    console = Console(width=width, no_color=True, record=True)
    console.print(widget.content)
    return console.export_text()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
