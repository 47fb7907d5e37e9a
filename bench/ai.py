"""AI brain figures on the first 240 one-minute candles of the real BTC file.

    python bench/ai.py [--candles 240] [--repeat 3]

Prints: brain calls with AI on signals against AI on every candle; wall time with the
embedded model (Gemma 3 270M via llama.cpp) cold (empty cache, model loaded) and with a
warm cache; valid-plan rate and tokens/s; and the warm-cache rerun against the
rules-only run measured in the same process (medians of --repeat runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.analysis import analyse  # noqa: E402
from engine.backtest import BacktestConfig, BacktestEngine  # noqa: E402
from engine.brain.cache import CachingBrain, DecisionCache  # noqa: E402
from engine.brain.persona import load_persona  # noqa: E402
from engine.brain.rules import RuleBrain  # noqa: E402
from engine.data import load, select  # noqa: E402

BTC = ROOT.parent / "shared" / "data" / "real" / "btc-perp-20211231-20220201_1m.csv"
MINUTE = 60_000_000_000


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candles", type=int, default=240)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--persona", default="momentum")
    args = ap.parse_args()
    from engine.brain.llamacpp_brain import LlamaCppBrain

    series = load(BTC)
    window = [select(series, end=int(series.open_time[args.candles]))]
    persona = load_persona(args.persona)
    config = BacktestConfig()
    steps = len(analyse(window, config.signal))

    def rules_run():
        return BacktestEngine(window, persona, RuleBrain(persona), config).run()

    rules_s, rules = timed(rules_run, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "cache.sqlite3"

        def llm_run():
            brain = CachingBrain(LlamaCppBrain(timeframe_ns=MINUTE), DecisionCache(cache_path))
            result = BacktestEngine(window, persona, brain, config).run()
            return result, brain

        start = time.perf_counter()
        cold, cold_brain = llm_run()
        cold_s = time.perf_counter() - start
        warm_s, (warm, warm_brain) = timed(llm_run, args.repeat)

    st = cold_brain.inner.stats
    calls = cold.brain_stats["calls"]
    valid = sum(1 for d in cold.decisions if not d.errors)
    mean_call = cold_s / max(1, calls)
    print(f"window: {args.candles} candles of {BTC.name}, {steps} steps, persona {persona.name}")
    print(
        f"brain calls: AI on signals {calls} ({cold.brain_stats['batches']} batches + "
        f"{cold.brain_stats['reviews']} reviews) vs AI on every candle {steps}"
        f" ({steps / max(1, calls):.1f}x more)"
    )
    print(
        f"embedded cold (empty cache, model load included): {cold_s:.1f} s, "
        f"{mean_call:.1f} s per call; AI on every candle at that rate ~{steps * mean_call:.0f} s"
    )
    print(
        f"model calls {int(st['calls'])} (retries included), valid answers "
        f"{int(st['valid_answers'])}/{int(st['calls'])} = {st['valid_answers'] / st['calls']:.0%} "
        f"of calls; decisions with a valid plan {valid}/{calls} = {valid / calls:.0%}"
    )
    print(
        f"tokens generated {int(st['tokens'])}, {st['tokens'] / st['gen_seconds']:.1f} tokens/s "
        "(prompt evaluation included)"
    )
    print(
        f"warm cache rerun: median {warm_s:.3f} s, cache hits "
        f"{warm.brain_stats['cache_hits']}/{warm.brain_stats['calls']}, model calls "
        f"{int(warm_brain.inner.stats['calls'])}"
    )
    print(
        f"rules-only run: median {rules_s:.3f} s ({rules.brain_stats['calls']} calls); "
        f"warm/rules ratio {warm_s / rules_s:.2f} (limit 1.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
