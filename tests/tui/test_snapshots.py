"""Snapshots (pytest-textual-snapshot): rule brain, bundled sample, no timer running.

The replay screen at the three sizes of the design sketch (80x24, 120x36, 160x48), opened
as the app opens (warm-up history drawn) then moved to a fixed step; the oscillator pane's
other choices; the inspect cursor. The dialogs and the compare screen at 160x50.

Update after an intended change of the screens with ``pytest tests/tui --snapshot-update``
and look at the SVGs under ``tests/tui/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import pytest

from tests.tui.conftest import SIZE, settle


def jump(step: int):
    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.screen.jump_to(str(step))
        await settle(pilot)
        assert pilot.app.screen.steps_done == step
        assert not pilot.app.screen._timer_running

    return run_before


def opened_then(step: int, *keys: str):
    async def run_before(pilot) -> None:
        await jump(step)(pilot)
        if keys:
            await pilot.press(*keys)
            await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_replay_screen(snap_compare, make_app, size) -> None:
    app = make_app(history=True, speed="100x")
    assert snap_compare(app, terminal_size=size, run_before=opened_then(600))


@pytest.mark.parametrize(
    "size,keys",
    [((120, 36), ("o",)), ((160, 48), ("o", "o")), ((80, 24), ("o", "o", "o"))],
    ids=["macd-120x36", "stoch-160x48", "adx-80x24"],
)
def test_oscillator_pane(snap_compare, make_app, size, keys) -> None:
    app = make_app(history=True, speed="100x")
    assert snap_compare(app, terminal_size=size, run_before=opened_then(600, *keys))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_inspect_cursor(snap_compare, make_app, size) -> None:
    # Step 600, then the cursor five candles back from the latest.
    app = make_app(history=True, speed="100x")
    keys = ("i", "left", "left", "left", "left", "left")
    assert snap_compare(app, terminal_size=size, run_before=opened_then(600, *keys))


def test_replay_screen_light_theme(snap_compare, make_app) -> None:
    app = make_app(theme="tapedeck-light", persona="scalper")
    assert snap_compare(app, terminal_size=SIZE, run_before=jump(450))


def test_persona_picker(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await jump(120)(pilot)
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, make_app) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, press=["question_mark"])


def test_compare_screen(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.screen._open_compare(["momentum", "scalper", "conservative"])
        await pilot.pause()
        pilot.app.screen.jump_to("900")
        await settle(pilot)
        assert pilot.app.screen.steps_done == 900

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_decision_browser(snap_compare, make_app, size) -> None:
    # Step 600, the decision list on the latest decision but two (its audit trail below).
    app = make_app(speed="100x")
    assert snap_compare(app, terminal_size=size, run_before=opened_then(600, "d", "up", "up"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_trades_table(snap_compare, make_app, size) -> None:
    app = make_app(speed="100x")
    assert snap_compare(app, terminal_size=size, run_before=opened_then(900, "T", "up"))
