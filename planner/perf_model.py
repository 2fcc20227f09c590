"""The planner's engine perf model (spec planner.md §5.3-§5.5).

`PerfModel` is what the reference runs in replay as the "fallback_regression" engine shim: it
learns forward-pass times from FPMs (`planner.regression`) and answers the planner's questions:

* `get_queued_prefill_time` / `get_scheduled_decode_itl` / `find_engine_capacity` - the engine
  queries of §5.4, in integer nanoseconds like the reference's Durations;
* `estimate_queued_prefill_time_ms` / `estimate_scheduled_decode_itl_ms` - the planner-side
  "next request" synthetic FPMs of §5.5 wrapped around those queries.

Worker types: "prefill" and "decode" (disaggregated) keep only their own workload kind;
"aggregated" keeps three stores (prefill, decode, mixed). Each (worker, dp rank) FPM is its
own iteration (attention-DP grouping is not modelled: the replay reference runs with an
attention-DP size of 1 in the shim).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from planner.regression import RegressionStore
from planner.types import Capabilities, ForwardPassMetrics

WorkerType = Literal["prefill", "decode", "aggregated"]
Kind = Literal["prefill", "decode", "mixed"]

_ACCEPTS: dict[str, tuple[Kind, ...]] = {
    "prefill": ("prefill",),
    "decode": ("decode",),
    "aggregated": ("prefill", "decode", "mixed"),
}
KV_HIT_RATE_CAP = 0.95


@dataclass(frozen=True)
class Pass:
    """The scheduled work of one forward pass on one rank."""

    prefill_requests: int = 0
    prefill_tokens: int = 0
    decode_requests: int = 0
    decode_kv: int = 0


@dataclass(frozen=True)
class Synthetic:
    """A planner-built FPM for a query: scheduled work plus queued prefill (§5.5)."""

    sched_prefill_requests: int = 0
    sched_prefill_tokens: int = 0
    sched_decode_requests: int = 0
    sched_decode_kv: int = 0
    queued_prefill_requests: int = 0
    queued_prefill_tokens: int = 0


@dataclass(frozen=True)
class Capacity:
    rps: float
    ttft_ns: int | None
    itl_ns: int | None
    e2e_ns: int | None
    eligible: bool


def classify(p: Pass) -> tuple[Kind, tuple[float, ...]] | None:
    """Workload kind and regression features of a pass (None: empty pass)."""
    has_prefill = p.prefill_tokens > 0
    has_decode = p.decode_requests > 0 or p.decode_kv > 0
    if has_prefill and has_decode:
        return "mixed", (float(p.prefill_tokens), float(p.decode_kv))
    if has_prefill:
        return "prefill", (float(p.prefill_tokens),)
    if has_decode:
        return "decode", (float(p.decode_requests), float(p.decode_kv))
    return None


def pass_of(fpm: ForwardPassMetrics) -> Pass:
    return Pass(fpm.num_prefill_requests, fpm.sum_prefill_tokens, fpm.num_decode_requests,
                fpm.sum_decode_kv_tokens)


def ms_to_ns(ms: float) -> int:
    return int(round(max(ms, 0.0) / 1000.0 * 1e9))


def ns_to_s(ns: int) -> float:
    """Duration::as_secs_f64: whole seconds plus nanoseconds / 1e9."""
    secs, nanos = divmod(ns, 1_000_000_000)
    return secs + nanos / 1e9


def ns_to_ms(ns: int) -> float:
    return ns_to_s(ns) * 1000.0


def clamp_kv_hit_rate(rate: float | None) -> float:
    if rate is None or not math.isfinite(rate):
        return 0.0
    return min(max(rate, 0.0), KV_HIT_RATE_CAP)


def _ceil_nonneg(v: float) -> int:
    return 0 if v <= 0 else int(math.ceil(v))


class MovingAverage:
    """Fixed-window mean; `add_after_first_nonzero` ignores values until one is > 0."""

    def __init__(self, window: int) -> None:
        self._values: deque[float] = deque()
        self._window = max(1, window)
        self._sum = 0.0
        self._seen_nonzero = False

    def add(self, v: float) -> None:
        self._values.append(v)
        self._sum += v
        while len(self._values) > self._window:
            self._sum -= self._values.popleft()

    def add_after_first_nonzero(self, v: float) -> None:
        if v > 0.0:
            self._seen_nonzero = True
        if self._seen_nonzero:
            self.add(max(0.0, v))

    @property
    def value(self) -> float:
        return self._sum / len(self._values) if self._values else 0.0


class PerfModel:
    def __init__(self, worker_type: WorkerType, caps: Capabilities, *, max_observations: int = 64,
                 min_observations: int = 5, bucket_count: int = 16) -> None:
        self.worker_type = worker_type
        self.caps = caps
        self.stores: dict[Kind, RegressionStore] = {
            "prefill": RegressionStore(1, min_observations=min_observations,
                                       max_observations=max_observations,
                                       bucket_count=bucket_count),
            "decode": RegressionStore(2, min_observations=min_observations,
                                      max_observations=max_observations,
                                      bucket_count=bucket_count),
            "mixed": RegressionStore(2, min_observations=min_observations,
                                     max_observations=max_observations,
                                     bucket_count=bucket_count),
        }
        self._accepts = _ACCEPTS[worker_type]
        # planner side: the hypothetical next request
        self.avg_isl = MovingAverage(max_observations)
        self.avg_decode_length = MovingAverage(max_observations)
        # engine side (aggregated): typical per-iteration prefill for the mixed ITL query
        self._avg_num_prefill = MovingAverage(max_observations)
        self._avg_prefill_tokens = MovingAverage(max_observations)

    # ---- learning ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Ready as soon as any store has a fit (spec §5.3)."""
        return any(s.ready for s in self.stores.values())

    @property
    def num_observations(self) -> int:
        return sum(s.count for s in self.stores.values())

    def observe(self, fpms: Iterable[ForwardPassMetrics]) -> None:
        """Add FPMs (bootstrap or live): moving averages, then the regression stores."""
        for fpm in fpms:
            self._observe_next_request(fpm)
            self._tune(fpm)

    def _observe_next_request(self, fpm: ForwardPassMetrics) -> None:
        if fpm.num_prefill_requests > 0:
            self.avg_isl.add_after_first_nonzero(
                fpm.sum_prefill_tokens / fpm.num_prefill_requests)
        else:
            self.avg_isl.add_after_first_nonzero(0.0)
        if fpm.num_decode_requests > 0:
            self.avg_decode_length.add_after_first_nonzero(
                fpm.sum_decode_kv_tokens / fpm.num_decode_requests)

    def _tune(self, fpm: ForwardPassMetrics) -> None:
        c = classify(pass_of(fpm))
        if c is not None and math.isfinite(fpm.wall_time_s) and fpm.wall_time_s > 0:
            kind, x = c
            if kind in self._accepts:
                self.stores[kind].add(x, fpm.wall_time_s * 1000.0)
        self._avg_num_prefill.add_after_first_nonzero(float(fpm.num_prefill_requests))
        self._avg_prefill_tokens.add_after_first_nonzero(float(fpm.sum_prefill_tokens))

    def typical_prefill(self) -> tuple[int, int]:
        """(requests, tokens) of a typical iteration's prefill, for the aggregated ITL query."""
        tokens = _ceil_nonneg(self._avg_prefill_tokens.value)
        requests = _ceil_nonneg(self._avg_num_prefill.value)
        return max(requests, 1 if tokens > 0 else 0), tokens

    # ---- engine queries (§5.4), nanoseconds --------------------------------------------------

    def pass_ns(self, ranks: Sequence[Pass]) -> int | None:
        """One forward pass over the given ranks (the busiest rank's features)."""
        best: tuple[Kind, tuple[float, ...]] | None = None
        for p in ranks:
            c = classify(p)
            if c is not None and (best is None or sum(c[1]) >= sum(best[1])):
                best = c
        if best is None:
            return 0
        ms = self.stores[best[0]].predict_ms(best[1])
        return None if ms is None else ms_to_ns(ms)

    def get_queued_prefill_time(self, ranks: Sequence[Synthetic]) -> int | None:
        if self.worker_type == "decode":
            return None
        remaining = [max(0, s.queued_prefill_tokens) for s in ranks]
        if all(r == 0 for r in remaining):
            return 0
        if len(ranks) == 1:  # the planner's own queries: one rank
            s, agg = ranks[0], self.worker_type == "aggregated"
            return self._prefill_time_for_tokens(remaining[0], s.sched_decode_requests if agg
                                                 else 0, s.sched_decode_kv if agg else 0,
                                                 s.queued_prefill_requests or 1)
        chunk_max, total = max(1, self.caps.max_num_batched_tokens), 0
        while any(r > 0 for r in remaining):
            passes = []
            for i, s in enumerate(ranks):
                chunk = min(remaining[i], chunk_max)
                remaining[i] -= chunk
                reqs = 0 if chunk == 0 else (s.queued_prefill_requests or 1)
                passes.append(Pass(reqs, chunk, s.sched_decode_requests, s.sched_decode_kv)
                              if self.worker_type == "aggregated" else Pass(reqs, chunk))
            ns = self.pass_ns(passes)
            if ns is None:
                return None
            total += ns
        return total

    def get_scheduled_decode_itl(self, ranks: Sequence[Synthetic]) -> int | None:
        if self.worker_type == "prefill":
            return None
        passes = []
        for s in ranks:
            if self.worker_type == "aggregated":
                if s.sched_prefill_tokens > 0 or s.sched_prefill_requests > 0:
                    p_req, p_tok = s.sched_prefill_requests, s.sched_prefill_tokens
                else:
                    p_req, p_tok = self.typical_prefill()
                passes.append(Pass(p_req, p_tok, s.sched_decode_requests, s.sched_decode_kv))
            else:
                passes.append(Pass(0, 0, s.sched_decode_requests, s.sched_decode_kv))
        return self.pass_ns(passes)

    def _prefill_time_for_tokens(self, tokens: int, decode_requests: int = 0, decode_kv: int = 0,
                                 prefill_requests: int = 1) -> int | None:
        """Chunked prefill beside fixed decode work; full chunks: one estimate x count (ns)."""
        chunk_max = max(1, self.caps.max_num_batched_tokens)
        (full, rest), total = divmod(max(tokens, 0), chunk_max), 0
        for count, chunk in ((full, chunk_max), (1 if rest else 0, rest)):
            if count:
                ns = self.pass_ns([Pass(prefill_requests, chunk, decode_requests, decode_kv)])
                if ns is None:
                    return None
                total += count * ns
        return total

    def find_engine_capacity(self, isl: int, osl: int, ttft_sla_ms: float | None = None,
                             itl_sla_ms: float | None = None) -> Capacity | None:
        """Best sustainable single-engine request rate (objective: throughput)."""
        if isl <= 0:
            return None
        ttft_sla = None if ttft_sla_ms is None else ms_to_ns(ttft_sla_ms)
        itl_sla = None if itl_sla_ms is None else ms_to_ns(itl_sla_ms)
        if self.worker_type == "prefill":
            return self._prefill_capacity(isl, ttft_sla, itl_sla)
        if self.worker_type == "decode":
            return self._decode_capacity(isl, osl, ttft_sla, itl_sla)
        return self._agg_capacity(isl, osl, ttft_sla, itl_sla)

    def _decode_max_batch(self, ctx: int) -> int:
        if ctx <= 0:
            return 0
        return min(self.caps.max_num_seqs, self.caps.max_kv_tokens // ctx)

    def _prefill_capacity(self, isl: int, ttft_sla: int | None, itl_sla: int | None
                          ) -> Capacity | None:
        c = self.caps.max_num_batched_tokens
        if self.caps.max_num_seqs <= 0 or c <= 0:
            return None
        max_b = 1 if isl > c else min(self.caps.max_num_seqs, c // max(isl, 1))
        best: Capacity | None = None
        for b in range(1, max_b + 1):
            ttft = self._prefill_time_for_tokens(isl * b)
            if ttft is None:
                return None
            if ttft == 0:
                continue
            cand = Capacity(b / ns_to_s(ttft), ttft, None, ttft,
                            _sla_ok(ttft, ttft_sla) and _sla_ok(None, itl_sla))
            best = _select(best, cand)
        return best

    def _decode_capacity(self, isl: int, osl: int, ttft_sla: int | None, itl_sla: int | None
                         ) -> Capacity | None:
        if osl <= 0:
            return None
        ctx = max(isl + osl // 2, 1)
        best: Capacity | None = None
        for b in range(1, self._decode_max_batch(ctx) + 1):
            itl = self.pass_ns([Pass(0, 0, b, b * ctx)])
            if itl is None:
                return None
            if itl == 0:
                continue
            cand = Capacity(b / (osl * ns_to_s(itl)), None, itl, None,
                            _sla_ok(None, ttft_sla) and _sla_ok(itl, itl_sla))
            best = _select(best, cand)
        return best

    def _agg_capacity(self, isl: int, osl: int, ttft_sla: int | None, itl_sla: int | None
                      ) -> Capacity | None:
        c = self.caps.max_num_batched_tokens
        if osl <= 0 or c <= 1:
            return None
        ctx = max(isl + osl // 2, 1)
        hard_cap = min(self._decode_max_batch(ctx), max(c - 1, 1))
        best: Capacity | None = None
        for b in range(1, hard_cap + 1):
            budget = c - b
            if not (budget > 0 and isl <= osl * budget):
                continue
            decode_kv = b * ctx
            per_iter = min(c, -(-(b * isl) // osl))
            itl = self.pass_ns([Pass(1 if per_iter > 0 else 0, per_iter, b, decode_kv)])
            if itl is None:
                return None
            if itl == 0:
                continue
            ttft = self._prefill_time_for_tokens(per_iter + isl, b, decode_kv)
            if ttft is None:
                return None
            e2e = ttft + itl * (osl - 1)
            cand = Capacity(b / (osl * ns_to_s(itl)), ttft, itl, e2e,
                            _sla_ok(ttft, ttft_sla) and _sla_ok(itl, itl_sla))
            best = _select(best, cand)
        return best

    # ---- planner-side "next request" estimates (§5.5), milliseconds --------------------------

    def synthetic_prefill(self, fpm: ForwardPassMetrics, *, kv_hit_rate: float | None = None,
                          queue_scale: float = 1.0, decode_scale: float = 1.0,
                          include_queued_decode: bool = False, add_next_request: bool = True
                          ) -> Synthetic:
        tokens = float(fpm.queued_prefill_tokens) * queue_scale
        reqs = float(fpm.queued_prefill_requests) * queue_scale
        avg_isl = self.avg_isl.value
        if add_next_request and avg_isl > 0:
            tokens += avg_isl
            reqs += 1.0
        tokens *= 1.0 - clamp_kv_hit_rate(kv_hit_rate)
        d_kv = float(fpm.sum_decode_kv_tokens)
        d_req = float(fpm.num_decode_requests)
        if include_queued_decode:
            d_kv += float(fpm.queued_decode_kv_tokens)
            d_req += float(fpm.queued_decode_requests)
        return Synthetic(
            sched_decode_requests=_ceil_nonneg(d_req * decode_scale),
            sched_decode_kv=_ceil_nonneg(d_kv * decode_scale),
            queued_prefill_requests=_ceil_nonneg(reqs),
            queued_prefill_tokens=_ceil_nonneg(tokens),
        )

    def synthetic_decode(self, fpm: ForwardPassMetrics, *, decode_scale: float = 1.0,
                         include_queued_decode: bool = True,
                         include_queued_prefill_as_kv: bool = False,
                         add_next_request: bool = True) -> Synthetic:
        p_tok = float(fpm.sum_prefill_tokens)
        p_req = float(fpm.num_prefill_requests)
        if self.worker_type == "aggregated":
            p_tok = p_req = 0.0  # the engine side substitutes its typical prefill
        d_kv = float(fpm.sum_decode_kv_tokens)
        d_req = float(fpm.num_decode_requests)
        if include_queued_decode:
            d_kv += float(fpm.queued_decode_kv_tokens)
            d_req += float(fpm.queued_decode_requests)
        if include_queued_prefill_as_kv:
            d_kv += float(fpm.queued_prefill_tokens)
            d_req += float(fpm.queued_prefill_requests)
        d_kv *= decode_scale
        d_req *= decode_scale
        avg_len = self.avg_decode_length.value
        if add_next_request and avg_len > 0:
            d_kv += avg_len
            d_req += 1.0
        return Synthetic(
            sched_prefill_requests=_ceil_nonneg(p_req),
            sched_prefill_tokens=_ceil_nonneg(p_tok),
            sched_decode_requests=_ceil_nonneg(d_req),
            sched_decode_kv=_ceil_nonneg(d_kv),
        )

    def estimate_queued_prefill_time_ms(self, fpm: ForwardPassMetrics, *,
                                        kv_hit_rate: float | None = None,
                                        queue_scale: float = 1.0, decode_scale: float = 1.0,
                                        include_queued_decode: bool = False) -> float | None:
        syn = self.synthetic_prefill(fpm, kv_hit_rate=kv_hit_rate, queue_scale=queue_scale,
                                     decode_scale=decode_scale,
                                     include_queued_decode=include_queued_decode)
        ns = self.get_queued_prefill_time([syn])
        return None if ns is None else ns_to_ms(ns)

    def estimate_scheduled_decode_itl_ms(self, fpm: ForwardPassMetrics, *,
                                         decode_scale: float = 1.0,
                                         include_queued_decode: bool = True,
                                         include_queued_prefill_as_kv: bool = False,
                                         accept_length: float = 1.0) -> float | None:
        syn = self.synthetic_decode(fpm, decode_scale=decode_scale,
                                    include_queued_decode=include_queued_decode,
                                    include_queued_prefill_as_kv=include_queued_prefill_as_kv)
        ns = self.get_scheduled_decode_itl([syn])
        return None if ns is None else ns_to_ms(ns) / max(1.0, accept_length)

    def capacity_for(self, isl: float, osl: float, *, ttft_sla_ms: float | None = None,
                     itl_sla_ms: float | None = None) -> Capacity | None:
        """The planner-side capacity request: ceil'd shape, None when not computable."""
        if not (math.isfinite(isl) and isl > 0):
            return None
        if self.worker_type != "prefill" and not (math.isfinite(osl) and osl > 0):
            return None
        o = max(1, int(math.ceil(osl))) if math.isfinite(osl) else 1
        return self.find_engine_capacity(int(math.ceil(isl)), o, ttft_sla_ms, itl_sla_ms)


def _sla_ok(value: int | None, sla: int | None) -> bool:
    if sla is None:
        return True
    return value is not None and value <= sla


def _select(current: Capacity | None, cand: Capacity) -> Capacity:
    if current is None:
        return cand
    if cand.eligible and not current.eligible:
        return cand
    if current.eligible and not cand.eligible:
        return current
    return cand if cand.rps > current.rps else current
