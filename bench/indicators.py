"""Indicator speed on 1,000,000 candles: ours vs TA-Lib in the same run, and start-up.

    python bench/indicators.py [--n 1000000] [--repeat 7] [--updates 200000]

For each indicator: our median batch time, TA-Lib's median time, the ratio (target
<= 2.0, aim <= 1.2), and incremental updates per second (target >= 200,000). JIT
compile/load is excluded from the timings and measured separately, in fresh processes,
with numba's on-disk cache cold and warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine.indicators as ind  # noqa: E402
from engine.indicators import registry  # noqa: E402

try:
    import talib
except ImportError:  # the table then shows our times only
    talib = None


def candles(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    high = close * (1 + np.abs(rng.normal(0, 0.0005, n)))
    low = close * (1 - np.abs(rng.normal(0, 0.0005, n)))
    volume = rng.gamma(2.0, 5.0, n)
    return {"open": close, "high": high, "low": low, "close": close, "volume": volume}


def median_times(
    ours: Callable[[], object], theirs: Callable[[], object] | None, repeat: int
) -> tuple[float, float]:
    """Medians, with the two calls interleaved so load from other processes hits both."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        if theirs is not None:
            t0 = time.perf_counter()
            theirs()
            b.append(time.perf_counter() - t0)
    return statistics.median(a), (statistics.median(b) if b else float("nan"))


def cases(c: dict[str, np.ndarray]) -> list[tuple[str, Callable[[], object], Callable | None]]:
    h, lo, cl, v = c["high"], c["low"], c["close"], c["volume"]
    t = talib
    return [
        ("sma(20)", lambda: ind.sma(cl, 20), t and (lambda: t.SMA(cl, 20))),
        ("ema(20)", lambda: ind.ema(cl, 20), t and (lambda: t.EMA(cl, 20))),
        ("wma(20)", lambda: ind.wma(cl, 20), t and (lambda: t.WMA(cl, 20))),
        ("rsi(14)", lambda: ind.rsi(cl, 14), t and (lambda: t.RSI(cl, 14))),
        ("macd(12,26,9)", lambda: ind.macd(cl), t and (lambda: t.MACD(cl, 12, 26, 9))),
        ("true_range", lambda: ind.true_range(h, lo, cl), t and (lambda: t.TRANGE(h, lo, cl))),
        ("atr(14)", lambda: ind.atr(h, lo, cl, 14), t and (lambda: t.ATR(h, lo, cl, 14))),
        (
            "bbands(20,2)",
            lambda: ind.bbands(cl, 20, 2.0),
            t and (lambda: t.BBANDS(cl, 20, 2.0, 2.0, 0)),
        ),
        (
            "stoch(14,3,3)",
            lambda: ind.stoch(h, lo, cl),
            t and (lambda: t.STOCH(h, lo, cl, 14, 3, 0, 3, 0)),
        ),
        ("adx(14)", lambda: ind.adx(h, lo, cl, 14), t and (lambda: t.ADX(h, lo, cl, 14))),
        ("obv", lambda: ind.obv(cl, v), t and (lambda: t.OBV(cl, v))),
        ("roc(10)", lambda: ind.roc(cl, 10), t and (lambda: t.ROC(cl, 10))),
        ("vwap(20)", lambda: ind.vwap(h, lo, cl, v, 20), None),
    ]


INC_NAMES = {
    "sma(20)": ("sma", {"period": 20}),
    "ema(20)": ("ema", {"period": 20}),
    "wma(20)": ("wma", {"period": 20}),
    "rsi(14)": ("rsi", {}),
    "macd(12,26,9)": ("macd", {}),
    "true_range": ("true_range", {}),
    "atr(14)": ("atr", {}),
    "bbands(20,2)": ("bbands", {}),
    "stoch(14,3,3)": ("stoch", {}),
    "adx(14)": ("adx", {}),
    "obv": ("obv", {}),
    "roc(10)": ("roc", {}),
    "vwap(20)": ("vwap", {"period": 20}),
}


def updates_per_second(name: str, params: dict, c: dict[str, np.ndarray], n: int) -> float:
    spec = registry.get(name)
    cols = [c[k][:n].tolist() for k in spec.inputs]
    best = 0.0
    for _ in range(3):
        obj = spec.make_incremental(**params)
        update = obj.update
        t0 = time.perf_counter()
        if len(cols) == 1:
            for x in cols[0]:
                update(x)
        elif len(cols) == 2:
            for a, b in zip(*cols, strict=True):
                update(a, b)
        elif len(cols) == 3:
            for a, b, d in zip(*cols, strict=True):
                update(a, b, d)
        else:
            for a, b, d, e in zip(*cols, strict=True):
                update(a, b, d, e)
        best = max(best, n / (time.perf_counter() - t0))
    return best


STARTUP = """
import time, sys
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import engine.indicators as ind
t2 = time.perf_counter()
ind.rsi(np.linspace(1.0, 2.0, 100), 14)
t3 = time.perf_counter()
ind.warm_up()
t4 = time.perf_counter()
print(f"{t2 - t1:.3f} {t3 - t2:.3f} {t4 - t3:.3f} {t4 - t0:.3f}")
"""


def startup(cache_dir: str) -> list[float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", STARTUP], env=env, capture_output=True, text=True, check=True
    )
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--updates", type=int, default=200_000)
    ap.add_argument("--no-startup", action="store_true")
    args = ap.parse_args()

    if not args.no_startup:
        print("start-up in a fresh process (seconds):")
        print(f"{'cache':<6} {'import':>8} {'1st call':>9} {'all others':>11} {'total':>7}")
        with tempfile.TemporaryDirectory() as d:
            for label in ("cold", "warm", "warm"):
                imp, first, rest, total = startup(d)
                print(f"{label:<6} {imp:>8.3f} {first:>9.3f} {rest:>11.3f} {total:>7.3f}")
        print("(import = import engine.indicators; 1st call = rsi, loading numba and its")
        print(" kernel; all others = the remaining kernels; total includes numpy import)\n")

    t0 = time.perf_counter()
    ind.warm_up()
    print(f"JIT load/compile in this process (excluded below): {time.perf_counter() - t0:.2f} s\n")

    c = candles(args.n)
    print(
        f"batch on {args.n:,} candles, median of {args.repeat}; incremental over {args.updates:,}"
    )
    head = f"{'indicator':<15} {'ours ms':>9} {'TA-Lib ms':>10} {'ratio':>7} {'updates/s':>11}"
    print(head)
    print("-" * len(head))
    worst = 0.0
    for label, ours, theirs in cases(c):
        ours()
        if theirs is not None:
            theirs()
        t_ours, t_lib = median_times(ours, theirs, args.repeat)
        if theirs is not None:
            ratio = t_ours / t_lib
            worst = max(worst, ratio)
            lib_s, ratio_s = f"{t_lib * 1e3:10.2f}", f"{ratio:7.2f}"
        else:
            lib_s, ratio_s = f"{'-':>10}", f"{'-':>7}"
        name, params = INC_NAMES[label]
        ups = updates_per_second(name, params, c, args.updates)
        print(f"{label:<15} {t_ours * 1e3:9.2f} {lib_s} {ratio_s} {ups:11,.0f}")
    if talib is not None:
        print(f"\nworst ratio {worst:.2f} (target <= 2.0, aim <= 1.2)")


if __name__ == "__main__":
    main()
