"""Synthetic workloads: fixed-size requests with generated arrivals.

Every request has exactly `input_tokens` prompt tokens and `output_tokens` output tokens and a
prompt of its own (`Workload.unique_prompts`), so nothing is shared through the prefix cache.
`request_count` counts sessions; with `turns_per_session > 1` each session has that many turns
and the workload holds `request_count * turns_per_session` requests.

Arrivals of first turns, exactly one of:
  * `request_rate` (requests/s): Poisson process, exponential inter-arrival gaps with mean
    1000/rate ms drawn from `numpy.random.default_rng(seed)`, shifted so the first is at 0;
  * `arrival_interval_ms`: 0, d, 2d, ...;
  * neither, with `closed_loop=True` (the engine admits sessions by concurrency; arrivals 0).
Turn k > 0 of a session becomes ready `inter_turn_delay_ms` after turn k-1 completes.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dynosim.inputs.errors import InputError, show_value
from engine.workload import Workload


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"must be an integer >= 1, got {show_value(_plain(value))}", field=name)
    return int(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _finite(name: str, value: Any, *, positive: bool) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(float(value))
        and (float(value) > 0 if positive else float(value) >= 0)
    )
    if not ok:
        what = "a finite number > 0" if positive else "a finite number >= 0"
        raise InputError(f"must be {what}, got {show_value(_plain(value))}", field=name)
    return float(value)


def make_synthetic(
    input_tokens: int,
    output_tokens: int,
    request_count: int,
    *,
    request_rate: float | None = None,
    arrival_interval_ms: float | None = None,
    seed: int = 42,
    turns_per_session: int = 1,
    inter_turn_delay_ms: float = 0.0,
    closed_loop: bool = False,
    trace_block_size: int = 512,
) -> Workload:
    """Build a synthetic `Workload` (see module doc). Raises `InputError` on bad parameters."""
    isl = _positive_int("input_tokens", input_tokens)
    osl = _positive_int("output_tokens", output_tokens)
    count = _positive_int("request_count", request_count)
    turns = _positive_int("turns_per_session", turns_per_session)
    think = _finite("inter_turn_delay_ms", inter_turn_delay_ms, positive=False)
    bs = _positive_int("trace_block_size", trace_block_size)
    given = [n for n, v in (("request_rate", request_rate),
                            ("arrival_interval_ms", arrival_interval_ms)) if v is not None]
    if closed_loop:
        if given:
            raise InputError(
                f"{given[0]} cannot be combined with closed-loop replay (replay concurrency); "
                "give exactly one of request rate, arrival interval or replay concurrency",
                field=given[0],
            )
    elif len(given) != 1:
        raise InputError(
            "give exactly one of request rate, arrival interval or replay concurrency "
            f"(got {', '.join(given) if given else 'none'})",
            field="request_rate",
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"must be a non-negative integer, got {show_value(_plain(seed))}",
                         field="seed")

    arrivals: list[float]
    if closed_loop:
        arrivals = [0.0] * count
    elif request_rate is not None:
        rate = _finite("request_rate", request_rate, positive=True)
        rng = np.random.default_rng(int(seed))
        gaps = rng.exponential(1000.0 / rate, count - 1)
        arrivals = [0.0]
        arrivals.extend(np.cumsum(gaps).tolist())  # .tolist() -> plain Python floats
    else:
        interval = _finite("arrival_interval_ms", arrival_interval_ms, positive=False)
        arrivals = [k * interval for k in range(count)]

    wl = Workload(bs)
    wl.unique_prompts = True
    no_hashes: list[int] = []
    if turns == 1:
        for a in arrivals:
            wl.add(a, 0.0, isl, osl, no_hashes, -1, 0)
        return wl
    for s, a in enumerate(arrivals):
        wl.session_names.append(f"session_{s}")
        prev = wl.add(a, 0.0, isl, osl, no_hashes, s, 0)
        for k in range(1, turns):
            idx = wl.add(0.0, think, isl, osl, no_hashes, s, k)
            wl.next_turn[prev] = idx
            prev = idx
    return wl
