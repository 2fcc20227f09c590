""""Rapid" pre-deployment FPMs that seed the perf model before t = 0 (spec planner.md §5.2).

The reference asks AIConfigurator for these points; here the caller supplies the step-time
callables (the simulator wires its hardware timing model into them):

* `prefill_ms(isl)`        - one batch-1 prefill pass of `isl` tokens, in ms;
* `decode_ms(batch, ctx)`  - one decode step of `batch` requests at context `ctx`, in ms.

Sweep: prefill ISL = 100, 100 + step, ... <= max_num_batched_tokens with
step = max(1, (max_num_batched_tokens - 100) // granularity) (8192 -> 9 points, 100..8188);
decode ctx in (500, 2000, 4000, 8000) x batch = 1, 1 + k, ... <= max_num_seqs with
k = max(1, max_num_seqs // granularity) (256 -> 1, 33, ..., 225), a ctx row stopping once
batch * ctx exceeds the KV capacity. In agg mode both lists seed the one aggregated model,
prefill points first.
"""
from __future__ import annotations

from typing import Callable

from planner.types import Capabilities, ForwardPassMetrics

PREFILL_START_ISL = 100
DECODE_CONTEXTS = (500, 2000, 4000, 8000)


def _fpm(wall_ms: float, *, prefill_tokens: int = 0, decode_requests: int = 0,
         decode_kv: int = 0) -> ForwardPassMetrics:
    return ForwardPassMetrics(
        worker_id=0,
        dp_rank=0,
        wall_time_s=wall_ms / 1000.0,
        num_prefill_requests=1 if prefill_tokens > 0 else 0,
        sum_prefill_tokens=prefill_tokens,
        sum_prefill_kv_tokens=prefill_tokens,
        var_prefill_length=0.0,
        num_decode_requests=decode_requests,
        sum_decode_kv_tokens=decode_kv,
        var_decode_kv_tokens=0.0,
        queued_prefill_requests=0,
        queued_prefill_tokens=0,
        queued_decode_requests=0,
        queued_decode_kv_tokens=0,
    )


def prefill_points(max_num_batched_tokens: int, granularity: int = 8) -> list[int]:
    step = max(1, (max_num_batched_tokens - PREFILL_START_ISL) // max(1, granularity))
    return list(range(PREFILL_START_ISL, max_num_batched_tokens + 1, step))


def decode_points(max_num_seqs: int, max_kv_tokens: int, granularity: int = 8
                  ) -> list[tuple[int, int]]:
    """(batch, ctx) pairs in sweep order."""
    k = max(1, max_num_seqs // max(1, granularity))
    out: list[tuple[int, int]] = []
    for ctx in DECODE_CONTEXTS:
        for bs in range(1, max_num_seqs + 1, k):
            if bs * ctx > max_kv_tokens:
                break
            out.append((bs, ctx))
    return out


def bootstrap_fpms(prefill_ms: Callable[[int], float], decode_ms: Callable[[int, int], float],
                   caps: Capabilities, granularity: int = 8
                   ) -> tuple[list[ForwardPassMetrics], list[ForwardPassMetrics]]:
    """(prefill FPMs, decode FPMs) for one engine's capabilities."""
    prefill = [_fpm(prefill_ms(isl), prefill_tokens=isl)
               for isl in prefill_points(caps.max_num_batched_tokens, granularity)]
    decode = [_fpm(decode_ms(bs, ctx), decode_requests=bs, decode_kv=bs * ctx)
              for bs, ctx in decode_points(caps.max_num_seqs, caps.max_kv_tokens, granularity)]
    return prefill, decode
