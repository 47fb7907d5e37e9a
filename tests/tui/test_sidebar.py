"""The Now pane and the inspect view: hand-made events, the text they must show."""

from __future__ import annotations

from rich.console import Console

from engine.types import Decision, Direction, Fill, Signal
from tests.tui.test_model import M, candle, event
from tui.format import fmt_price, fmt_qty
from tui.model import ReplayModel
from tui.sidebar import render_inspect, render_now


def plain(renderable, width: int = 60) -> str:
    console = Console(width=width, no_color=True, record=True)
    console.print(renderable)
    return console.export_text()


def model_with_history() -> tuple[ReplayModel, Signal, Decision]:
    m = ReplayModel(instruments=("AAA",), initial_equity=1000.0)
    m.apply(
        event(0, [candle("AAA", 0, 100, 101)], equity=1000.0, indicators={"AAA": {"rsi": 55.0}})
    )
    sig = Signal("AAA", 2 * M, "rsi_oversold", Direction.LONG, 0.8, 99.0, {"rsi": 25.0})
    dec = Decision(2 * M, "rules", "", (), "one signal, below the threshold")
    buy = Fill(2 * M, "AAA", 1, "buy", 2.0, 99.5, 0.2, "entry")
    m.apply(
        event(
            1,
            [candle("AAA", 1, 101, 99)],
            equity=990.0,
            indicators={"AAA": {"rsi": 25.0}},
            signals=(sig,),
            decisions=(dec,),
            fills=(buy,),
        )
    )
    return m, sig, dec


def test_inspect_shows_the_candles_ohlcv_signals_decision_fills_and_indicators() -> None:
    m, _, _ = model_with_history()
    text = plain(render_inspect(m, "AAA", 1, {}))
    assert "AAA 1970-01-01 00:01" in text
    assert f"O {fmt_price(101.0)}  H {fmt_price(102.0)}" in text
    assert f"L {fmt_price(98.0)}  C {fmt_price(99.0)}" in text and "V 10" in text
    assert "signals (1)" in text and "rsi_oversold 0.80" in text
    assert "rules: hold" in text and "one signal, below the threshold" in text
    assert f"fill buy {fmt_qty(2.0)} @ {fmt_price(99.5)} (entry)" in text
    assert "rsi 25.0" in text
    # The candle before: its own values, and nothing happened there.
    before = plain(render_inspect(m, "AAA", 0, {}))
    assert "rsi 55.0" in before and "no signal" in before and "no decision" in before
    assert "fill" not in before


def test_now_shows_the_last_signal_decision_and_position() -> None:
    m, _, _ = model_with_history()
    text = plain(render_now(m, {}))
    assert "rsi_oversold AAA 0.80" in text
    assert "rules: hold" in text and "no open position" in text


def test_closed_trades_leave_out_prices_then_the_time_before_cutting_the_reason() -> None:
    from engine.types import ExitReason, Side, Trade
    from tui.panes import render_trades

    m = ReplayModel(instruments=("PEPE/USDT",), initial_equity=1000.0)
    m.apply(event(0, [candle("PEPE/USDT", 0, 100, 100)], equity=1000.0))
    t = Trade(
        "PEPE/USDT", Side.LONG, M, 0.0000216869, 3 * M, 0.0000221242, 2.0, 35.87, 0.2,
        ExitReason.TAKE_PROFIT,
    )  # fmt: skip
    m.apply(event(1, [candle("PEPE/USDT", 1, 100, 100)], equity=1035.87, trades=(t,)))
    wide = plain(render_trades(m, {}, width=80), width=80)
    assert "00:03 ▲ PEPE" in wide and fmt_price(0.0000216869) in wide
    assert wide.rstrip().endswith("+35.87 take_profit")
    # the sidebar at 120 columns: 34 wide, the prices go, the reason stays whole
    narrow = plain(render_trades(m, {}, width=34), width=34)
    assert fmt_price(0.0000216869) not in narrow and fmt_price(0.0000221242) not in narrow
    assert "00:03 ▲ PEPE +35.87 take_profit" in narrow and "…" not in narrow
    # narrower still: the exit time goes too
    tiny = plain(render_trades(m, {}, width=26), width=26)
    assert "00:03" not in tiny and "▲ PEPE +35.87 take_profit" in tiny


def test_why_no_trade_lines_wrap_under_their_text_into_the_rows_left_free() -> None:
    from engine.backtest.why import WhyLine

    m, _, _ = model_with_history()
    long = "no signal since 01:40: score -0.59 under threshold 1"
    why = (
        WhyLine("ETH/USDT", "no_signal", long),
        WhyLine("SOL/USDT", "no_signal", "no signal"),
        WhyLine("BTC/USDT", "no_signal", long),
    )
    top = len(plain(render_now(m, {}, why[:0]), width=30).splitlines())  # the header row next

    def shown(height: int) -> list[str]:
        lines = plain(render_now(m, {}, why, width=30, height=height), width=30).splitlines()
        return lines[top + 1 :]

    # room for every wrapped row (3 + 1 + 3): whole texts, continued past the name
    rows = shown(top + 8)
    assert "…" not in "".join(rows) and len(rows) == 7
    assert " ".join(row.strip() for row in rows[:3]) == "ETH " + long
    # continued under the text, past " ETH " (5 cells), not under the name
    assert [(row[:5], row[5]) for row in rows[1:3]] == [("     ", "s"), ("     ", "t")]
    assert rows[3].rstrip() == " SOL no signal" and rows[4].startswith(" BTC no signal")
    # two rows short: the first line whole, the last cut to one row
    rows = shown(top + 6)
    assert len(rows) == 5 and rows[3].rstrip() == " SOL no signal"
    assert rows[4].startswith(" BTC no signal") and rows[4].endswith("…")
    # no room at all (or the size unknown): one row each
    for rows in (shown(top + 2), plain(render_now(m, {}, why), width=30).splitlines()[top + 1 :]):
        assert [r[:4] for r in rows] == [" ETH", " SOL", " BTC"] and rows[0].endswith("…")
