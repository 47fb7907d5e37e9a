"""Runs engine steps off the UI thread and hands the events to the screen, one message a frame.

The engine's ``step()`` may call a brain that takes seconds (an LLM), so it never runs
on Textual's event loop. A daemon thread (not a Textual worker) is used so that quitting
the app never waits for a model that is still answering.

The only way events reach the screen is a :class:`FrameReady` message holding a
:class:`Frame`: the events stepped since the previous frame. While a batch runs, a small
pump thread posts what has accumulated once per frame (so a slow step, such as a brain
call, does not hide the steps before it); the batch's last frame is ``final``. A frame
may also carry the source's metrics, computed in the runner's thread (the UI thread never
calls into an engine that the runner may be stepping).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump

from tui.clock import FRAME_SECONDS

StepFn = Callable[[], Any]  # returns an event (or a dict of events), None/empty when done
MetricsFn = Callable[[], Any]
METRICS_SECONDS = 0.25  # while playing, the metrics are recomputed at most 4 times a second


@dataclass
class Frame:
    """The events stepped since the previous frame of the same batch."""

    events: list[Any] = field(default_factory=list)
    final: bool = False  # the batch ended: no more frames follow for this ticket
    done: bool = False  # the source is exhausted
    error: str | None = None
    ticket: int = 0
    metrics: Any = None  # the source's metrics after these events, when computed


class FrameReady(Message):
    """Posted by the runner's threads: one per frame while a batch runs, one at its end."""

    def __init__(self, frame: Frame) -> None:
        super().__init__()
        self.frame = frame


class StepRunner:
    """At most one batch in flight; ``ticket`` lets the screen ignore stale frames."""

    def __init__(self, target: MessagePump, metrics: MetricsFn | None = None) -> None:
        self._target = target
        self._metrics = metrics
        self._in_flight = False
        self._lock = threading.Lock()
        self._events: list[Any] = []  # stepped in the batch in flight, not yet posted
        self._last_metrics = 0.0
        self.started_at = 0.0
        self.ticket = 0
        self.cancel_requested = False

    @property
    def busy(self) -> bool:
        return self._in_flight

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at if self.busy else 0.0

    def invalidate(self) -> None:
        """Forget the batch in flight (after a restart): it stops at the next step boundary
        and its frames will be ignored."""
        self.ticket += 1
        self.cancel_requested = True

    def start(
        self,
        step: StepFn,
        max_steps: int,
        *,
        budget: float | None = None,
        until: Callable[[Any], bool] | None = None,
        metrics: bool = False,
    ) -> bool:
        """Step up to ``max_steps`` times in a thread. The final frame carries the metrics
        when ``metrics`` is asked for, or when they are older than METRICS_SECONDS."""
        if self.busy or max_steps <= 0:
            return False
        return self._launch(self._run, step, max_steps, budget, until, metrics)

    def refresh_metrics(self) -> bool:
        """Compute the metrics in a thread and post them in a final frame without events."""
        if self.busy or self._metrics is None:
            return False
        return self._launch(self._run, lambda: None, 0, None, None, True)

    def _launch(self, target: Callable[..., None], *args: Any) -> bool:
        self.cancel_requested = False
        self._in_flight = True
        self.started_at = time.monotonic()
        ticket = self.ticket
        threading.Thread(target=target, args=(*args, ticket), daemon=True).start()
        return True

    def _post(self, frame: Frame) -> None:
        # Under the lock: frames reach the screen in the order their events were stepped,
        # and a batch the screen starts on the final frame cannot lend it its events.
        with self._lock:
            frame.events, self._events = self._events, []
            if frame.final:
                self._in_flight = False
            if frame.events or frame.final:
                self._target.post_message(FrameReady(frame))

    def _pump(self, stop: threading.Event, ticket: int) -> None:
        while not stop.wait(FRAME_SECONDS):
            self._post(Frame(ticket=ticket))

    def _run(
        self,
        step: StepFn,
        max_steps: int,
        budget: float | None,
        until: Callable[[Any], bool] | None,
        want_metrics: bool,
        ticket: int,
    ) -> None:
        final = Frame(final=True, ticket=ticket)
        stop = threading.Event()
        pump = threading.Thread(target=self._pump, args=(stop, ticket), daemon=True)
        pump.start()
        t0 = time.perf_counter()
        try:
            for _ in range(max_steps):
                ev = step()
                if not ev:
                    final.done = True
                    break
                with self._lock:
                    self._events.append(ev)
                if until is not None and until(ev):
                    break
                if self.cancel_requested:
                    break
                if budget is not None and time.perf_counter() - t0 >= budget:
                    break
            now = time.monotonic()
            if self._metrics is not None and (
                want_metrics or now - self._last_metrics >= METRICS_SECONDS
            ):
                final.metrics = self._metrics()
                self._last_metrics = now
        except Exception as exc:  # an engine fault must reach the screen, not kill the thread
            final.error = f"{type(exc).__name__}: {exc}"
        stop.set()
        pump.join()
        self._post(final)
