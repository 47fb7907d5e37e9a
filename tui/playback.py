"""Transport shared by the replay and compare screens: one clock, one runner, throttled frames.

One Textual interval (~30 Hz, running only while playing or while a batch is in flight)
turns elapsed wall time x speed into steps, hands them to the runner thread, and draws
the latest state at most once per frame. While a batch is in flight (a brain call)
simulated time waits: no credit accrues, a spinner and the elapsed seconds show.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer

from engine.errors import TapedeckError
from engine.timeutil import parse_time
from tui.clock import FRAME_SECONDS, PlaybackClock, parse_speed, speed_factor
from tui.format import fmt_time
from tui.model import ReplayModel
from tui.panes import HeaderBar
from tui.runner import Frame, FrameReady, StepRunner
from tui.sources import candle_seconds, describe_data, describe_window

TRANSPORT_BINDINGS = [
    Binding("space", "toggle_play", "Play/Pause", id="transport.play"),
    Binding("s,right", "step", "Step", id="transport.step"),
    Binding("1", "speed('1x')", "1x", show=False, id="transport.speed1"),
    Binding("2", "speed('10x')", "10x", show=False, id="transport.speed10"),
    Binding("3", "speed('100x')", "100x", show=False, id="transport.speed100"),
    Binding("4", "speed('1000x')", "1000x", show=False, id="transport.speed1000"),
    Binding("5", "speed('max')", "max", show=False, id="transport.speedmax"),
    Binding("plus,equals_sign", "faster", "Faster", id="transport.faster"),
    Binding("minus", "slower", "Slower", id="transport.slower"),
    Binding("j", "jump", "Jump", id="transport.jump"),
    Binding("r", "restart", "Restart", id="transport.restart"),
    Binding("escape", "cancel", "Cancel", show=False, id="transport.cancel"),
]

PLOT_SECONDS = 0.25  # plotext curves (milliseconds each) are redrawn at most 4 times a second
SLOW_BATCH_SECONDS = 0.3  # after this, a batch in flight shows a spinner
MAX_BATCH_SECONDS = 0.1  # budget of one batch at a timed speed
# At max speed the engine and the drawing share one interpreter: ten frames a second keep
# every pane live while leaving most of the time to the engine.
MAX_SPEED_FRAME_SECONDS = 0.1
MAX_QUEUED_STEPS = 10  # steps pressed during a batch, run after it
MAX_QUEUED_BACK = 100  # steps back pressed (a held key) during a batch, rewound after it


class PlaybackScreen(Screen):
    """Drives a ``source`` (series/step/reset/total_steps); subclasses draw in ``draw()``."""

    def __init__(self, source: Any, speed: str = "10x") -> None:
        super().__init__()
        self.source = source
        self.clock = PlaybackClock(candle_seconds(source.series), parse_speed(speed))
        self._data_label = describe_data(source.series)
        w0, w1 = describe_window(source.series)
        self._window_label = f"{fmt_time(w0)} → {fmt_time(w1)}"
        self.playing = False
        self.runner = StepRunner(self, metrics=source.metrics)
        self.run_metrics: Any = None  # the source's metrics, from the last frame carrying them
        self._metrics_step = -1  # steps_done when they were computed
        self._timer: Timer | None = None
        self._last_tick = time.monotonic()
        self._last_draw = 0.0
        self._dirty = False
        self._jump_target: tuple[str, int] | None = None
        self._after_batch: list[Callable[[], None]] = []
        self._queued_steps = 0  # steps pressed while a batch was in flight
        self._last_item: Any = None  # the latest item the runner stepped
        self._jump_label = ""
        self._last_plot = 0.0
        self._plot_version = -1
        self._rate_samples: deque[tuple[float, int]] = deque()

    # -- subclass hooks -------------------------------------------------------------
    def apply_events(self, events: list[Any]) -> None:
        raise NotImplementedError

    def reset_panes(self) -> None:
        raise NotImplementedError

    def reset_view(self) -> None:
        """After the source was reset or switched: forget what the panes and metrics show."""
        self.run_metrics, self._metrics_step = None, -1
        self._plot_version = -1
        self.reset_panes()

    def draw(self) -> None:
        raise NotImplementedError

    def event_step(self, ev: Any) -> int:
        """Step number (0-based) of an item the source returned."""
        return ev.step

    def event_time(self, ev: Any) -> int:
        return ev.time

    @property
    def lead_model(self) -> ReplayModel:
        """The model whose progress the header and jumps follow."""
        raise NotImplementedError

    @property
    def steps_done(self) -> int:
        return self.lead_model.steps_done

    def header_names(self) -> tuple[str, str]:
        """(persona, brain) as the header shows them."""
        raise NotImplementedError

    def _plot_due(self, version: int) -> bool:
        """True when the curves should be redrawn for model ``version`` (and notes it)."""
        now = time.monotonic()
        if version == self._plot_version or (self.playing and now - self._last_plot < PLOT_SECONDS):
            return False
        self._last_plot, self._plot_version = now, version
        return True

    def _header(self, busy: str = "") -> None:
        persona, brain = self.header_names()
        self.query_one(HeaderBar).show(
            data=self._data_label,
            window=self._window_label,
            persona=persona,
            brain=brain,
            speed=self.clock.speed,
            playing=self.playing,
            sim_time=self._current_time(),
            steps_done=self.steps_done,
            total=self.source.total_steps,
            busy=busy,
            rate=self._rate_label(),
        )

    def _rate_label(self) -> str:
        """Candles a second: what the speed asks for, or (at max) what the last second ran."""
        factor = speed_factor(self.clock.speed)
        if factor is not None:
            per_s = factor / self.clock.candle_seconds
        else:
            now = time.monotonic()
            self._rate_samples.append((now, self.steps_done))
            while len(self._rate_samples) > 2 and now - self._rate_samples[1][0] >= 1.0:
                self._rate_samples.popleft()
            (t0, s0), (t1, s1) = self._rate_samples[0], self._rate_samples[-1]
            if not self.playing or t1 - t0 < 0.2:
                return "max"
            per_s = (s1 - s0) / (t1 - t0)
        if per_s >= 100:
            return f"{per_s:,.0f} c/s"
        return f"{per_s:.3g} c/s"

    # -- clock ----------------------------------------------------------------------
    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _timer_needed(self) -> bool:
        return self.playing or self.runner.busy

    @property
    def _timer_running(self) -> bool:
        return self._timer is not None

    def _sync_timer(self) -> None:
        """The interval exists only while playing or while a batch is in flight."""
        if self._timer_needed():
            if self._timer is None:
                self._last_tick = time.monotonic()
                self._timer = self.set_interval(FRAME_SECONDS, self._tick, name="playback")
        elif self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self.runner.busy:
            if self._dirty and self._max_speed_frame_due():
                self._draw_now()
            if self.runner.elapsed() >= SLOW_BATCH_SECONDS:
                self.draw_busy(self.runner.elapsed())
            return
        if self._dirty and self._max_speed_frame_due():
            self._draw_now()
        if self.playing:
            self._launch_timed(elapsed)
        self._sync_timer()

    def _max_speed_frame_due(self) -> bool:
        """False while playing at max speed and the last frame is younger than its period."""
        if not (self.playing and self.clock.is_max):
            return True
        return time.monotonic() - self._last_draw >= MAX_SPEED_FRAME_SECONDS

    def _run_for_a_frame(self) -> None:
        """At max speed: as many steps as fit in one frame."""
        self.runner.start(self.source.step, 1_000_000, budget=FRAME_SECONDS)

    def _launch_timed(self, elapsed: float) -> None:
        if self.clock.is_max:
            self._run_for_a_frame()
            return
        due = self.clock.due(elapsed)
        if due > 0:
            self.runner.start(self.source.step, due, budget=MAX_BATCH_SECONDS)

    def draw_busy(self, seconds: float) -> None:
        """Called every frame while a slow batch (a brain call) is in flight."""

    def _draw_now(self) -> None:
        self._dirty = False
        self._last_draw = time.monotonic()
        self.draw()

    def on_frame_ready(self, message: FrameReady) -> None:
        """The one way events reach the screen: a frame of them from the runner."""
        message.stop()
        frame = message.frame
        if frame.ticket != self.runner.ticket:
            if frame.final:
                self._run_after_batch()
            return
        if frame.events:
            self._last_item = frame.events[-1]
            self.apply_events(frame.events)
            self._dirty = True
        if frame.metrics is not None:
            self.run_metrics, self._metrics_step = frame.metrics, self.steps_done
            self._dirty = True
        if not frame.final:
            return
        if frame.error:
            self.playing = False
            self._jump_target = None
            self.notify(f"engine error: {frame.error}", severity="error", timeout=8)
        if self._jump_target is not None:
            self._continue_jump(frame)
        elif frame.done and self.playing:
            self.playing = False
            self.notify("end of the window: press r to restart", timeout=4)
        if self._after_batch:
            self._run_after_batch()
        if self._queued_steps and not self.runner.busy and not self.playing:
            queued, self._queued_steps = self._queued_steps, 0  # kept while a jump goes on
            self._start_steps(queued)
        if self.playing and self.clock.is_max and not self.runner.busy:
            # Keep the engine busy between frames at max speed.
            self._run_for_a_frame()
        if not self.runner.busy and not self.playing and self._metrics_step != self.steps_done:
            self.runner.refresh_metrics()  # paused: the figures match the candle shown
        since = time.monotonic() - self._last_draw
        if not self._timer_needed() or (since >= FRAME_SECONDS and self._max_speed_frame_due()):
            self._draw_now()
        self._sync_timer()

    def _run_after_batch(self) -> None:
        pending, self._after_batch = self._after_batch, []
        for fn in pending:
            fn()

    # -- actions --------------------------------------------------------------------
    def action_toggle_play(self) -> None:
        self.playing = not self.playing
        self.clock.reset()
        if self.playing and self.runner.busy is False and self.clock.is_max:
            self._run_for_a_frame()
        if not self.playing and self._metrics_step != self.steps_done:
            self.runner.refresh_metrics()
        self._sync_timer()
        self._draw_now()

    def action_pause(self) -> None:
        self.playing = False
        if self._metrics_step != self.steps_done:
            self.runner.refresh_metrics()
        self._sync_timer()
        self._draw_now()

    def action_play(self) -> None:
        if not self.playing:
            self.action_toggle_play()

    def action_step(self) -> None:
        """One step; pressed while a batch runs, the steps wait for it (at most a few)."""
        self._queue_steps(1)

    def action_step_back(self) -> None:
        """One step back, to the state reached going forward (held down: scrubs back)."""
        if hasattr(self.source, "step_back"):
            self._queue_steps(-1)

    def _queue_steps(self, delta: int) -> None:
        self.playing = False
        if self.runner.busy:
            if self.runner.elapsed() >= SLOW_BATCH_SECONDS:
                self.notify("still working on the previous step", timeout=2)
            queued = self._queued_steps + delta
            self._queued_steps = max(-MAX_QUEUED_BACK, min(MAX_QUEUED_STEPS, queued))
            return
        self._start_steps(delta)

    def _start_steps(self, n: int) -> None:
        """``n`` steps forward, or ``-n`` back (one rewind, however many)."""
        if n > 0:
            started = self.runner.start(self.source.step, n, metrics=True)
        else:
            started = self.runner.start(partial(self.source.step_back, -n), 1, metrics=True)
        if started:
            self._sync_timer()

    def action_speed(self, speed: str) -> None:
        self.clock.set_speed(speed)
        self._draw_now()

    def action_faster(self) -> None:
        self.clock.faster()
        self._draw_now()

    def action_slower(self) -> None:
        self.clock.slower()
        self._draw_now()

    def action_cancel(self) -> None:
        """Pause, and stop a jump or a long batch at the next step boundary."""
        self.playing = False
        self._jump_target = None
        self.runner.cancel_requested = True
        self._sync_timer()
        self._draw_now()

    def run_when_idle(self, fn: Callable[[], None], notice: str = "") -> None:
        """Pause and run ``fn`` now, or after the batch in flight (whose result is dropped)."""
        self.playing = False
        self._jump_target = None
        self._queued_steps = 0
        if self.runner.busy:
            self.runner.invalidate()
            self._after_batch.append(fn)
            if notice:
                self.notify(notice, timeout=4)
        else:
            fn()
        self._sync_timer()

    def action_restart(self) -> None:
        def restart() -> None:
            self.source.reset()
            self.clock.reset()
            self.reset_view()
            self._draw_now()
            self.runner.refresh_metrics()

        self.run_when_idle(restart, "restarting once the current step (a brain call) ends")

    def action_jump(self) -> None:
        from tui.dialogs import JumpDialog

        self.app.push_screen(JumpDialog(), self.jump_to)

    def jump_to(self, target: str | None) -> None:
        """Jump to a step number ("250") or a time ("2024-01-02 13:00")."""
        if not target:
            return
        target = target.strip()
        try:
            if target.isdigit():
                goal = ("step", max(0, int(target)))
                behind = goal[1] < self.steps_done
            else:
                goal = ("time", parse_time(target))
                behind = self._current_time() is not None and goal[1] < self._current_time()
        except (ValueError, TapedeckError) as exc:
            self.notify(str(exc), severity="error")
            return

        def go() -> None:
            if behind and hasattr(self.source, "rewind_to"):
                steps = goal[1] if goal[0] == "step" else self.source.steps_until(goal[1])
                rewind = partial(self.source.rewind_to, steps)
                self.runner.start(rewind, 1, metrics=True)
                return
            if behind:
                self.source.reset()
                self.reset_view()
            self._jump_target = goal
            self._continue_jump(None)

        self.run_when_idle(go)

    def jump_until(self, found: Callable[[Any], bool], label: str) -> None:
        """Step forward until a stepped item satisfies ``found`` (runs in the runner's
        thread); the screen stops on that step."""

        def go() -> None:
            self._jump_target = ("until", found)
            self._jump_label = label
            self._last_item = None
            self._continue_jump(None)

        self.run_when_idle(go)

    def rewind_to(self, steps_done: int) -> None:
        """Back to the state after ``steps_done`` steps, as stepping forward reached it."""

        def go() -> None:
            self.runner.start(partial(self.source.rewind_to, steps_done), 1, metrics=True)
            self._sync_timer()

        self.run_when_idle(go)

    def _current_time(self) -> int | None:
        m = self.lead_model
        return m.time if m.steps_done else None

    def _jump_reached(self, ev: Any) -> bool:
        kind, value = self._jump_target or ("step", 0)
        if kind == "until":
            return bool(value(ev))
        if kind == "step":
            return self.event_step(ev) + 1 >= value
        return self.event_time(ev) >= value

    def _continue_jump(self, frame: Frame | None) -> None:
        if self._jump_target is None:
            return
        kind, value = self._jump_target
        now = self._current_time()
        if kind == "until":
            reached = self._last_item is not None and bool(value(self._last_item))
        elif kind == "step":
            reached = self.steps_done >= value
        else:
            reached = now is not None and now >= value
        if reached or (frame is not None and (frame.done or frame.error)):
            self._jump_target = None
            if not reached and kind == "until":
                self.notify(f"no later {self._jump_label}: at the end of the window", timeout=4)
            return
        self.runner.start(
            self.source.step,
            1_000_000,
            budget=FRAME_SECONDS * 3,
            until=self._jump_reached,
            metrics=True,
        )
