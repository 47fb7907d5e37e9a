"""Runs engine steps off the UI thread and hands the events back as one message.

The engine's ``step()`` may call a brain that takes seconds (an LLM), so it never runs
on Textual's event loop. A daemon thread (not a Textual worker) is used so that quitting
the app never waits for a model that is still answering.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump

StepFn = Callable[[], Any]  # returns an event (or a dict of events), None/empty when done


@dataclass
class StepBatch:
    events: list[Any] = field(default_factory=list)
    done: bool = False
    error: str | None = None
    ticket: int = 0


class StepsDone(Message):
    """Posted by the runner thread when a batch of steps has finished."""

    def __init__(self, batch: StepBatch) -> None:
        super().__init__()
        self.batch = batch


class StepRunner:
    """At most one batch in flight; ``ticket`` lets the screen ignore stale batches."""

    def __init__(self, target: MessagePump) -> None:
        self._target = target
        self._in_flight = False
        self._lock = threading.Lock()
        self._events: list[Any] = []  # steps done in the batch in flight, not yet handed over
        self._running_ticket = 0
        self.started_at = 0.0
        self.ticket = 0
        self.cancel_requested = False

    @property
    def busy(self) -> bool:
        return self._in_flight

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at if self.busy else 0.0

    def drain(self) -> list[Any]:
        """Events of the batch in flight so far (so that a slow step, such as a brain
        call, does not hide the steps before it). Empty if that batch was invalidated."""
        with self._lock:
            events, self._events = self._events, []
        return events if self._running_ticket == self.ticket else []

    def invalidate(self) -> None:
        """Forget the batch in flight (after a restart): it stops at the next step boundary
        and its result will be ignored."""
        self.ticket += 1
        self.cancel_requested = True

    def start(
        self,
        step: StepFn,
        max_steps: int,
        *,
        budget: float | None = None,
        until: Callable[[Any], bool] | None = None,
    ) -> bool:
        if self.busy or max_steps <= 0:
            return False
        self.cancel_requested = False
        self._in_flight = True
        self.started_at = time.monotonic()
        ticket = self._running_ticket = self.ticket
        threading.Thread(
            target=self._run, args=(step, max_steps, budget, until, ticket), daemon=True
        ).start()
        return True

    def _run(
        self,
        step: StepFn,
        max_steps: int,
        budget: float | None,
        until: Callable[[Any], bool] | None,
        ticket: int,
    ) -> None:
        batch = StepBatch(ticket=ticket)
        t0 = time.perf_counter()
        try:
            for _ in range(max_steps):
                ev = step()
                if not ev:
                    batch.done = True
                    break
                with self._lock:
                    self._events.append(ev)
                last = ev
                if until is not None and until(last):
                    break
                if self.cancel_requested:
                    break
                if budget is not None and time.perf_counter() - t0 >= budget:
                    break
        except Exception as exc:  # an engine fault must reach the screen, not kill the thread
            batch.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            batch.events, self._events = self._events, []
        self._in_flight = False
        self._target.post_message(StepsDone(batch))
