"""The ``tapedeck`` script: replay in front of the headless CLI, user errors on one line."""

from __future__ import annotations

import pytest

from tui.main import main


def test_help_lists_replay_and_the_headless_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "replay" in out and "compare" in out and "data" in out


def test_other_commands_fall_through_to_the_headless_cli(capsys) -> None:
    assert main(["personas"]) == 0
    out = capsys.readouterr().out
    assert "momentum" in out and "scalper" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["replay", "no/such/file.csv"], "data file not found: no/such/file.csv"),
        (["replay", "--speed", "warp"], "invalid speed 'warp'"),
        (["replay", "--persona", "nobody"], "unknown persona 'nobody'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(capsys, argv, message) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tapedeck: error: ") and message in err and "\n" not in err


def test_unknown_brain_is_refused_before_the_screen_opens(capsys) -> None:
    assert main(["replay", "--brain", "telepathy"]) == 2
    assert "unknown brain 'telepathy'" in capsys.readouterr().err
