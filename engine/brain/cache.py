"""Decision cache (SQLite): a rerun of the same window costs no LLM call.

Two ways to key an answer:

- ``exact``: backend, model identity (Ollama's digest where available), persona
  fingerprint, schema version and the prompt text. Same prompt, same answer.
- ``similar``: the same, but a coarse market fingerprint instead of the prompt (signal
  kinds and directions, RSI band, trend regime, position state; no prices, no times).

What is stored is the validated answer itself, whose stops and targets are ATR
multiples: on a hit it is re-anchored to the current candle's price and ATR.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from engine.brain.base import ReasoningCallback
from engine.brain.llm import LLMBrain, _notify
from engine.brain.persona import TradingPersona
from engine.brain.prompt import Prompt
from engine.brain.schema import SCHEMA_VERSION, AnswerError, check_answer, parse_answer
from engine.errors import TapedeckError
from engine.types import Decision, PortfolioState, SignalBatch

CACHE_ENV = "TAPEDECK_CACHE_PATH"
MODES = ("exact", "similar")
_HOLD_MARK = "hold:"  # an entry that remembers a failed answer (then its errors as JSON)

OPEN_WAIT_S = 10.0  # how long opening waits for another process that holds the cache

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS decisions (
    key TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    persona TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    answer TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    created REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
)
"""


class CacheError(TapedeckError):
    """The cache file cannot be opened or written (the message names it)."""


class CacheDamagedError(CacheError):
    """The cache file is not a tapedeck decision cache (corrupt, or another program's)."""


_COLUMNS = {"key", "mode", "backend", "model", "persona", "schema_version", "answer"}


