"""Metric columns the engine fills as requests finish.

Flat, append-only columns (one entry per terminal request) plus streaming statistics for the
pooled inter-token gaps, so memory stays bounded by the number of requests, not tokens.
"""
from __future__ import annotations

import math
from typing import Final, final

from librt.vecs import append, extend, vec
from mypy_extensions import i64

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
    # Bucket counts for keys dense_lo .. dense_lo + len(dense) - 1, unboxed: a boxed list
    # increment cost more than the logarithm.
    dense: vec[i64]
    dense_lo: i64

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.n_zero = 0
        self.dense = vec[i64]()
        self.dense_lo = 0

    @property
    def buckets(self) -> dict[int, int]:
        """The sketch as {bucket key: count} (ZERO_BUCKET for values <= 0)."""
        out: dict[int, int] = {}
        if self.n_zero:
            out[ZERO_BUCKET] = self.n_zero
        lo = self.dense_lo
        d = self.dense
        for i in range(len(d)):
            c = d[i]
            if c:
                out[int(lo + i)] = int(c)
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
        self._count_key(sketch_key(v))

    def add_all(self, values: vec[float], keys: vec[i64]) -> None:
        """add(v) for each value in order (the same figures, bit for bit), the running figures
        kept in locals; keys[j] is sketch_key(values[j]) (unused where values[j] <= 0)."""
        self._add_values(values, keys, False)

    def add_rates(self, gaps: vec[float], keys: vec[i64]) -> None:
        """add(1000 / g) for each gap g > 0 in order (tokens per second from gaps in ms);
        keys[j] is sketch_key(1000 / gaps[j])."""
        self._add_values(gaps, keys, True)

    def _add_values(self, values: vec[float], keys: vec[i64], rates: bool) -> None:
        n = float(self.count)
        total = self.total
        mean = self.mean
        m2 = self.m2
        lo_v = self.min
        hi_v = self.max
        n_zero = self.n_zero
        d = self.dense
        lo = self.dense_lo
        size: i64 = len(d)
        j: i64 = -1
        for g in values:
            j += 1
            if rates:
                if g <= 0.0:
                    continue
                v = 1000.0 / g
            else:
                v = g
            n += 1.0
            total += v
            delta = v - mean
            mean += delta / n
            m2 += delta * (v - mean)
            if v < lo_v:
                lo_v = v
            if v > hi_v:
                hi_v = v
            if v <= 0.0:
                n_zero += 1
                continue
            i = keys[j] - lo
            if 0 <= i < size:
                d[i] += 1
            else:
                self._count_key(i + lo)
                d = self.dense
                lo = self.dense_lo
                size = len(d)
        self.count = int(n)
        self.total = total
        self.mean = mean
        self.m2 = m2
        self.min = lo_v
        self.max = hi_v
        self.n_zero = n_zero

    def _count_key(self, key: i64) -> None:
        """One more value in bucket `key`, widening the dense range to hold it."""
        d = self.dense
        size: i64 = len(d)
        if size == 0:
            self.dense_lo = key
            self.dense = append(d, 1)
            return
        i = key - self.dense_lo
        if i < 0:
            grown = vec[i64](capacity=size - i)
            grown = append(grown, 1)
            for _ in range(-i - 1):
                grown = append(grown, 0)
            self.dense = extend(grown, d)
            self.dense_lo = key
        elif i >= size:
            for _ in range(i - size):
                d = append(d, 0)
            self.dense = append(d, 1)
        else:
            d[i] += 1


def sketch_key(v: float) -> i64:
    """DDSketch bucket of v > 0."""
    return i64(math.ceil(math.log(v) / SKETCH_LN_GAMMA))


GAP_MEMO_SLOTS: Final = 8192  # a power of two
GAP_MEMO_MAX_MS: Final = 1e12  # gaps hashed by their ns count (fits an i64 below this)


@final
class GapKeys:
    """Sketch keys of inter-token gaps and of their rates (1000/gap), remembered by exact gap
    value in a direct-mapped table: a pass's duration is a gap of every request in its batch,
    and a lookup costs less than the two logarithms."""

    gap: vec[float]  # the gap each slot holds the keys of (-1.0 = empty)
    itl_key: vec[i64]
    rate_key: vec[i64]
    # The keys of the last request's gaps (reused: no allocation per request)
    itl_out: vec[i64]
    rate_out: vec[i64]

    def __init__(self) -> None:
        self.gap = vec[float]([-1.0] * GAP_MEMO_SLOTS)
        self.itl_key = vec[i64]([0] * GAP_MEMO_SLOTS)
        self.rate_key = vec[i64]([0] * GAP_MEMO_SLOTS)
        self.itl_out = vec[i64]()
        self.rate_out = vec[i64]()

    def keys(self, gaps: vec[float]) -> tuple[vec[i64], vec[i64]]:
        """sketch_key(g) and sketch_key(1000 / g) for each gap g (0 where g <= 0), valid
        until the next call (the vectors may be longer than gaps: the rest is stale)."""
        n: i64 = len(gaps)
        itl = self.itl_out
        rate = self.rate_out
        if len(itl) < n:
            while len(itl) < n:
                itl = append(itl, 0)
                rate = append(rate, 0)
            self.itl_out = itl
            self.rate_out = rate
        memo = self.gap
        memo_itl = self.itl_key
        memo_rate = self.rate_key
        j: i64 = 0
        for g in gaps:
            a: i64 = 0
            b: i64 = 0
            if g <= 0.0:
                pass
            elif g < GAP_MEMO_MAX_MS:
                slot = i64(g * 1e6) & (GAP_MEMO_SLOTS - 1)
                if memo[slot] == g:
                    a = memo_itl[slot]
                    b = memo_rate[slot]
                else:
                    a = sketch_key(g)
                    b = sketch_key(1000.0 / g)
                    memo[slot] = g
                    memo_itl[slot] = a
                    memo_rate[slot] = b
            else:  # huge, or NaN (which fails here as it would in add)
                a = sketch_key(g)
                b = sketch_key(1000.0 / g)
            itl[j] = a
            rate[j] = b
            j += 1
        return itl, rate


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
    gap_keys: GapKeys
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
        self.gap_keys = GapKeys()
        self.committed_prefill_tokens = 0
        self.preemptions = 0

    def __len__(self) -> int:
        return len(self.req)

    def record(self, r: Request, t: float, status: int, worker: int, prefill_worker: int) -> None:
        """r reached a terminal state at t: one row (worker and prefill_worker are local pool
        indices, -1 = none); a completed request's gaps join the pooled statistics."""
        if status == STATUS_COMPLETED:
            gaps = r.gaps
            itl_keys, rate_keys = self.gap_keys.keys(gaps)
            self.itl.add_all(gaps, itl_keys)
            self.user_tput.add_rates(gaps, rate_keys)
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
