"""AI brain figures on the first 240 one-minute candles of the real BTC file.

    python bench/ai.py [--candles 240] [--repeat 3]

Prints: brain calls with AI on signals against AI on every candle; wall time with the
embedded model (Gemma 3 270M via llama.cpp) cold (empty cache, model loaded) and with a
warm cache; valid-plan rate and tokens/s; and the warm-cache rerun against the
rules-only run measured in the same process (medians of --repeat runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds, timed  # noqa: E402
from engine.backtest import BacktestConfig, BacktestEngine  # noqa: E402
from engine.backtest.analysis import analyse  # noqa: E402
from engine.brain.factory import make_brain  # noqa: E402
from engine.brain.llm import NO_ANSWER  # noqa: E402
from engine.brain.persona import load_persona  # noqa: E402
from engine.brain.rules import RuleBrain  # noqa: E402
from engine.data import load, select  # noqa: E402
from engine.timeutil import to_iso  # noqa: E402

BTC = ROOT.parent / "shared" / "data" / "real" / "btc-perp-20211231-20220201_1m.csv"


def cli_median(kind: str, cache_path: Path, args: argparse.Namespace) -> float:
    env = {**os.environ, "TAPEDECK_CACHE_PATH": str(cache_path)}
    cmd = [sys.executable, "-m", "engine.cli", "run", str(BTC), "--brain", kind]
    cmd += ["--persona", args.persona, "--json", *window_args(args.candles)]
    return median_seconds(
        lambda: subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True),
        args.repeat,
    )


def window_args(candles: int) -> list[str]:
    series = load(BTC)
    return [
        "--start",
        to_iso(int(series.open_time[0])),
        "--end",
        to_iso(int(series.open_time[candles])),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candles", type=int, default=240)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--persona", default="momentum")
    args = ap.parse_args()
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
            # built as the CLI builds it, so the CLI rerun below hits the same entries
            brain = make_brain(
                "llamacpp", persona, cache_path=cache_path, timeframe=window[0].timeframe
            )
            result = BacktestEngine(window, persona, brain, config).run()
            return result, brain

        start = time.perf_counter()
        cold, cold_brain = llm_run()
        cold_s = time.perf_counter() - start
        warm_s, (warm, warm_brain) = timed(llm_run, args.repeat)
        cli_warm = cli_median("llamacpp", cache_path, args)
        cli_rules = cli_median("rules", cache_path, args)

    st = cold_brain.inner.stats
    calls = cold.brain_stats["calls"]
    held = sum(1 for d in cold.decisions if d.reasoning == NO_ANSWER)
    first_try = sum(1 for d in cold.decisions if not d.errors)
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
        f"valid-plan rate: {int(st['valid_answers'])}/{int(st['calls'])} model calls = "
        f"{st['valid_answers'] / st['calls']:.0%} (retries included); decisions valid at the "
        f"first try {first_try}/{calls}, after one retry {calls - held}/{calls}, "
        f"holds for lack of a valid answer {held}"
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
        f"rules-only run: median {rules_s:.4f} s ({rules.brain_stats['calls']} calls); "
        f"in-process warm/rules ratio {warm_s / rules_s:.2f}"
    )
    print(
        f"CLI `tapedeck run` wall, median of {args.repeat}: warm cache {cli_warm:.2f} s, "
        f"rules {cli_rules:.2f} s, ratio {cli_warm / cli_rules:.2f} (limit 1.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
