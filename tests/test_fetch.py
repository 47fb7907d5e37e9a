"""``tapedeck fetch`` through ccxt's real binance client against a fake Binance on 127.0.0.1.

The store must end byte-identical to a clean fetch whatever happens on the way: pages,
429 with Retry-After, a connection dropped in the middle of a page, malformed pages, an
interruption and a rerun. No connection leaves 127.0.0.1 (a guard refuses any other).
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pytest

from engine.cli import main
from engine.data import load
from engine.fetch.exchange import FetchError, make_exchange
from engine.fetch.fetcher import Fetcher
from engine.fetch.store import DATADIR_ENV, candle_path, read_candles, resolve_ref
from tests.fake_binance import FakeBinance, price_at

pytest.importorskip("ccxt")

MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOLE = (T0 + 1500 * MIN, T0 + 1530 * MIN)  # an exchange outage of 30 minutes
FIRST, LAST = T0 - 600 * MIN, T0 + 5000 * MIN  # what the fake exchange has
NOW = T0 + 10**9
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection that is not to 127.0.0.1: the tests never touch a network."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1"):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def fake(**kw: object) -> FakeBinance:
    return FakeBinance(FIRST, LAST, hole=HOLE, **kw)  # type: ignore[arg-type]


def fetcher(server: FakeBinance, datadir: Path, **kw: object) -> Fetcher:
    ex = make_exchange("binance", api_url=server.url)
    kw.setdefault("sleep", lambda s: None)
    f = Fetcher(ex, datadir, now_ms=lambda: NOW, backoff_s=0.01, **kw)  # type: ignore[arg-type]
    f.load_markets()
    return f


def clean_fetch(tmp: Path, since: int = T0, until: int = T0 + 3000 * MIN) -> bytes:
    with fake() as server:
        f = fetcher(server, tmp / "clean")
        path = f.fetch("BTC/USDT", since, until).path
    return path.read_bytes()


def expected_frame(since: int, until: int) -> pd.DataFrame:
    times = [t for t in range(since, until, MIN) if not (HOLE[0] <= t < HOLE[1])]
    rows = [price_at("BTCUSDT", t) for t in times]
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"])
    df.insert(0, "date", pd.to_datetime(times, unit="ms", utc=True).astype("datetime64[ns, UTC]"))
    return df


def test_clean_fetch_pages_into_a_freqtrade_file(tmp_path: Path) -> None:
    with fake() as server:
        f = fetcher(server, tmp_path)
        result = f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
        paths = list(server.paths)
        starts = [int(q["startTime"]) for q in server.requests]
    # ccxt's load_markets asked for the three market lists, then 1000-candle pages
    assert paths[:3] == ["/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"]
    # after the hole the exchange answers from the next candle it has: 1000 rows a page
    assert starts == [T0, T0 + 1000 * MIN, T0 + 2030 * MIN]
    assert result.path == tmp_path / "binance" / "BTC_USDT-1m.feather"
    assert result.fetched == 3000 - 30 and result.retries == 0
    table = feather.read_table(result.path)
    assert table.column_names == ["date", "open", "high", "low", "close", "volume"]
    assert str(table.schema.field("date").type) == "timestamp[ns, tz=UTC]"
    pd.testing.assert_frame_equal(table.to_pandas(), expected_frame(T0, T0 + 3000 * MIN))
    series = load(result.path)  # the project's own loader reads it as it reads freqtrade's
    assert series.instrument == "BTC/USDT" and series.timeframe == "1m"
    assert len(series) == 2970 and series.report.gap_count == 1


def test_faults_on_the_way_end_in_the_same_bytes(tmp_path: Path) -> None:
    want = clean_fetch(tmp_path)
    waits: list[float] = []
    faults = ["429", None, "drop", "malformed", "html", None, "429"]
    with fake(faults=faults, retry_after="1") as server:
        f = fetcher(server, tmp_path / "faulty", sleep=waits.append)
        result = f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
        starts = [int(q["startTime"]) for q in server.requests]
    assert result.path.read_bytes() == want
    assert result.retries == 5
    # the 429s waited exactly the server's Retry-After; the others backed off exponentially
    assert waits == [1.0, 0.01, 0.02, 0.04, 1.0]
    # every failed page was asked again from the same candle: nothing skipped
    assert starts == [T0, T0, T0 + 1000 * MIN] + [T0 + 1000 * MIN] * 3 + [T0 + 2030 * MIN] * 2


def test_incremental_fetch_requests_only_missing_candles(tmp_path: Path) -> None:
    want = clean_fetch(tmp_path, T0, T0 + 3000 * MIN)
    store = tmp_path / "store"
    with fake() as server:
        f = fetcher(server, store)
        f.fetch("BTC/USDT", T0 + 1000 * MIN, T0 + 2000 * MIN)
        server.requests.clear()
        result = f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
        grown = [(int(q["startTime"])) for q in server.requests]
        server.requests.clear()
        again = f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
    assert grown == [T0, T0 + 2000 * MIN]  # before the stored span, then after it
    assert result.fetched == 2000  # the hole lies in the span fetched first
    assert result.path.read_bytes() == want
    assert again.fetched == 0 and server.requests == []  # nothing missing: no request


def test_interrupted_fetch_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    want = clean_fetch(tmp_path)
    store = tmp_path / "store"
    pages = 0

    def interrupt(symbol: str, done: int, total: int) -> None:
        nonlocal pages
        if done:
            pages += 1
        if pages == 2:
            raise KeyboardInterrupt

    with fake() as server:
        f = fetcher(server, store, progress=interrupt, flush_rows=1000)
        with pytest.raises(KeyboardInterrupt):
            f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
        path = candle_path(store, "binance", "BTC/USDT", "1m")
        partial = read_candles(path)
        assert len(partial) == 2000  # both pages fetched were written on the way out
        server.requests.clear()
        f.progress = None
        f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
        resumed = [int(q["startTime"]) for q in server.requests]
    assert resumed == [T0 + 2030 * MIN]
    assert path.read_bytes() == want


def test_a_write_that_dies_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    with fake() as server:
        f = fetcher(server, store)
        path = f.fetch("BTC/USDT", T0, T0 + 1000 * MIN).path
        before = path.read_bytes()

        def dying_write(table: object, dest: object, **kw: object) -> None:
            Path(str(dest)).write_bytes(b"ARROW1 half a file")
            raise OSError("disk full")

        monkeypatch.setattr(feather, "write_feather", dying_write)
        with pytest.raises(OSError, match="disk full"):
            f.fetch("BTC/USDT", T0, T0 + 2000 * MIN)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["BTC_USDT-1m.feather"]


def test_gives_up_with_a_clear_error_and_keeps_what_it_has(tmp_path: Path) -> None:
    with fake(faults=[None] + ["429"] * 10, retry_after="0") as server:
        f = fetcher(server, tmp_path, max_tries=3)
        with pytest.raises(FetchError, match=r"giving up after 3 tries.*run the same fetch again"):
            f.fetch("BTC/USDT", T0, T0 + 3000 * MIN)
    assert len(read_candles(candle_path(tmp_path, "binance", "BTC/USDT", "1m"))) == 1000


def test_unknown_market_and_timeframe_are_one_line_errors(tmp_path: Path) -> None:
    with fake() as server:
        f = fetcher(server, tmp_path)
        with pytest.raises(FetchError, match="binance has no market 'BTC/EUR'"):
            f.fetch("BTC/EUR", T0, T0 + MIN)
        with pytest.raises(FetchError, match="binance has no 7m candles"):
            Fetcher(f.exchange, tmp_path, timeframe="7m")


def test_the_forming_candle_is_not_stored(tmp_path: Path) -> None:
    now = T0 + 100 * MIN + 30_000  # half-way through the 101st candle
    with fake() as server:
        ex = make_exchange("binance", api_url=server.url)
        f = Fetcher(ex, tmp_path, now_ms=lambda: now)
        f.load_markets()
        path = f.fetch("BTC/USDT", T0).path
    df = read_candles(path)
    assert len(df) == 100
    assert df["date"].iloc[-1] == pd.Timestamp(T0 + 99 * MIN, unit="ms", tz="UTC")


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data (real freqtrade files)")
def test_extends_a_real_freqtrade_file_in_place(tmp_path: Path) -> None:
    # a freqtrade user's folder: user_data/data/binance/ETH_BTC-5m.feather
    original = SHARED / "binance-5m" / "ETH_BTC-5m.feather"
    path = tmp_path / "binance" / "ETH_BTC-5m.feather"
    path.parent.mkdir()
    shutil.copy(original, path)
    old = pd.read_feather(original)
    last = int(old["date"].iloc[-1].value // 1_000_000)
    with FakeBinance(last - 50 * 5 * MIN, last + 200 * 5 * MIN) as server:
        ex = make_exchange("binance", api_url=server.url)
        f = Fetcher(ex, tmp_path, timeframe="5m", now_ms=lambda: NOW)
        f.load_markets()
        first = int(old["date"].iloc[0].value // 1_000_000)
        result = f.fetch("ETH/BTC", first, last + 100 * 5 * MIN)
        starts = [int(q["startTime"]) for q in server.requests]
    assert starts == [last + 5 * MIN]  # only after the user's last candle
    new = pd.read_feather(path)  # freqtrade reads it with pandas, as it always did
    assert result.fetched == 99 and len(new) == len(old) + 99
    pd.testing.assert_frame_equal(new.iloc[: len(old)], old, check_dtype=False)
    assert new["date"].is_monotonic_increasing and new["date"].is_unique
    assert np.isclose(new["close"].iloc[-1], price_at("ETHBTC", last + 99 * 5 * MIN)[3])


def test_cli_fetch_then_run_by_exchange_symbol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATADIR_ENV, str(tmp_path))
    with fake() as server:
        argv = ["fetch", "binance", "BTC/USDT", "ETH/BTC", "--since", "2024-01-01"]
        argv += ["--until", "2024-01-03", "--api-url", server.url, "--progress", "never"]
        assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert [r["instrument"] for r in report] == ["BTC/USDT", "ETH/BTC"]
    assert report[0]["rows"] == 2 * 1440 - 30 and report[0]["gaps"] == 1
    assert (
        report[0]["start"] == "2024-01-01T00:00:00Z" and report[0]["end"] == "2024-01-02T23:59:00Z"
    )
    assert "BTC/USDT: 2,850 new candles" in err
    path = resolve_ref("binance:BTC/USDT")
    assert path == str(tmp_path / "binance" / "BTC_USDT-1m.feather")
    assert main(["run", "binance:BTC/USDT", "--json"]) == 0
    by_ref = json.loads(capsys.readouterr().out)
    assert main(["run", path, "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    assert by_ref["trades"] == by_path["trades"] and by_ref["metrics"] == by_path["metrics"]
    assert by_ref["metrics"]["n_bars"] == 2 * 1440 - 30
    for command in (["data", "info"], ["signals"]):
        assert main([*command, "binance:ETH/BTC", "--json"]) == 0, command
        assert "ETH/BTC" in capsys.readouterr().out
    # a symbol that is not in the store says how to get it
    assert main(["run", "binance:SOL/USDT"]) == 2
    assert "tapedeck fetch binance SOL/USDT" in capsys.readouterr().err


def test_store_reference_needs_a_timeframe_when_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for tf in ("1m", "5m"):
        p = candle_path(tmp_path, "binance", "BTC/USDT", tf)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    from engine.fetch.store import StoreError

    with pytest.raises(StoreError, match="several timeframes"):
        resolve_ref("binance:BTC/USDT", datadir=tmp_path)
    assert resolve_ref("binance:btc_usdt", "5m", tmp_path).endswith("BTC_USDT-5m.feather")
    fut = candle_path(tmp_path, "binance", "BTC/USDT:USDT", "1h")
    assert fut == tmp_path / "binance" / "futures" / "BTC_USDT_USDT-1h-futures.feather"
    assert resolve_ref("some/file.csv", datadir=tmp_path) == "some/file.csv"


def test_experiment_data_accepts_store_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.experiment.spec import ExperimentError, experiment_from_dict

    monkeypatch.setenv(DATADIR_ENV, str(tmp_path))
    with fake() as server:
        fetcher(server, tmp_path).fetch("BTC/USDT", T0, T0 + 100 * MIN)
    spec = {"data": ["binance:BTC/USDT"], "personas": ["momentum"]}
    exp = experiment_from_dict(spec, base=tmp_path / "elsewhere")
    want = str(candle_path(tmp_path, "binance", "BTC/USDT", "1m").resolve())
    assert list(exp.instrument_sets.values()) == [(want,)]
    with pytest.raises(ExperimentError, match="tapedeck fetch binance SOL/USDT"):
        experiment_from_dict({**spec, "data": ["binance:SOL/USDT"]}, base=tmp_path)


def test_cli_progress_bar_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake() as server:
        argv = ["fetch", "binance", "BTC/USDT", "--since", "2024-01-01", "--until", "2024-01-02"]
        argv += ["--datadir", str(tmp_path), "--api-url", server.url, "--progress", "always"]
        assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "1440/1440" in err and "BTC/USDT: 1,440 new candles (2 requests, 0 retries)" in err
    assert "1440/1440" not in out and "BTC/USDT" in out  # stdout: the data info table only


def test_ctrl_c_on_the_command_then_rerun_ends_like_a_clean_fetch(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO_ROOT

    want = clean_fetch(tmp_path, T0, T0 + 4000 * MIN)
    store = tmp_path / "store"
    argv = [sys.executable, "-m", "engine.cli", "fetch", "binance", "BTC/USDT"]
    argv += ["--since", "2024-01-01T00:00", "--until", "2024-01-03T18:40"]  # 4000 minutes
    with fake(delay_s=0.4) as server:
        argv += ["--datadir", str(store), "--api-url", server.url, "--progress", "never"]
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(server.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # while the third page is on its way
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert b"interrupted" in err
        path = candle_path(store, "binance", "BTC/USDT", "1m")
        assert len(read_candles(path)) == 2000  # the two pages that arrived were kept
        server.requests.clear()
        server.delay_s = 0.0
        done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        resumed = [int(q["startTime"]) for q in server.requests]
    assert resumed[0] == T0 + 2030 * MIN  # after the last stored candle, nothing refetched
    assert path.read_bytes() == want
