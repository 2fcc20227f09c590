"""Synthetic workloads: arrivals, sessions, unique prompts, validation."""
from __future__ import annotations

import numpy as np
import pytest

from dynosim.inputs.errors import InputError
from dynosim.inputs.synthetic import make_synthetic


def test_fixed_interval_single_turn():
    wl = make_synthetic(1000, 64, 4, arrival_interval_ms=250.0)
    assert len(wl) == 4
    assert wl.arrival_ms == [0.0, 250.0, 500.0, 750.0]
    assert wl.delay_ms == [0.0] * 4
    assert wl.input_length == [1000] * 4 and wl.output_length == [64] * 4
    assert wl.session == [-1] * 4 and wl.turn == [0] * 4 and wl.next_turn == [-1] * 4
    assert wl.session_names == []


def test_unique_prompts_and_empty_hashes():
    wl = make_synthetic(100, 5, 3, arrival_interval_ms=0)
    assert wl.unique_prompts is True
    assert wl.hash_ids == []
    assert wl.hash_start == [0, 0, 0, 0]
    assert wl.arrival_ms == [0.0, 0.0, 0.0]  # interval 0 is allowed


def test_poisson_arrivals_match_numpy_exponential_gaps():
    wl = make_synthetic(100, 5, 6, request_rate=10.0, seed=42)
    gaps = np.random.default_rng(42).exponential(100.0, 5)
    expected = [0.0, *np.cumsum(gaps).tolist()]
    assert wl.arrival_ms == expected
    assert wl.arrival_ms[0] == 0.0
    assert all(b >= a for a, b in zip(wl.arrival_ms, wl.arrival_ms[1:]))
    assert all(type(x) is float for x in wl.arrival_ms)


def test_poisson_is_deterministic_by_seed():
    a = make_synthetic(10, 1, 50, request_rate=5.0, seed=7).arrival_ms
    b = make_synthetic(10, 1, 50, request_rate=5.0, seed=7).arrival_ms
    c = make_synthetic(10, 1, 50, request_rate=5.0, seed=8).arrival_ms
    assert a == b and a != c


def test_poisson_mean_gap():
    arr = make_synthetic(10, 1, 20001, request_rate=20.0).arrival_ms
    mean_gap = arr[-1] / 20000
    assert mean_gap == pytest.approx(50.0, rel=0.03)


def test_multi_turn_sessions():
    wl = make_synthetic(200, 10, 3, arrival_interval_ms=100.0, turns_per_session=2,
                        inter_turn_delay_ms=7.5)
    assert len(wl) == 6
    assert wl.session_names == ["session_0", "session_1", "session_2"]
    assert wl.session == [0, 0, 1, 1, 2, 2]
    assert wl.turn == [0, 1, 0, 1, 0, 1]
    assert wl.next_turn == [1, -1, 3, -1, 5, -1]
    assert wl.arrival_ms == [0.0, 0.0, 100.0, 0.0, 200.0, 0.0]
    assert wl.delay_ms == [0.0, 7.5, 0.0, 7.5, 0.0, 7.5]
    assert wl.first_turns() == [0, 2, 4]
    assert wl.hash_start == [0] * 7


def test_closed_loop_needs_no_arrival_process():
    wl = make_synthetic(100, 5, 3, closed_loop=True)
    assert wl.arrival_ms == [0.0, 0.0, 0.0]


def test_numpy_integer_inputs_become_plain_python():
    wl = make_synthetic(np.int64(100), np.int32(5), np.int64(2), arrival_interval_ms=np.float64(2))
    assert wl.input_length == [100, 100] and type(wl.input_length[0]) is int
    assert type(wl.output_length[0]) is int
    assert wl.arrival_ms == [0.0, 2.0] and type(wl.arrival_ms[1]) is float


@pytest.mark.parametrize("kwargs, field", [
    (dict(), "request_rate"),
    (dict(request_rate=1.0, arrival_interval_ms=1.0), "request_rate"),
    (dict(request_rate=1.0, closed_loop=True), "request_rate"),
    (dict(arrival_interval_ms=1.0, closed_loop=True), "arrival_interval_ms"),
    (dict(request_rate=0.0), "request_rate"),
    (dict(request_rate=-3.0), "request_rate"),
    (dict(request_rate=float("inf")), "request_rate"),
    (dict(arrival_interval_ms=-1.0), "arrival_interval_ms"),
    (dict(arrival_interval_ms=float("nan")), "arrival_interval_ms"),
    (dict(arrival_interval_ms=1.0, turns_per_session=0), "turns_per_session"),
    (dict(arrival_interval_ms=1.0, turns_per_session=2, inter_turn_delay_ms=-1.0),
     "inter_turn_delay_ms"),
    (dict(arrival_interval_ms=1.0, seed=-1), "seed"),
])
def test_bad_arrival_parameters(kwargs, field):
    with pytest.raises(InputError) as ei:
        make_synthetic(100, 5, 3, **kwargs)
    assert ei.value.field == field
    assert f"field '{field}'" in str(ei.value)


@pytest.mark.parametrize("args, field", [
    ((0, 5, 3), "input_tokens"),
    ((100, 0, 3), "output_tokens"),
    ((100, 5, 0), "request_count"),
    ((100.0, 5, 3), "input_tokens"),
    ((True, 5, 3), "input_tokens"),
    ((100, -1, 3), "output_tokens"),
])
def test_bad_sizes(args, field):
    with pytest.raises(InputError) as ei:
        make_synthetic(*args, arrival_interval_ms=1.0)
    assert ei.value.field == field
    assert "must be an integer >= 1" in str(ei.value)
