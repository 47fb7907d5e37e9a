"""TUI faults (issue 12, item 16): the command palette with PageDown/PageUp at once, a bad
--theme, a crash inside the app exits non-zero."""

from __future__ import annotations

import subprocess
import sys

import pytest
from textual.app import App, ComposeResult
from textual.widgets import OptionList

from tests.conftest import REPO_ROOT
from tests.tui.conftest import SIZE, settle
from tui.main import main

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("keys", [["pagedown"], ["pageup"], ["pagedown", "pageup", "pagedown"]])
async def test_palette_then_page_keys_at_once_do_not_crash(make_app, keys) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *keys)
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
    assert app._exception is None


class _Lists(App):
    def compose(self) -> ComposeResult:
        yield OptionList()


@pytest.mark.parametrize("action", ["action_page_down", "action_page_up"])
async def test_page_keys_before_the_option_list_is_laid_out(action: str) -> None:
    # What ctrl+p then PageDown at once does in the palette: options arrive and a page key
    # comes before the list has laid them out (Textual 8.2.8: KeyError in _move_page).
    import tui.app  # noqa: F401  (installs the guards, as the tapedeck app does)

    app = _Lists()
    async with app.run_test() as pilot:
        options = app.query_one(OptionList)
        options.add_options([f"command {i}" for i in range(60)])
        options.highlighted = 30
        getattr(options, action)()  # before any refresh
        moved = options.highlighted
        assert moved is not None and ((moved > 30) if action == "action_page_down" else moved < 30)
        await pilot.pause()
    assert app._exception is None


def test_unknown_theme_is_a_one_line_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--theme", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tapedeck: error: --theme: unknown theme 'nosuch'; choose one of ")
    assert "tapedeck-dark" in err and err.count("\n") == 1


def test_a_crash_inside_the_app_exits_non_zero(tmp_path) -> None:
    # The app is run for real (headless) with a screen whose mount raises.
    code = (
        "import sys\n"
        "import tui.replay as r\n"
        "def boom(self):\n"
        "    raise RuntimeError('boom')\n"
        "r.ReplayScreen.on_mount = boom\n"
        "from tui.main import main\n"
        "sys.exit(main(['replay', '--speed', '10x']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"TEXTUAL_HEADLESS": "1", "PATH": "/usr/bin:/bin", "TERM": "xterm"},
    )
    assert proc.returncode != 0
    assert "boom" in proc.stdout + proc.stderr
