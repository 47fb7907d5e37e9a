"""Loading speed: engine.data.load vs plain pandas readers, in the same run.

    python bench/load.py [--repeats N]

Ours parses, validates (sort/NaN/OHLC/duplicate checks), infers the timeframe and
finds gaps; the pandas peers only read. Medians of N repeats after one warm-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds  # noqa: E402
from engine.data import load, load_many  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
BTC_CSV = REAL / "btc-perp-20211231-20220201_1m.csv"
FEATHERS = sorted((REAL / "binance-5m").glob("*_BTC-5m.feather"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if not BTC_CSV.exists() or len(FEATHERS) != 8:
        print(f"real data not found under {REAL}", file=sys.stderr)
        return 1

    cases = [
        (
            "45k-row CSV",
            lambda: load(BTC_CSV),
            "pandas.read_csv",
            lambda: pd.read_csv(BTC_CSV),
        ),
        (
            "45k-row CSV",
            lambda: load(BTC_CSV),
            "pandas.read_csv + to_datetime",
            lambda: pd.read_csv(BTC_CSV).assign(
                timestamp=lambda d: pd.to_datetime(d["timestamp"], utc=True)
            ),
        ),
        (
            "8 feather files",
            lambda: load_many(FEATHERS),
            "pandas.read_feather x8",
            lambda: [pd.read_feather(p) for p in FEATHERS],
        ),
    ]
    print(f"medians of {args.repeats} repeats (ms); ratio = ours / peer (below 1: ours faster)")
    print(f"{'input':<16} {'ours':>8}  {'peer':<30} {'peer ms':>8} {'ratio':>6}")
    for what, ours, peer_name, peer in cases:
        a = median_seconds(ours, args.repeats, warmup=True)
        b = median_seconds(peer, args.repeats, warmup=True)
        print(f"{what:<16} {a * 1e3:8.2f}  {peer_name:<30} {b * 1e3:8.2f} {a / b:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
