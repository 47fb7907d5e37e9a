"""``gc_paused``: the collector is off inside and back on after, and what was made inside
leaves in the oldest generation without being scanned as young objects."""

from __future__ import annotations

import gc

from engine.runtime import gc_paused


def _generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation=generation)):
            return generation
    return None


def test_the_records_made_while_paused_leave_in_the_oldest_generation() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        made = [[i] for i in range(1000)]  # tracked containers
        assert _generation_of(made) == 0
    assert gc.isenabled()
    assert _generation_of(made) == 2 and _generation_of(made[-1]) == 2
    assert gc.get_freeze_count() == 0  # moved, not left frozen


def test_nested_pauses_leave_the_collector_off_until_the_outer_one_ends() -> None:
    with gc_paused():
        with gc_paused():
            inner = [[1]]
        assert not gc.isenabled() and _generation_of(inner) == 0
    assert gc.isenabled() and _generation_of(inner) == 2


def test_a_cycle_made_while_paused_is_still_collected() -> None:
    import weakref

    class Node:
        pass

    with gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    assert gone() is not None  # only the collector frees a cycle
    gc.collect()
    assert gone() is None
