"""Where a whole ``tapedeck run`` spends its time, phase by phase, per rule persona.

    python bench/run_phases.py [--candles 1000000] [--repeat 3] [--personas momentum,scalper]

Each run is a fresh process doing what ``tapedeck run FILE --persona P --trades 0`` does,
with a clock around each phase: imports (the command line and its modules), loading the
CSV, the analysis (indicators, signals, batches; it includes numba's start, timed on its
own too), the replay, and the report printed (to /dev/null). Inside the replay, the time
spent in the broker's methods that the engine calls, in the risk guard's ``validate`` and
in the brain's decisions is summed (each call wrapped in a clock: about 0.3 µs a call,
included). What is left is the interpreter's start and exit (the program skips the
exit's garbage collections, as ``tapedeck`` does). The file is the BTC minutes tiled to
``--candles``, as ``bench/engine.py --whole`` makes it; backtesting.py's SmaCross on it
(``bench/engine.py``'s script), timed in the same run, sets the 3x budget: its time / 3.

Printed: median seconds per phase over ``--repeat`` runs, the events that cost per event
(decisions asked, trades), and the replay's cost per trade.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import BTC, PEER_SMA, tiled, time_command, write_csv  # noqa: E402

CHILD = r"""
import time
t0 = time.perf_counter()
import functools, json, os, sys
from engine.cli import build_parser
from engine.backtest import BacktestEngine
from engine.brain.factory import make_brain
from engine.brain.persona import load_persona
from engine.commands import tables
from engine.commands.options import backtest_config, brain_options, window_from_args
import engine.runtime as runtime
from engine.broker.broker import Broker
from engine.risk import RiskGuard
from engine.brain.rules import RuleBrain
t_imports = time.perf_counter()

spent = {"broker": 0.0, "risk guard": 0.0, "brain": 0.0, "numba start": 0.0}
calls = {k: 0 for k in spent}
depth = {"broker": 0}

def clocked(cls, name, key):
    method = getattr(cls, name)
    @functools.wraps(method)
    def timed(*args, **kwargs):
        if depth.get(key):  # a broker method calling another: counted once
            return method(*args, **kwargs)
        depth[key] = 1
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start
            calls[key] += 1
            depth[key] = 0
    setattr(cls, name, timed)

for name in ("catch_up", "close_all", "equity", "has_entry", "holdings", "is_active",
             "mark_price", "next_event_index", "on_inside", "on_open_entries",
             "on_open_exits", "orders", "positions", "submit"):
    clocked(Broker, name, "broker")
clocked(RiskGuard, "validate", "risk guard")
for name in ("decide", "decide_unexplained"):
    clocked(RuleBrain, name, "brain")
lazy = runtime.lazy_module.__wrapped__
@functools.cache
def lazy_clocked(name):
    start = time.perf_counter()
    try:
        return lazy(name)
    finally:
        spent["numba start"] += time.perf_counter() - start
runtime.lazy_module = lazy_clocked
import engine.indicators.batch as batch
batch.lazy_module = lazy_clocked

args = build_parser().parse_args(["run", sys.argv[1], "--persona", sys.argv[2], "--trades", "0"])
persona = load_persona(args.persona)
t1 = time.perf_counter()
series = window_from_args(args)
t2 = time.perf_counter()
brain = make_brain(args.brain, persona, **brain_options(args, series))
engine = BacktestEngine(series, persona, brain, backtest_config(args))
t3 = time.perf_counter()
result = engine.run()
t4 = time.perf_counter()
console = tables.console()
console.file = open(os.devnull, "w")
console.print(tables.metrics_table("metrics", result.metrics))
console.print(tables.metrics_table("brain", {"kind": result.brain, **result.brain_stats}))
t5 = time.perf_counter()
print(json.dumps({
    "imports": t_imports - t0 + (t1 - t_imports), "load": t2 - t1, "analysis": t3 - t2,
    "replay": t4 - t3, "report": t5 - t4, **spent,
    "decisions": result.brain_stats.get("calls", 0) - result.brain_stats.get("skipped", 0),
    "asked": calls["brain"], "trades": len(result.trades),
}), flush=True)
runtime.skip_final_collection()  # as the program does
"""

PHASES = ("imports", "load", "analysis", "replay", "report")
INSIDE = {"analysis": ("numba start",), "replay": ("broker", "risk guard", "brain")}


def run_child(path: Path, persona: str) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), persona],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--personas", default="momentum,conservative,scalper")
    args = parser.parse_args()
    if not BTC.exists():
        sys.exit(f"real data not found at {BTC.parent}")
    from engine.data import load

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"btc-{args.candles}-1m.csv"
        write_csv(tiled(load(BTC), args.candles), path)
        peer_cmd = [sys.executable, "-c", PEER_SMA, str(path)]
        peer = [time_command(peer_cmd)[0] for _ in range(args.repeat)]  # wall seconds
        budget = statistics.median(peer) / 3
        print(
            f"{path.name}: backtesting.py SmaCross {statistics.median(peer):.2f} s wall "
            f"(median of {args.repeat}); the 3x budget is {budget:.2f} s a whole run"
        )
        for persona in args.personas.split(","):
            runs = [run_child(path, persona) for _ in range(args.repeat)]
            wall = statistics.median(w for w, _ in runs)

            def med(key: str, runs: list = runs) -> float:
                return statistics.median(r[key] for _, r in runs)

            last = runs[-1][1]
            print(
                f"\n{persona}: whole process {wall:.2f} s ({wall / budget:.2f}x the budget); "
                f"{last['asked']:,} decisions asked, {last['trades']:,} trades"
            )
            for phase in PHASES:
                print(f"  {phase:<10} {med(phase):6.2f} s")
                for part in INSIDE.get(phase, ()):
                    print(f"    {part:<12} {med(part):6.2f} s")
            outside = wall - sum(med(p) for p in PHASES)
            print(f"  {'the rest':<10} {outside:6.2f} s  (interpreter start and exit)")
            if last["trades"]:
                per = med("replay") / last["trades"] * 1e6
                broker = med("broker") / last["trades"] * 1e6
                print(f"  replay per trade {per:.0f} µs, of which the broker {broker:.0f} µs")


if __name__ == "__main__":
    main()
