"""The event heap (engine/eventq.py): it pops in the order heapq pops (time, kind, serial,
payload) tuples, ties on time broken by kind, then by serial."""
from __future__ import annotations

import heapq
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.eventq import KIND_LIMIT, SERIAL_MASK, EventQueue


def drain(q: EventQueue) -> list[tuple[float, int, int, int]]:
    return [q.pop() for _ in range(len(q))]


def test_equal_times_pop_by_kind_then_serial() -> None:
    q = EventQueue()
    for t, kind, serial, payload in [(5.0, 3, 1, 10), (5.0, 0, 9, 11), (5.0, 0, 4, 12),
                                     (2.0, 3, 7, 13), (5.0, 1, 2, 14), (9.0, 0, 0, 15)]:
        q.push(t, kind, serial, payload)
    assert len(q) == 6 and q.peek_time() == 2.0
    assert drain(q) == [(2.0, 3, 7, 13), (5.0, 0, 4, 12), (5.0, 0, 9, 11), (5.0, 1, 2, 14),
                        (5.0, 3, 1, 10), (9.0, 0, 0, 15)]
    assert len(q) == 0 and q.peek_time() == math.inf


def test_kind_outranks_the_largest_serial() -> None:
    # kind and serial share one integer: the kind bits must dominate any serial
    q = EventQueue()
    q.push(1.0, 1, 0, 0)
    q.push(1.0, 0, SERIAL_MASK, 1)
    q.push(1.0, KIND_LIMIT - 1, 0, 2)
    assert [e[3] for e in drain(q)] == [1, 0, 2]


def test_empty_pop_and_out_of_range_keys_raise() -> None:
    q = EventQueue()
    with pytest.raises(IndexError):
        q.pop()
    for kind, serial in [(-1, 0), (KIND_LIMIT, 0), (0, -1), (0, SERIAL_MASK + 1)]:
        with pytest.raises(ValueError):
            q.push(0.0, kind, serial, 0)
    assert len(q) == 0


TIMES = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.5, math.inf]),
                  st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
# ("push", time, kind, serial) or ("pop",); serials are made unique below, as the engine's are
OPS = st.lists(st.one_of(st.tuples(st.just("push"), TIMES, st.integers(0, 3),
                                   st.integers(0, 50)),
                         st.tuples(st.just("pop"))), max_size=300)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_interleaved_push_pop_matches_heapq(ops: list[tuple]) -> None:
    q = EventQueue()
    ref: list[tuple[float, int, int, int]] = []
    for k, op in enumerate(ops):
        if op[0] == "push":
            _, t, kind, s = op
            serial = s * 1000 + k  # unique, and not in push order
            q.push(t, kind, serial, k)
            heapq.heappush(ref, (t, kind, serial, k))
        elif ref:
            assert q.pop() == heapq.heappop(ref)
        else:
            with pytest.raises(IndexError):
                q.pop()
        assert len(q) == len(ref)
        assert q.peek_time() == (ref[0][0] if ref else math.inf)
    assert drain(q) == [heapq.heappop(ref) for _ in range(len(ref))]
