"""``tapedeck fetch EXCHANGE SYMBOL... --timeframe 1m --since DATE [--until DATE]``.

Candles come through ccxt (rate limited) into the store (``data/`` at the project root,
or ``--datadir``, or ``$TAPEDECK_DATADIR``) as freqtrade-compatible feather files.
Only the candles the store lacks are requested; an interrupted fetch resumes where it
stopped. It ends with the validation report of ``data info``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from engine.fetch.exchange import FetchError
from engine.fetch.store import DATADIR_ENV, candle_path, default_datadir, read_candles
from engine.runtime import StderrBar
from engine.timeutil import parse_time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fetch", help="download candles from an exchange (ccxt) into the data/ store"
    )
    p.add_argument("exchange", metavar="EXCHANGE", help="a ccxt exchange id, e.g. binance")
    p.add_argument("symbols", nargs="+", metavar="SYMBOL", help="markets, e.g. BTC/USDT ETH/BTC")
    p.add_argument("--timeframe", default="1m", help="candle timeframe (default 1m)")
    p.add_argument(
        "--since",
        help="first candle, ISO date (UTC); default: continue after the stored candles",
    )
    p.add_argument("--until", help="end of the window (exclusive), ISO (UTC); default: now")
    p.add_argument(
        "--datadir",
        type=Path,
        help=f"the store (default: ${DATADIR_ENV}, else data/ at the project root)",
    )
    p.add_argument(
        "--api-url",
        metavar="URL",
        help="send the exchange's API requests to this host (a mirror or a local test server)",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: when stderr is a terminal)",
    )
    p.add_argument("--json", action="store_true", help="the final report as JSON")
    p.set_defaults(func=fetch_command)


def _ms(text: str, flag: str) -> int:
    try:
        return parse_time(text) // 1_000_000
    except ValueError as exc:
        raise FetchError(f"{flag}: {exc}") from None


class _Bar(StderrBar):
    """One rich progress task per symbol on stderr (or nothing)."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self._tasks: dict[str, Any] = {}

    def update(self, symbol: str, done: int, total: int) -> None:
        if self.bar is None:
            return
        if symbol not in self._tasks:
            self._tasks[symbol] = self.bar.add_task(symbol, total=total)
        self.bar.update(self._tasks[symbol], completed=done, total=total)


def fetch_command(args: argparse.Namespace) -> int:
    from engine.commands.data import print_info
    from engine.data import load_many
    from engine.fetch.exchange import make_exchange
    from engine.fetch.fetcher import Fetcher

    datadir = args.datadir if args.datadir is not None else default_datadir()
    until = _ms(args.until, "--until") if args.until else None
    since = _ms(args.since, "--since") if args.since else None
    if since is not None and until is not None and since >= until:
        raise FetchError(f"--since ({args.since}) must be before --until ({args.until})")
    exchange = make_exchange(args.exchange, api_url=args.api_url)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    paths: list[Path] = []
    with _Bar(args.progress) as bar:
        fetcher = Fetcher(exchange, Path(datadir), timeframe=args.timeframe, progress=bar.update)
        fetcher.load_markets()
        for symbol in args.symbols:
            fetcher.check_symbol(symbol)
        for symbol in args.symbols:
            start = since
            if start is None:
                stored = read_candles(candle_path(datadir, exchange.id, symbol, args.timeframe))
                if stored.empty:
                    raise FetchError(f"{symbol}: nothing stored yet: give --since DATE")
                start = int(stored["date"].iloc[0].value // 1_000_000)
            result = fetcher.fetch(symbol, start, until)
            err.print(
                f"{symbol}: {result.fetched:,} new candles "
                f"({result.requests} requests, {result.retries} retries) -> {result.path}"
            )
            if result.path.exists():
                paths.append(result.path)
    if not paths:
        raise FetchError("the exchange returned no candles for that window")
    print_info(load_many([str(p) for p in paths], timeframe=args.timeframe), as_json=args.json)
    return 0
