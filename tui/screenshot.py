"""Save an SVG screenshot of the replay screen (for the README): headless, rule brain.

python -m tui.screenshot docs/replay.svg [--step N] [--persona NAME] [--theme NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


async def screenshot(path: Path, step: int, persona: str, theme: str | None) -> int:
    from engine.data.sample import SAMPLE_PATHS
    from tui.app import TapedeckApp
    from tui.sources import ReplaySource, ReplaySpec

    spec = ReplaySpec([str(p) for p in SAMPLE_PATHS], persona=persona, brain="rules")
    source = ReplaySource.from_spec(spec)
    app = TapedeckApp(spec, source=source, theme=theme)
    async with app.run_test(size=(160, 48)) as pilot:  # the design sketch's size
        await pilot.pause()
        screen = app.screen
        while screen.runner.busy or screen._jump_target is not None:  # the opening warm-up
            await asyncio.sleep(0.02)
        screen.jump_to(str(step))
        while screen.runner.busy or screen._jump_target is not None:
            await asyncio.sleep(0.02)
        await pilot.pause()
        await pilot.pause()
        path.parent.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(path.name, str(path.parent))
        return screen.steps_done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--step", type=int, default=992)
    parser.add_argument("--persona", default="momentum")
    parser.add_argument("--theme", default=None)
    args = parser.parse_args(argv)
    done = asyncio.run(screenshot(args.path, args.step, args.persona, args.theme))
    print(f"{args.path}: replay screen after {done} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
