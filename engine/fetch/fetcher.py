"""Fetch candles page by page into the store: incremental, resumable, rate-limit aware.

Only the candles the store lacks are requested: before its first candle and after its
last one, inside the asked window. Pages are validated, then written to the store every
``flush_rows`` candles and whenever the fetch stops (finished, failed or interrupted),
each time by an atomic replace: a rerun after an interruption resumes after the last
candle written, so nothing is lost or duplicated. The candle still forming (its close
is after now) is never stored.

Errors: a 429/418 waits for the server's ``Retry-After`` (else backs off), network
errors and malformed pages are retried with exponential back-off, up to ``max_tries``
in a row; anything else stops with a one-line FetchError.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine.fetch.exchange import FetchError, _ccxt
from engine.fetch.store import candle_path, frame_from_rows, merge, read_candles, write_candles
from engine.timeutil import timeframe_to_ns

MS = 1_000_000  # ns per ms
MAX_WAIT_S = 300.0

ProgressFn = Callable[[str, int, int], None]  # (symbol, candles done, candles expected)


class MalformedPage(Exception):
    """An OHLCV page that does not make sense (retried like a network error)."""


@dataclass
class FetchResult:
    symbol: str
    path: Path
    fetched: int  # new candles written
    requests: int
    retries: int
    waits: list[float] = field(default_factory=list)


@dataclass
class Fetcher:
    exchange: Any  # a ccxt Exchange
    datadir: Path
    timeframe: str = "1m"
    page_limit: int = 1000
    flush_rows: int = 20_000
    max_tries: int = 6
    backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    progress: ProgressFn | None = None

    def __post_init__(self) -> None:
        try:
            self.tf_ms = timeframe_to_ns(self.timeframe) // MS
        except ValueError as exc:
            raise FetchError(str(exc)) from None
        frames = getattr(self.exchange, "timeframes", None) or {}
        if frames and self.timeframe not in frames:
            raise FetchError(
                f"{self.exchange.id} has no {self.timeframe} candles "
                f"(it offers {', '.join(frames)})"
            )

    # ------------------------------------------------------------------ public
    def load_markets(self) -> None:
        self._call(self.exchange.load_markets, what="markets", counter=None)

    def check_symbol(self, symbol: str) -> None:
        markets = getattr(self.exchange, "markets", None) or {}
        if symbol not in markets:
            close = [s for s in markets if s.split(":")[0] == symbol.split(":")[0]][:5]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise FetchError(f"{self.exchange.id} has no market {symbol!r}{hint}")

    def fetch(self, symbol: str, since_ms: int, until_ms: int | None = None) -> FetchResult:
        """Bring the store's candles of ``symbol`` up to ``[since_ms, until_ms)``."""
        self.check_symbol(symbol)
        since_ms = -(-since_ms // self.tf_ms) * self.tf_ms  # first whole candle
        end_ms = min(until_ms if until_ms is not None else math.inf, self.now_ms())
        end_ms = int(end_ms // self.tf_ms * self.tf_ms)  # candles that closed by then
        path = candle_path(self.datadir, self.exchange.id, symbol, self.timeframe)
        stored = read_candles(path)
        result = FetchResult(symbol=symbol, path=path, fetched=0, requests=0, retries=0)
        ranges = self._missing(stored, since_ms, end_ms)
        total = sum((b - a) // self.tf_ms for a, b in ranges)
        done = 0
        self._report(symbol, done, total)
        pending: list[list[float]] = []

        def flush() -> None:
            nonlocal stored, pending
            if pending:
                stored = merge(stored, frame_from_rows(pending))
                write_candles(path, stored)
                result.fetched += len(pending)
                pending = []

        try:
            for start, stop in ranges:
                for rows in self._pages(symbol, start, stop, result):
                    pending.extend(rows)
                    done += len(rows)
                    self._report(symbol, min(done, total), total)
                    if len(pending) >= self.flush_rows:
                        flush()
        finally:
            flush()
        self._report(symbol, total, total)
        return result

    # ------------------------------------------------------------------ internals
    def _report(self, symbol: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(symbol, done, total)

    def _missing(self, stored: pd.DataFrame, since: int, end: int) -> list[tuple[int, int]]:
        if since >= end:
            return []
        if stored.empty:
            return [(since, end)]
        first = int(stored["date"].iloc[0].value // MS)
        last = int(stored["date"].iloc[-1].value // MS)
        ranges = []
        if since < first:
            ranges.append((since, min(first, end)))
        after = max(last + self.tf_ms, since)
        if after < end:
            ranges.append((after, end))
        return ranges

    def _pages(self, symbol: str, start: int, stop: int, result: FetchResult):
        cursor = start
        while cursor < stop:
            limit = self.page_limit
            rows = self._call(
                lambda c=cursor, n=limit: self._page(symbol, c, n), what=symbol, counter=result
            )
            rows = [r for r in rows if cursor <= r[0] < stop]
            if not rows:
                return  # the exchange has nothing more in this range
            yield rows
            cursor = int(rows[-1][0]) + self.tf_ms

    def _page(self, symbol: str, since: int, limit: int) -> list[list[float]]:
        try:
            raw = self.exchange.fetch_ohlcv(symbol, self.timeframe, since=since, limit=limit)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise MalformedPage(f"unreadable page: {exc}") from None
        return self._validate(raw, since)

    def _validate(self, raw: Any, since: int) -> list[list[float]]:
        if not isinstance(raw, list):
            raise MalformedPage(f"expected a list of candles, got {type(raw).__name__}")
        rows: list[list[float]] = []
        previous = since - 1
        for row in raw:
            if not isinstance(row, list | tuple) or len(row) < 6:
                raise MalformedPage(
                    f"a candle is not [time, open, high, low, close, volume]: {row!r}"
                )
            try:
                t = int(row[0])
                values = [float(v) for v in row[1:6]]
            except (TypeError, ValueError):
                raise MalformedPage(f"a candle holds a non-number: {row!r}") from None
            if not all(math.isfinite(v) for v in values) or t <= previous:
                raise MalformedPage(f"a candle is out of order or not finite: {row!r}")
            previous = t
            rows.append([t, *values])
        # the candle still forming is not a candle yet
        now = self.now_ms()
        return [r for r in rows if r[0] + self.tf_ms <= now]

    def _call(self, fn: Callable[[], Any], *, what: str, counter: FetchResult | None) -> Any:
        ccxt = _ccxt()
        tries = 0
        while True:
            tries += 1
            if counter is not None:
                counter.requests += 1
            try:
                return fn()
            except ccxt.DDoSProtection as exc:  # 429 (and 418): wait as told
                wait = self._retry_after() or self.backoff_s * 2 ** (tries - 1)
                error: Exception = exc
            except (ccxt.NetworkError, MalformedPage) as exc:
                wait = self.backoff_s * 2 ** (tries - 1)
                error = exc
            except ccxt.BadSymbol as exc:
                raise FetchError(f"{self.exchange.id}: {what}: {_short(exc)}") from None
            except ccxt.BaseError as exc:
                raise FetchError(f"{self.exchange.id}: {what}: {_short(exc)}") from None
            if tries >= self.max_tries:
                raise FetchError(
                    f"{self.exchange.id}: {what}: giving up after {tries} tries: {_short(error)}"
                    " (the candles fetched so far are stored; run the same fetch again to resume)"
                )
            wait = min(wait, MAX_WAIT_S)
            if counter is not None:
                counter.retries += 1
                counter.waits.append(wait)
            self.sleep(wait)

    def _retry_after(self) -> float | None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
