"""Schema-guided decoding (engine/brain/guided.py) over a scripted stand-in for llama.cpp:
fixed text is never sampled, the reasoning is, each choice is one the schema offers."""

from __future__ import annotations

import ctypes
import json

import pytest

from engine.brain.guided import guided_answer
from engine.brain.schema import parse_answer

VOCAB = 300


class FakeLlama:
    """Characters are tokens (code + 1; 0 is BOS). ``prefer`` scores next characters;
    ``say`` is what free sampling writes."""

    def __init__(self, prefer: dict[str, float], say: str, n_ctx: int = 4096) -> None:
        self.prefer = prefer
        self.say = say
        self.ids: list[int] = []
        self.n_tokens = 0
        self.evaluated = 0
        self._n_ctx = n_ctx
        self._buf = (ctypes.c_float * VOCAB)()
        self._ctx = self

    def tokenize(self, data: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return ([0] if add_bos else []) + [ord(c) + 1 for c in data.decode()]

    @property
    def _input_ids(self) -> list[int]:
        return self.ids[: self.n_tokens]

    def n_vocab(self) -> int:
        return VOCAB

    def n_ctx(self) -> int:
        return self._n_ctx

    def eval(self, tokens: list[int]) -> None:
        self.evaluated += len(tokens)
        self.ids = self.ids[: self.n_tokens] + list(tokens)
        self.n_tokens = len(self.ids)
        for i in range(VOCAB):
            self._buf[i] = self.prefer.get(chr(i - 1), 0.0) if i else -1.0

    def get_logits(self):
        return ctypes.cast(self._buf, ctypes.POINTER(ctypes.c_float))

    def create_completion(self, tokens, max_tokens, stop, stream, **kw):
        assert stream and max_tokens > 0
        self.ids, self.n_tokens = list(tokens), len(tokens)
        text = self.say
        cut = min((text.index(s) for s in stop if s in text), default=len(text))
        text = text[:cut]
        finish = "stop" if cut < len(self.say) else "length"
        if len(text) > max_tokens:
            text, finish = text[:max_tokens], "length"
        for ch in text:
            yield {"choices": [{"text": ch, "finish_reason": None}]}
        yield {"choices": [{"text": "", "finish_reason": finish}]}


PLAN = [("BTC", ("open_long", "open_short", "hold"), ()), ("ETH", ("hold", "close"), ())]
FACTS = (
    "RSI 71, overbought above 70 (bearish)",
    "EMA 9 above EMA 21 by 0.4 ATR (bullish)",
    "signal ema_cross_up, 2 candles ago, strength 0.80: long",
    "signal rsi_overbought, this candle, strength 0.55: short",
)


def test_the_answer_is_the_schema_json_with_the_preferred_choices():
    llm = FakeLlama(
        {"o": 2, "h": 1, "s": 3, "l": 1, "m": 4, "2": 2, "4": 3, ",": 1, "c": 5},
        "RSI 71 is high. More",
    )
    streamed: list[str] = []
    result = guided_answer(
        llm, "PROMPT", PLAN, temperature=0.2, seed=1, repeat_penalty=1.0, on_text=streamed.append
    )
    data = json.loads(result.text)
    assert data == {
        "BTC": {
            "why": "RSI 71 is high",
            "do": "open_short",
            "size": "medium",
            "stop": 2.0,
            "target": 4.0,
        },
        "ETH": {"why": "RSI 71 is high", "do": "close", "size": "medium"},
    }
    answer = parse_answer(result.text)
    assert answer.plans["BTC"].do == "open_short" and answer.plans["ETH"].do == "close"
    assert result.finish == "stop" and result.prompt_tokens == len("PROMPT") + 1
    # sampled: 14 characters of reasoning twice; chosen: "open_" is one path until l/s,
    # so 2 steps for the action, 2 for the size (small/medium), stop and target choices
    assert result.generated < 2 * 14 + 20
    assert streamed[-1] == result.text[:-1] and any('"why":"RSI' in s for s in streamed)


def test_the_reason_is_the_fact_the_model_prefers_and_only_telling_them_apart_is_generated():
    # "s" leads to the two signals, then "r" (rsi_overbought) beats "e" (ema_cross_up)
    llm = FakeLlama({"s": 3, "E": 2, "R": 1, "r": 2, "e": 1, "h": 4, "m": 1}, "never sampled")
    streamed: list[str] = []
    plan = [("BTC", ("open_long", "open_short", "hold"), FACTS)]
    result = guided_answer(
        llm, "P", plan, temperature=0, seed=1, repeat_penalty=1, on_text=streamed.append
    )
    assert json.loads(result.text) == {"BTC": {"why": FACTS[3], "do": "hold", "size": "small"}}
    # the fact: "s" (1 step), then "ignal " is shared by both options left (fixed text),
    # "r" tells them apart (1); the action: "h" (1); the size: "s" (1)
    assert result.generated == 4
    assert streamed[0] == '{"BTC":{"why":"' + FACTS[3]  # the reason streams before the plan
    assert result.finish == "stop"


def test_the_prefix_is_reused_from_the_previous_call():
    llm = FakeLlama({"h": 5}, "calm")
    first = guided_answer(
        llm, "SAME HEAD", PLAN[:1], temperature=0, seed=1, repeat_penalty=1, on_text=lambda _: None
    )
    second = guided_answer(
        llm, "SAME HEAD", PLAN[:1], temperature=0, seed=1, repeat_penalty=1, on_text=lambda _: None
    )
    assert first.reused_tokens == 0 and second.reused_tokens == second.prompt_tokens
    assert json.loads(second.text)["BTC"]["do"] == "hold"


def test_budget_and_context_window():
    llm = FakeLlama({}, "a long reasoning that goes on and on")
    cut = guided_answer(
        llm,
        "P",
        PLAN,
        temperature=0,
        seed=1,
        repeat_penalty=1,
        max_tokens=5,
        on_text=lambda _: None,
    )
    assert cut.finish == "length" and cut.generated == 5
    with pytest.raises(ValueError, match="context window"):
        guided_answer(
            FakeLlama({}, "x", n_ctx=60),
            "P" * 40,
            PLAN,
            temperature=0,
            seed=1,
            repeat_penalty=1,
            on_text=lambda _: None,
        )
