"""Snapshots (pytest-textual-snapshot): rule brain, bundled sample, 160x50, no timer running.

Update after an intended change of the screens with ``pytest tests/tui --snapshot-update``
and look at the SVGs under ``tests/tui/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from tests.tui.conftest import SIZE, settle


def jump(step: int):
    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.screen.jump_to(str(step))
        await settle(pilot)
        assert pilot.app.screen.steps_done == step
        assert not pilot.app.screen._timer_running

    return run_before


def test_replay_screen_after_600_steps(snap_compare, make_app) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=jump(600))


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
