"""A whole ``tapedeck run`` of a CSV file never imports pandas (~0.3 s of its start):
the loader copies Arrow's buffers itself and ``to_iso`` formats times without pandas,
with exactly pandas' text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.readers import _numbers
from engine.timeutil import to_iso
from tests.conftest import REPO_ROOT

_LO, _HI = int(pd.Timestamp.min.value), int(pd.Timestamp.max.value)


def _pandas_iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat().replace("+00:00", "Z")


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.integers(_LO, _HI),  # nanoseconds
        st.integers(_LO // 1000 + 1, _HI // 1000).map(lambda us: us * 1000),
        st.integers(_LO // 10**9 + 1, _HI // 10**9).map(lambda s: s * 10**9),
        st.integers(-(10**6), 10**8).map(lambda m: m * 60 * 10**9),  # minutes near 1970
    )
)
def test_to_iso_is_pandas_text(ns: int) -> None:
    assert to_iso(ns) == _pandas_iso(ns)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.floats(allow_nan=True), max_size=20), min_size=1, max_size=5),
    st.integers(0, 10),
    st.integers(0, 10),
)
def test_numbers_equal_to_numpy_over_chunks_and_slices(chunks, start, cut) -> None:
    col = pa.chunked_array([pa.array(c, pa.float64()) for c in chunks], pa.float64())
    col = col.slice(min(start, len(col)), max(0, len(col) - start - cut))  # chunk offsets
    got = _numbers(col, np.float64)
    assert got.flags.writeable
    np.testing.assert_array_equal(got, col.to_numpy())
    ints = pa.chunked_array([pa.array(range(len(c)), pa.int64()) for c in chunks]).slice(start)
    np.testing.assert_array_equal(_numbers(ints, np.int64), ints.to_numpy())


def test_run_on_a_csv_never_imports_pandas(btc_1m_csv) -> None:
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        f"code = main(['run', {str(btc_1m_csv)!r}, '--persona', 'conservative',"
        " '--trades', '3', '--progress', 'never'])\n"
        "assert code == 0, code\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
