"""End to end: the real ``tapedeck`` (python -m tui.main) in tmux, driven by keys, at the
smallest full layout (80x24) and at 160x48."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

STEP = re.compile(r"([\d,]+)/4,320")
CANDLE_GLYPHS = set("█▀▄│╵╷")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def wait_for(session: str, predicate, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if predicate(screen):
            return screen
        time.sleep(0.05)
    raise AssertionError(f"timed out; the screen was:\n{screen}")


def step_of(screen: str) -> int:
    m = STEP.search(screen)
    assert m, screen
    return int(m.group(1).replace(",", ""))


def chart_columns(screen: str) -> tuple[int, int]:
    """(columns of the chart's plot holding a candle glyph, plot width), read off the rows
    between the legend and the price axis."""
    lines = screen.splitlines()
    legend = next(i for i, line in enumerate(lines) if "LIVE ●" in line)
    rows = [line for line in lines[legend + 1 :] if "┤" in line]
    width = rows[0].index("┤") - 1  # after the chart's left border
    filled = {j for row in rows for j, ch in enumerate(row[1 : width + 1]) if ch in CANDLE_GLYPHS}
    return len(filled), width


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_opens_with_a_full_chart_and_moves_within_2s_of_space(size) -> None:
    session = f"tapedeck-e2e-{uuid.uuid4().hex[:8]}"
    width, height = size
    # pytest sets COLUMNS/LINES for its own output; the app must see the tmux window.
    command = (
        f"cd {shlex.quote(str(REPO_ROOT))} && env -u COLUMNS -u LINES "
        f"{shlex.quote(sys.executable)} -m tui.main replay; echo EXITED $?; sleep 30"
    )
    tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command)
    tmux("resize-window", "-t", session, "-x", str(width), "-y", str(height))
    try:
        # Opened with the warm-up history: past step 0, paused, at 100x, the chart full
        # (the frames drawn while the warm-up runs show it filling from the left).
        def full(s: str) -> bool:
            if not ("LIVE ●" in s and STEP.search(s) and "┤" in s):
                return False
            filled, plot_w = chart_columns(s)
            return plot_w >= 25 and filled >= 0.9 * plot_w

        screen = wait_for(session, full)
        opened = step_of(screen)
        assert opened > 30 and "paused" in screen and "100x" in screen
        assert "BTC/USDT" in screen

        tmux("send-keys", "-t", session, "Space")
        pressed = time.monotonic()
        wait_for(session, lambda s: "playing" in s and step_of(s) > opened, timeout=10)
        assert time.monotonic() - pressed <= 2.0
        tmux("send-keys", "-t", session, "Space")
        wait_for(session, lambda s: "paused" in s)
        time.sleep(0.3)
        paused_at = step_of(tmux("capture-pane", "-p", "-t", session))
        time.sleep(1.0)
        assert step_of(tmux("capture-pane", "-p", "-t", session)) == paused_at

        tmux("send-keys", "-t", session, "q")
        wait_for(session, lambda s: "EXITED 0" in s, timeout=20)
    finally:
        tmux("kill-session", "-t", session)
