"""Faults (issue 12, items 14-15): atomic run log, truncated logs, outputs that would
overwrite an input, a damaged decision cache."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from engine import runlog
from engine.brain.cache import CacheDamagedError, DecisionCache
from engine.brain.selection import _with_cache
from engine.cli import main
from engine.runlog import RunLogError, read_run_log
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "engine" / "data" / "samples" / "SYNTHETIC_BTC_USDT-1m.csv"


@pytest.fixture(scope="module")
def good_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "run.jsonl"
    args = ["run", str(SAMPLE), "--last", "600", "--persona", "scalper", "--out", str(path)]
    assert main([*args, "--json"]) == 0
    return path


@pytest.fixture(scope="module")
def good_log_ok(good_log: Path) -> Path:
    assert read_run_log(good_log).metrics
    return good_log


# ------------------------------------------------------------------ 14. atomic run log
def test_an_interrupted_write_keeps_the_previous_log_and_leaves_no_partial_file(
    good_log_ok: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run.jsonl"
    before = good_log_ok.read_bytes()
    target.write_bytes(before)

    def interrupted(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        yield '{"type":"config"}'
        yield '{"type":"fill"}'
        raise KeyboardInterrupt  # SIGINT half way through the lines

    monkeypatch.setattr(runlog, "run_log_lines", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runlog.write_run_log(target, object())
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_sigint_during_a_real_run_leaves_no_partial_log(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    out = tmp_path / "run.jsonl"
    out.write_text("previous\n")
    code = (
        "import signal, os\n"
        "import engine.runlog as r\n"
        "orig = r.run_log_lines\n"
        "def slow(*a, **k):\n"
        "    for i, line in enumerate(orig(*a, **k)):\n"
        "        if i == 50:\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        yield line\n"
        "r.run_log_lines = slow\n"
        "from engine.cli import main\n"
        f"raise SystemExit(main(['run', {str(SAMPLE)!r}, '--last', '2000', '--persona', "
        f"'scalper', '--out', {str(out)!r}]))\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert time.monotonic() - started < 120
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.endswith("tapedeck: interrupted\n")
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_a_log_cut_in_the_middle_reads_as_truncated(good_log_ok: Path, tmp_path: Path) -> None:
    data = good_log_ok.read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunLogError, match=r"cut\.jsonl: truncated: line \d+ is cut off"):
        read_run_log(cut)
    # cut at a line end: every line is whole, but the closing metrics record is missing
    lines = data.splitlines(keepends=True)
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"".join(lines[: len(lines) // 2]))
    with pytest.raises(RunLogError, match=r"truncated: the closing metrics record is missing"):
        read_run_log(whole)


@pytest.mark.parametrize("option", ["--out", "--trades-csv", "--html"])
def test_outputs_refuse_to_overwrite_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    data = tmp_path / "X_USDT-1m.csv"
    data.write_bytes(SAMPLE.read_bytes())
    before = data.read_bytes()
    alias = tmp_path / "sub" / ".." / data.name  # the same file by another spelling
    (tmp_path / "sub").mkdir()
    code = main(["run", str(data), "--last", "300", option, str(alias)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"tapedeck: error: {option} {alias} is one of the run's data files; choose another path\n"
    )
    assert data.read_bytes() == before


# ------------------------------------------------------------------ 15. damaged cache
def _garbage(path: Path) -> Path:
    path.write_bytes(b"not a database at all " * 200)
    return path


def _foreign(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE decisions (x INTEGER)")
    db.commit()
    db.close()
    return path


def _malformed(path: Path) -> Path:
    db = sqlite3.connect(path)
    DecisionCache(path).close()
    db.executemany(
        "INSERT INTO decisions (key, mode, backend, model, persona, schema_version, answer, "
        "tokens, latency_s, created) VALUES (?, 'exact', 'b', 'm', 'p', 1, ?, 1, 1.0, 1.0)",
        [(str(i), "x" * 500) for i in range(2000)],
    )
    db.commit()
    db.close()
    for side in ("-wal", "-shm"):
        Path(str(path) + side).unlink(missing_ok=True)
    blob = bytearray(path.read_bytes())
    blob[8192:40000] = os.urandom(40000 - 8192)
    path.write_bytes(bytes(blob))
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_garbage, "file is not a database"),
        (_foreign, "its decisions table belongs to something else"),
        (_malformed, "database disk image is malformed"),
    ],
    ids=["garbage", "foreign", "malformed"],
)
def test_a_damaged_cache_is_named_and_cache_clear_resets_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, why: str
) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "decisions.sqlite3")
    assert main(["cache", "stats", "--path", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"tapedeck: error: the decision cache {path} is damaged ({why}); "
        "`tapedeck cache clear` moves it aside and starts a new one\n"
    )
    assert main(["cache", "clear", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"the decision cache {path} is damaged: moved it to {path}.damaged-1; "
        "started a new, empty one\n"
    )
    assert (tmp_path / "decisions.sqlite3.damaged-1").exists()
    assert main(["cache", "stats", "--path", str(path), "--json"]) == 0
    assert '"entries": 0' in capsys.readouterr().out


def test_an_llm_brain_runs_without_a_damaged_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _garbage(tmp_path / "decisions.sqlite3")
    inner = object()
    assert _with_cache(inner, {"cache_path": str(path)}) is inner
    err = capsys.readouterr().err
    assert err.startswith(f"tapedeck: warning: the decision cache {path} is damaged")
    assert err.endswith("; running without it\n")
    with pytest.raises(CacheDamagedError):
        DecisionCache(path)
