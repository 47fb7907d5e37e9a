"""End to end: the real ``tapedeck`` (python -m tui.main) in tmux, driven by keys."""

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

STEP = re.compile(r"step ([\d,]+)/4,320")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def wait_for(session: str, predicate, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if predicate(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"timed out; the screen was:\n{screen}")


def step_of(screen: str) -> int:
    m = STEP.search(screen)
    assert m, screen
    return int(m.group(1).replace(",", ""))


def test_step_play_pause_quit_in_a_real_terminal() -> None:
    session = f"tapedeck-e2e-{uuid.uuid4().hex[:8]}"
    # pytest sets COLUMNS/LINES for its own output; the app must see the tmux window.
    command = (
        f"cd {shlex.quote(str(REPO_ROOT))} && env -u COLUMNS -u LINES "
        f"{shlex.quote(sys.executable)} -m tui.main "
        "replay --speed 1000x; echo EXITED $?; sleep 30"
    )
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", command)
    tmux("resize-window", "-t", session, "-x", "160", "-y", "50")
    try:
        screen = wait_for(session, lambda s: "step 0/4,320" in s)
        assert "persona momentum" in screen and "brain rules" in screen
        for _ in range(3):
            tmux("send-keys", "-t", session, "s")
        screen = wait_for(session, lambda s: "step 3/4,320" in s)
        assert "BTC/USDT" in screen and "paused" in screen

        tmux("send-keys", "-t", session, "Space")
        wait_for(session, lambda s: "playing" in s and step_of(s) > 8)
        tmux("send-keys", "-t", session, "Space")
        screen = wait_for(session, lambda s: "paused" in s)
        time.sleep(0.3)
        paused_at = step_of(tmux("capture-pane", "-p", "-t", session))
        time.sleep(1.0)
        assert step_of(tmux("capture-pane", "-p", "-t", session)) == paused_at
        assert paused_at > 8

        tmux("send-keys", "-t", session, "q")
        wait_for(session, lambda s: "EXITED 0" in s, timeout=20)
    finally:
        tmux("kill-session", "-t", session)
