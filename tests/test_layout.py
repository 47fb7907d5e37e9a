"""The core stays headless: nothing under engine/ imports the TUI or textual."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_engine_sources_never_import_ui() -> None:
    offenders = []
    for path in (REPO_ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(REPO_ROOT)}: {n}"
                for n in names
                if n.split(".")[0] in ("textual", "tui", "plotext")
            ]
    assert offenders == []


def test_importing_the_engine_cli_loads_no_ui_module() -> None:
    code = (
        "import sys, engine.cli; engine.cli.build_parser();"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'tui')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