def move_aside(path: Path) -> Path:
    """Rename a damaged cache (and its WAL files) to ``NAME.damaged-N``; return the new name."""
    n = 1
    while path.with_name(f"{path.name}.damaged-{n}").exists():
        n += 1
    target = path.with_name(f"{path.name}.damaged-{n}")
    path.replace(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    return target


def default_cache_path() -> Path:
    """``$TAPEDECK_CACHE_PATH``, else ``decisions.sqlite3`` in the user's cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("tapedeck") / "decisions.sqlite3"


class DecisionCache:
    """A thread-safe SQLite table of answers by key."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_cache_path()
        self._lock = threading.Lock()
        self._pending_hits: dict[str, int] = {}
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            columns = self._connect()
        except (OSError, sqlite3.Error) as exc:
            # DatabaseError itself (not its OperationalError subclass): "file is not a
            # database", "database disk image is malformed".
            if type(exc) is sqlite3.DatabaseError:
                self._damaged(str(exc))
            raise CacheError(f"cannot open the decision cache {self.path}: {exc}") from None
        if not columns >= _COLUMNS:
            self._damaged("its decisions table belongs to something else")
        atexit.register(self.flush)

    def _connect(self) -> set[str]:
        """Open the table (made if missing) and return its columns. Several processes
        opening a new cache at once (an experiment's workers) race to switch it to WAL;
        SQLite answers the loser "database is locked" at once, without waiting for its
        busy timeout, so the set-up is tried again until OPEN_WAIT_S has passed."""
        deadline = time.monotonic() + OPEN_WAIT_S
        while True:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=OPEN_WAIT_S)
            try:
                # WAL without a sync per commit: a lost last entry after a power cut is fine.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(_SCHEMA_SQL)
                self._db.commit()
                return {row[1] for row in self._db.execute("PRAGMA table_info(decisions)")}
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                self._db.close()
                time.sleep(0.05)

    def _damaged(self, why: str) -> NoReturn:
        self._closed = True
        with contextlib.suppress(Exception):
            self._db.close()
        raise CacheDamagedError(
            f"the decision cache {self.path} is damaged ({why}); "
            "`tapedeck cache clear` moves it aside and starts a new one"
        ) from None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT answer, tokens, latency_s FROM decisions WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error:
                return None  # a broken cache is a miss, never a failed decision
            if row is None:
                return None
            # Hit counts are written in bunches: a write per hit would make a warm
            # rerun cost more than the rule brain.
            self._pending_hits[key] = self._pending_hits.get(key, 0) + 1
            if len(self._pending_hits) >= 256:
                self._flush_hits()
        return {"answer": row[0], "tokens": row[1], "latency_s": row[2]}

    def _flush_hits(self) -> None:
        """Write the pending hit counts (the lock is held by the caller)."""
        if not self._pending_hits:
            return
        try:
            self._db.executemany(
                "UPDATE decisions SET hits = hits + ? WHERE key = ?",
                [(n, k) for k, n in self._pending_hits.items()],
            )
            self._db.commit()
        except sqlite3.Error:
            pass  # statistics only
        self._pending_hits.clear()

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_hits()

    def put(
        self,
        key: str,
        *,
        mode: str,
        backend: str,
        model: str,
        persona: str,
        answer: str,
        tokens: int,
        latency_s: float,
    ) -> None:
        with self._lock:
            self._flush_hits()
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO decisions (key, mode, backend, model, persona, "
                    "schema_version, answer, tokens, latency_s, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        mode,
                        backend,
                        model,
                        persona,
                        SCHEMA_VERSION,
                        answer,
                        tokens,
                        latency_s,
                        time.time(),
                    ),
                )
                self._db.commit()
            except sqlite3.Error:
                pass  # not being able to remember an answer must not fail the decision

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self._flush_hits()
            try:
                total, hits = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(hits), 0) FROM decisions"
                ).fetchone()
                groups = self._db.execute(
                    "SELECT backend, model, mode, COUNT(*), COALESCE(SUM(hits), 0) FROM decisions "
                    "GROUP BY backend, model, mode ORDER BY backend, model, mode"
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                self._damaged(str(exc))
        size = self.path.stat().st_size if self.path.exists() else 0
        return {
            "path": str(self.path),
            "entries": int(total),
            "hits": int(hits),
            "size_bytes": int(size),
            "groups": [
                {"backend": b, "model": m, "mode": mo, "entries": int(n), "hits": int(h)}
                for b, m, mo, n, h in groups
            ],
        }

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._lock:
            self._pending_hits.clear()
            try:
                (count,) = self._db.execute("SELECT COUNT(*) FROM decisions").fetchone()
                self._db.execute("DELETE FROM decisions")
                self._db.commit()
                self._db.execute("VACUUM")
            except sqlite3.DatabaseError as exc:
                self._damaged(str(exc))
        return int(count)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush_hits()
            self._closed = True
            self._db.close()
        atexit.unregister(self.flush)


# ----------------------------------------------------------------------------- keys
def rsi_band(rsi: float | None) -> str:
    if rsi is None or not math.isfinite(rsi):
        return "unknown"
    for limit, name in ((20, "<20"), (30, "20-30"), (45, "30-45"), (55, "45-55"), (70, "55-70")):
        if rsi < limit:
            return name
    return "70-80" if rsi < 80 else ">80"


def trend_regime(indicators: dict[str, float] | Any, change_pct: float) -> str:
    """up / down / flat, from the fast and slow EMAs when known, else the recent change."""
    fast, slow = indicators.get("ema_fast"), indicators.get("ema_slow")
    if fast is not None and slow is not None and math.isfinite(fast) and math.isfinite(slow):
        gap = (fast - slow) / slow * 100 if slow else 0.0
    else:
        gap = change_pct if math.isfinite(change_pct) else 0.0
    if gap > 0.05:
        return "up"
    if gap < -0.05:
        return "down"
    return "flat"


def market_fingerprint(batch: SignalBatch, portfolio: PortfolioState) -> dict[str, Any]:
    """The coarse state "similar conditions" keys on: no prices, no times."""
    positions = {p.instrument: p for p in portfolio.positions}
    out: dict[str, Any] = {}
    for name in sorted(batch.context):
        ctx = batch.context[name]
        kinds = sorted(
            {f"{s.kind}:{s.direction.value}" for s in batch.signals if s.instrument == name}
        )
        pos = positions.get(name)
        if pos is None:
            state = "flat"
        else:
            state = f"{pos.side.value}_{'winning' if pos.unrealized_pnl > 0 else 'losing'}"
        out[name] = {
            "signals": kinds,
            "rsi": rsi_band(ctx.indicators.get("rsi")),
            "trend": trend_regime(ctx.indicators, ctx.change_pct),
            "position": state,
        }
    return {"instruments": out, "open_positions": len(portfolio.positions)}


def _digest(parts: list[Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


_FINGERPRINTS: dict[int, tuple[TradingPersona, str]] = {}


def _persona_fingerprint(persona: TradingPersona) -> str:
    """The fingerprint of the persona but its name, and of the instructions it gives the
    model, remembered per persona object (it hashes the whole persona). The name never
    reaches the prompt, and a comparison renames its personas (``momentum@ollama``): the
    same persona asks the same. The instructions are in it so that a similar-mode answer
    given to other instructions (an earlier tapedeck) is not reused."""
    known = _FINGERPRINTS.get(id(persona))
    if known is not None and known[0] is persona:
        return known[1]
    if len(_FINGERPRINTS) > 256:
        _FINGERPRINTS.clear()
    from engine.brain.prompt import constant_part

    fp = _digest([dataclasses.replace(persona, name="").fingerprint(), constant_part(persona)])
    _FINGERPRINTS[id(persona)] = (persona, fp)
    return fp


def exact_key(backend: str, model: str, persona: TradingPersona, prompt_text: str) -> str:
    return _digest(
        [backend, model, _persona_fingerprint(persona), SCHEMA_VERSION, "exact", prompt_text]
    )


def similar_key(
    backend: str,
    model: str,
    persona: TradingPersona,
    batch: SignalBatch,
    portfolio: PortfolioState,
) -> str:
    fingerprint = market_fingerprint(batch, portfolio)
    return _digest(
        [backend, model, _persona_fingerprint(persona), SCHEMA_VERSION, "similar", fingerprint]
    )


# ---------------------------------------------------------------------- the wrapper
class CachingBrain:
    """Any LLM brain, with its answers remembered. ``stats`` counts hits and misses."""

    def __init__(self, inner: LLMBrain, cache: DecisionCache, mode: str = "exact") -> None:
        if mode not in MODES:
            raise CacheError(f"unknown cache mode {mode!r}: choose exact or similar")
        self.inner = inner
        self.cache = cache
        self.mode = mode
        self.name = inner.name
        self.model = inner.model
        self.stats: dict[str, int] = {"cache_hits": 0, "cache_misses": 0}
        self._identity: str | None = None

    def key(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        prompt: Prompt | None = None,
    ) -> str:
        # Asked every time: Ollama's digest is known only once the server answers.
        self._identity = self.inner.identity()
        if self.mode == "similar":
            return similar_key(self.name, self._identity, persona, batch, portfolio)
        prompt = prompt or self.inner.prompt_for(batch, portfolio, persona)
        return exact_key(self.name, self._identity, persona, prompt.text)

    def skipped(
        self, batch: SignalBatch, portfolio: PortfolioState, persona: TradingPersona
    ) -> Decision | None:
        return self.inner.skipped(batch, portfolio, persona)

    def decide(
        self,
        batch: SignalBatch,
        portfolio: PortfolioState,
        persona: TradingPersona,
        on_reasoning: ReasoningCallback | None = None,
    ) -> Decision:
        start = time.perf_counter()
        skipped = self.inner.skipped(batch, portfolio, persona)
        if skipped is not None:
            return skipped
        try:
            prompt = self.inner.prompt_for(batch, portfolio, persona)
            key = self.key(batch, portfolio, persona, prompt)
        except Exception:  # the inner brain turns the same failure into a hold
            return self.inner.decide(batch, portfolio, persona, on_reasoning)
        stored = self.cache.get(key)
        if stored is not None and stored["answer"].startswith(_HOLD_MARK):
            self.stats["cache_hits"] += 1
            errors = tuple(json.loads(stored["answer"][len(_HOLD_MARK) :]))
            return self.inner.hold_decision(
                batch,
                errors,
                prompt=prompt,
                latency_s=time.perf_counter() - start,
                cache_hit=True,
            )
        if stored is not None:
            try:
                answer = parse_answer(stored["answer"])
                check_answer(answer, batch, portfolio, persona)
            except (ValueError, AnswerError):
                stored = None  # an entry that no longer fits: ask the model
        if stored is not None:
            self.stats["cache_hits"] += 1
            _notify(on_reasoning, answer.reasoning)
            return self.inner.decision_from_answer(
                answer,
                batch,
                portfolio,
                persona,
                prompt=prompt,
                latency_s=time.perf_counter() - start,
                cache_hit=True,
            )
        self.stats["cache_misses"] += 1
        asked = self.inner.ask(batch, portfolio, persona, on_reasoning, prompt=prompt)
        if asked.answer is not None:
            text = asked.answer.to_json()
        elif asked.repeatable_failure and self.mode == "exact":
            # The model's own bad answer would come back the same: remember the hold, so
            # a rerun of the window is free and identical. Faults of the connection are
            # never remembered.
            text = _HOLD_MARK + json.dumps(list(asked.decision.errors))
        else:
            return asked.decision
        self.cache.put(
            key,
            mode=self.mode,
            backend=self.name,
            model=self._identity or self.inner.model,
            persona=persona.name,
            answer=text,
            tokens=asked.decision.tokens,
            latency_s=asked.decision.latency_s,
        )
        return asked.decision

    def close(self) -> None:
        self.inner.close()
