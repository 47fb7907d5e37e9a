"""Benchmark ``tapedeck experiment``: cells per second on one process and on all cores,
with backtesting.py's ``optimize`` over the same grid as the peer, in the same run.

    python bench/experiment.py [--repeat 3] [--workers N] [--no-peer]

The grid: 4 personas (the built-ins) x 3 stop distances (``stop_atr`` 1.5, 2, 3) x 4
rolling windows of 5 days over the eight 5-minute altcoin files (one instrument set of
8 instruments, one shared wallet): 48 cells, each a full backtest of ~11,500 candles.

The peer: backtesting.py cannot run one strategy over eight instruments with one
wallet, nor tapedeck's rule personas, so the closest grid it can express is run: for
each of the 4 windows and each of the 8 instruments, ``Backtest.optimize`` over a
4-valued strategy variant (four SMA crossovers standing in for the personas) x the same
3 stop distances (a stop ``stop_atr`` ATRs from the entry), 384 single-instrument
backtests over the same candles; its cells per second count 8 of those as one cell.
``optimize`` uses its own process pool.

Printed: median wall seconds and cells per second; the speed-up of all cores over one
process; the peer's rate. The runs on one process and on all cores alternate, and the
speed-up of each such pair is printed too: on a shared machine the load changes from
second to second, and it falls alike on both members of a pair. Parallel speed-ups
stay noisy there all the same.

The machine's own ceiling is measured in the same rounds: a pure-Python loop with no
data and no communication, run ``workers`` times in this process and then once in each
of ``workers`` forked processes, sized to last about as long as the one-process
experiment. Its speed-up is what these cores give a perfectly parallel task at that
moment (a virtual machine's cores can share a physical core, or slow down together);
the experiment's speed-up is printed as a share of it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import SMA  # noqa: E402

from engine.experiment.executors import default_workers  # noqa: E402
from engine.experiment.runner import ExperimentRunner  # noqa: E402
from engine.experiment.search import run_search  # noqa: E402
from engine.experiment.spec import experiment_from_dict  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "real" / "binance-5m"
FILES = sorted(DATA.glob("*_BTC-5m.feather"))
STOPS = [1.5, 2.0, 3.0]
PERSONAS = ["conservative", "mean-reversion", "momentum", "scalper"]
WINDOW = "5d"


def spec() -> dict:
    return {
        "name": "bench",
        "data": [str(f) for f in FILES],
        "personas": [f"{p}@rules" for p in PERSONAS],
        "grid": {"stop_atr": STOPS},
        "windows": {"kind": "rolling", "size": WINDOW},
    }


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_once(exp, workers: int) -> tuple[float, float, int]:
    """Wall seconds and CPU seconds (all processes) of the 48 cells; cells run."""
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), cpu_seconds()
        with ExperimentRunner(exp, tmp, workers=workers, progress="never") as runner:
            run_search(runner)
            cells = runner.ran
            errors = sum(bool(r.get("error")) for r in runner.store.rows.values())
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if errors:
        sys.exit(f"{errors} cells failed")
    return wall, cpu, cells


def spin(loops: int) -> None:
    """The perfectly parallel task: arithmetic in the interpreter, nothing shared."""
    total = 0
    for i in range(loops):
        total += i * i


def spin_loops(seconds: float) -> int:
    """Loops of ``spin`` that take about ``seconds`` on one core now."""
    t0 = time.perf_counter()
    spin(200_000)
    return max(1, int(200_000 * seconds / max(time.perf_counter() - t0, 1e-6)))


def time_ceiling(loops: int, workers: int) -> float:
    """The speed-up of ``workers`` forked processes running ``spin(loops)`` each over
    this process running it ``workers`` times."""
    t0 = time.perf_counter()
    for _ in range(workers):
        spin(loops)
    serial = time.perf_counter() - t0
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=spin, args=(loops,)) for _ in range(workers)]
    t0 = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return serial / (time.perf_counter() - t0)


def time_tapedeck(
    counts: list[int], repeat: int
) -> tuple[dict[int, list[tuple[float, float, int]]], list[float]]:
    """Each process count's runs, the counts in alternation (one run of each, ``repeat``
    times), so that the load of a shared machine falls alike on all of them; and the
    machine's ceiling measured in each round after them (``time_ceiling``)."""
    exp = experiment_from_dict(spec(), source="bench")
    runs: dict[int, list[tuple[float, float, int]]] = {n: [] for n in counts}
    ceilings: list[float] = []
    loops = 0
    for _ in range(repeat):
        for n in counts:
            runs[n].append(run_once(exp, n))
        if not loops:  # the loop sized on the first one-process run (one process's share)
            loops = spin_loops(runs[1][0][0] / max(counts))
        ceilings.append(time_ceiling(loops, max(counts)))
    return runs, ceilings


def atr(high, low, close, n=14):
    prev = np.concatenate(([close[0]], close[:-1]))
    tr = np.maximum(high - low, np.maximum(abs(high - prev), abs(low - prev)))
    return pd.Series(tr).rolling(n, min_periods=1).mean().to_numpy()


