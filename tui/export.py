"""Where the TUI's exports go, and what they are called.

Files are saved to ``$TAPEDECK_EXPORT_DIR`` when set, else to the working directory
(created if missing), named ``tapedeck-<persona>-<what>-<UTC time>.<ext>``. The writers
are the engine's: ``engine.export.write_trades_csv`` and ``engine.runlog.write_run_log``.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

EXPORT_DIR_ENV = "TAPEDECK_EXPORT_DIR"


def export_dir() -> Path:
    folder = Path(os.environ.get(EXPORT_DIR_ENV) or Path.cwd()).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def export_path(persona: str, what: str) -> Path:
    """The path, without its extension, of a new export."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", persona) or "run"
    return export_dir() / f"tapedeck-{safe}-{what}-{stamp}"
