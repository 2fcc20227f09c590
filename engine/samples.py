"""Fixed-interval per-worker samples for the HTML report and worker_samples.parquet: at the
first instant at or after each multiple of every_ms (0 = off), one row per live worker.
Read-only: taking samples never changes the replay."""
from __future__ import annotations

import math
from typing import final

from engine.pool import STATE_STOPPED
from engine.worker import Worker


@final
class WorkerSamples:
    every_ms: float  # 0 = no samples
    next_ms: float  # the next instant at or after this time takes a row per worker
    t_ms: list[float]
    worker: list[int]  # global worker index
    kind: list[int]  # POOL_*
    kv_blocks: list[int]  # blocks held by running requests (active)
    kv_capacity: list[int]
    waiting: list[int]
    running: list[int]

    def __init__(self, every_ms: float) -> None:
        self.every_ms = every_ms
        self.next_ms = 0.0
        self.t_ms = []
        self.worker = []
        self.kind = []
        self.kv_blocks = []
        self.kv_capacity = []
        self.waiting = []
        self.running = []

    def __len__(self) -> int:
        return len(self.t_ms)

    def copy(self) -> WorkerSamples:
        """The rows so far (a report keeps them while the replay goes on)."""
        c = WorkerSamples(self.every_ms)
        c.next_ms = self.next_ms
        c.t_ms = list(self.t_ms)
        c.worker = list(self.worker)
        c.kind = list(self.kind)
        c.kv_blocks = list(self.kv_blocks)
        c.kv_capacity = list(self.kv_capacity)
        c.waiting = list(self.waiting)
        c.running = list(self.running)
        return c

    def take(self, t: float, workers: list[Worker]) -> None:
        """One row per live worker at t; schedules the next sample."""
        for w in workers:
            if w.state == STATE_STOPPED:
                continue
            self.t_ms.append(t)
            self.worker.append(w.idx)
            self.kind.append(w.kind)
            self.kv_blocks.append(w.kv_active())
            self.kv_capacity.append(w.capacity)
            self.waiting.append(len(w.waiting))
            self.running.append(len(w.running))
        self.next_ms = (math.floor(t / self.every_ms) + 1.0) * self.every_ms