class Variant(Strategy):  # module level: optimize pickles it
    variant = 0
    stop_atr = 2.0
    pairs = ((5, 20), (10, 30), (20, 50), (9, 21))

    def init(self):
        n1, n2 = self.pairs[self.variant]
        self.fast = self.I(SMA, self.data.Close, n1)
        self.slow = self.I(SMA, self.data.Close, n2)
        self.atr = self.I(atr, self.data.High, self.data.Low, self.data.Close)

    def next(self):
        price, width = self.data.Close[-1], self.stop_atr * self.atr[-1]
        if crossover(self.fast, self.slow):
            self.position.close()
            self.buy(sl=price - width)
        elif crossover(self.slow, self.fast):
            self.position.close()
            self.sell(sl=price + width)


def time_peer(repeat: int) -> tuple[float, int]:
    from engine.data import load_many, select
    from engine.experiment.cells import span_of
    from engine.experiment.windows import parse_windows

    series = load_many(FILES)
    windows = parse_windows({"kind": "rolling", "size": WINDOW}).windows(span_of(series))
    frames = []
    for w in windows:
        for s in series:
            part = select(s, start=w.start, end=w.end)
            frames.append(
                pd.DataFrame(
                    {
                        "Open": part.open,
                        "High": part.high,
                        "Low": part.low,
                        "Close": part.close,
                        "Volume": part.volume,
                    },
                    index=pd.DatetimeIndex(pd.to_datetime(part.open_time, unit="ns")),
                )
            )
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for frame in frames:
            bt = Backtest(frame, Variant, cash=10_000, commission=0.001)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bt.optimize(variant=range(4), stop_atr=STOPS, maximize="Return [%]")
        times.append(time.perf_counter() - t0)
    runs = len(frames) * 4 * len(STOPS)
    return statistics.median(times), runs // len(FILES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=default_workers(), help="all cores")
    parser.add_argument("--no-peer", action="store_true", help="skip backtesting.py")
    args = parser.parse_args()
    if args.workers < 2:
        sys.exit("--workers: at least 2 (the one-process run is always measured)")
    if len(FILES) != 8:
        sys.exit(f"the eight 5m files were not found in {DATA}")
    print(f"48-cell grid: {len(PERSONAS)} personas x {len(STOPS)} stops x 4 windows of {WINDOW}")
    load = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}, load average: {load:.1f}; median of {args.repeat}")
    header = f"{'run':<40} {'cells':>6} {'median s':>9} {'cpu s':>7} {'cells/s':>9} {'ratio':>7}"
    print(header, "-" * len(header), sep="\n", flush=True)
    runs, ceilings = time_tapedeck([1, args.workers], args.repeat)
    rows = {}
    for n, label in (
        (1, "tapedeck, 1 process"),
        (args.workers, f"tapedeck, {args.workers} processes"),
    ):
        wall = statistics.median(r[0] for r in runs[n])
        cpu = statistics.median(r[1] for r in runs[n])
        cells = runs[n][0][2]
        rows[n] = (wall, cpu)
        ratio = f"{rows[1][0] / wall:>6.2f}x" if n != 1 else ""
        print(f"{label:<40} {cells:>6} {wall:>9.2f} {cpu:>7.2f} {cells / wall:>9.2f} {ratio}")
    pairs = sorted(a[0] / b[0] for a, b in zip(runs[1], runs[args.workers], strict=True))
    print(
        f"speed-up of each pair of runs (one of each, back to back): median "
        f"{statistics.median(pairs):.2f}x, {pairs[0]:.2f}x to {pairs[-1]:.2f}x"
    )
    ceiling = statistics.median(ceilings)
    print(
        f"the machine's own speed-up for a perfectly parallel pure-Python loop of the same "
        f"length, {args.workers} processes, same rounds: median {ceiling:.2f}x "
        f"({min(ceilings):.2f}x to {max(ceilings):.2f}x); the experiment's median speed-up "
        f"is {rows[1][0] / rows[args.workers][0] / ceiling:.0%} of it"
    )
    (one_s, one_cpu), (many_s, many_cpu) = rows[1], rows[args.workers]
    print(
        f"parallel work: {many_cpu / many_s:.2f} CPU seconds per second of wall time "
        f"({args.workers} processes); {one_cpu / one_s:.2f} with one",
        flush=True,
    )
    if one_cpu / one_s < 0.9 or many_cpu / many_s < 0.75 * args.workers:
        # Linux shares the cores between sessions first (autogroup), then between the
        # processes of a session: one busy process of another session can hold a core
        # from all of ours however many there are
        print(
            "the machine was busy (its processes got well under a core each): "
            "the speed-up above says little about a quiet machine"
        )
    if not args.no_peer:
        peer_s, peer_cells = time_peer(args.repeat)
        print(
            f"{'backtesting.py optimize (see doc)':<40} {peer_cells:>6} "
            f"{peer_s:>9.2f} {'':>7} {peer_cells / peer_s:>9.2f} "
            f"{(cells / many_s) / (peer_cells / peer_s):>6.2f}x"
        )
        print("ratio of the peer row: tapedeck on all cores over backtesting.py")


if __name__ == "__main__":
    main()
