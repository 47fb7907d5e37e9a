"""The bundled SYNTHETIC sample: reproducible byte for byte, and market-like enough."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data import load_many
from engine.data.sample import (
    DEFAULT_SEED,
    MODELS,
    SAMPLE_DIR,
    SAMPLE_PATHS,
    generate,
    write_sample,
)
from engine.data.stream import merge
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def sample() -> list:
    return load_many(SAMPLE_PATHS)


def test_sample_files_are_committed_small_and_named_synthetic() -> None:
    assert SAMPLE_DIR == REPO_ROOT / "engine" / "data" / "samples"
    assert len(SAMPLE_PATHS) == len(MODELS) >= 3
    for p in SAMPLE_PATHS:
        assert p.exists(), p
        assert p.name.startswith("SYNTHETIC_")
    assert sum(p.stat().st_size for p in SAMPLE_PATHS) < 3_000_000
    tracked = subprocess.run(
        ["git", "ls-files", "engine/data/samples"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(tracked) == sorted(f"engine/data/samples/{p.name}" for p in SAMPLE_PATHS)


def test_sample_is_package_data_so_any_install_has_it() -> None:
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["engine.data"]
    package_dir = REPO_ROOT / "engine" / "data"
    for p in SAMPLE_PATHS:
        relative = p.relative_to(package_dir).as_posix()
        assert any(fnmatch.fnmatch(relative, pat) for pat in patterns), relative


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    paths = write_sample(tmp_path, seed=DEFAULT_SEED)
    assert [p.name for p in paths] == [p.name for p in SAMPLE_PATHS]
    for new, committed in zip(paths, SAMPLE_PATHS, strict=True):
        assert new.read_bytes() == committed.read_bytes(), new.name


def test_cli_regenerates_and_other_seeds_differ(tmp_path: Path) -> None:
    for seed, out in ((DEFAULT_SEED, tmp_path / "a"), (7, tmp_path / "b"), (7, tmp_path / "c")):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "data",
                "sample",
                "--seed",
                str(seed),
                "--out",
                str(out),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    for p in SAMPLE_PATHS:
        assert (tmp_path / "a" / p.name).read_bytes() == p.read_bytes()
        assert (tmp_path / "b" / p.name).read_bytes() == (tmp_path / "c" / p.name).read_bytes()
        assert (tmp_path / "b" / p.name).read_bytes() != p.read_bytes()


def test_sample_loads_clean_as_one_minute_aligned_instruments(sample: list) -> None:
    assert [s.instrument for s in sample] == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "PEPE/USDT"]
    for s in sample:
        assert s.timeframe == "1m"
        assert len(s) == 3 * 1440
        assert s.report.repairs == () and s.report.gaps == ()
        assert np.all(s.open[1:] == s.close[:-1])  # continuous market: open at previous close
    m = merge(sample)
    assert len(m) == 3 * 1440 and np.all(m.candle_index >= 0)
    pepe = sample[-1]
    assert pepe.close.min() > 1e-6 and pepe.close.max() < 1e-4  # tiny prices exercised


def _log_returns(s) -> np.ndarray:
    return np.diff(np.log(s.close))


def test_sample_has_market_like_statistics(sample: list) -> None:
    returns = np.array([_log_returns(s) for s in sample])
    corr = np.corrcoef(returns)
    off_diagonal = corr[~np.eye(len(sample), dtype=bool)]
    assert off_diagonal.min() > 0.3  # correlated through a common factor
    for r in returns:
        x = r - r.mean()
        kurtosis = (x**4).mean() / (x**2).mean() ** 2 - 3
        assert kurtosis > 3  # fat tails (a normal distribution has 0)
        clustering = np.corrcoef(np.abs(r[1:]), np.abs(r[:-1]))[0, 1]
        assert clustering > 0.1  # volatility clustering: |r| is autocorrelated
    btc = sample[0]
    hours = (btc.open_time // 60_000_000_000) % 1440 // 60
    by_hour = np.array([btc.volume[hours == h].mean() for h in range(24)])
    assert by_hour[13:17].mean() > 1.8 * by_hour[2:6].mean()  # intraday volume pattern


def test_sample_has_trends_and_ranges(sample: list) -> None:
    # Net move over path length in 4-hour windows: a random walk rarely exceeds 0.25
    # (about 3 standard deviations), a trend does.
    for s in sample:
        r = _log_returns(s)[: 17 * 240].reshape(17, 240)
        efficiency = np.abs(r.sum(axis=1)) / np.abs(r).sum(axis=1)
        assert np.sum(efficiency > 0.25) >= 2, (s.instrument, efficiency)
    # The generator's regimes: trends drift their way, ranges go nowhere.
    candles = generate()
    regime = candles[0].regime
    assert set(np.unique(regime).tolist()) == {-1, 0, 1}
    for c in candles:
        r = np.diff(np.log(c.close))
        per_minute = {k: r[regime[1:] == k].mean() / r.std() for k in (-1, 0, 1)}
        assert per_minute[1] > 0.05 and per_minute[-1] < -0.05
        assert abs(per_minute[0]) < 0.5 * min(per_minute[1], -per_minute[-1])


def _wilder_rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    delta = np.diff(close)
    gain, loss = np.clip(delta, 0, None), np.clip(-delta, 0, None)
    out = np.full(close.shape, np.nan)
    avg_gain, avg_loss = gain[:period].mean(), loss[:period].mean()
    for i in range(period, delta.shape[0] + 1):
        if i > period:
            avg_gain = (avg_gain * (period - 1) + gain[i - 1]) / period
            avg_loss = (avg_loss * (period - 1) + loss[i - 1]) / period
        out[i] = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    return out


def _ema(x: np.ndarray, span: int) -> np.ndarray:
    alpha = 2 / (span + 1)
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, x.shape[0]):
        out[i] = alpha * x[i] + (1 - alpha) * out[i - 1]
    return out


def test_rsi_and_macd_signals_would_fire_a_plausible_number_of_times(sample: list) -> None:
    days = 3
    for s in sample:
        rsi = _wilder_rsi(s.close)
        below = np.sum((rsi[1:] < 30) & (rsi[:-1] >= 30)) / days
        above = np.sum((rsi[1:] > 70) & (rsi[:-1] <= 70)) / days
        # The real BTC 1m file gives about 20 entries a day into each zone.
        assert 8 <= below <= 80, (s.instrument, below)
        assert 8 <= above <= 80, (s.instrument, above)
        macd = _ema(s.close, 12) - _ema(s.close, 26)
        side = np.sign(macd - _ema(macd, 9))[30:]
        crosses = np.sum(side[1:] != side[:-1]) / days
        assert 40 <= crosses <= 250, (s.instrument, crosses)


def test_rsi_oracle_matches_talib(sample: list) -> None:
    talib = pytest.importorskip("talib")
    close = sample[0].close
    np.testing.assert_allclose(_wilder_rsi(close), talib.RSI(close, 14), rtol=1e-9, equal_nan=True)
