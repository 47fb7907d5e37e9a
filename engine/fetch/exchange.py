"""The ccxt client for a fetch: rate-limited, public endpoints only, optionally redirected."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engine.errors import TapedeckError


class FetchError(TapedeckError):
    """A fetch that cannot go on (the candles fetched so far stay in the store)."""


def _ccxt() -> Any:
    try:
        import ccxt
    except ImportError:  # pragma: no cover - ccxt is a dependency
        raise FetchError("fetching needs ccxt: pip install ccxt") from None
    return ccxt


def _redirect(urls: Any, base: str) -> Any:
    """Every API URL with its scheme and host replaced by those of ``base`` (paths kept)."""
    if isinstance(urls, str):
        parts = urlsplit(urls)
        if not parts.scheme.startswith("http"):
            return urls
        target = urlsplit(base)
        path = target.path.rstrip("/") + parts.path
        return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))
    if isinstance(urls, dict):
        return {k: _redirect(v, base) for k, v in urls.items()}
    return urls


def make_exchange(exchange_id: str, *, api_url: str | None = None, timeout_s: float = 30.0) -> Any:
    """A ccxt client for ``exchange_id`` with rate limiting on; ``api_url`` redirects its API.

    ``api_url`` (e.g. ``http://127.0.0.1:8080``) sends every request to that host,
    keeping the exchange's paths: a mirror, a recording proxy or a local test server.
    """
    ccxt = _ccxt()
    name = exchange_id.lower()
    if name not in ccxt.exchanges:
        raise FetchError(f"unknown exchange {exchange_id!r} (ccxt knows e.g. binance, kraken, okx)")
    options: dict[str, Any] = {}
    if name.startswith("binance"):
        # markets of all three kinds are public; margin pairs need an API key: skip them
        options["fetchMargins"] = False
    exchange = getattr(ccxt, name)(
        {"enableRateLimit": True, "timeout": int(timeout_s * 1000), "options": options}
    )
    if api_url:
        exchange.urls["api"] = _redirect(exchange.urls["api"], api_url)
    if "fetchOHLCV" in exchange.has and not exchange.has["fetchOHLCV"]:
        raise FetchError(f"{name} does not serve candles (OHLCV) through ccxt")
    return exchange
