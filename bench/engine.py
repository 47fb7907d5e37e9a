"""Benchmark the headless backtest engine against backtesting.py 0.6.6, in the same run.

    python bench/engine.py [--candles 1000000] [--repeat 3] [--bt-repeat 1] [--no-rules]
    python bench/engine.py --whole [--candles 1000000] [--repeat 3]

``--whole`` times whole commands instead, each a fresh process from the CSV file to the
printed result (imports, CSV loading, analysis, replay, report): ``tapedeck run FILE
--persona P`` for three rule personas against a script that loads the same CSV with
pandas and runs backtesting.py's ``SmaCross`` (its documentation's example, SMA 10/20,
always in the market) on it; the file is the BTC minutes tiled to ``--candles``. Each
of ``--repeat`` rounds runs the peer then the three personas, and each ratio is the
median of the rounds' own ratios, so that the machine's drift between rounds cancels.

Workloads (real data from ../shared/data/real):

1. ``btc``: the 45,031 one-minute BTC candles tiled to ``--candles`` (each copy scaled to
   continue from the previous close, times continuous), one instrument;
2. ``alt8``: the eight 5-minute altcoin files merged (8 instruments, 5,760 steps,
   46,031 candles).

Strategy on both engines: EMA crossover, long-only (enter at the next open on a cross
up, close at the next open on a cross down), 2 bps commission (so that equity does not
melt to nothing over 20,000 trades and backtesting.py keeps trading whole units), the
configuration of tests/test_crosscheck.py otherwise. Two settings: EMA 50/200 (a cross
every ~130 one-minute candles) and EMA 9/21 (a cross every ~20 candles). On alt8 each
instrument gets 1/8 of the equity, so the shared wallet never limits an entry and the
trades are exactly backtesting.py's (eight separate runs, whose times are summed).
The script prints both engines' trade counts: they must agree.

tapedeck's time is everything from the loaded columns to the result: indicators,
signals and batches (``analyse``) plus the replay (``run``), both shown.
backtesting.py's time is ``Backtest.run`` (its indicators are computed inside).

tapedeck's replay costs per event (brain call, fill), backtesting.py's per candle, so the
ratio depends on how often the strategy acts: that is why both settings are reported,
with the replay's cost per brain call. EMA 50/200 (a classic crossover: about 5 trades a
day on 1-minute candles) is the headline row; EMA 9/21 (a trade every ~40 candles) is the
stress row, where per-event Python work dominates.
Also reported (no peer): rule-brain runs with two built-in personas on the default
signal set, where the brain is asked about every 12 candles.

Printed: median seconds, candles per second (candle-steps for tapedeck: one
instrument's candle processed at one merged step), and the speed ratio.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.backtest import BacktestConfig, BacktestEngine  # noqa: E402
from engine.backtest.analysis import analyse  # noqa: E402
from engine.brain.persona import TradingPersona, load_persona  # noqa: E402
from engine.brain.rules import RuleBrain  # noqa: E402
from engine.data import load, load_many  # noqa: E402
from engine.signals import default_signal_config  # noqa: E402
from engine.types import Action, Decision, InstrumentSeries, TradePlan  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "real"
BTC = DATA / "btc-perp-20211231-20220201_1m.csv"
ALT = sorted((DATA / "binance-5m").glob("*_BTC-5m.feather"))
COMMISSION, CASH = 0.0002, 10_000.0
MA_SETTINGS = ((50, 200), (9, 21))


class CrossBrain:
    """Long-only EMA crossover: open on ema_cross_up when flat, close on ema_cross_down."""

    name = "cross"
    model = ""

    def __init__(self, fraction: float) -> None:
        self.size = fraction / (1.0 + COMMISSION)

    def decide(self, batch, portfolio, persona, on_reasoning=None) -> Decision:
        held = {p.instrument for p in portfolio.positions}
        plans = []
        for sig in batch.signals:
            if sig.kind == "ema_cross_up" and sig.instrument not in held:
                price = batch.context[sig.instrument].price
                plans.append(
                    TradePlan(
                        sig.instrument,
                        Action.OPEN_LONG,
                        size=self.size,
                        size_mode="equity",
                        stop_loss=price * 0.55,
                    )
                )
            elif sig.kind == "ema_cross_down" and sig.instrument in held:
                plans.append(TradePlan(sig.instrument, Action.CLOSE))
        return Decision(batch.time, self.name, self.model, tuple(plans), "")


def tiled(series: InstrumentSeries, n: int) -> InstrumentSeries:
    """The series repeated to ``n`` candles, each copy scaled to continue the last close."""
    reps = -(-n // len(series))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("open", "high", "low", "close", "volume")}
    scale = 1.0
    for _ in range(reps):
        for k in ("open", "high", "low", "close"):
            cols[k].append(getattr(series, k) * scale)
        cols["volume"].append(series.volume)
        scale = cols["close"][-1][-1] / series.open[0]
    arrays = {k: np.concatenate(v)[:n] for k, v in cols.items()}
    start = int(series.open_time[0])
    return InstrumentSeries(
        instrument=series.instrument,
        timeframe=series.timeframe,
        timeframe_ns=series.timeframe_ns,
        open_time=start + np.arange(n, dtype=np.int64) * series.timeframe_ns,
        filled=np.zeros(n, dtype=bool),
        **arrays,
    )


def ma_config(fast: int, slow: int) -> BacktestConfig:
    base = default_signal_config().with_params("ema", fast=fast, slow=slow, cooldown=0)
    signal = replace(
        base,
        detectors=("ema",),
        window=1,
        window_duration=None,
    )
    return BacktestConfig(
        initial_cash=CASH,
        fees_bps=COMMISSION * 10_000,
        slippage_bps=0.0,
        signal=signal,
        review_positions=False,
        close_at_end=False,
    )


MA_PERSONA = TradingPersona(name="ma", max_position_fraction=1.0, max_open_positions=8)


def time_tapedeck(series_list, persona, make_brain, config, repeat):
    analyse_t, run_t, result = [], [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        analysis = analyse(series_list, config.signal)
        t1 = time.perf_counter()
        engine = BacktestEngine(series_list, persona, make_brain(), config, analysis=analysis)
        result = engine.run()
        t2 = time.perf_counter()
        analyse_t.append(t1 - t0)
        run_t.append(t2 - t1)
        del analysis, engine
    return statistics.median(analyse_t), statistics.median(run_t), result


def time_backtesting_py(series_list, fast, slow, fraction, repeat):
    from backtesting import Backtest, Strategy
    from backtesting.lib import FractionalBacktest, crossover

    try:
        import talib

        ema = talib.EMA
    except ImportError:  # pragma: no cover
        from engine.indicators import ema

    class MaCross(Strategy):
        def init(self) -> None:
            close = np.asarray(self.data.Close, dtype=np.float64)
            self.fast = self.I(ema, close, fast)
            self.slow = self.I(ema, close, slow)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy(size=fraction)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    frames = [
        pd.DataFrame(
            {"Open": s.open, "High": s.high, "Low": s.low, "Close": s.close, "Volume": s.volume},
            index=pd.DatetimeIndex(pd.to_datetime(s.open_time, unit="ns")),
        )
        for s in series_list
    ]
    times, trades = [], 0
    for _ in range(repeat):
        total, trades = 0.0, 0
        for frame in frames:
            if frame["Close"].iloc[0] > 1:  # BTC: trade in trillionths so units do not round
                bt = FractionalBacktest(
                    frame, MaCross, cash=CASH, commission=COMMISSION, fractional_unit=1e-12
                )
            else:  # altcoins at 0.0001 BTC: whole units are already fine-grained
                bt = Backtest(frame, MaCross, cash=CASH, commission=COMMISSION)
            gc.collect()
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stats = bt.run()
            total += time.perf_counter() - t0
            trades += len(stats["_trades"])
        times.append(total)
    return statistics.median(times), trades


def row(name: str, candles: int, seconds: float, peer: float | None = None) -> str:
    rate = candles / seconds
    ratio = f"{rate / peer:6.1f}x" if peer else ""
    return f"{name:<40} {candles:>10,} {seconds:>9.3f} {rate:>12,.0f} {ratio}"


PEER_SMA = """
import sys, warnings
import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover
from backtesting.test import SMA

