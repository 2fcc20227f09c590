"""Traffic since the last planner tick (spec planner.md §2.1): offered load and the shape and
latency of the requests that completed, as plain sums the planner side turns into averages."""
from __future__ import annotations

from typing import final

from engine.request import Request


@final
class TrafficWindowAcc:
    start_ms: float
    arrivals: int
    completed: int
    sum_isl: int
    sum_osl: int
    ttft_count: int
    sum_ttft_ms: float
    itl_count: int
    sum_itl_ms: float  # per-request mean inter-token latency, summed
    kv_hit_count: int
    sum_kv_hit_rate: float

    def __init__(self) -> None:
        self.start_ms = 0.0
        self.reset(0.0)

    def reset(self, t: float) -> None:
        self.start_ms = t
        self.arrivals = 0
        self.completed = 0
        self.sum_isl = 0
        self.sum_osl = 0
        self.ttft_count = 0
        self.sum_ttft_ms = 0.0
        self.itl_count = 0
        self.sum_itl_ms = 0.0
        self.kv_hit_count = 0
        self.sum_kv_hit_rate = 0.0

    def add_completed(self, r: Request, routed_by_kv: bool) -> None:
        self.completed += 1
        self.sum_isl += r.prompt_len
        self.sum_osl += r.gen
        if r.gen >= 1:
            self.ttft_count += 1
            self.sum_ttft_ms += r.first_token_ms - r.arrival_ms
        if r.gen >= 2:
            self.itl_count += 1
            self.sum_itl_ms += (r.last_token_ms - r.first_token_ms) / float(r.gen - 1)
        if routed_by_kv and len(r.hashes) > 0:
            self.kv_hit_count += 1
            self.sum_kv_hit_rate += float(r.route_overlap) / float(len(r.hashes))
