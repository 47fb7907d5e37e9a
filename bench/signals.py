"""Signals benchmark: detectors + aggregator, vectorised and step by step.

    python bench/signals.py [--candles 1000000] [--step-candles 100000] [--repeat 3]

Workloads (synthetic random walks, seeded; default signal config, window 5):
- one instrument of ``--candles`` 1-minute candles;
- eight instruments of ``--candles / 8`` 5-minute candles each, merged (a few gaps).

For each, medians of ``--repeat`` runs, in candles per second:
- vectorised: ``detect_series`` for every instrument + ``batch_signals``; its peer,
  measured in the same run, is TA-Lib computing the same indicators (RSI, MACD, two EMAs,
  Bollinger bands of close and of volume, ATR, SMA of ATR): the ratio is the cost of the
  whole signals layer relative to bare indicator math;
- step by step (``StreamDetector``: one ``SignalDetector`` per instrument and the
  ``SignalAggregator``) over the first ``--step-candles`` candles; its peer is the bare
  incremental indicator updates the detectors make, over the same candles.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import talib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import median_seconds
from engine.data.stream import merge
from engine.indicators import incremental
from engine.signals import (
    StreamDetector,
    batch_signals,
    default_signal_config,
    detect_series,
)
from engine.types import InstrumentSeries

MINUTE = 60_000_000_000
T0 = 1_640_995_200_000_000_000


def walk(name: str, n: int, seed: int, tf_minutes: int, scale: float) -> InstrumentSeries:
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.0005, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.0005, n)))
    volume = rng.lognormal(5, 0.7, n)
    tf = tf_minutes * MINUTE
    # a few missing candles, as in real files
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(n, size=n // 2000, replace=False)] = False
    times = T0 + np.arange(n, dtype=np.int64) * tf
    return InstrumentSeries(
        instrument=name,
        timeframe=f"{tf_minutes}m",
        timeframe_ns=tf,
        open_time=times[keep],
        open=open_[keep],
        high=high[keep],
        low=low[keep],
        close=close[keep],
        volume=volume[keep],
        filled=np.zeros(int(keep.sum()), dtype=bool),
    )


def talib_peer(series_list: list[InstrumentSeries]) -> None:
    for s in series_list:
        c, h, lo, v = s.close, s.high, s.low, s.volume
        talib.RSI(c, 14)
        talib.MACD(c, 12, 26, 9)
        talib.EMA(c, 9)
        talib.EMA(c, 21)
        talib.BBANDS(c, 20, 2.0, 2.0)
        talib.BBANDS(v, 20, 1.0, 1.0)
        atr = talib.ATR(h, lo, c, 14)
        talib.SMA(atr[14:], 50)


def vectorised(series_list: list[InstrumentSeries]) -> int:
    config = default_signal_config()
    stream = merge(series_list)
    per = {s.instrument: detect_series(s, config) for s in series_list}
    return len(batch_signals(stream, per, config))


def stepwise(series_list: list[InstrumentSeries], candles: int) -> int:
    stream = merge(series_list)
    sd = StreamDetector(stream.instruments, default_signal_config())
    done = batches = 0
    for step in stream.steps():
        if done >= candles:
            break
        done += len(step.candles)
        batches += sd.on_step(step)[1] is not None
    return batches


def incremental_peer(series_list: list[InstrumentSeries], candles: int) -> None:
    per = max(1, candles // len(series_list))
    for s in series_list:
        objs = [
            incremental.RSI(14),
            incremental.MACD(12, 26, 9),
            incremental.EMA(9),
            incremental.EMA(21),
            incremental.BBands(20, 2.0),
            incremental.BBands(20, 1.0),
        ]
        atr, sma = incremental.ATR(14), incremental.SMA(50)
        c = s.close[:per].tolist()
        h = s.high[:per].tolist()
        lo = s.low[:per].tolist()
        v = s.volume[:per].tolist()
        for i in range(len(c)):
            for o in objs[:5]:
                o.update(c[i])
            objs[5].update(v[i])
            a = atr.update(h[i], lo[i], c[i])
            if a == a:
                sma.update(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--step-candles", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    one = [walk("BTC", args.candles, 1, 1, 40_000.0)]
    eight = [
        walk(f"ALT{k}", args.candles // 8, 10 + k, 5, [0.00003, 0.002, 0.07][k % 3])
        for k in range(8)
    ]
    # warm the compiled kernels and caches once
    vectorised([dataclasses.replace(one[0])])
    stepwise(one, 1000)

    print(f"signals bench: median of {args.repeat} runs, default config (window 5)")
    header = (
        f"{'workload':<34} {'candles':>9} {'ours s':>8} {'cand/s':>11} {'peer s':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for label, data in (("1 instrument, 1m", one), ("8 instruments merged, 5m", eight)):
        n = sum(len(s) for s in data)
        t = median_seconds(lambda data=data: vectorised(data), args.repeat)
        p = median_seconds(lambda data=data: talib_peer(data), args.repeat)
        print(f"{'vectorised: ' + label:<34} {n:>9} {t:8.3f} {n / t:11,.0f} {p:8.3f} {t / p:6.1f}")
        k = min(args.step_candles, n)
        t = median_seconds(lambda data=data, k=k: stepwise(data, k), args.repeat)
        p = median_seconds(lambda data=data, k=k: incremental_peer(data, k), args.repeat)
        print(
            f"{'step by step: ' + label:<34} {k:>9} {t:8.3f} {k / t:11,.0f} {p:8.3f} {t / p:6.1f}"
        )
    print("peer: vectorised = TA-Lib on the same indicators; step = bare incremental updates")


if __name__ == "__main__":
    main()
