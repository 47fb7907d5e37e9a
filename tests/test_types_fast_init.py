"""engine.types._fast_init: the hot records' generated ``__init__`` builds the same objects
as dataclasses' own, keeps them frozen and round-trippable, and refuses what it can't copy."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import types as T
from engine.types import _fast_init

HOT = [
    T.InstrumentContext,
    T.TrailingSpec,
    T.TradePlan,
    T.Decision,
    T.Order,
    T.Fill,
    T.Position,
    T.Trade,
    T.PortfolioState,
]

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.tuples(st.integers(), st.text(max_size=2)),
    st.dictionaries(st.text(max_size=2), st.floats(allow_nan=False), max_size=2),
)


def plain_copy(cls: type) -> type:
    """The same fields through dataclasses' own ``__init__`` (the oracle)."""
    spec = [
        (
            f.name,
            f.type,
            dataclasses.field(
                default=f.default,
                default_factory=f.default_factory,
                init=f.init,
                kw_only=f.kw_only,
            ),
        )
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)


PLAIN = {cls: plain_copy(cls) for cls in HOT}


def by_setattr(cls: type, values: dict[str, Any]) -> Any:
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def field_values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))


def required(cls: type) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_hot_classes_carry_the_fast_init(cls: type) -> None:
    assert cls.__init__.__code__.co_varnames[0] == "_fi_self"
    assert cls.__init__.__qualname__ == f"{cls.__name__}.__init__"
    assert str(inspect.signature(cls)) == str(inspect.signature(PLAIN[cls]))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_every_field_given_equals_setattr_and_dataclasses(cls: type, data: st.DataObject) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    values = {n: data.draw(VALUES, label=n) for n in names}
    reference = by_setattr(cls, values)
    positional = cls(*values.values())
    keyword = cls(**values)
    assert positional == reference and keyword == reference
    if _hashable(values):
        assert hash(positional) == hash(reference)
    assert repr(keyword) == repr(reference)
    for name in names:  # the very objects passed, not copies
        assert getattr(positional, name) is values[name]
        assert getattr(keyword, name) is values[name]
    assert field_values(keyword) == field_values(PLAIN[cls](**values))


def _hashable(values: dict[str, Any]) -> bool:
    try:
        hash(tuple(values.values()))
    except TypeError:
        return False
    return True


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_omitted_fields_take_the_dataclass_defaults(cls: type, data: st.DataObject) -> None:
    optional = [f.name for f in dataclasses.fields(cls) if f.name not in required(cls)]
    given_names = set(required(cls)) | set(
        data.draw(st.lists(st.sampled_from(optional), unique=True) if optional else st.just([]))
    )
    values = {
        f.name: data.draw(VALUES, label=f.name)
        for f in dataclasses.fields(cls)
        if f.name in given_names
    }
    got = cls(**values)
    want = PLAIN[cls](**values)
    assert field_values(got) == field_values(want)
    assert [type(v) for v in field_values(got)] == [type(v) for v in field_values(want)]


def test_default_factory_gives_a_fresh_object_per_instance() -> None:
    a = T.InstrumentContext("BTC", 1.0, 2.0, 3.0, 4)
    b = T.InstrumentContext("BTC", 1.0, 2.0, 3.0, 4)
    assert a.indicators == {} and b.indicators == {}
    assert a.indicators is not b.indicators
    mine = {"rsi": 50.0}
    assert T.InstrumentContext("BTC", 1.0, 2.0, 3.0, 4, mine).indicators is mine
    assert T.InstrumentContext("BTC", 1.0, 2.0, 3.0, 4, indicators=mine).indicators is mine


def test_defaults_are_the_declared_objects() -> None:
    plan = T.TradePlan("BTC", T.Action.HOLD)
    assert plan.size_mode is T.SizeMode.RISK
    assert (plan.entry_price, plan.size, plan.rationale) == (None, 0.0, "")
    state = T.PortfolioState(1, 2, 3.0, 4.0, ())
    assert state.pending_orders == () and state.last_loss_step is None


def _sample(cls: type) -> Any:
    return cls(*[f"v{i}" for i in range(len(required(cls)))])


@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_still_frozen(cls: type) -> None:
    obj = _sample(cls)
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, f.name, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(obj, f.name)


