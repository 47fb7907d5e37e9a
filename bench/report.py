"""HTML report speed and size: ``tapedeck report`` vs backtesting.py's ``Backtest.plot``.

    python bench/report.py [--repeats N]

Both draw the same 45k 1-minute real BTC candles (``../shared/data``; the bundled
sample when absent) with their trades into one HTML file. Ours: render and write the
report of a momentum run (candles with trades, equity, drawdown, metrics, every trade
with its decision; the file is self-contained). Peer: backtesting.py 0.6.6's bokeh plot
of an SMA-cross run on the same candles (its defaults: resampled candles, bokeh's JS
from a CDN, so the file is not usable offline). The backtests themselves are not timed.
Medians of N repeats after one warm-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds  # noqa: E402
from engine.data import load  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real" / "btc-perp-20211231-20220201_1m.csv"


def _ours(series, out: Path):
    from engine.backtest import BacktestEngine
    from engine.brain.persona import load_persona
    from engine.brain.rules import RuleBrain
    from engine.report import from_result, write_report

    persona = load_persona("momentum")
    result = BacktestEngine([series], persona, RuleBrain(persona)).run()
    run = from_result(result, persona.name, [series])
    return (lambda: write_report(out, [run])), len(result.trades)


def _peer(series, out: Path):
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 30)

        def next(self):
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    frame = pd.DataFrame(
        {
            "Open": series.open,
            "High": series.high,
            "Low": series.low,
            "Close": series.close,
            "Volume": series.volume,
        },
        index=pd.to_datetime(series.open_time, utc=True).tz_localize(None),
    )
    bt = Backtest(frame, SmaCross, cash=10_000_000, commission=0.001, finalize_trades=True)
    stats = bt.run()
    return (lambda: bt.plot(filename=str(out), open_browser=False, superimpose=False)), len(
        stats["_trades"]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if REAL.exists():
        series = load(REAL)
    else:
        from engine.data.sample import SAMPLE_PATHS

        print(f"{REAL} not found: using the bundled sample", file=sys.stderr)
        series = load(SAMPLE_PATHS[0])
    with tempfile.TemporaryDirectory() as tmp:
        ours_file, peer_file = Path(tmp) / "ours.html", Path(tmp) / "peer.html"
        ours, ours_trades = _ours(series, ours_file)
        peer, peer_trades = _peer(series, peer_file)
        t_ours = median_seconds(ours, args.repeats, warmup=True)
        t_peer = median_seconds(peer, args.repeats, warmup=True)
        size_ours, size_peer = ours_file.stat().st_size, peer_file.stat().st_size
    print(f"{len(series):,} candles; medians of {args.repeats} repeats; ratio = ours / peer")
    print(f"{'':<28} {'ms':>8} {'KiB':>8} {'trades':>7}  offline")
    print(
        f"{'tapedeck report':<28} {t_ours * 1e3:>8.1f} {size_ours / 1024:>8.0f} "
        f"{ours_trades:>7}  yes"
    )
    print(
        f"{'backtesting.py Backtest.plot':<28} {t_peer * 1e3:>8.1f} {size_peer / 1024:>8.0f} "
        f"{peer_trades:>7}  no (bokeh from a CDN)"
    )
    print(f"{'ratio':<28} {t_ours / t_peer:>8.2f} {size_ours / size_peer:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
