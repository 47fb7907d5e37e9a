"""``tapedeck serve``: the replay TUI through textual-serve in a real headless Chromium.

The page must come entirely from the local server (offline: no CDN font, no favicon
404), load with no console error, receive the replay screen over its websocket and
draw it: the header and a chart with candles of both colours.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from argparse import Namespace

import numpy as np
import pytest

from engine.commands.serve import offline_templates, replay_command
from engine.data.sample import SAMPLE_PATHS
from tests.browser import open_page, require_chromium
from tests.conftest import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tapedeck serve exited: {proc.communicate()[0]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError("tapedeck serve did not listen")


def test_offline_template_has_no_remote_resource(tmp_path) -> None:
    page = (offline_templates(tmp_path) / "app_index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in page
    assert "fonts/RobotoMono-VariableFont_wght.ttf" in page and 'rel="icon" href="data:,"' in page


def test_replay_command_passes_the_options_and_resolves_data(tmp_path) -> None:
    args = Namespace(
        data=[str(SAMPLE_PATHS[0])],
        persona="scalper",
        brain=None,
        speed="max",
        start=None,
        end=None,
        theme=None,
        play=True,
    )
    cmd = replay_command(args)
    assert cmd.startswith(f"{sys.executable} -m tui.main replay {SAMPLE_PATHS[0].resolve()}")
    assert cmd.endswith("--persona scalper --speed max --play")
    from engine.commands.serve import ServeError

    with pytest.raises(ServeError, match=r"nope\.csv: no such file"):
        replay_command(Namespace(**{**vars(args), "data": ["nope.csv"]}))


def test_serve_shows_the_replay_screen_in_chromium() -> None:
    require_chromium()
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "serve",
            "--port",
            str(port),
            "--play",
            "--speed",
            "1000x",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server and the replay it starts: one group to stop
    )
    try:
        _wait_port(port, proc)
        page = open_page(
            f"http://127.0.0.1:{port}/",
            width=1400,
            height=900,
            wait_for="document.body.classList.contains('-first-byte')",
            settle=6.0,
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    assert page.errors == []
    base = f"http://127.0.0.1:{port}/"
    assert all(u.startswith(base) for u in page.requests), page.requests
    assert any(u.endswith("static/js/textual.js") for u in page.requests)
    # the replay screen came over the websocket: its header and the chart's instrument
    stream = b"".join(page.ws_received)
    for text in (b"tapedeck", b"persona", b"momentum", b"brain", b"speed", b"BTC/USDT"):
        assert text in stream, text
    # and it is drawn: the header line is not blank, and the chart holds green and red candles
    img = np.asarray(page.image()).astype(int)
    h = img.shape[0]
    background = img[h // 2, 5]
    header = img[: h // 40]
    assert (np.abs(header - background).sum(axis=-1) > 150).sum() > 200
    # candle bodies: thousands of strongly green and red pixels (the screen's green and
    # red text adds a few hundred at most), wherever the layout puts the chart
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    greens = ((g - r > 80) & (g - b > 40)).sum()
    reds = ((r - g > 80) & (r - b > 40)).sum()
    assert greens > 1500 and reds > 1500, (greens, reds)
