"""The vectorised batches' lazily built context mapping: the same contexts, key order,
equality, repr, copies and pickles as the step aggregator's plain dict."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle

import pytest

from engine.data.stream import MergedStream, merge
from engine.signals import batch_signals, detect_series, detector
from engine.signals.contexts import LazyContexts
from engine.types import InstrumentContext
from tests.test_signals_aggregator import gappy_stream, step_batches
from tests.test_signals_detector import DENSE, MINUTE, random_walk

CONFIG = dataclasses.replace(DENSE, window=3, correlation_lookback=20)


def late_stream() -> MergedStream:
    """Three gappy instruments and a fourth ("I3") whose candles start 100 minutes in."""
    early = gappy_stream(7, 200, 3)
    late = random_walk(99, 100, 2.0)
    late = dataclasses.replace(late, instrument="I3", open_time=late.open_time + 100 * MINUTE)
    return merge([*early.series.values(), late])


@pytest.fixture(scope="module")
def pairs() -> list[tuple]:
    """(vectorised batch, step-aggregator batch) over a gappy four-instrument stream."""
    stream = late_stream()
    per = {name: detect_series(stream.series[name], CONFIG) for name in stream.instruments}
    fast = batch_signals(stream, per, CONFIG)
    slow = step_batches(stream, per, CONFIG)
    assert len(fast) == len(slow) > 20
    return list(zip(fast, slow, strict=True))


def warm(pairs: list[tuple]) -> list[tuple]:
    """Pairs whose contexts have no NaN (NaN != NaN would make equal contexts differ)."""
    out = [
        (a, b)
        for a, b in pairs
        if len(b.context) == 4 and all(math.isfinite(c.atr) for c in b.context.values())
    ]
    assert len(out) > 10
    return out


def test_vectorised_contexts_are_lazy_mappings(pairs: list[tuple]) -> None:
    assert all(isinstance(a.context, LazyContexts) for a, _ in pairs)
    assert all(type(b.context) is dict for _, b in pairs)


def test_equal_to_the_step_aggregators_dict_both_ways(pairs: list[tuple]) -> None:
    for a, b in warm(pairs):
        assert a.context == b.context
        assert b.context == a.context
        assert (a.context != b.context) is False
        assert a == b  # the whole batch, field for field


def test_not_equal_to_a_different_dict(pairs: list[tuple]) -> None:
    a, b = warm(pairs)[-1]
    fewer = dict(list(b.context.items())[1:])
    assert a.context != fewer
    assert a.context != {**b.context, "ZZZ": next(iter(b.context.values()))}
    assert a.context != list(b.context)


def test_keys_in_sorted_order_with_len_and_membership(pairs: list[tuple]) -> None:
    seen_partial = False
    for a, b in pairs:
        keys = list(b.context)
        assert keys == sorted(keys)
        assert list(a.context) == keys
        assert list(a.context.keys()) == keys
        assert a.context.keys() == b.context.keys()
        assert len(a.context) == len(keys)
        for name in ("I0", "I1", "I2", "I3"):
            assert (name in a.context) == (name in b.context)
        assert "nope" not in a.context
        seen_partial |= len(keys) < 4
    assert seen_partial  # early batches lack instruments without a candle yet


def test_values_get_and_missing_keys(pairs: list[tuple]) -> None:
    for a, b in pairs:
        assert [(n, repr(c)) for n, c in a.context.items()] == [
            (n, repr(c)) for n, c in b.context.items()
        ]
        for name in b.context:
            assert repr(a.context.get(name)) == repr(b.context[name])
        assert a.context.get("nope") is None
        assert a.context.get("nope", 5) == 5
        with pytest.raises(KeyError):
            a.context["nope"]
    a, b = pairs[0]
    missing = {"I0", "I1", "I2", "I3"} - set(b.context)
    assert "I3" in missing
    for name in missing:  # an instrument without a candle yet is absent, as in the dict
        assert a.context.get(name) is None
        with pytest.raises(KeyError):
            a.context[name]


def test_repr_is_the_dicts(pairs: list[tuple]) -> None:
    for a, b in pairs:
        assert repr(a.context) == repr(b.context)
        assert repr(a) == repr(b)


def test_read_only(pairs: list[tuple]) -> None:
    a, _ = pairs[-1]
    ctx = a.context["I0"]
    with pytest.raises(TypeError):
        a.context["I0"] = ctx  # type: ignore[index]
    with pytest.raises(TypeError):
        del a.context["I0"]  # type: ignore[attr-defined]
    for method in ("pop", "update", "clear", "setdefault", "popitem"):
        assert not hasattr(a.context, method)
    with pytest.raises(TypeError):
        hash(a.context)  # unhashable, like a dict
    assert a.context["I0"] is ctx


def test_copies_and_pickles_are_the_plain_dict(pairs: list[tuple]) -> None:
    for a, b in warm(pairs)[-3:]:
        for other in (
            copy.copy(a.context),
            copy.deepcopy(a.context),
            pickle.loads(pickle.dumps(a.context)),
        ):
            assert type(other) is dict
            assert other == b.context
            assert list(other) == list(b.context)
        again = pickle.loads(pickle.dumps(a))
        assert again == b and type(again.context) is dict


def test_each_context_is_built_once_and_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = gappy_stream(11, 120, 3)
    per = {name: detect_series(stream.series[name], CONFIG) for name in stream.instruments}
    batches = batch_signals(stream, per, CONFIG)
    calls: list[tuple[str, float]] = []

    built = detector.SeriesSignals.context

    def counting(self: detector.SeriesSignals, index: int, lookback: int) -> InstrumentContext:
        ctx = built(self, index, lookback)
        calls.append((self.instrument, ctx.price))
        return ctx

    expected = repr(per["I1"].context(len(per["I1"]) - 1, CONFIG.context_lookback))
    monkeypatch.setattr(detector.SeriesSignals, "context", counting)
    batch = batches[-1]
    assert len(batch.context) == 3 and "I1" in batch.context and not calls
    first = batch.context["I1"]
    assert batch.context["I1"] is first
    assert batch.context.get("I1") is first
    assert calls == [("I1", float(per["I1"].close[-1]))]  # at its last candle, read once
    assert repr(first) == expected
    dict(batch.context)
    assert sorted(n for n, _ in calls) == ["I0", "I1", "I2"]
