"""Instrument and timeframe from a file name (freqtrade, Binance and plain names)."""

from __future__ import annotations

import re
from pathlib import Path

_EXTENSIONS = {
    ".csv",
    ".txt",
    ".feather",
    ".ftr",
    ".arrow",
    ".json",
    ".jsongz",
    ".parquet",
    ".pq",
    ".gz",
}
# freqtrade: ETH_BTC-5m, BTC_USDT_USDT-1h-futures
_FREQTRADE = re.compile(
    r"^(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+){1,2})-(?P<tf>\d+[smhdw])"
    r"(?:-(?:futures|spot|mark|index|premiumIndex|funding_rate))?$"
)
# Binance public data: BTCUSDT-1m-2024-01, BTCUSDT-1m-2024-01-05
_BINANCE = re.compile(r"^(?P<sym>[A-Za-z0-9]+)-(?P<tf>\d+[smhdw])-\d{4}-\d{2}(?:-\d{2})?$")
_TF_TOKEN = re.compile(r"(?:^|(?<=[-_.]))(\d+[smhdw])(?=$|[-_.])")
_DATE_TOKEN = re.compile(r"(?:^|(?<=[-_.]))(\d{8}|\d{4}-\d{2}-\d{2})(?=$|[-_.])")
SYNTHETIC_PREFIX = "SYNTHETIC_"


def stem(path: Path) -> str:
    name = path.name
    while True:
        base, dot, ext = name.rpartition(".")
        if dot and ("." + ext.lower()) in _EXTENSIONS:
            name = base
        else:
            return name


def parse_name(path: Path) -> tuple[str, str | None]:
    """'ETH_BTC-5m.feather' -> ('ETH/BTC', '5m'); unknown layouts keep the file's stem."""
    name = stem(path)
    if name.upper().startswith(SYNTHETIC_PREFIX):
        name = name[len(SYNTHETIC_PREFIX) :]
    m = _FREQTRADE.match(name)
    if m:
        parts = m.group("pair").upper().split("_")
        pair = f"{parts[0]}/{parts[1]}" + (f":{parts[2]}" if len(parts) == 3 else "")
        return pair, m.group("tf")
    m = _BINANCE.match(name)
    if m:
        return m.group("sym").upper(), m.group("tf")
    tokens = _TF_TOKEN.findall(name)
    timeframe = tokens[-1] if tokens else None
    rest = name
    if timeframe:
        rest = re.sub(rf"(?:^|[-_.]){re.escape(timeframe)}(?=$|[-_.])", "", rest)
    rest = _DATE_TOKEN.sub("", rest)
    rest = re.sub(r"[-_.]{2,}", "-", rest).strip("-_.")
    return (rest.upper() or name), timeframe
