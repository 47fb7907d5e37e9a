"""A circuit breaker for LLM servers: stop asking a server that does not answer.

A server that accepts connections and never answers costs a full timeout per call; a
replay that asks it 19 times waits 19 timeouts. The breaker opens after ``threshold``
calls in a row fail on the road (timeouts, refused or dropped connections: not a bad
answer, which proves the server is alive), or sooner, as soon as the next whole call
(a first call may be given longer) would not fit in ``threshold`` timeouts with the time
the failed calls in a row already took: so a server that never answers costs at most
``threshold`` timeouts (two calls of one timeout, or one first call of up to two, and
the breaker is open). Once open, the
brain holds without asking, with the reason recorded, for a cool-down. Then one call
probes the server; if it fails too, the cool-down doubles (up to ``max_cooldown_s``); an
answer closes the breaker. The first opening is announced once (stderr in the CLI; the
TUI shows the hold's reason once).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

CIRCUIT_OPEN = "circuit open"  # how the reason of a hold without a call begins
DEFAULT_THRESHOLD = 3
DEFAULT_COOLDOWN_S = 60.0
MAX_COOLDOWN_S = 900.0


def _to_stderr(message: str) -> None:
    print(f"tapedeck: warning: {message}", file=sys.stderr)


def _calls(n: int) -> str:
    return "a call" if n == 1 else f"{n} calls in a row"


class CircuitBreaker:
    """Counts consecutive failed calls; ``blocked()`` says why not to call (None: call).

    ``timeout_s`` is the time one call may take: with it, the failed calls in a row may
    take at most ``threshold`` of them (None: only the count of failures opens it)."""

    def __init__(
        self,
        what: str = "the LLM server",
        *,
        threshold: int = DEFAULT_THRESHOLD,
        timeout_s: float | None = None,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        max_cooldown_s: float = MAX_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
        announce: Callable[[str], None] | None = _to_stderr,
    ) -> None:
        self.what = what
        self.threshold = max(1, int(threshold))
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        self.base_cooldown_s = float(cooldown_s)
        self.max_cooldown_s = float(max_cooldown_s)
        self.clock = clock
        self.announce = announce
        self.failures = 0  # consecutive failed calls
        self.spent_s = 0.0  # the time those calls took
        self.cooldown_s = self.base_cooldown_s
        self.open_until: float | None = None
        self.last_reason = ""
        self.announced = False
        self.skipped = 0  # calls not made while open

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def out_of_time(self, next_call_s: float | None = None) -> bool:
        """Another whole call (of ``next_call_s``, default the timeout) would take the
        failed calls in a row past ``threshold`` timeouts."""
        if self.timeout_s is None or not self.failures:
            return False
        whole = self.timeout_s if next_call_s is None else next_call_s
        return self.spent_s + whole > self.threshold * self.timeout_s

    def blocked(self) -> str | None:
        """The reason to hold without calling, or None when a call may go (a probe
        after the cool-down)."""
        if self.open_until is None:
            return None
        left = self.open_until - self.clock()
        if left <= 0:
            return None
        self.skipped += 1
        return (
            f"{CIRCUIT_OPEN}: {self.what} failed {_calls(self.failures)} "
            f"(last: {self.last_reason}); holding without asking for {left:.0f} s more"
        )

    def success(self) -> None:
        """The server answered (even badly): close, and start counting again."""
        self.failures = 0
        self.spent_s = 0.0
        self.open_until = None
        self.cooldown_s = self.base_cooldown_s

    def failure(self, reason: str, seconds: float = 0.0, next_call_s: float | None = None) -> None:
        """A call failed on the road (no answer at all) after ``seconds``; the next call
        would take up to ``next_call_s`` (default the timeout)."""
        self.failures += 1
        self.spent_s += max(0.0, float(seconds))
        self.last_reason = reason
        if self.open_until is not None:  # the probe after a cool-down failed too
            self.cooldown_s = min(self.cooldown_s * 2, self.max_cooldown_s)
        elif self.failures < self.threshold and not self.out_of_time(next_call_s):
            return
        self.open_until = self.clock() + self.cooldown_s
        if not self.announced and self.announce is not None:
            self.announced = True
            self.announce(
                f"{self.what} failed {_calls(self.failures)} ({reason}): holding "
                f"without asking it for {self.cooldown_s:.0f} s, then trying once more "
                "(each further failure doubles the wait)"
            )