class SmaCross(Strategy):
    n1, n2 = 10, 20
    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)
    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()

df = pd.read_csv(sys.argv[1], parse_dates=["timestamp"], index_col="timestamp")
df.columns = [c.capitalize() for c in df.columns]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    bt = FractionalBacktest(df, SmaCross, cash=10_000, commission=0.001, fractional_unit=1e-8)
    stats = bt.run()
print(stats["# Trades"])
"""


def write_csv(series: InstrumentSeries, path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(series.open_time, unit="ns").strftime(
                "%Y-%m-%d %H:%M:%S.%f"
            ),
            "open": series.open,
            "high": series.high,
            "low": series.low,
            "close": series.close,
            "volume": series.volume,
        }
    )
    frame.to_csv(path, index=False)


def time_command(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system) of one fresh process."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = os.times()
    user = after.children_user - before.children_user
    return wall, user + after.children_system - before.children_system


def whole_commands(candles: int, repeat: int) -> None:
    """Rounds of the peer then each persona, one after the other: each ratio is taken
    within a round (the machine's speed drifts between rounds) and the median of the
    rounds' ratios is printed with the median times."""
    import tempfile

    personas = ("momentum", "conservative", "scalper")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"btc-{candles}-1m.csv"
        write_csv(tiled(load(BTC), candles), path)
        size = path.stat().st_size / 1e6
        print(
            f"whole commands on {path.name} ({candles:,} candles, {size:.0f} MB), "
            f"{repeat} rounds of the peer then each persona; medians; the ratios are the "
            "median of each round's peer / command; CPU = the process's user + system seconds"
        )
        peer_cmd = [sys.executable, "-c", PEER_SMA, str(path)]
        quiet = ("--trades", "0", "--progress", "never")
        commands = {
            p: [sys.executable, "-m", "engine.cli", "run", str(path), "--persona", p, *quiet]
            for p in personas
        }
        rounds = []
        for _ in range(repeat):
            peer = time_command(peer_cmd)
            rounds.append((peer, {p: time_command(cmd) for p, cmd in commands.items()}))
        med = statistics.median
        header = f"{'command':<44} {'wall s':>8} {'cpu s':>8} {'wall ratio':>11} {'cpu ratio':>10}"
        print(header, "-" * len(header), sep="\n")
        peer_wall = med(r[0][0] for r in rounds)
        peer_cpu = med(r[0][1] for r in rounds)
        print(
            f"{'backtesting.py SmaCross 10/20 (pandas CSV)':<44} {peer_wall:>8.2f} {peer_cpu:>8.2f}"
        )
        for p in personas:
            wall = med(r[1][p][0] for r in rounds)
            cpu = med(r[1][p][1] for r in rounds)
            wall_ratio = med(r[0][0] / r[1][p][0] for r in rounds)
            cpu_ratio = med(r[0][1] / r[1][p][1] for r in rounds)
            ratios = ", ".join(f"{r[0][0] / r[1][p][0]:.2f}" for r in rounds)
            print(
                f"{'tapedeck run --persona ' + p:<44} {wall:>8.2f} {cpu:>8.2f} "
                f"{wall_ratio:>10.2f}x {cpu_ratio:>9.2f}x  (rounds: {ratios})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bt-repeat", type=int, default=1)
    parser.add_argument("--no-rules", action="store_true", help="skip the rule-persona rows")
    parser.add_argument("--whole", action="store_true", help="time whole commands (see above)")
    args = parser.parse_args()
    if not BTC.exists():
        sys.exit(f"real data not found at {DATA}")
    if args.whole:
        whole_commands(args.candles, args.repeat)
        return
    workloads = (("btc", [tiled(load(BTC), args.candles)]), ("alt8", load_many(ALT)))
    header = f"{'workload':<40} {'candles':>10} {'median s':>9} {'candles/s':>12} ratio"
    print(header, "-" * len(header), sep="\n", flush=True)
    for label, series_list in workloads:
        candles = sum(len(s) for s in series_list)
        # alt8 shares one wallet: each instrument gets 1/8 so cash never limits an entry
        # and the trades are the ones backtesting.py makes per instrument with its own cash
        fraction = 0.95 / len(series_list)
        for fast, slow in MA_SETTINGS:
            config = ma_config(fast, slow)
            an, run, result = time_tapedeck(
                series_list, MA_PERSONA, lambda f=fraction: CrossBrain(f), config, args.repeat
            )
            bt_s, bt_trades = time_backtesting_py(series_list, fast, slow, 0.95, args.bt_repeat)
            peer = candles / bt_s
            tag = f"{label} EMA {fast}/{slow}"
            print(row(f"{tag}: backtesting.py", candles, bt_s))
            print(row(f"{tag}: tapedeck analyse+run", candles, an + run, peer))
            print(row(f"{tag}:   analyse", candles, an))
            print(row(f"{tag}:   run", candles, run))
            calls = result.brain_stats["calls"]
            print(
                f"{'':<4}trades tapedeck {len(result.trades)}, backtesting.py {bt_trades}; "
                f"brain calls {calls}; steps {result.steps:,}; "
                f"run {run / calls * 1e6:.1f} us per brain call (fills included)",
                flush=True,
            )
        if args.no_rules:
            continue
        for persona_name in ("scalper", "momentum"):
            persona = load_persona(persona_name)
            rconfig = BacktestConfig(signal=default_signal_config())
            an, run, result = time_tapedeck(
                series_list, persona, lambda p=persona: RuleBrain(p), rconfig, args.repeat
            )
            print(row(f"{label} rules/{persona_name}: analyse+run", candles, an + run))
            print(
                f"{'':<4}run only {run:.3f} s; brain calls {result.brain_stats['calls']}, "
                f"trades {len(result.trades)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
