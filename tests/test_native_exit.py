"""A native abort at exit (issue 12, item 16): ``signals --summary`` on a file of negative
prices once ended with "terminate called without an active exception" and exit -6.

The cause, from a core dump of the old reader (CSV handed to Arrow as ``io.BytesIO``,
parsed with threads; 4 aborts in 93 runs of the command): an Arrow pool thread finished
the read's last callback after ``read_csv`` had returned, dropped the last reference to
the Python file (``PyReadableFile`` -> ``OwnedRefNoGIL`` -> ``PyGILState_Ensure``) while
the main thread was already in ``Py_FinalizeEx`` (exit 2 comes at once after the
one-line error), so CPython ended that thread with ``pthread_exit``; its forced unwind
through Arrow's C++ frames reached ``std::terminate``. A buffer over Python's bytes
(``pa.BufferReader(bytes)``) does the same (1 abort in 150 runs with threads). So Arrow
only ever reads a path, a native file or its own copy of the bytes
(``engine.data.readers.native_reader``): the first tests hold every reader to that; the
last runs the command in fresh processes, several at once, and it must end cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

RUNS = 4  # per file, all at once: a loaded machine widens the window
AT_ONCE = 4


def _walk_csv(path: Path, n: int, *, negative: tuple[int, ...] = (), all_negative: bool = False):
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(n):
        o = close[i - 1] if i else close[0]
        c = close[i]
        hi, lo = max(o, c) * 1.001, min(o, c) * 0.999
        if all_negative:
            o, hi, lo, c = -o, -hi, -lo, -c
        elif i in negative:
            lo = -lo
        lines.append(f"{1_640_995_200 + 60 * i},{o:.6f},{hi:.6f},{lo:.6f},{c:.6f},{1 + i % 7}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_arrow_reads_every_format_from_a_path_or_a_native_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    import pyarrow as pa
    import pyarrow.feather as pafeather
    import pyarrow.parquet as paparquet

    from engine.data import load, readers
    from engine.data.errors import DataError

    sources: list[tuple[str, object]] = []

    def recording(module: object, name: str) -> None:
        original = getattr(module, name)

        def read(source: object, *args: object, **kwargs: object) -> object:
            sources.append((name, source))
            return original(source, *args, **kwargs)

        monkeypatch.setattr(module, name, read)

    for module, name in [
        (readers.pacsv, "open_csv"),
        (readers.pacsv, "read_csv"),
        (pafeather, "read_table"),
        (paparquet, "read_table"),
        (readers.pa, "BufferReader"),
    ]:
        recording(module, name)
    csv = _walk_csv(tmp_path / "A_USDT-1m.csv", 300, negative=(5,))
    text = csv.read_text()
    files = [csv]
    (tmp_path / "B_USDT-1m.csv.gz").write_bytes(gzip.compress(text.encode()))
    files.append(tmp_path / "B_USDT-1m.csv.gz")
    bare = tmp_path / "C_USDT-1m.csv"  # no header row
    bare.write_text(text.split("\n", 1)[1])
    files.append(bare)
    late = tmp_path / "D_USDT-1m.csv"  # ints first, a float far down: the whole-file parse
    late.write_text(text.replace(",1\n", ",1.5\n"))
    files.append(late)
    table = pa.table({"timestamp": [1_640_995_200 + 60 * i for i in range(50)]})
    for col in ("open", "high", "low", "close", "volume"):
        table = table.append_column(col, pa.array([1.0 + i for i in range(50)]))
    pafeather.write_feather(table, tmp_path / "E_USDT-1m.feather")
    paparquet.write_table(table, tmp_path / "F_USDT-1m.parquet")
    files += [tmp_path / "E_USDT-1m.feather", tmp_path / "F_USDT-1m.parquet"]
    gz_feather = tmp_path / "G_USDT-1m.feather.gz"  # refused with one line, never read
    gz_feather.write_bytes(gzip.compress((tmp_path / "E_USDT-1m.feather").read_bytes()))
    for f in files:
        assert len(load(f)) > 0, f
    with pytest.raises(DataError, match="compressed feather files are not supported"):
        load(gz_feather)
    read = {name for name, _ in sources}
    assert read >= {"open_csv", "read_table", "BufferReader"}, read
    for name, source in sources:
        if name == "BufferReader":  # over Arrow's own memory, never Python's bytes
            assert isinstance(source, pa.Buffer), type(source)
        else:
            assert isinstance(source, str | pa.NativeFile), (name, type(source))


def test_native_reader_reads_a_copy_that_arrow_owns() -> None:
    import pyarrow as pa

    from engine.data.readers import native_reader

    data = b"timestamp,open\n1,2\n" * 100
    reader = native_reader(data)
    buf = reader.read_buffer()
    assert buf.to_pybytes() == data
    python_memory = np.frombuffer(data, dtype=np.uint8).ctypes.data
    assert buf.address != python_memory  # a buffer over the bytes would share it
    assert pa.py_buffer(data).address == python_memory  # (what the check tells apart)


@pytest.mark.parametrize(
    ("shape", "code"), [("all_negative", 2), ("some_negative", 0)], ids=["error", "repaired"]
)
def test_signals_on_negative_prices_exits_cleanly_every_time(
    tmp_path: Path, shape: str, code: int
) -> None:
    if shape == "all_negative":
        data = _walk_csv(tmp_path / "NEG_USDT-1m.csv", 600, all_negative=True)
    else:
        data = _walk_csv(tmp_path / "NEG_USDT-1m.csv", 600, negative=(10, 20, 30, 40))
    command = [sys.executable, "-m", "engine.cli", "signals", str(data), "--summary"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    outcomes = []
    for _ in range(RUNS // AT_ONCE):
        procs = [
            subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(AT_ONCE)
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            outcomes.append((p.returncode, err))
    for rc, err in outcomes:
        assert "terminate called" not in err, err
        assert rc == code, (rc, err)
    errors = {err.strip().splitlines()[-1] for _, err in outcomes}
    assert len(errors) == 1  # the same one line every time
    if code == 2:
        assert "no valid candles left: every row was dropped (600 non_positive_price)" in err
    else:
        assert "4 rows with a price <= 0, dropped" in err
