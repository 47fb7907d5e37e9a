"""A 240-candle run against an LLM server that accepts and never answers, vs rules only.

The circuit breaker lets the failed calls in a row take at most three timeouts (a whole
further call must fit in them), so the run should end within three timeouts plus the
rules-only time. Measured twice: with the default first-call timeout (twice the
timeout: that one call fails and opens it) and with a first-call timeout equal to the
timeout (two calls). Prints medians over ``--repeat`` runs and the bound.

    python bench/breaker.py [--timeout 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.backtest import BacktestEngine  # noqa: E402
from engine.brain.ollama_brain import OllamaBrain  # noqa: E402
from engine.brain.rules import RuleBrain  # noqa: E402
from engine.data import load, select  # noqa: E402
from tests.fake_ollama import FakeOllama  # noqa: E402
from tests.test_ai_support import persona  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "real" / "btc-perp-20211231-20220201_1m.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    series = load(DATA)
    window = [select(series, end=int(series.open_time[240]))]
    rules: list[float] = []
    hole: dict[str, list[float]] = {"default": [], "equal": []}
    asked: dict[str, list[int]] = {"default": [], "equal": []}
    first = {"default": None, "equal": args.timeout}
    for _ in range(args.repeat):
        t = time.perf_counter()
        BacktestEngine(window, persona(), RuleBrain(persona())).run()
        rules.append(time.perf_counter() - t)
        for key, first_call in first.items():
            with FakeOllama() as fake:
                fake.queue(*["hang"] * 100)
                brain = OllamaBrain(
                    host=fake.url, timeout=args.timeout, first_call_timeout=first_call, retries=1
                )
                t = time.perf_counter()
                result = BacktestEngine(window, persona(), brain).run()
                hole[key].append(time.perf_counter() - t)
                asked[key].append(len(fake.requests))
    r = statistics.median(rules)
    bound = 3 * args.timeout + r
    print(f"240 candles, {len(result.decisions)} decisions, timeout {args.timeout:g} s")
    print(f"rules only        median {r:8.3f} s")
    for key, label in (("default", "2 x timeout"), ("equal", "= timeout")):
        h = statistics.median(hole[key])
        print(
            f"black-hole server, first call {label:11s}: median {h:8.3f} s "
            f"(calls made: {statistics.median(asked[key]):g}); ratio run/bound = {h / bound:.3f}"
        )
    print(f"bound 3 x timeout + rules = {bound:.3f} s")
    print(f"without the breaker: about {len(result.decisions)} x {args.timeout:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
