"""Shared fixtures. Real exchange data lives beside the repository in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "real"
BTC_1M_CSV = SHARED_DATA / "btc-perp-20211231-20220201_1m.csv"
ALT_5M_DIR = SHARED_DATA / "binance-5m"
ALT_5M_NAMES = ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM")
UNITTEST_1M = SHARED_DATA / "UNITTEST_BTC-1m.feather"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it lives in ../shared/data)")
    return path


@pytest.fixture(scope="session")
def btc_1m_csv() -> Path:
    return _need(BTC_1M_CSV)


@pytest.fixture(scope="session")
def alt_5m_files() -> list[Path]:
    _need(ALT_5M_DIR)
    return [_need(ALT_5M_DIR / f"{n}_BTC-5m.feather") for n in ALT_5M_NAMES]


@pytest.fixture(scope="session")
def unittest_1m_feather() -> Path:
    return _need(UNITTEST_1M)
