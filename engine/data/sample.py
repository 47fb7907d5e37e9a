"""The bundled SYNTHETIC sample: seeded 1-minute candles of four correlated instruments.

Nothing here is market data. The generator mimics what makes real 1-minute crypto
candles hard for strategies: volatility clustering (GARCH(1,1)), fat tails
(Student-t shocks), trending and ranging regimes shared by the market, correlation
through a common factor, and an intraday pattern of volatility and volume. One
instrument trades near 0.00002 so that formatting of tiny prices is exercised.

Files are written with fixed formatting, so the same seed gives byte-identical files:
``tapedeck data sample [--seed N] [--out DIR]`` regenerates ``engine/data/samples/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.timeutil import parse_time

DEFAULT_SEED = 20240304
SAMPLE_DIR = Path(__file__).resolve().parent / "samples"  # shipped with the package
START = "2024-03-04T00:00:00Z"
MINUTES = 3 * 24 * 60
MINUTE_NS = 60_000_000_000


@dataclass(frozen=True)
class InstrumentModel:
    base: str
    quote: str
    price: float  # starting price
    sigma: float  # typical 1-minute log-return volatility
    rho: float  # loading on the common market factor
    beta: float  # sensitivity to the market regime's drift
    volume: float  # typical 1-minute volume (base units)
    price_decimals: int
    volume_decimals: int

    @property
    def file_name(self) -> str:
        return f"SYNTHETIC_{self.base}_{self.quote}-1m.csv"


MODELS: tuple[InstrumentModel, ...] = (
    InstrumentModel("BTC", "USDT", 62_000.0, 0.0009, 1.0, 1.0, 18.0, 2, 4),
    InstrumentModel("ETH", "USDT", 3_400.0, 0.0011, 0.8, 1.2, 260.0, 2, 3),
    InstrumentModel("SOL", "USDT", 128.0, 0.0015, 0.7, 1.5, 4_800.0, 3, 2),
    InstrumentModel("PEPE", "USDT", 0.0000215, 0.0022, 0.55, 1.8, 9.0e9, 10, 0),
)

SAMPLE_PATHS: tuple[Path, ...] = tuple(SAMPLE_DIR / m.file_name for m in MODELS)

# GARCH(1,1) on unit-variance shocks: persistence a + b close to 1 gives clustering.
_GARCH_A, _GARCH_B = 0.07, 0.91
_T_DOF = 4.0
_REGIME_MINUTES = 300.0  # mean duration of a regime
_TREND = 0.12  # drift per minute in units of sigma during a trend
_REVERT = 0.015  # pull back to the anchor per minute during a range


def _intraday(hours: np.ndarray) -> np.ndarray:
    """Volatility multiplier over the UTC day: quiet Asian night, busy US open."""
    bump = 0.75 * np.exp(-(((hours - 14.5) / 2.2) ** 2)) + 0.3 * np.exp(
        -(((hours - 8.0) / 1.8) ** 2)
    )
    dip = 0.35 * np.exp(-(((hours - 4.0) / 2.5) ** 2))
    return 0.85 + bump - dip


def _regimes(rng: np.random.Generator, n: int) -> np.ndarray:
    """0 = range, +1 = up trend, -1 = down trend, in runs of random length."""
    out = np.empty(n, dtype=np.int64)
    state = 0
    i = 0
    while i < n:
        length = max(30, int(rng.exponential(_REGIME_MINUTES)))
        out[i : i + length] = state
        i += length
        if state == 0:
            state = 1 if rng.random() < 0.5 else -1
        else:  # a trend mostly calms into a range, sometimes reverses at once
            state = 0 if rng.random() < 0.7 else -state
    return out


def _student_t(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(_T_DOF, size=shape) / np.sqrt(_T_DOF / (_T_DOF - 2.0))


@dataclass(frozen=True)
class SampleCandles:
    model: InstrumentModel
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regime: np.ndarray  # shared market regime per minute: 1 up, -1 down, 0 range (not written)


def generate(seed: int = DEFAULT_SEED, minutes: int = MINUTES) -> list[SampleCandles]:
    """Candles for every model, rounded to each instrument's tick (what gets written)."""
    rng = np.random.default_rng(seed)
    k = len(MODELS)
    start = parse_time(START)
    times = start + np.arange(minutes, dtype=np.int64) * MINUTE_NS
    hours = ((times // MINUTE_NS) % 1440) / 60.0
    season = _intraday(hours)
    regime = _regimes(rng, minutes)
    market = _student_t(rng, (minutes,))
    own = _student_t(rng, (minutes, k))
    rho = np.array([m.rho for m in MODELS])
    shocks = rho * market[:, None] + np.sqrt(1.0 - rho**2) * own
    sigma = np.array([m.sigma for m in MODELS])
    beta = np.array([m.beta for m in MODELS])

    log_close = np.empty((minutes, k))
    vol = np.empty((minutes, k))
    h = np.ones(k)
    prev_eps = np.zeros(k)
    level = np.log([m.price for m in MODELS])
    anchor = level.copy()
    for t in range(minutes):
        h = (1.0 - _GARCH_A - _GARCH_B) + _GARCH_A * prev_eps**2 + _GARCH_B * h
        eps = np.sqrt(h) * shocks[t]
        step_sigma = sigma * season[t]
        if t and regime[t] != regime[t - 1]:
            anchor = level.copy()
        drift = _TREND * sigma * beta * regime[t]
        revert = -_REVERT * (level - anchor) if regime[t] == 0 else 0.0
        level = level + drift + revert + step_sigma * eps
        log_close[t] = level
        vol[t] = step_sigma * np.sqrt(h)
        prev_eps = eps

    log_open = np.vstack([np.log([m.price for m in MODELS])[None, :], log_close[:-1]])
    wick_up = np.abs(rng.normal(size=(minutes, k))) * 0.6 * vol
    wick_down = np.abs(rng.normal(size=(minutes, k))) * 0.6 * vol
    high = np.exp(np.maximum(log_open, log_close) + wick_up)
    low = np.exp(np.minimum(log_open, log_close) - wick_down)
    activity = season[:, None] ** 1.5 * np.exp(0.35 * rng.normal(size=(minutes, k)))
    move = np.abs(log_close - log_open) / (sigma * season[:, None])
    volume = np.array([m.volume for m in MODELS]) * activity * (0.6 + 0.5 * move)

    out = []
    for j, m in enumerate(MODELS):
        d = m.price_decimals
        out.append(
            SampleCandles(
                model=m,
                open_time=times,
                open=np.round(np.exp(log_open[:, j]), d),
                high=np.round(high[:, j], d),
                low=np.round(low[:, j], d),
                close=np.round(np.exp(log_close[:, j]), d),
                volume=np.round(volume[:, j], m.volume_decimals),
                regime=regime,
            )
        )
    return out


def to_csv_text(candles: SampleCandles) -> str:
    """Fixed formatting: ISO times with Z, each instrument's decimals, '\\n' line ends."""
    m = candles.model
    d, vd = m.price_decimals, m.volume_decimals
    stamps = np.datetime_as_string(candles.open_time.astype("datetime64[ns]"), unit="s")
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [
        f"{ts}Z,{o:.{d}f},{h:.{d}f},{lo:.{d}f},{c:.{d}f},{v:.{vd}f}"
        for ts, o, h, lo, c, v in zip(
            stamps.tolist(),
            candles.open.tolist(),
            candles.high.tolist(),
            candles.low.tolist(),
            candles.close.tolist(),
            candles.volume.tolist(),
            strict=True,
        )
    ]
    return "\n".join(lines) + "\n"


def write_sample(out_dir: Path | str = SAMPLE_DIR, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write the SYNTHETIC_*.csv files into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for candles in generate(seed):
        path = out / candles.model.file_name
        path.write_bytes(to_csv_text(candles).encode("ascii"))
        paths.append(path)
    return paths
