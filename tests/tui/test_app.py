"""Pilot tests: the replay screen against the engine driven headless over the same sample."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pytest
from textual.widgets import TabbedContent

from engine.backtest import BacktestConfig, BacktestEngine, Session
from engine.brain.factory import make_brain, register_brain
from engine.brain.persona import load_persona
from tests.tui.conftest import SIZE, jump, notices, settle, text_of
from tui.chart import CandleChart
from tui.compare import CompareScreen
from tui.dialogs import PersonaPicker
from tui.format import fmt_metric, fmt_money, fmt_price, fmt_time
from tui.main import main
from tui.panes import HeaderBar, InstrumentsTable, fmt_indicator
from tui.replay import ReplayScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def scratch_brains(monkeypatch):
    """Brain kinds registered by a test vanish after it (the picker lists every kind)."""
    from engine.brain import factory

    monkeypatch.setattr(factory, "_registered", dict(factory._registered))


def headless_events(series, analysis, persona: str, n: int) -> list:
    engine = BacktestEngine(
        series, load_persona(persona), make_brain("rules", load_persona(persona)), analysis=analysis
    )
    return [engine.step() for _ in range(n)]


async def test_step_advances_exactly_one_candle_and_every_pane_shows_it(
    make_app, sample_series, sample_analysis
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await jump(pilot, "199")
        assert screen.steps_done == 199
        await pilot.press("s")
        await settle(pilot)
        assert screen.steps_done == 200
        expected = headless_events(sample_series, sample_analysis, "momentum", 200)[-1]
        model = screen.model
        assert model.time == expected.time and model.equity == expected.equity
        header = text_of(screen.query_one(HeaderBar))
        assert "200/4,320" in header and fmt_time(expected.time) in header
        focus = screen.focus_instrument
        last = next(c for c in expected.candles if c.instrument == focus)
        chart = screen.query_one(CandleChart).data
        assert len(chart) == 200 and chart.close[-1] == last.close
        # The sidebar draws the tab on show: visit the market and stats tabs.
        tabs = screen.query_one(TabbedContent)
        tabs.active = "tab-market"
        await pilot.pause()
        table = screen.query_one(InstrumentsTable)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == focus and row[1] == fmt_price(last.close)
        indicators = text_of(screen.query_one("#indicators"))
        rsi = expected.indicators[focus]["rsi"]
        assert fmt_indicator("rsi", rsi) in indicators
        tabs.active = "tab-stats"
        await pilot.pause()
        assert fmt_money(expected.equity) in text_of(screen.query_one("#stats"))
        assert fmt_money(expected.equity) in text_of(screen.query_one("#strip"))
        tabs.active = "tab-signals"
        await pilot.pause()
        signals_text = text_of(screen.query_one("#signals"))
        if expected.signals:
            assert expected.signals[-1].kind in signals_text
        assert len(model.trades) == sum(
            len(e.trades) for e in headless_events(sample_series, sample_analysis, "momentum", 200)
        )
        # One more step: exactly one more candle on the chart.
        await pilot.press("s")
        await settle(pilot)
        assert screen.steps_done == 201 and len(screen.query_one(CandleChart).data) == 201


async def test_stats_pane_shows_the_engines_metrics_with_the_shared_formatting(
    make_app, sample_series, sample_analysis
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        screen.query_one(TabbedContent).active = "tab-stats"  # the sidebar's Stats tab
        for steps in (100, 600):  # at 100: two winning trades, no loss
            screen.jump_to(str(steps))
            await settle(pilot)
            persona = load_persona("momentum")
            engine = BacktestEngine(
                sample_series, persona, make_brain("rules", persona), analysis=sample_analysis
            )
            for _ in range(steps):
                engine.step()
            expected = engine.result().metrics
            shown = screen.run_metrics
            assert shown["n_bars"] == steps
            for key in ("final_equity", "n_trades", "win_rate_pct", "profit_factor", "fees_paid"):
                assert fmt_metric(shown[key]) == fmt_metric(expected[key]), key
            stats = text_of(screen.query_one("#stats"))
            assert f"profit f. {fmt_metric(expected['profit_factor'])}" in " ".join(stats.split())
            if steps == 100:  # profit factor undefined: "-" as in compare, not ∞
                assert "∞" not in stats and "profit f. -" in " ".join(stats.split())
            strip = text_of(screen.query_one("#strip"))  # the strip under the chart too
            assert f"pf {fmt_metric(expected['profit_factor'])}" in strip


async def test_play_then_pause(make_app) -> None:
    app = make_app(speed="1000x")  # 1-minute candles at 1000x: 16.67 a second
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        start = time.monotonic()
        await pilot.press("space")
        assert screen.playing
        await asyncio.sleep(0.9)
        await pilot.press("space")
        elapsed = time.monotonic() - start
        await settle(pilot)
        assert not screen.playing
        done = screen.steps_done
        # The clock never runs ahead of wall time x speed; it may lag on a loaded machine.
        assert elapsed * 1000 / 60 * 0.4 - 1 <= done <= elapsed * 1000 / 60 + 1, (done, elapsed)
        await asyncio.sleep(0.3)
        await pilot.pause()
        assert screen.steps_done == done  # paused: time stands still
        assert "paused" in text_of(screen.query_one(HeaderBar))
        assert screen._timer is None  # no timer runs while paused


async def test_max_speed_draws_at_most_ten_frames_a_second_and_the_pause_shows_the_last_step(
    make_app,
) -> None:
    from tui.playback import MAX_SPEED_FRAME_SECONDS

    app = make_app(speed="max")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        draws: list[float] = []  # the draws made while playing
        draw = screen.draw

        def counted() -> None:
            if screen.playing:  # pausing, or the end of the window, draws at once
                draws.append(time.monotonic())
            draw()

        screen.draw = counted
        await pilot.press("space")
        await asyncio.sleep(0.6)
        await pilot.press("space")
        await settle(pilot)
        assert screen.steps_done > 100  # the engine ran between the frames
        gaps = [b - a for a, b in itertools.pairwise(draws)]
        assert gaps and min(gaps) >= MAX_SPEED_FRAME_SECONDS * 0.95, gaps
        header = text_of(screen.query_one(HeaderBar))
        assert f"{screen.steps_done:,}/" in header, header  # the paused frame is the last step


async def test_speed_changes(make_app) -> None:
    app = make_app(speed="10x")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        for key, speed in (
            ("3", "100x"),
            ("plus", "1000x"),
            ("5", "max"),
            ("minus", "1000x"),
            ("1", "1x"),
            ("minus", "1x"),
        ):
            await pilot.press(key)
            assert screen.clock.speed == speed
            assert f"speed {speed}" in text_of(screen.query_one(HeaderBar))
        # At max speed a play runs many candles per frame.
        await pilot.press("5", "space")
        await asyncio.sleep(0.5)
        await pilot.press("space")
        await settle(pilot)
        assert screen.steps_done > 200


async def test_persona_switch_reruns_the_window_with_that_personas_trades(
    make_app, sample_series, sample_analysis
) -> None:
    app = make_app(persona="momentum")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "300")
        await pilot.press("p")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PersonaPicker)
        names = [n for n, _ in picker._personas]
        picker.query_one("#personas").highlighted = names.index("scalper")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert screen.source.persona.name == "scalper" and screen.steps_done == 0
        await jump(pilot, "99999")
        assert screen.steps_done == screen.source.total_steps
        persona = load_persona("scalper")
        expected = BacktestEngine(
            sample_series, persona, make_brain("rules", persona), analysis=sample_analysis
        ).run()
        assert screen.model.trades == list(expected.trades)
        assert "persona scalper" in text_of(screen.query_one(HeaderBar))


async def test_compare_shows_each_personas_metrics_equal_to_headless_compare(
    make_app, sample_spec, sample_series, sample_analysis, capsys
) -> None:
    personas = ["momentum", "scalper", "conservative"]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.screen._open_compare(personas)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await jump(pilot, "99999")
        assert screen.steps_done == screen.source.total_steps
        shown = screen.metrics()
        table = text_of(screen.query_one("#compare-metrics"), width=120)
        trades = {name: list(m.trades) for name, m in screen.models.items()}
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ReplayScreen)

    # The same window through a headless Session ...
    session = Session(
        sample_series,
        personas,
        lambda p: make_brain("rules", p),
        BacktestConfig(),
        analysis=sample_analysis,
    )
    for name, result in session.run().items():
        assert shown[name] == result.metrics
        assert trades[name] == list(result.trades)
        assert f"{result.final_equity:,.2f}" in table
    # ... and through the `tapedeck compare` command.
    argv = ["compare", *sample_spec.paths, "--personas", ",".join(personas), "--json"]
    assert main([*argv, "--progress", "never"]) == 0
    headless = {r["persona"]: r["metrics"] for r in json.loads(capsys.readouterr().out)}
    assert set(headless) == set(shown)
    for name, metrics in headless.items():
        for key in ("final_equity", "n_trades", "total_return_pct", "max_drawdown_pct"):
            assert metrics[key] == pytest.approx(shown[name][key], rel=1e-12), (name, key)


class FlakyBrain:
    """Raises on its first call (a dropped connection), then answers like the rule brain."""

    name = "flaky"
    model = "flaky-1"

    def __init__(self, persona) -> None:
        self._inner = make_brain("rules", persona)
        self.calls = 0

    def decide(self, batch, portfolio, persona, on_reasoning=None):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("model server went away")
        return self._inner.decide(batch, portfolio, persona, on_reasoning)


async def test_a_brain_fault_shows_its_message_and_the_replay_continues(
    make_app, scratch_brains
) -> None:
    register_brain("flaky", FlakyBrain)
    app = make_app(brain="flaky")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "400")
        assert screen.steps_done == 400
        errors = [d for d in screen.model.decisions if d.errors]
        assert len(errors) == 1 and "model server went away" in errors[0].errors[0]
        assert screen.model.decision_count > 1  # later decisions were made
        messages = notices(app)
        assert any("model server went away" in m for m in messages)
        await pilot.press("s")
        await settle(pilot)
        assert screen.steps_done == 401


class SlowBrain:
    """Takes a while and streams its reasoning, like an LLM."""

    name = "slow"
    model = "slow-1"

    def __init__(self, persona) -> None:
        self._inner = make_brain("rules", persona)
        self.release = threading.Event()

    def decide(self, batch, portfolio, persona, on_reasoning=None):
        if on_reasoning is not None:
            on_reasoning("Looking at the RSI first")
        self.release.wait(10)
        return self._inner.decide(batch, portfolio, persona, on_reasoning)


@pytest.fixture
def slow_brains(scratch_brains) -> list[SlowBrain]:
    """Registers the "slow" brain kind; the list holds every SlowBrain built, in order."""
    brains: list[SlowBrain] = []

    def build(persona):
        brains.append(SlowBrain(persona))
        return brains[-1]

    register_brain("slow", build)
    return brains


async def test_while_a_brain_thinks_time_waits_the_spinner_shows_and_keys_work(
    make_app, slow_brains
) -> None:
    brains = slow_brains
    app = make_app(brain="slow", speed="max")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("space")
        deadline = time.monotonic() + 10
        while "thinking" not in text_of(screen.query_one("#reasoning")):
            assert time.monotonic() < deadline, "no spinner"
            await asyncio.sleep(0.05)
        stuck_at = screen.steps_done
        assert "Looking at the RSI first" in text_of(screen.query_one("#reasoning"))
        assert "brain thinking" in text_of(screen.query_one(HeaderBar))
        await pilot.press("3")  # keys stay live during the call
        assert screen.clock.speed == "100x"
        await pilot.press("space")
        assert not screen.playing
        assert screen.steps_done == stuck_at  # simulated time waited
        brains[0].release.set()
        await settle(pilot)
        assert screen.steps_done >= stuck_at + 1


async def test_unknown_brain_in_the_picker_is_a_notification(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        screen._switch_persona(("scalper", "no-such-brain"))
        await pilot.pause()
        assert screen.source.persona.name == "momentum"  # unchanged
        assert any("no-such-brain" in n.message for n in app._notifications)


@pytest.mark.parametrize("key", ["question_mark"])
async def test_help_screen_lists_the_transport_keys(make_app, key) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await pilot.pause()
        text = text_of(app.screen.query_one("#help-keys"))
        assert "play / pause" in text and "speed 1x, 10x, 100x, 1000x, max" in text


async def test_restart_replays_the_window_from_its_first_candle(
    make_app, sample_series, sample_analysis
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "250")
        await pilot.press("r")
        await settle(pilot)
        assert screen.steps_done == 0 and screen.model.trades == []
        assert len(screen.query_one(CandleChart).data) == 0
        await pilot.press("s")
        await settle(pilot)
        first = headless_events(sample_series, sample_analysis, "momentum", 1)[0]
        assert screen.model.steps_done == 1 and screen.model.time == first.time
        assert screen.model.equity == first.equity


async def test_jump_to_a_time(make_app, sample_series, sample_analysis) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        events = headless_events(sample_series, sample_analysis, "momentum", 300)
        target = events[299].time
        screen.jump_to(fmt_time(target))  # minutes: the step closing at that time
        await settle(pilot)
        assert screen.model.time == target and screen.steps_done == 300
        screen.jump_to("100")  # backwards: rerun from the start, stop at step 100
        await settle(pilot)
        assert screen.steps_done == 100 and screen.model.time == events[99].time


async def test_choosing_an_instrument_focuses_the_chart(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await jump(pilot, "50")
        names = list(screen.model.instruments)
        assert screen.focus_instrument == names[0]
        await pilot.press("n")
        await pilot.pause()
        assert screen.focus_instrument == names[1]
        chart = screen.query_one(CandleChart)
        closes = screen.model.history[names[1]].close
        assert chart.data.close.tolist() == closes.tolist()
        assert chart.data.instrument == names[1]
        assert chart.frame()[0].text.startswith(names[1])  # the legend names it
        await pilot.press("b", "b")
        await pilot.pause()
        assert screen.focus_instrument == names[-1]


async def test_command_palette_sets_speed_and_persona(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Speed: max")
        await asyncio.sleep(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.clock.speed == "max"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Persona: scalper")
        await asyncio.sleep(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.source.persona.name == "scalper"


async def test_compare_streams_each_personas_reasoning_while_it_thinks(
    make_app, slow_brains
) -> None:
    brains = slow_brains
    app = make_app(brain="slow", speed="max")
    async with app.run_test(size=SIZE) as pilot:
        app.screen._open_compare(["momentum", "scalper"])
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.press("space")
        deadline = time.monotonic() + 10
        while "Looking at the RSI first" not in text_of(screen.query_one("#card-0")):
            assert time.monotonic() < deadline, "no streamed reasoning in the card"
            await asyncio.sleep(0.05)
        assert "brains thinking" in text_of(screen.query_one(HeaderBar))
        await pilot.press("space")
        assert not screen.playing
        for brain in brains:
            brain.release.set()
        await settle(pilot)
        assert screen.models["momentum"].decision_count >= 1
