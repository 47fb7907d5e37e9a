"""AI brain figures: 240 one-minute BTC candles, then the eight 5-minute altcoins merged.

    python bench/ai.py [--candles 240] [--offset 0] [--repeat 3] [--alt-steps 240] [--no-alt]

With the embedded model (Gemma 3 270M via llama.cpp) and an empty decision cache:
brain calls (model calls; batches and reviews held without one), the cold run's wall
time including the model load, tokens per call (prompt tokens new and reused from
llama.cpp's cached prefix, generated tokens), answers valid at the first try, grounded
share, the actions used and the decisions that go against every signal of their
instrument. Then the warm-cache rerun against the rules-only run measured in the same
process, and the same two as whole ``tapedeck run`` commands (medians of --repeat).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds, timed  # noqa: E402
from engine.backtest import BacktestConfig, BacktestEngine  # noqa: E402
from engine.brain.factory import make_brain  # noqa: E402
from engine.brain.persona import load_persona  # noqa: E402
from engine.brain.rules import RuleBrain  # noqa: E402
from engine.data import load, select  # noqa: E402
from engine.timeutil import to_iso  # noqa: E402
from engine.types import Action, Direction  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "real"
BTC = DATA / "btc-perp-20211231-20220201_1m.csv"
ALTS = sorted((DATA / "binance-5m").glob("*_BTC-5m.feather"))


def against_every_signal(result, signals: dict[int, tuple]) -> int:
    """Entries whose direction is opposed by every directional signal of their
    instrument in the batch they answered."""
    count = 0
    for d in result.decisions:
        for plan in d.plans:
            if plan.action not in (Action.OPEN_LONG, Action.OPEN_SHORT):
                continue
            want = Direction.LONG if plan.action is Action.OPEN_LONG else Direction.SHORT
            dirs = [
                s.direction
                for s in signals.get(d.time, ())
                if s.instrument == plan.instrument and s.direction is not Direction.NEUTRAL
            ]
            if dirs and all(x is not want for x in dirs):
                count += 1
    return count


class Recorded:
    """Keeps each decision's batch signals beside it (the bench's own bookkeeping)."""

    def __init__(self, brain) -> None:
        self.brain = brain
        self.name, self.model = brain.name, brain.model
        self.signals: dict[int, tuple] = {}

    def skipped(self, batch, portfolio, persona):
        return self.brain.skipped(batch, portfolio, persona)

    def decide(self, batch, portfolio, persona, on_reasoning=None):
        self.signals[batch.time] = batch.signals
        return self.brain.decide(batch, portfolio, persona, on_reasoning)


def llm_run(window, persona, cache_path: Path):
    brain = make_brain("llamacpp", persona, cache_path=cache_path, timeframe=window[0].timeframe)
    rec = Recorded(brain)
    result = BacktestEngine(window, persona, rec, BacktestConfig()).run()
    return result, brain, rec.signals


def report(title: str, result, brain, signals: dict[int, tuple], seconds: float) -> None:
    st = brain.inner.stats
    bs = result.brain_stats
    calls = bs["calls"]
    asked = [d for d in result.decisions if d.prompt]
    first = sum(1 for d in asked if not d.errors)
    model_calls = int(st["calls"])
    actions = Counter(p.action.value for d in result.decisions for p in d.plans)
    share = bs["grounded_share"]
    print(f"== {title}")
    print(
        f"brain calls {calls} (limit 20 for BTC): {bs['batches']} batches + {bs['reviews']} "
        f"reviews asked, {bs['skipped']} of them held by the gate without a call; "
        f"model calls incl. retries {model_calls}"
    )
    print(
        f"cold run (empty cache, model load included): {seconds:.1f} s (limit 60 for BTC), "
        f"{seconds / max(1, calls):.1f} s per call"
    )
    n = max(1, model_calls)
    print(
        f"tokens per call: prompt {st['prompt_tokens'] / n:.0f} "
        f"(new {(st['prompt_tokens'] - st['reused_tokens']) / n:.0f}, "
        f"reused {st['reused_tokens'] / n:.0f}), generated {st['tokens'] / n:.1f}"
    )
    print(
        f"valid at the first try: {first}/{len(asked)} = {first / max(1, len(asked)):.0%} "
        f"(limit 95%); grounded share: "
        f"{'n/a' if share is None else f'{share:.0%}'} (limit 80%)"
    )
    print(
        f"actions used: {dict(sorted(actions.items()))} ({len(actions)} different); "
        f"entries against every signal of their instrument: "
        f"{against_every_signal(result, signals)}"
    )
    problems = Counter(
        _problem_kind(g) for d in result.decisions if d.grounded is False for g in d.grounding
    )
    print(f"ungrounded decisions' problems: {dict(problems.most_common()) or 'none'}")
    for d in asked[:3]:
        print(f"   e.g. {d.raw_answer}  grounded={d.grounded} {list(d.grounding)}")
    for d in asked:
        if d.grounded is False:  # what the model cited and did, to see why
            print(f"   ungrounded: {d.raw_answer}  {list(d.grounding)}")


def _problem_kind(problem: str) -> str:
    """The kind of a grounding problem ("BTC: number 12 is not in the prompt" -> number)."""
    for kind in ("says nothing", "argues", "number", "instrument", "copied"):
        if kind in problem:
            return kind
    return problem


def machine_speed() -> tuple[float, float]:
    """The peer: llama.cpp's own prompt evaluation and free generation speed, tokens/s,
    on this machine now (the issue measured about 720 and 40 on a quiet one)."""
    from engine.brain.llamacpp_brain import LlamaCppBrain

    llm = LlamaCppBrain().llm
    text = "The market moved up and down all day while traders watched the screens. " * 12
    tokens = llm.tokenize(text.encode(), add_bos=True)
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens)
    prompt_rate = len(tokens) / (time.perf_counter() - start)
    start = time.perf_counter()
    out = llm.create_completion(text[:200], max_tokens=48, temperature=0.0)
    gen_rate = out["usage"]["completion_tokens"] / (time.perf_counter() - start)
    return prompt_rate, gen_rate


def cli_median(kind: str, cache_path: Path, args: argparse.Namespace) -> float:
    env = {**os.environ, "TAPEDECK_CACHE_PATH": str(cache_path)}
    series = load(BTC)
    window = ["--start", to_iso(int(series.open_time[args.offset]))]
    window += ["--end", to_iso(int(series.open_time[args.offset + args.candles]))]
    cmd = [sys.executable, "-m", "engine.cli", "run", str(BTC), "--brain", kind]
    cmd += ["--persona", args.persona, "--json", *window]
    return median_seconds(
        lambda: subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True),
        args.repeat,
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candles", type=int, default=240)
    ap.add_argument(
        "--offset",
        type=int,
        default=0,
        help="start the BTC window this many candles in (another window than the one a "
        "prompt change was tuned on)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--persona", default="momentum")
    ap.add_argument("--alt-steps", type=int, default=240)
    ap.add_argument("--no-alt", action="store_true")
    ap.add_argument("--only-alt", action="store_true", help="skip the BTC runs")
    args = ap.parse_args()
    persona = load_persona(args.persona)
    series = load(BTC)
    first, last = series.open_time[args.offset], series.open_time[args.offset + args.candles]
    window = [select(series, start=int(first), end=int(last))]

    if args.only_alt:
        with tempfile.TemporaryDirectory() as tmp:
            alt_bench(args, persona, Path(tmp))
        return 0
    rules_s, _ = timed(
        lambda: BacktestEngine(window, persona, RuleBrain(persona), BacktestConfig()).run(),
        args.repeat,
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "cache.sqlite3"
        start = time.perf_counter()
        cold, brain, signals = llm_run(window, persona, cache_path)
        cold_s = time.perf_counter() - start
        title = f"{args.candles} candles of {BTC.name} from candle {args.offset}, "
        title += f"persona {persona.name}"
        report(title, cold, brain, signals, cold_s)
        prompt_rate, gen_rate = machine_speed()
        print(
            f"peer, llama.cpp on this machine now: prompt {prompt_rate:.0f} tokens/s, free "
            f"generation {gen_rate:.1f} tokens/s (quiet machine: about 720 and 40); the cold "
            f"run scaled to 40 tokens/s would take about {cold_s * gen_rate / 40:.0f} s"
        )
        warm_s, (warm, _, _) = timed(lambda: llm_run(window, persona, cache_path), args.repeat)
        cli_warm = cli_median("llamacpp", cache_path, args)
        cli_rules = cli_median("rules", cache_path, args)
        print(
            f"warm cache rerun: median {warm_s:.3f} s ({warm.brain_stats['cache_hits']} cache "
            f"hits of {warm.brain_stats['calls']} calls); rules-only run median {rules_s:.4f} s; "
            f"in-process ratio {warm_s / rules_s:.2f}"
        )
        print(
            f"CLI `tapedeck run` wall, median of {args.repeat}: warm cache {cli_warm:.2f} s, "
            f"rules {cli_rules:.2f} s, ratio {cli_warm / cli_rules:.2f} (limit 1.5)"
        )
        if not args.no_alt:
            alt_bench(args, persona, Path(tmp))
    return 0


def alt_bench(args: argparse.Namespace, persona, tmp: Path) -> None:
    if not ALTS:
        return
    alts = [load(p) for p in ALTS]
    first = max(int(s.open_time[0]) for s in alts)
    end = first + args.alt_steps * alts[0].timeframe_ns
    alt_window = [select(s, start=first, end=end) for s in alts]
    start = time.perf_counter()
    alt, alt_brain, alt_signals = llm_run(alt_window, persona, tmp / "alt.sqlite3")
    report(
        f"eight 5m altcoins merged, {args.alt_steps} steps, persona {persona.name}",
        alt,
        alt_brain,
        alt_signals,
        time.perf_counter() - start,
    )


if __name__ == "__main__":
    sys.exit(main())
