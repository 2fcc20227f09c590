"""A worker's forward-pass metrics for the planner (the reference's ForwardPassMetrics, less
the identity fields): staged when a pass is scheduled, published when it ends, so an observer
sees the last finished pass, as the reference's planner does (its snapshot logs show it)."""
from __future__ import annotations

from typing import final


@final
class PassMetrics:
    passes: int  # passes published so far (tells the planner whether it ran since a tick)
    end_ms: float  # when the last published pass ended
    wall_ms: float
    prefill_reqs: int
    prefill_tokens: int
    prefill_kv_tokens: int
    decode_reqs: int
    decode_kv_tokens: int
    queued_prefill_reqs: int
    queued_prefill_tokens: int

    def __init__(self) -> None:
        self.passes = 0
        self.end_ms = 0.0
        self.wall_ms = 0.0
        self.prefill_reqs = 0
        self.prefill_tokens = 0
        self.prefill_kv_tokens = 0
        self.decode_reqs = 0
        self.decode_kv_tokens = 0
        self.queued_prefill_reqs = 0
        self.queued_prefill_tokens = 0

    def publish(self, staged: PassMetrics, now: float) -> None:
        """The staged pass ended at `now`: make it the last finished pass."""
        self.passes += 1
        self.end_ms = now
        self.wall_ms = staged.wall_ms
        self.prefill_reqs = staged.prefill_reqs
        self.prefill_tokens = staged.prefill_tokens
        self.prefill_kv_tokens = staged.prefill_kv_tokens
        self.decode_reqs = staged.decode_reqs
        self.decode_kv_tokens = staged.decode_kv_tokens
        self.queued_prefill_reqs = staged.queued_prefill_reqs
        self.queued_prefill_tokens = staged.queued_prefill_tokens
