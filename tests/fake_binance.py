"""A fake Binance spot REST API on 127.0.0.1 for ccxt's real client.

It serves what ``ccxt.binance`` asks for: ``/api/v3/exchangeInfo`` (a minimal spot
market list), ``/fapi/v1/exchangeInfo`` and ``/dapi/v1/exchangeInfo`` (no markets),
and ``/api/v3/klines`` with Binance's semantics (``startTime``, ``endTime``,
``limit`` capped at 1000, rows ``[openTime, "open", ..., closeTime, ...]``) over a
deterministic candle history with one hole (an exchange outage).

Faults are scripted per klines request in arrival order: ``"429"`` (Too Many Requests
with ``Retry-After``), ``"drop"`` (headers and half the body, then the connection
closes), ``"malformed"`` (a page whose rows are cut short), ``"html"`` (an error page),
``None`` (a normal answer). Every klines request is logged.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MINUTE_MS = 60_000
INTERVAL_MS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "1h": 60 * MINUTE_MS}


def _market(symbol: str, base: str, quote: str) -> dict:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000.00",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001",
                "maxQty": "9000.0",
                "stepSize": "0.00001",
            },
        ],
    }


EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1_700_000_000_000,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [_market("BTCUSDT", "BTC", "USDT"), _market("ETHBTC", "ETH", "BTC")],
}


def price_at(symbol: str, t_ms: int) -> tuple[float, float, float, float, float]:
    """A deterministic candle (open, high, low, close, volume) for ``t_ms``."""
    base = 40_000.0 if symbol == "BTCUSDT" else 0.05
    k = t_ms // MINUTE_MS
    o = base * (1 + 0.01 * math.sin(k / 37.0))
    c = base * (1 + 0.01 * math.sin((k + 1) / 37.0))
    hi = max(o, c) * 1.0005
    lo = min(o, c) * 0.9995
    vol = 1.0 + (k % 17) / 4
    return round(o, 8), round(hi, 8), round(lo, 8), round(c, 8), round(vol, 8)


class FakeBinance:
    """``with FakeBinance(first_ms, end_ms, hole=(a, b)) as fake: fake.url ...``."""

    def __init__(
        self,
        first_ms: int,
        end_ms: int,
        *,
        hole: tuple[int, int] | None = None,
        faults: list[str | None] | None = None,
        retry_after: str = "1",
        delay_s: float = 0.0,
    ) -> None:
        self.first_ms = first_ms
        self.end_ms = end_ms
        self.hole = hole
        self.faults: deque[str | None] = deque(faults or [])
        self.retry_after = retry_after
        self.delay_s = delay_s  # per klines answer: a slow exchange
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBinance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ data
    def klines(self, symbol: str, interval: str, start: int, end: int | None, limit: int) -> list:
        step = INTERVAL_MS[interval]
        t = max(start, self.first_ms)
        t = -(-t // step) * step
        rows = []
        stop = self.end_ms if end is None else min(self.end_ms, end + 1)
        while t < stop and len(rows) < limit:
            if self.hole is None or not (self.hole[0] <= t < self.hole[1]):
                o, h, lo, c, v = price_at(symbol, t)
                rows.append(
                    [
                        t,
                        f"{o:.8f}",
                        f"{h:.8f}",
                        f"{lo:.8f}",
                        f"{c:.8f}",
                        f"{v:.8f}",
                        t + step - 1,
                        f"{v * c:.8f}",
                        10,
                        "0.5",
                        "0.5",
                        "0",
                    ]
                )
            t += step
        return rows

    # ------------------------------------------------------------------ HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self,
                status: int,
                body: bytes,
                ctype: str = "application/json",
                extra: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with fake._lock:
                    fake.paths.append(parts.path)
                if parts.path == "/api/v3/exchangeInfo":
                    return self._send(200, json.dumps(EXCHANGE_INFO).encode())
                if parts.path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
                    return self._send(200, json.dumps({"symbols": []}).encode())
                if parts.path != "/api/v3/klines":
                    return self._send(404, b'{"code":-1,"msg":"not found"}')
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with fake._lock:
                    fake.requests.append(q)
                    fault = fake.faults.popleft() if fake.faults else None
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fault == "429":
                    body = b'{"code":-1003,"msg":"Too many requests; please use the websocket."}'
                    return self._send(429, body, extra={"Retry-After": fake.retry_after})
                rows = fake.klines(
                    q["symbol"],
                    q["interval"],
                    int(q.get("startTime", fake.first_ms)),
                    int(q["endTime"]) if "endTime" in q else None,
                    min(int(q.get("limit", 500)), 1000),
                )
                body = json.dumps(rows).encode()
                if fault == "drop":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if fault == "malformed":
                    cut = [r[:3] for r in rows]
                    return self._send(200, json.dumps(cut).encode())
                if fault == "html":
                    return self._send(502, b"<html><body>Bad gateway</body></html>", "text/html")
                return self._send(200, body)

        return Handler
