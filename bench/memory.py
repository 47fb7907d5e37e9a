"""Peak memory of ``data info``, ``run`` and ``signals`` on N one-minute candles of one instrument.

Generates a random-walk CSV of ``--rows`` candles (default 10,000,000) in a temporary
folder, then runs each command in a fresh process under ``/usr/bin/time`` and reads its
peak resident set size. The peer is the data itself: the six candle columns in memory
(``rows * 6 * 8`` bytes). Targets (issue 12): ``data info`` <= 1.5 GB, ``run`` <= 3 GB;
``signals`` (every signal printed) has none, it is reported (6.7 GB when the issue was filed).

    python bench/memory.py [--rows 10000000] [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
TARGETS_GB = {"data info": 1.5, "run": 3.0}


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A random walk of ``rows`` one-minute candles from 2000-01-01, written in chunks."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2000-01-01T00:00", "m").astype(np.int64)
    chunk = 1_000_000
    price = 100.0
    options = pacsv.WriteOptions(include_header=True)
    with pacsv.CSVWriter(str(path), _schema(), write_options=options) as writer:
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            steps = rng.normal(0.0, 0.0008, n)
            close = price * np.exp(np.cumsum(steps))
            open_ = np.concatenate(([price], close[:-1]))
            spread = np.abs(rng.normal(0.0, 0.0005, n)) * close
            high = np.maximum(open_, close) + spread
            low = np.minimum(open_, close) - spread
            minutes = start + lo + np.arange(n, dtype=np.int64)
            table = pa.table(
                {
                    "timestamp": pa.array(minutes * 60, pa.int64()),
                    "open": np.round(open_, 4),
                    "high": np.round(high, 4),
                    "low": np.round(low, 4),
                    "close": np.round(close, 4),
                    "volume": np.round(rng.gamma(2.0, 50.0, n), 3),
                },
                schema=_schema(),
            )
            writer.write_table(table)
            price = float(close[-1])


def _schema() -> pa.Schema:
    return pa.schema(
        [("timestamp", pa.int64())]
        + [(c, pa.float64()) for c in ("open", "high", "low", "close", "volume")]
    )


def peak_rss(args: list[str]) -> tuple[float, float, int]:
    """(peak RSS in GB, wall seconds, exit code) of ``python -m engine.cli ARGS``."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "engine.cli", *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    kib = int(proc.stderr.strip().splitlines()[-1])
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return kib * 1024 / 1e9, wall, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    parser.add_argument("--persona", default="momentum")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tapedeck-mem-"))
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"BENCH_USDT-1m-{args.rows}.csv"
    if not data.exists():
        t = time.perf_counter()
        make_csv(data, args.rows)
        print(
            f"generated {args.rows:,} candles ({data.stat().st_size / 1e9:.2f} GB CSV) "
            f"in {time.perf_counter() - t:.0f} s"
        )
    columns_gb = args.rows * 6 * 8 / 1e9
    print(f"peer: the six candle columns in memory = {columns_gb:.2f} GB")
    commands = {
        "data info": ["data", "info", str(data), "--json"],
        "run": ["run", str(data), "--persona", args.persona, "--json", "--progress", "never"],
        "signals": ["signals", str(data)],
    }
    for name, cmd in commands.items():
        peaks, walls = [], []
        for _ in range(args.repeat):
            gb, wall, code = peak_rss(cmd)
            if code != 0:
                print(f"{name}: exit {code}")
                return 1
            peaks.append(gb)
            walls.append(wall)
        peak = statistics.median(peaks)
        target = TARGETS_GB.get(name)
        verdict = (
            "no target"
            if target is None
            else f"target {target} GB: {'met' if peak <= target else 'MISSED'}"
        )
        print(
            f"{name:<9} peak RSS median {peak:5.2f} GB  ({peak / columns_gb:4.1f}x the columns; "
            f"{verdict}); wall {statistics.median(walls):6.1f} s"
        )
    if args.keep is None:
        data.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
