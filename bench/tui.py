"""TUI speed: the candle chart's frame time, and candles/s at max speed with every pane live.

    python bench/tui.py [--repeats N] [--data FILE...]

1. Chart frame: ``render_chart`` turns 200 visible candles (legend, both EMAs and the
   Bollinger bands, position lines, fill and signal markers, volume, and the oscillator
   pane showing MACD with its histogram) into the strips of a 213x40 widget. Peer:
   plotext 6 building a candlestick plot of the same 200 candles at the same size.
2. Replay at max speed: the real app, headless at 160x50, plays the whole window at
   "max" with every pane shown drawn (chart with its RSI oscillator pane, Now pane,
   the sidebar's visible tab, stats strip, header; at most ~30 frames a second). Peer:
   the same engine stepped in a plain loop, no UI, in the same run. Reported as steps/s
   and candles/s (a step holds one candle of each instrument present).
3. Step back: one candle back at random positions of the real BTC 1m file (45k candles),
   after a forward pass. Peer: one step forward at the same positions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import median_seconds  # noqa: E402
from engine.data import load  # noqa: E402
from engine.data.sample import SAMPLE_PATHS  # noqa: E402
from engine.indicators import registry  # noqa: E402
from tui.chart import (  # noqa: E402
    AXIS_WIDTH,
    ChartData,
    ChartView,
    palette_from_variables,
    render_chart,
)
from tui.theming import VARIABLE_DEFAULTS  # noqa: E402

BTC_CSV = ROOT.parent / "shared" / "data" / "real" / "btc-perp-20211231-20220201_1m.csv"
VISIBLE = 200
HEIGHT = 40


def chart_data(path: Path) -> ChartData:
    s = load(path)
    n = min(len(s), 2000)
    close = s.close[:n]
    last = float(close[n - 1])
    cols = {"close": close}
    bands = registry.compute("bbands", cols)
    macd = registry.compute("macd", cols)
    return ChartData(
        s.open_time[:n],
        s.open[:n],
        s.high[:n],
        s.low[:n],
        close,
        volume=s.volume[:n],
        overlays=[
            ("ema_fast", registry.compute("ema", cols, period=9)["ema"]),
            ("ema_slow", registry.compute("ema", cols, period=21)["ema"]),
            ("bb_upper", bands["upper"]),
            ("bb_middle", bands["middle"]),
            ("bb_lower", bands["lower"]),
        ],
        indicators={
            "macd": macd["macd"],
            "macd_signal": macd["signal"],
            "macd_hist": macd["hist"],
            "rsi": registry.compute("rsi", cols)["rsi"],
        },
        instrument=s.instrument,
        lines=[("entry", last), ("stop", last * 0.99), ("target", last * 1.02)],
        fills=[(n - 40, "buy"), (n - 10, "sell")],
        signals=[(i, "long" if i % 2 else "short") for i in range(n - VISIBLE, n, 7)],
    )


def bench_chart(path: Path, repeats: int) -> None:
    data = chart_data(path)
    palette = palette_from_variables(VARIABLE_DEFAULTS, "#0e1116")
    width = VISIBLE + AXIS_WIDTH + 1
    view = ChartView(oscillator="macd")
    ours = median_seconds(
        lambda: render_chart(data, width, HEIGHT, palette, view), repeats, warmup=True
    )

    import plotext as plt

    lo = len(data) - VISIBLE
    prices = {
        "date": list(range(VISIBLE)),
        "open": data.open[lo:].tolist(),
        "high": data.high[lo:].tolist(),
        "low": data.low[lo:].tolist(),
        "close": data.close[lo:].tolist(),
    }

    def peer() -> None:
        fig = plt.figure
        fig.clear()
        fig.plot_size(width, HEIGHT)
        fig.draw(fig.candlestick(prices))
        str(fig.build())

    theirs = median_seconds(peer, max(3, repeats // 10), warmup=True)
    print(f"chart frame, {VISIBLE} candles + MACD pane, {width}x{HEIGHT} ({path.name})")
    print(f"  tapedeck render_chart  {ours * 1e3:8.3f} ms  (target <= 2 ms)")
    print(f"  plotext candlestick    {theirs * 1e3:8.3f} ms")
    print(f"  ratio plotext / ours   {theirs / ours:8.1f}x")


def headless_steps_per_second(source) -> tuple[float, int, int]:
    source.reset()
    steps = candles = 0
    start = time.perf_counter()
    while (ev := source.step()) is not None:
        steps += 1
        candles += len(ev.candles)
    return time.perf_counter() - start, steps, candles


async def app_max_speed(spec, source) -> tuple[float, int, int, int]:
    from tui.app import TapedeckApp
    from tui.replay import ReplayScreen

    app = TapedeckApp(spec, source=source)
    async with app.run_test(size=(160, 50), headless=True) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        frames = 0
        draw = screen.draw

        def counted() -> None:
            nonlocal frames
            frames += 1
            draw()

        screen.draw = counted  # type: ignore[method-assign]
        await pilot.press("5")
        start = time.perf_counter()
        await pilot.press("space")
        while screen.playing or screen.runner.busy:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        steps = screen.model.steps_done
        candles = sum(len(h) for h in screen.model.history.values())
    return elapsed, steps, candles, frames


def bench_app(paths: list[str]) -> None:
    from tui.sources import ReplaySource, ReplaySpec

    spec = ReplaySpec(paths=paths, persona="momentum", brain="rules", speed="max")
    source = ReplaySource.from_spec(spec)
    base_t, base_steps, base_candles = headless_steps_per_second(source)
    source.reset()
    t, steps, candles, frames = asyncio.run(app_max_speed(spec, source))
    assert steps == base_steps, (steps, base_steps)
    print(f"replay at max speed, every pane live ({len(paths)} instruments, {steps:,} steps)")
    print(
        f"  app (160x50, headless)  {steps / t:10,.0f} steps/s  {candles / t:10,.0f} candles/s"
        f"  {frames / t:5.1f} frames/s  (target >= 20,000 candles/s)"
    )
    print(
        f"  engine alone, no UI     {base_steps / base_t:10,.0f} steps/s"
        f"  {base_candles / base_t:10,.0f} candles/s"
    )
    print(f"  ratio app / engine      {(steps / t) / (base_steps / base_t):10.2f}")


def bench_step_back(path: Path, positions: int = 40) -> None:
    """Step back one candle at random positions of the window (target <= 200 ms).
    Peer: one step forward at the same positions, in the same run."""
    import random

    from tui.sources import ReplaySource, ReplaySpec

    source = ReplaySource.from_spec(ReplaySpec(paths=[str(path)], persona="momentum"))
    while source.step() is not None:  # forward once: the checkpoints a replay leaves
        pass
    rng = random.Random(11)
    back, forward = [], []
    for k in (rng.randrange(2, source.total_steps) for _ in range(positions)):
        source.rewind_to(k)
        t0 = time.perf_counter()
        source.step_back()
        t1 = time.perf_counter()
        source.step()
        forward.append(time.perf_counter() - t1)
        back.append(t1 - t0)
    back.sort()
    forward.sort()
    print(
        f"step back one candle, {positions} random positions ({path.name}, {source.total_steps:,})"
    )
    print(
        f"  median {back[len(back) // 2] * 1e3:8.2f} ms   max {back[-1] * 1e3:8.2f} ms"
        "  (target <= 200 ms)"
    )
    print(f"  one step forward (peer) median {forward[len(forward) // 2] * 1e3:8.3f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--data", nargs="*", default=None, help="files to replay (default: sample)")
    args = parser.parse_args()
    chart_source = BTC_CSV if BTC_CSV.exists() else Path(SAMPLE_PATHS[0])
    bench_chart(chart_source, args.repeats)
    bench_app(args.data or [str(p) for p in SAMPLE_PATHS])
    bench_step_back(chart_source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
