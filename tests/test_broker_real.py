"""The event search on real candles: BTC 1-minute (prices ~40,000) and a gappy altcoin
file quoted in BTC (prices ~0.0001): skipping quiet candles equals stepping every one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.broker import BrokerConfig
from engine.types import Action, TradePlan, TrailingSpec
from tests.test_broker_events import X, _run_skipping, _run_stepping


def _schedule(o, h, lo, c, every: int) -> dict:
    """Every ``every`` candles a plan, cycling through market/limit, long/short, fixed,
    percent-trailing and ATR-trailing stops, a close and an adjust."""
    rng = pd.Series(h - lo).rolling(14, min_periods=1).mean().to_numpy()
    out = {}
    for k, i in enumerate(range(20, len(c) - 1, every)):
        px, a = float(c[i]), float(rng[i])
        kind = k % 6
        if kind == 0:
            plan = TradePlan(
                X, Action.OPEN_LONG, size=0.01, stop_loss=px - 2 * a, take_profit=px + 3 * a
            )
        elif kind == 1:
            plan = TradePlan(
                X,
                Action.OPEN_SHORT,
                size=0.01,
                stop_loss=px + 2 * a,
                trailing=TrailingSpec("atr", 1.5, 0.5, a),
            )
        elif kind == 2:
            plan = TradePlan(
                X,
                Action.OPEN_LONG,
                entry_price=px - a,
                size=0.5,
                size_mode="equity",
                stop_loss=px - 4 * a,
                trailing=TrailingSpec("percent", 0.002, 0.001),
                expiry_candles=30,
            )
        elif kind == 3:
            plan = TradePlan(X, Action.CLOSE)
        elif kind == 4:
            plan = TradePlan(
                X,
                Action.OPEN_SHORT,
                entry_price=px + a,
                size=0.3,
                size_mode="equity",
                take_profit=px - 5 * a,
                expiry_candles=50,
            )
        else:
            plan = TradePlan(X, Action.ADJUST, trailing=TrailingSpec("percent", 0.003))
        out[i] = (plan, 240 if k % 4 == 0 else 0)
    return out


def _check(o, h, lo, c, every):
    data = (o, h, lo, c)
    schedule = _schedule(o, h, lo, c, every)
    for intrabar in ("stop_first", "open_distance"):
        cfg = BrokerConfig(fees_bps=10.0, slippage_bps=5.0, intrabar=intrabar)
        full = _run_stepping(cfg, data, schedule)
        fast, processed = _run_skipping(cfg, data, schedule)
        assert len(full.trades) > 50
        assert fast.fills == full.fills
        assert fast.trades == full.trades
        assert fast.rejections == full.rejections
        assert fast.cash == full.cash
        # the wallet balances: final cash = initial + net pnl of every trade
        assert full.cash == pytest.approx(cfg.initial_cash + sum(t.pnl for t in full.trades))
        assert len(processed) < len(c) / 3


def test_event_search_on_btc_1m(btc_1m_csv):
    df = pd.read_csv(btc_1m_csv)
    cols = [df[k].to_numpy(np.float64) for k in ("open", "high", "low", "close")]
    _check(*cols, every=400)


def test_event_search_on_small_prices_with_gaps(unittest_1m_feather):
    df = pd.read_feather(unittest_1m_feather)
    cols = [df[k].to_numpy(np.float64) for k in ("open", "high", "low", "close")]
    assert cols[3].max() < 1.0
    _check(*cols, every=150)
