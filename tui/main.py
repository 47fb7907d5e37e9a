"""The ``tapedeck`` console script: the headless commands plus the TUI."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine import cli
from engine.data.sample import SAMPLE_PATHS


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        # Until the replay TUI exists, show what the bundled sample holds.
        argv = ["data", "info", *map(str, SAMPLE_PATHS)]
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
