"""Schema-guided decoding for llama.cpp: the answer's JSON, at free-generation speed.

A JSON-schema grammar makes llama.cpp check every one of the vocabulary's tokens (Gemma
has 262k) at every step, which on this kind of machine costs about three times the
time of a free token. The answer's schema (see ``engine.brain.schema``) is simple
enough to be walked here instead:

- its fixed text (braces, keys, quotes) is appended as prompt tokens: evaluated in one
  batch, never sampled;
- ``why``, when the schema offers its instrument's facts, is chosen like the other
  choices below (the model picks the fact it cites; only the tokens that tell the
  facts apart are the model's, the rest is fixed text); else it is sampled freely up
  to its closing quote (a quote or a line break ends it);
- each choice (action, size, stop, target) is read from the model's next-token logits,
  restricted to the tokens that continue one of the allowed values (greedy), so the
  value is always one the schema offers.

The output is exactly the JSON the schema describes (stop and target only for an
entry), as a grammar would constrain it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.brain.schema import SIZE_TIERS, STOP_CHOICES, TARGET_CHOICES, is_entry

WHY_TOKENS = 32  # at most this many sampled tokens of reasoning per instrument


@dataclass
class GuidedResult:
    text: str
    generated: int  # tokens sampled or chosen by the model (not the fixed text)
    prompt_tokens: int
    reused_tokens: int
    finish: str  # "stop", or "length" when a reasoning hit WHY_TOKENS


class GuidedDecoder:
    """Walks one answer over a loaded ``llama_cpp.Llama`` (the caller holds its lock)."""

    def __init__(self, llm: Any, *, temperature: float, seed: int | None, repeat_penalty: float):
        self.llm = llm
        self.temperature = temperature
        self.seed = seed
        self.repeat_penalty = repeat_penalty
        self.tokens: list[int] = []
        self.generated = 0

    # -- token bookkeeping ------------------------------------------------------------
    def _tok(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def _common(self, tokens: Sequence[int]) -> int:
        llm = self.llm
        n = 0
        for a, b in zip(llm._input_ids[: llm.n_tokens], tokens, strict=False):
            if a != b:
                break
            n += 1
        return n

    def _logits(self) -> np.ndarray:
        """Evaluate what the context lacks of ``self.tokens``; the next-token logits."""
        llm = self.llm
        common = min(self._common(self.tokens), len(self.tokens) - 1)
        llm.n_tokens = common
        llm.eval(self.tokens[common:])
        raw = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        return raw.copy()

    # -- the parts of an answer --------------------------------------------------------
    def fixed(self, text: str) -> None:
        self.tokens += self._tok(text)

    def free(
        self, max_tokens: int, on_piece: Callable[[str], None], *, again: bool = False
    ) -> tuple[str, bool]:
        """Sample text up to a quote, a line break or the end of the sentence; (text, cut
        off by max_tokens). ``again``: a warmer second try after an empty one."""
        parts: list[str] = []
        n = 0
        stream = self.llm.create_completion(
            self.tokens,
            max_tokens=max_tokens,
            temperature=max(0.7, self.temperature) if again else self.temperature,
            seed=None if self.seed is None else self.seed + int(again),
            repeat_penalty=self.repeat_penalty,
            stop=['"', "\n", "\\", ". "],  # one sentence: it ends at its full stop
            stream=True,
        )
        finish = None
        for chunk in stream:
            choice = chunk["choices"][0]
            piece = choice.get("text") or ""
            if piece:
                n += 1
                parts.append(piece)
                on_piece(piece)
            finish = choice.get("finish_reason") or finish
        self.generated += n
        text = "".join(parts)
        self.fixed(text)
        return text, finish == "length"

    def choose(self, options: Sequence[str], end: str) -> str:
        """The option (followed by ``end``) the model's logits prefer, token by token."""
        if len(options) == 1:
            self.fixed(options[0])
            return options[0]
        base = len(self.tokens)
        paths = [self._tok(o + end) for o in options]
        live = list(range(len(options)))
        depth = 0
        while len(live) > 1:
            allowed = {paths[i][depth] for i in live if len(paths[i]) > depth}
            if len(allowed) == 1:  # every option left goes on alike: fixed, not the model's
                (best,) = allowed
            else:
                logits = self._logits()
                best = max(allowed, key=lambda t: logits[t])
                self.generated += 1
            self.tokens.append(best)
            live = [i for i in live if len(paths[i]) > depth and paths[i][depth] == best]
            depth += 1
        (pick,) = live
        del self.tokens[base:]
        self.fixed(options[pick])
        return options[pick]


