"""The candle store: ``DATADIR/EXCHANGE/BTC_USDT-1m.feather``, freqtrade's own layout.

A freqtrade user's ``user_data/data`` folder works as it is: the same folder per
exchange, the same file names (futures under ``futures/`` with a ``-futures`` suffix)
and the same feather columns: ``date`` (UTC open time), ``open, high, low, close,
volume``. Files are replaced atomically, so an interrupted fetch leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather

from engine.atomic import atomic_path
from engine.errors import TapedeckError

if TYPE_CHECKING:  # pandas (~0.3 s to import) only for the frames: not every command
    import pandas as pd

DATADIR_ENV = "TAPEDECK_DATADIR"
COLUMNS = ("date", "open", "high", "low", "close", "volume")
_REF = re.compile(r"^(?P<exchange>[A-Za-z][A-Za-z0-9_.-]+):(?P<symbol>[A-Za-z0-9/_:.-]+)$")


class StoreError(TapedeckError):
    """A store reference or file that cannot be used (the message says how to fix it)."""


def default_datadir() -> Path:
    """``$TAPEDECK_DATADIR``, else ``data/`` at the project root (source checkout), else ./data."""
    env = os.environ.get(DATADIR_ENV)
    if env:
        return Path(env).expanduser()
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / "data"
    return Path.cwd() / "data"


def pair_stem(symbol: str) -> str:
    """'BTC/USDT' -> 'BTC_USDT'; 'BTC/USDT:USDT' -> 'BTC_USDT_USDT' (freqtrade's file names)."""
    return re.sub(r"[/:]", "_", symbol.strip().upper())


def is_futures(symbol: str) -> bool:
    """A ccxt symbol with a settle currency ('BTC/USDT:USDT') or its file stem with three parts."""
    return ":" in symbol or pair_stem(symbol).count("_") == 2


def candle_path(datadir: str | Path, exchange: str, symbol: str, timeframe: str) -> Path:
    """Where freqtrade keeps the candles of ``symbol`` on ``exchange``."""
    folder = Path(datadir) / exchange.lower()
    if is_futures(symbol):
        return folder / "futures" / f"{pair_stem(symbol)}-{timeframe}-futures.feather"
    return folder / f"{pair_stem(symbol)}-{timeframe}.feather"


def read_candles(path: str | Path) -> pd.DataFrame:
    """The stored candles (empty frame when there is no file), sorted, ``date`` in ns UTC."""
    path = Path(path)
    if not path.exists():
        return empty_frame()
    try:
        df = feather.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path}: cannot read the stored candles: {exc}") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise StoreError(f"{path}: not a candle file (missing columns {', '.join(missing)})")
    return normalise(df.loc[:, list(COLUMNS)])


def empty_frame() -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame({c: np.empty(0, dtype=np.float64) for c in COLUMNS[1:]})
    df.insert(0, "date", pd.DatetimeIndex([], dtype="datetime64[ns, UTC]"))
    return df


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in order, ``date`` as datetime64[ns, UTC], floats, one row per date, sorted."""
    import pandas as pd

    out = df.loc[:, list(COLUMNS)].copy()
    out["date"] = pd.to_datetime(out["date"], utc=True).astype("datetime64[ns, UTC]")
    for c in COLUMNS[1:]:
        out[c] = out[c].astype(np.float64)
    out = out.drop_duplicates("date", keep="last").sort_values("date", kind="stable")
    return out.reset_index(drop=True)


def frame_from_rows(rows: list[list[float]]) -> pd.DataFrame:
    """ccxt OHLCV rows ``[ms, open, high, low, close, volume]`` as a store frame."""
    import pandas as pd

    if not rows:
        return empty_frame()
    arr = np.asarray([r[:6] for r in rows], dtype=np.float64)
    df = pd.DataFrame(arr[:, 1:], columns=list(COLUMNS[1:]))
    df.insert(0, "date", pd.to_datetime(arr[:, 0].astype(np.int64), unit="ms", utc=True))
    return normalise(df)


def merge(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two frames by ``date``; where both have a candle the newer one wins."""
    import pandas as pd

    if old.empty:
        return normalise(new)
    if new.empty:
        return old
    return normalise(pd.concat([old, new], ignore_index=True))


def write_candles(path: str | Path, df: pd.DataFrame) -> Path:
    """Write candles as freqtrade does (feather, lz4), replacing the file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(normalise(df), preserve_index=False)
    with atomic_path(path) as tmp:
        feather.write_feather(table, tmp, compression="lz4")
    return path


def parse_ref(text: str) -> tuple[str, str] | None:
    """'binance:BTC/USDT' -> ('binance', 'BTC/USDT'); None when ``text`` is not a reference."""
    m = _REF.match(text.strip())
    if not m:
        return None
    return m.group("exchange").lower(), m.group("symbol")


def stored_timeframes(datadir: str | Path, exchange: str, symbol: str) -> dict[str, Path]:
    """The timeframes stored for ``symbol`` on ``exchange``, each with its file."""
    probe = candle_path(datadir, exchange, symbol, "TF")
    prefix, _, suffix = probe.name.partition("TF")
    found: dict[str, Path] = {}
    if probe.parent.is_dir():
        for p in sorted(probe.parent.iterdir()):
            name = p.name
            if name.startswith(prefix) and name.endswith(suffix):
                tf = name[len(prefix) : len(name) - len(suffix)]
                if re.fullmatch(r"\d+[smhdwM]", tf):
                    found[tf] = p
    return found


def resolve_ref(text: str, timeframe: str | None = None, datadir: str | Path | None = None) -> str:
    """A data argument as a file path: ``EXCHANGE:SYMBOL`` becomes its file in the store.

    Anything that exists as a file, or does not look like a reference, is returned as is.
    Without ``timeframe`` the store must hold exactly one timeframe of the symbol.
    """
    if Path(text).exists():
        return text
    ref = parse_ref(text)
    if ref is None:
        return text
    exchange, symbol = ref
    root = Path(datadir) if datadir is not None else default_datadir()
    hint = f"fetch them with: tapedeck fetch {exchange} {symbol} --timeframe 1m --since DATE"
    if timeframe:
        path = candle_path(root, exchange, symbol, timeframe)
        if not path.exists():
            raise StoreError(f"{text}: no {timeframe} candles in {path.parent}; {hint}")
        return str(path)
    found = stored_timeframes(root, exchange, symbol)
    if not found:
        raise StoreError(f"{text}: no candles stored in {root / exchange}; {hint}")
    if len(found) > 1:
        raise StoreError(
            f"{text}: the store holds several timeframes ({', '.join(found)}); "
            "choose one with --timeframe"
        )
    return str(next(iter(found.values())))


def resolve_data_args(
    items: list[str], timeframe: str | None = None, datadir: str | Path | None = None
) -> list[str]:
    """``resolve_ref`` over the DATA arguments of run, replay, compare and experiment."""
    return [resolve_ref(str(t), timeframe, datadir) for t in items]
