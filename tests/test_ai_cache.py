"""Decision cache: keys, hits on rerun, similar-conditions re-anchoring, CLI."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.brain.cache import (
    CachingBrain,
    DecisionCache,
    default_cache_path,
    exact_key,
    market_fingerprint,
    rsi_band,
    similar_key,
)
from engine.brain.ollama_brain import OllamaBrain
from engine.types import Action, Direction
from tests.fake_ollama import FakeOllama
from tests.test_ai_support import T0, batch, context, long_position, persona, portfolio


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


@pytest.fixture
def cache(tmp_path):
    c = DecisionCache(tmp_path / "cache.sqlite3")
    yield c
    c.close()


def cached(fake, cache, mode="exact") -> CachingBrain:
    return CachingBrain(OllamaBrain(host=fake.url, timeout=3.0), cache, mode)


def test_cache_path_from_environment_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEDECK_CACHE_PATH", str(tmp_path / "x.db"))
    assert default_cache_path() == tmp_path / "x.db"
    monkeypatch.delenv("TAPEDECK_CACHE_PATH")
    assert default_cache_path().name == "decisions.sqlite3"
    assert "tapedeck" in str(default_cache_path())


def test_rerun_hits_every_decision_with_identical_plans(fake, cache):
    batches = [
        batch(time=T0 + i * 60_000_000_000, contexts={"BTC": context(price=46_000.0 + 13 * i)})
        for i in range(5)
    ]
    first = cached(fake, cache)
    cold = [first.decide(b, portfolio(b.time), persona()) for b in batches]
    assert first.stats == {"cache_hits": 0, "cache_misses": 5}
    assert len(fake.requests) == 5 and not any(d.cache_hit for d in cold)
    second = cached(fake, cache)  # a new run, same cache file
    seen: list[str] = []
    warm = [second.decide(b, portfolio(b.time), persona(), seen.append) for b in batches]
    assert second.stats == {"cache_hits": 5, "cache_misses": 0}
    assert len(fake.requests) == 5  # no new model call
    assert all(d.cache_hit for d in warm)
    assert [d.plans for d in warm] == [d.plans for d in cold]
    assert [d.reasoning for d in warm] == [d.reasoning for d in cold]
    assert seen == [d.reasoning for d in cold]  # the reasoning still reaches the display
    assert cache.stats()["entries"] == 5 and cache.stats()["hits"] == 5


def test_failed_calls_are_not_cached(fake, cache):
    fake.queue("http500", "http500")
    brain = cached(fake, cache)
    bad = brain.decide(batch(), portfolio(), persona())
    assert bad.errors and cache.stats()["entries"] == 0
    good = brain.decide(batch(), portfolio(), persona())
    assert good.errors == () and not good.cache_hit
    assert brain.decide(batch(), portfolio(), persona()).cache_hit


def test_key_changes_with_model_digest_persona_and_prompt(fake, cache):
    p = persona()
    base = exact_key("ollama", "phi3:mini@sha256:1", p, "prompt")
    assert base == exact_key("ollama", "phi3:mini@sha256:1", persona(), "prompt")
    assert base != exact_key("ollama", "phi3:mini@sha256:2", p, "prompt")
    assert base != exact_key("llamacpp", "phi3:mini@sha256:1", p, "prompt")
    assert base != exact_key("ollama", "phi3:mini@sha256:1", persona(risk_per_trade=0.02), "prompt")
    assert base != exact_key("ollama", "phi3:mini@sha256:1", p, "prompt ")
    # the digest reaches the key through the wrapper
    brain = cached(fake, cache)
    k1 = brain.key(batch(), portfolio(), p)
    fake.models["phi3:mini"] = "sha256:" + "cd" * 32
    brain.inner._digest = None
    assert brain.key(batch(), portfolio(), p) != k1


def test_similar_mode_ignores_prices_and_times_but_not_state(fake, cache):
    p = persona()
    a = batch(time=T0, contexts={"BTC": context(price=46_210.5, atr=35.2, rsi=27.9)})
    b = batch(
        time=T0 + 7 * 3_600_000_000_000,
        contexts={"BTC": context(price=38_000.0, atr=80.0, rsi=24.0)},
    )
    assert market_fingerprint(a, portfolio()) == market_fingerprint(b, portfolio(b.time))
    assert similar_key("ollama", "m", p, a, portfolio()) == similar_key(
        "ollama", "m", p, b, portfolio()
    )
    brain = cached(fake, cache, mode="similar")
    first = brain.decide(a, portfolio(), p)
    second = brain.decide(b, portfolio(b.time), p)
    assert second.cache_hit and len(fake.requests) == 1
    # re-anchored: the same ATR multiples around the new price and ATR
    (plan,) = second.plans
    assert plan.stop_loss == pytest.approx(38_000.0 - 1.5 * 80.0)
    assert plan.take_profit == pytest.approx(38_000.0 + 3.0 * 80.0)
    assert plan.trailing.atr == pytest.approx(80.0)
    assert first.plans[0].stop_loss == pytest.approx(46_210.5 - 1.5 * 35.2)


@pytest.mark.parametrize(
    "change",
    [
        {"contexts": {"BTC": context(rsi=50.0)}},  # RSI band
        {"kinds": (("BTC", "rsi_oversold", Direction.SHORT),)},  # direction
        {"kinds": (("BTC", "macd_cross_up", Direction.LONG),)},  # kind
        {"kinds": ()},  # no signal (a review)
        {"contexts": {"BTC": context(), "ETH": context("ETH", 3700.0, 4.0)}},  # instruments
    ],
)
def test_similar_mode_separates_different_states(change):
    p = persona()
    base = similar_key("ollama", "m", p, batch(), portfolio())
    assert similar_key("ollama", "m", p, batch(**change), portfolio()) != base


def test_similar_mode_does_not_reuse_answers_given_to_other_instructions(monkeypatch):
    import engine.brain.cache as cache_module
    import engine.brain.prompt as prompt

    p = persona()
    before = similar_key("ollama", "m", p, batch(), portfolio())
    assert similar_key("ollama", "m", persona(), batch(), portfolio()) == before
    monkeypatch.setattr(cache_module, "_FINGERPRINTS", {})
    monkeypatch.setattr(prompt, "_EXAMPLES", prompt._EXAMPLES[:-1])  # an edited prompt
    assert similar_key("ollama", "m", persona(), batch(), portfolio()) != before


def test_similar_mode_separates_trend_and_position_state():
    p = persona()
    up = context()
    down = dataclasses.replace(up, indicators={**up.indicators, "ema_fast": up.price * 1.002})
    assert similar_key("o", "m", p, batch(contexts={"BTC": up}), portfolio()) != similar_key(
        "o", "m", p, batch(contexts={"BTC": down}), portfolio()
    )
    flat = similar_key("o", "m", p, batch(), portfolio())
    winning = similar_key("o", "m", p, batch(), portfolio(positions=(long_position(pnl=5.0),)))
    losing = similar_key("o", "m", p, batch(), portfolio(positions=(long_position(pnl=-5.0),)))
    assert len({flat, winning, losing}) == 3


def _flat_batch(rsi: float, price: float, atr: float, time: int):
    ctx = context(price=price, atr=atr, rsi=rsi)
    ind = {**ctx.indicators, "ema_fast": price, "ema_slow": price}
    return batch(time=time, contexts={"BTC": dataclasses.replace(ctx, indicators=ind)})


@settings(max_examples=60, deadline=None)
@given(
    rsi=st.floats(0, 100),
    prices=st.tuples(st.floats(1e-5, 1e6), st.floats(1e-5, 1e6)),
    atrs=st.tuples(st.floats(1e-6, 1e4), st.floats(1e-6, 1e4)),
    times=st.tuples(st.integers(0, 2**62), st.integers(0, 2**62)),
)
def test_fingerprint_is_blind_to_prices_and_times(rsi, prices, atrs, times):
    a = _flat_batch(rsi, prices[0], atrs[0], times[0])
    b = _flat_batch(rsi, prices[1], atrs[1], times[1])
    fp = market_fingerprint(a, portfolio(times[0]))
    assert fp == market_fingerprint(b, portfolio(times[1]))
    assert fp["instruments"]["BTC"] == {
        "signals": ["rsi_oversold:long"],
        "rsi": rsi_band(rsi),
        "trend": "flat",
        "position": "flat",
    }


def test_rsi_bands_by_hand():
    assert [rsi_band(x) for x in (10, 20, 29.9, 30, 50, 60, 75, 90)] == [
        "<20",
        "20-30",
        "20-30",
        "30-45",
        "45-55",
        "55-70",
        "70-80",
        ">80",
    ]
    assert rsi_band(None) == "unknown" and rsi_band(float("nan")) == "unknown"


def test_corrupt_entry_is_a_miss_not_a_failure(fake, cache):
    brain = cached(fake, cache)
    key = brain.key(batch(), portfolio(), persona())
    cache.put(
        key,
        mode="exact",
        backend="ollama",
        model="m",
        persona="tester",
        answer='{"reasoning": 1}',
        tokens=0,
        latency_s=0.0,
    )
    decision = brain.decide(batch(), portfolio(), persona())
    assert not decision.cache_hit and decision.errors == ()
    assert decision.plans[0].action is Action.OPEN_LONG
    assert brain.decide(batch(), portfolio(), persona()).cache_hit  # replaced by the good one


def test_stats_and_clear(fake, cache):
    brain = cached(fake, cache)
    brain.decide(batch(), portfolio(), persona())
    brain.decide(batch(), portfolio(), persona())
    stats = cache.stats()
    assert stats["entries"] == 1 and stats["hits"] == 1
    assert stats["groups"] == [
        {
            "backend": "ollama",
            "model": brain.inner.identity(),
            "mode": "exact",
            "entries": 1,
            "hits": 1,
        }
    ]
    assert cache.clear() == 1
    assert cache.stats()["entries"] == 0


@pytest.mark.parametrize("behaviour", ["malformed", "out_of_range", "length"])
def test_a_bad_answer_of_the_model_is_remembered_as_a_hold(fake, cache, behaviour):
    fake.queue(behaviour, behaviour)
    cold = cached(fake, cache).decide(batch(), portfolio(), persona())
    assert cold.errors and not cold.cache_hit
    calls = len(fake.requests)
    warm = cached(fake, cache).decide(batch(), portfolio(), persona())
    assert len(fake.requests) == calls  # the same seed would give the same bad answer
    assert warm.cache_hit and warm.errors == cold.errors
    assert warm.plans == cold.plans and all(p.action is Action.HOLD for p in warm.plans)
    assert warm.reasoning == cold.reasoning


@pytest.mark.parametrize("behaviour", ["http500", "truncated", "midstream_error", "hang"])
def test_connection_faults_are_never_remembered(fake, cache, behaviour):
    fake.queue(*[behaviour] * (1 if behaviour == "hang" else 2))  # a timeout is not retried
    # (a first call of twice the timeout that gets no answer would open the breaker)
    brain = CachingBrain(OllamaBrain(host=fake.url, timeout=0.5, first_call_timeout=0.5), cache)
    assert brain.decide(batch(), portfolio(), persona()).errors
    assert cache.stats()["entries"] == 0
    again = brain.decide(batch(), portfolio(), persona())
    assert again.errors == () and not again.cache_hit


def test_similar_mode_does_not_remember_holds(fake, cache):
    fake.queue("malformed", "malformed")
    brain = cached(fake, cache, mode="similar")
    assert brain.decide(batch(), portfolio(), persona()).errors
    assert cache.stats()["entries"] == 0


def _open_cache_after(path: str, barrier, results) -> None:
    barrier.wait()  # every process opens the new cache at the same moment
    try:
        DecisionCache(path)
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(repr(exc))


def test_processes_opening_a_new_cache_at_once_all_succeed(tmp_path) -> None:
    # an experiment's workers open one shared cache together; SQLite answers the loser
    # of the switch to WAL "database is locked" without waiting (8% of such opens failed)
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for round_ in range(12):
        path = str(tmp_path / f"cache-{round_}.sqlite")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_open_cache_after, args=(path, barrier, results)) for _ in range(4)
        ]
        for p in procs:
            p.start()
        outcomes += [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join()
    assert outcomes == ["ok"] * 48, [o for o in outcomes if o != "ok"]
