"""Pilot test: while an LLM brain writes an answer for several instruments, the replay
screen streams every instrument's reason, not only the first one's."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from engine.brain.factory import register_brain
from engine.brain.llm import Completion, LLMBrain
from tests.tui.conftest import SIZE, settle, text_of

pytestmark = pytest.mark.anyio


class StreamingBrain(LLMBrain):
    """Writes, for every asked instrument, its first fact as the reason; when several
    are asked it waits (mid-answer, every reason written) until released."""

    name = "streaming"

    def __init__(self) -> None:
        super().__init__("stream-1", retries=0, gate=False)
        self.release = threading.Event()
        self.waiting: list[dict[str, str]] = []

    def _complete(self, prompt, options, on_text) -> Completion:
        answer: dict[str, dict[str, str]] = {}
        for name in prompt.schema["properties"]:
            answer[name] = {"why": prompt.facts[name][0], "do": "hold", "size": "small"}
            text = json.dumps(answer)
            cut = text.rindex('"do"')  # the reason is written, the action not yet
            on_text(text[:cut])
        if len(answer) > 1:
            self.waiting.append({k: v["why"] for k, v in answer.items()})
            self.release.wait(10)
        text = json.dumps(answer)
        return Completion(text, len(text), "stop")


def streamed_part(text: str) -> str:
    """What the pane shows under its spinner line (the decisions made come after a blank
    line), with the wrapping undone."""
    if "thinking" not in text:
        return ""
    after = text.split("thinking", 1)[1].split("\n", 1)[-1]
    return " ".join(after.split("\n\n", 1)[0].split())


async def test_every_asked_instruments_reasoning_streams_while_the_brain_writes(
    make_app, monkeypatch
) -> None:
    from engine.brain import factory

    monkeypatch.setattr(factory, "_registered", dict(factory._registered))
    brains: list[StreamingBrain] = []

    def build(persona):
        brains.append(StreamingBrain())
        return brains[-1]

    register_brain("streaming", build)
    app = make_app(brain="streaming", speed="max")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("space")
        deadline = time.monotonic() + 60
        while not brains or not brains[-1].waiting:
            assert time.monotonic() < deadline, "no batch asked about two instruments"
            await asyncio.sleep(0.05)
        reasons = brains[-1].waiting[0]
        assert len(reasons) >= 2
        expected = [f"{name}: {why}" for name, why in reasons.items()]
        shown = ""
        while not all(e in shown for e in expected):
            assert time.monotonic() < deadline, f"streamed: {shown!r}, wanted {expected}"
            await asyncio.sleep(0.05)
            shown = streamed_part(text_of(screen.query_one("#reasoning"), width=400))
        brains[-1].release.set()
        await pilot.press("space")
        await settle(pilot)