def _number(value: float) -> str:
    return f"{value:g}"


def _rest(
    dec: GuidedDecoder, why: str, actions: Sequence[str], out: dict[str, Any], name: str
) -> None:
    """After the reason: the action, the size and an entry's stop and target."""
    item: dict[str, Any] = {"why": why}
    dec.fixed('","do":"')
    item["do"] = dec.choose(list(actions), '"')
    dec.fixed('","size":"')
    item["size"] = dec.choose(list(SIZE_TIERS), '"')
    dec.fixed('"')
    if is_entry(item["do"]):
        dec.fixed(',"stop":')
        item["stop"] = float(dec.choose([_number(v) for v in STOP_CHOICES], ","))
        dec.fixed(',"target":')
        item["target"] = float(dec.choose([_number(v) for v in TARGET_CHOICES], "}"))
    dec.fixed("}")
    out[name] = item


def guided_answer(
    llm: Any,
    head: str,
    plan: Sequence[tuple[str, Sequence[str], Sequence[str]]],
    *,
    temperature: float,
    seed: int | None,
    repeat_penalty: float,
    on_text: Callable[[str], None],
    max_tokens: int = 400,
) -> GuidedResult:
    """Decode ``{"NAME": {"why": ..., "do": ..., "size": ..., "stop": ..., "target": ...}}``
    for each (instrument, allowed actions, facts to cite) of ``plan`` after the formatted
    prompt ``head`` (no facts: the reason is free text)."""
    dec = GuidedDecoder(llm, temperature=temperature, seed=seed, repeat_penalty=repeat_penalty)
    dec.tokens = llm.tokenize(head.encode("utf-8"), add_bos=True, special=True)
    prompt_tokens = len(dec.tokens)
    room = llm.n_ctx() - prompt_tokens
    if room < 64 * len(plan):
        raise ValueError(
            f"{prompt_tokens} prompt tokens leave {room} of the context window for the answer"
        )
    reused = dec._common(dec.tokens)
    out: dict[str, dict[str, Any]] = {}
    done = ""  # the JSON of the finished items, without its closing brace

    for i, (name, actions, facts) in enumerate(plan):
        opening = ("{" if i == 0 else ",") + json.dumps(name) + ':{"why":"'
        dec.fixed(opening)
        if facts:
            if max_tokens - dec.generated <= 0:
                return GuidedResult(done + opening, max_tokens, prompt_tokens, reused, "length")
            quoted = [json.dumps(f)[1:-1] for f in facts]  # as they stand inside the JSON
            pick = dec.choose(quoted, '"')
            why = facts[quoted.index(pick)]
            on_text(done + opening + pick)
            _rest(dec, why, actions, out, name)
            done = json.dumps(out, separators=(",", ":"))[:-1]
            on_text(done)
            continue
        pieces: list[str] = []

        def emit(piece: str, head: str = done + opening, pieces: list[str] = pieces) -> None:
            pieces.append(piece)
            on_text(head + "".join(pieces))  # no quote or backslash: stop strings

        budget = max_tokens - dec.generated
        if budget <= 0:  # (max_tokens 0 would mean "no limit" to llama.cpp)
            return GuidedResult(done + opening, max_tokens, prompt_tokens, reused, "length")
        why, cut = dec.free(min(WHY_TOKENS, budget), emit)
        if not why.strip() and not cut and budget > WHY_TOKENS // 2:
            why, cut = dec.free(min(WHY_TOKENS, max_tokens - dec.generated), emit, again=True)
        if cut and budget <= WHY_TOKENS:
            return GuidedResult(done + opening + why, max_tokens, prompt_tokens, reused, "length")
        _rest(dec, why.strip(), actions, out, name)
        done = json.dumps(out, separators=(",", ":"))[:-1]
        on_text(done)
    text = json.dumps(out, separators=(",", ":"))
    finish = "length" if dec.generated > max_tokens else "stop"
    return GuidedResult(text, dec.generated, prompt_tokens, reused, finish)