@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_pickle_copy_deepcopy_replace_round_trip(cls: type) -> None:
    obj = _sample(cls)
    for twin in (
        pickle.loads(pickle.dumps(obj)),
        copy.copy(obj),
        copy.deepcopy(obj),
        dataclasses.replace(obj),
    ):
        assert type(twin) is cls and twin == obj and field_values(twin) == field_values(obj)
    first = dataclasses.fields(cls)[0].name
    changed = dataclasses.replace(obj, **{first: "other"})
    assert getattr(changed, first) == "other"
    assert field_values(changed)[1:] == field_values(obj)[1:]


def _error(case: Any, cls: type) -> str:
    with pytest.raises(TypeError) as info:
        case(cls)
    return str(info.value)


@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_bad_calls_raise_typeerror_like_dataclasses(cls: type) -> None:
    plain = PLAIN[cls]
    n_all = len(dataclasses.fields(cls))
    n_req = len(required(cls))
    args = [f"v{i}" for i in range(n_req)]
    cases = [
        lambda c: c(*range(n_all + 1)),  # too many positional
        lambda c: c(*args[:-1]),  # one required missing
        lambda c: c(*args, no_such_field=1),  # unknown keyword
        lambda c: c(*args, **{dataclasses.fields(cls)[0].name: 1}),  # given twice
    ]
    for case in cases:
        assert _error(case, cls) == _error(case, plain)


# --- the decorator on classes made here ---------------------------------------------


def _mixed() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class _Mixed:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)
        c: str = "c"
        hidden: tuple[int, ...] = dataclasses.field(default=(1,), init=False)
        made: dict[str, int] = dataclasses.field(default_factory=dict, init=False)
        unset: int = dataclasses.field(init=False)
        k: int = dataclasses.field(default=7, kw_only=True)
        must: str = dataclasses.field(kw_only=True)
        tag: ClassVar[str] = "class level"

    return _Mixed


_Mixed = _fast_init(_mixed())
_MIXED_PLAIN = _mixed()


def _slots_state(obj: Any) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in ("a", "b", "c", "hidden", "made", "k", "must")}


@settings(max_examples=60, deadline=None)
@given(
    a=st.integers(),
    b=st.none() | st.lists(st.integers(), max_size=2),
    c=st.none() | st.text(max_size=3),
    k=st.none() | st.integers(),
    must=st.text(max_size=3),
)
def test_kw_only_init_false_and_classvar_match_dataclasses(
    a: int, b: list[int] | None, c: str | None, k: int | None, must: str
) -> None:
    kwargs: dict[str, Any] = {"must": must}
    args: list[Any] = [a]
    if b is not None:
        args.append(b)
        if c is not None:
            args.append(c)
    if k is not None:
        kwargs["k"] = k
    got, want = _Mixed(*args, **kwargs), _MIXED_PLAIN(*args, **kwargs)
    assert _slots_state(got) == _slots_state(want)
    for obj in (got, want):  # init=False without a default stays unset, as in dataclasses
        with pytest.raises(AttributeError):
            _ = obj.unset
    assert got.made is not _Mixed(1, must="").made
    assert str(inspect.signature(_Mixed)) == str(inspect.signature(_MIXED_PLAIN))
    with pytest.raises(TypeError):
        _Mixed(a, [], "c", 7, "must")  # kw-only fields cannot be given by position


def test_inherited_slots_fields() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Base:
        x: int

    @_fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Child(Base):
        y: int = 2

    assert (Child(1).x, Child(1).y, Child(1, 3).y) == (1, 2, 3)
    assert Child(x=1) == Child(1, 2)


def test_refuses_what_it_cannot_reproduce() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        y: dataclasses.InitVar[int]

    @dataclasses.dataclass(frozen=True, slots=True)
    class Clash:
        _fi_self: int

    @dataclasses.dataclass(frozen=True, slots=True, init=False)
    class OwnInit:
        x: int

        def __init__(self) -> None:
            pass

    class NotADataclass:
        pass

    for cls, why in [
        (NoSlots, "no slots"),
        (PostInit, "__post_init__"),
        (WithInitVar, "signature"),
        (Clash, "clashes"),
        (OwnInit, "generated __init__"),
        (NotADataclass, "generated __init__"),
    ]:
        with pytest.raises(TypeError, match=why):
            _fast_init(cls)
