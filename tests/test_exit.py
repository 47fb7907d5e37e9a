"""The program skips the exit's garbage collections; a command run from Python does not."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from engine.cli import main
from tests.conftest import REPO_ROOT

# Prints how many objects were frozen when the interpreter starts to exit.
PROGRAM = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count()))
sys.argv = ["tapedeck", *sys.argv[1:]]
from {module} import main
main()
"""


@pytest.mark.parametrize("module", ["engine.cli", "tui.main"])
def test_the_program_freezes_what_is_alive_before_it_exits(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(module=module), "personas"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "momentum" in out  # the command ran
    frozen = int(out.split("frozen ")[-1])
    assert frozen > 10_000


def test_a_command_run_from_python_freezes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    before = gc.get_freeze_count()
    assert main(["personas"]) == 0
    assert "momentum" in capsys.readouterr().out
    assert gc.get_freeze_count() == before
