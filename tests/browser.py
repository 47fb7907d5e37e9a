"""Headless Chromium driven through the DevTools protocol (a websocket), for browser tests.

``open_page(url)`` starts a fresh Chromium (own profile, no network services), loads the
page, and returns what the tests look at: console errors and uncaught exceptions, every
URL the page requested, values of JavaScript expressions and a PNG screenshot. Tests
skip with a clear reason when Chromium is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    return path


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    requests: list[str] = field(default_factory=list)
    ws_received: list[bytes] = field(default_factory=list)  # websocket frames from the server
    values: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""

    def image(self):
        from PIL import Image

        return Image.open(io.BytesIO(self.screenshot)).convert("RGB")


class _Cdp:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def call(self, method: str, params: dict | None = None, session: str | None = None):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        data = await asyncio.wait_for(fut, 30)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data.get("result", {})

    async def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if e.get("method") == method:
                    return e
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {method} within {timeout} s")


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + json.dumps(p.get("args", []))[:500])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append("log: " + p["entry"].get("text", "")[:500])
    return out


async def _run(
    binary: str,
    url: str,
    *,
    width: int,
    height: int,
    wait_for: str | None,
    timeout: float,
    evaluate: dict[str, str],
    settle: float,
) -> PageResult:
    import aiohttp

    profile = tempfile.mkdtemp(prefix="tapedeck-chromium-")
    proc = subprocess.Popen(
        [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ws_url = None
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stderr.readline)
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
                break
            if not line and proc.poll() is not None:
                break
        if ws_url is None:
            raise RuntimeError("Chromium did not start its DevTools endpoint")
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
            cdp = _Cdp(ws)
            target = await cdp.call("Target.createTarget", {"url": "about:blank"})
            attached = await cdp.call(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )
            sid = attached["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                await cdp.call(f"{domain}.enable", session=sid)
            await cdp.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=sid,
            )
            await cdp.call("Page.navigate", {"url": url}, session=sid)
            await cdp.wait_event("Page.loadEventFired", timeout)
            result = PageResult()
            if wait_for:
                deadline = time.monotonic() + timeout
                while True:
                    r = await cdp.call(
                        "Runtime.evaluate",
                        {"expression": f"Boolean({wait_for})", "returnByValue": True},
                        session=sid,
                    )
                    if r.get("result", {}).get("value") is True:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"page never satisfied {wait_for}")
                    await asyncio.sleep(0.2)
            await asyncio.sleep(settle)
            for name, expr in evaluate.items():
                r = await cdp.call(
                    "Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=sid
                )
                result.values[name] = r.get("result", {}).get("value")
            shot = await cdp.call("Page.captureScreenshot", {"format": "png"}, session=sid)
            result.screenshot = base64.b64decode(shot["data"])
            result.errors = _errors(cdp.events)
            result.requests = [
                e["params"]["request"]["url"]
                for e in cdp.events
                if e.get("method") == "Network.requestWillBeSent"
            ]
            for e in cdp.events:
                if e.get("method") == "Network.webSocketFrameReceived":
                    frame = e["params"]["response"]
                    data = frame.get("payloadData", "")
                    binary = frame.get("opcode") == 2
                    result.ws_received.append(
                        base64.b64decode(data) if binary else data.encode("utf-8")
                    )
            cdp.reader.cancel()
            return result
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(
    url: str,
    *,
    width: int = 1280,
    height: int = 900,
    wait_for: str | None = None,
    timeout: float = 60.0,
    evaluate: dict[str, str] | None = None,
    settle: float = 0.3,
) -> PageResult:
    """Load ``url`` in a fresh headless Chromium and report on it (see the module doc)."""
    binary = require_chromium()
    return asyncio.run(
        _run(
            binary,
            url,
            width=width,
            height=height,
            wait_for=wait_for,
            timeout=timeout,
            evaluate=evaluate or {},
            settle=settle,
        )
    )
