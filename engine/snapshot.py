"""Cheap read-only views of the engine state, polled by the TUI."""
from __future__ import annotations

from typing import final


@final
class WorkerSnapshot:
    idx: int
    kind: int  # pool.POOL_*
    state: int  # pool.STATE_*
    busy: bool
    waiting: int
    running: int
    active_blocks: int
    inactive_blocks: int
    free_blocks: int
    total_blocks: int
    prefill_tokens: int  # prompt tokens not yet computed (running + waiting)
    preemptions: int

    def __init__(self, idx: int, kind: int, state: int, busy: bool, waiting: int, running: int,
                 active_blocks: int, inactive_blocks: int, free_blocks: int, total_blocks: int,
                 prefill_tokens: int, preemptions: int) -> None:
        self.idx = idx
        self.kind = kind
        self.state = state
        self.busy = busy
        self.waiting = waiting
        self.running = running
        self.active_blocks = active_blocks
        self.inactive_blocks = inactive_blocks
        self.free_blocks = free_blocks
        self.total_blocks = total_blocks
        self.prefill_tokens = prefill_tokens
        self.preemptions = preemptions


@final
class SimSnapshot:
    now_ms: float
    total_requests: int
    arrived: int
    completed: int
    rejected: int
    in_flight: int
    passes: int
    workers: list[WorkerSnapshot]
    router_hit_rate: float  # share of routed prompt blocks the chosen worker cached; -1 = n/a
    transfers_in_flight: int  # disagg KV hand-offs under way

    def __init__(self, now_ms: float, total_requests: int, arrived: int, completed: int,
                 rejected: int, passes: int, workers: list[WorkerSnapshot],
                 router_hit_rate: float = -1.0, transfers_in_flight: int = 0) -> None:
        self.now_ms = now_ms
        self.total_requests = total_requests
        self.arrived = arrived
        self.completed = completed
        self.rejected = rejected
        self.in_flight = arrived - completed - rejected
        self.passes = passes
        self.workers = workers
        self.router_hit_rate = router_hit_rate
        self.transfers_in_flight = transfers_in_flight
