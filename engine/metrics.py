"""Metric columns the engine fills as requests finish.

Flat, append-only columns (one entry per terminal request) plus streaming statistics for the
pooled inter-token gaps, so memory stays bounded by the number of requests, not tokens.
"""
from __future__ import annotations

import math
from typing import Final, final

from engine.request import Request

# DDSketch relative accuracy used by the reference for ITL and per-user throughput percentiles.
SKETCH_ALPHA: Final = 0.001
SKETCH_GAMMA: Final = (1.0 + SKETCH_ALPHA) / (1.0 - SKETCH_ALPHA)
# log1p form: bit-identical to the reference's bucket boundaries.
SKETCH_LN_GAMMA: Final = math.log1p(2.0 * SKETCH_ALPHA / (1.0 - SKETCH_ALPHA))
# Bucket key used for values <= 0 (ln undefined); such values sort below every real bucket.
ZERO_BUCKET: Final = -(1 << 40)

STATUS_COMPLETED: Final = 0
STATUS_REJECTED: Final = 1


@final
class StreamStats:
    """Exact count/mean/min/max/population-std plus a DDSketch of a pooled sample."""

    count: int
    total: float
    mean: float
    m2: float
    min: float
    max: float
    n_zero: int  # values <= 0 (no log bucket)
    dense: list[int]  # bucket counts for keys dense_lo .. dense_lo + len(dense) - 1 (run aside)
    dense_lo: int
    # Consecutive values often land in the same bucket (a request's gaps between passes of
    # similar batches): they are counted here, unboxed, and folded into `dense` when the key
    # changes (a boxed list increment costs more than the logarithm).
    run_key: int
    run_n: int

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.n_zero = 0
        self.dense = []
        self.dense_lo = 0
        self.run_key = 0
        self.run_n = 0

    @property
    def buckets(self) -> dict[int, int]:
        """The sketch as {bucket key: count} (ZERO_BUCKET for values <= 0)."""
        out: dict[int, int] = {}
        if self.n_zero:
            out[ZERO_BUCKET] = self.n_zero
        lo = self.dense_lo
        for i, c in enumerate(self.dense):
            if c:
                out[lo + i] = c
        if self.run_n:
            out[self.run_key] = out.get(self.run_key, 0) + self.run_n
        return out

    def add(self, v: float) -> None:
        self.count += 1
        self.total += v
        delta = v - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (v - self.mean)
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v
        if v <= 0.0:
            self.n_zero += 1
            return
        key = int(math.ceil(math.log(v) / SKETCH_LN_GAMMA))
        if key == self.run_key and self.run_n > 0:
            self.run_n += 1
            return
        if self.run_n > 0:
            self._fold(self.run_key, self.run_n)
        self.run_key = key
        self.run_n = 1

    def _fold(self, key: int, n: int) -> None:
        d = self.dense
        if not d:
            self.dense_lo = key
            d.append(n)
            return
        i = key - self.dense_lo
        if i < 0:
            self.dense = [0] * (-i) + d
            self.dense_lo = key
            self.dense[0] = n
        elif i >= len(d):
            d.extend([0] * (i - len(d) + 1))
            d[i] = n
        else:
            c: int = d[i]
            d[i] = c + n


@final
class MetricColumns:
    """One row per request that reached a terminal state (completed or rejected).

    Times are simulated ms; -1.0 means "did not happen" (e.g. no second token).
    """

    req: list[int]  # index into the workload (file order)
    worker: list[int]  # worker that served it (decode side)
    status: list[int]  # STATUS_*
    arrival_ms: list[float]
    first_admit_ms: list[float]
    first_token_ms: list[float]
    second_token_ms: list[float]
    last_token_ms: list[float]
    terminal_ms: list[float]
    input_length: list[int]
    requested_output: list[int]
    output_tokens: list[int]
    reused_tokens: list[int]  # max cached tokens over admissions
    first_reused_tokens: list[int]  # cached tokens at the first admission
    admissions: list[int]
    # Routing record (kv_router): blocks the chosen worker cached, best over candidates.
    route_overlap_blocks: list[int]
    route_best_overlap_blocks: list[int]
    # Disaggregated serving milestones (-1.0 / -1 in aggregated runs)
    prefill_worker: list[int]
    prefill_admit_ms: list[float]
    source_held_ms: list[float]
    dest_reserved_ms: list[float]
    dest_activated_ms: list[float]
    decode_admit_ms: list[float]
    source_released_ms: list[float]
    decode_reused_tokens: list[int]
    itl: StreamStats  # every inter-token gap of completed requests, pooled
    user_tput: StreamStats  # 1000/gap for every gap > 0 of completed requests
    committed_prefill_tokens: int
    preemptions: int

    def __init__(self) -> None:
        self.req = []
        self.worker = []
        self.status = []
        self.arrival_ms = []
        self.first_admit_ms = []
        self.first_token_ms = []
        self.second_token_ms = []
        self.last_token_ms = []
        self.terminal_ms = []
        self.input_length = []
        self.requested_output = []
        self.output_tokens = []
        self.reused_tokens = []
        self.first_reused_tokens = []
        self.admissions = []
        self.route_overlap_blocks = []
        self.route_best_overlap_blocks = []
        self.prefill_worker = []
        self.prefill_admit_ms = []
        self.source_held_ms = []
        self.dest_reserved_ms = []
        self.dest_activated_ms = []
        self.decode_admit_ms = []
        self.source_released_ms = []
        self.decode_reused_tokens = []
        self.itl = StreamStats()
        self.user_tput = StreamStats()
        self.committed_prefill_tokens = 0
        self.preemptions = 0

    def __len__(self) -> int:
        return len(self.req)

    def record(self, r: Request, t: float, status: int, worker: int, prefill_worker: int) -> None:
        """r reached a terminal state at t: one row (worker and prefill_worker are local pool
        indices, -1 = none); a completed request's gaps join the pooled statistics."""
        if status == STATUS_COMPLETED:
            itl = self.itl
            tput = self.user_tput
            for g in r.gaps:
                itl.add(g)
                if g > 0.0:
                    tput.add(1000.0 / g)
        r.metrics_row = len(self.req)
        self.req.append(r.idx)
        self.worker.append(worker)
        self.status.append(status)
        self.arrival_ms.append(r.arrival_ms)
        self.first_admit_ms.append(r.first_admit_ms)
        self.first_token_ms.append(r.first_token_ms)
        self.second_token_ms.append(r.second_token_ms)
        self.last_token_ms.append(r.last_token_ms)
        self.terminal_ms.append(t)
        self.input_length.append(r.prompt_len)
        self.requested_output.append(r.requested_out)
        self.output_tokens.append(r.gen)
        self.reused_tokens.append(r.reused)
        self.first_reused_tokens.append(r.first_reused)
        self.admissions.append(r.admissions)
        self.route_overlap_blocks.append(r.route_overlap)
        self.route_best_overlap_blocks.append(r.route_best_overlap)
        self.prefill_worker.append(prefill_worker)
        self.prefill_admit_ms.append(r.prefill_admit_ms)
        self.source_held_ms.append(r.source_held_ms)
        self.dest_reserved_ms.append(r.dest_reserved_ms)
        self.dest_activated_ms.append(r.dest_activated_ms)
        self.decode_admit_ms.append(r.decode_admit_ms)
        self.source_released_ms.append(r.source_released_ms)
        self.decode_reused_tokens.append(r.decode_reused)
