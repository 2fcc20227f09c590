"""Turn the engine's metric columns into the reference's summary dict (spec §10.1).

Everything returned is a plain Python ``int``/``float``/``str``/``None`` so the dict can be
JSON-serialised directly; numpy is used only internally for speed.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from engine.metrics import SKETCH_LN_GAMMA, STATUS_COMPLETED, ZERO_BUCKET, MetricColumns, StreamStats

# DDSketch value reconstruction. The reference derives ln(gamma) as log1p(2a/(1-a)) and maps a
# bucket key k back to exp(k*ln_gamma) * (2/(1+gamma)); this form reproduces its percentiles
# bit-for-bit (log((1+a)/(1-a)) differs in the last ulp).
_LN_GAMMA = SKETCH_LN_GAMMA
_GAMMA = math.exp(_LN_GAMMA)  # not SKETCH_GAMMA: exp(ln gamma) is what the reference maps with
_VALUE_SCALE = 2.0 / (1.0 + _GAMMA)

_PERCENTILES: tuple[tuple[str, float], ...] = (
    ("median", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
)

# Metric names in emission order; the last one has no "_ms" suffix.
METRICS: tuple[str, ...] = (
    "ttft_ms",
    "ttst_ms",
    "tpot_ms",
    "itl_ms",
    "e2e_latency_ms",
    "output_token_throughput_per_user",
)


def stat_keys(metric: str) -> list[str]:
    """The nine summary keys for one metric, in emission order."""
    return [
        f"mean_{metric}",
        f"min_{metric}",
        f"max_{metric}",
        f"median_{metric}",
        f"p75_{metric}",
        f"p90_{metric}",
        f"p95_{metric}",
        f"p99_{metric}",
        f"std_{metric}",
    ]


def round_half_away(x: float) -> int:
    """Rust ``f64::round``: halves go away from zero."""
    if x < 0.0:
        return -round_half_away(-x)
    f = math.floor(x)
    return int(f) + 1 if x - f >= 0.5 else int(f)


def nearest_rank_index(n: int, p: float) -> int:
    """0-based index into a sorted sample of size n for percentile p (0..100)."""
    idx = round_half_away(float(n - 1) * p / 100.0)
    return min(max(idx, 0), n - 1)


def _seq_sum(a: np.ndarray) -> float:
    # Left-to-right accumulation (as a plain loop would do), not numpy's pairwise sum.
    if a.size == 0:
        return 0.0
    return float(np.cumsum(a)[-1])


def exact_stats(sample: np.ndarray) -> list[float | None]:
    """mean, min, max, median, p75, p90, p95, p99, std (population) of an exact sample.

    ``sample`` is in completion order (the MetricColumns row order). The mean is accumulated
    left to right in that order and the squared deviations left to right over the sorted sample.
    Min/max/percentiles are exact; the reference's summation order is not recoverable (it varies
    between runs' internal orderings), so mean/std agree with it to ~1e-15 relative, and
    bit-for-bit on the 16-request tiny run.
    """
    n = int(sample.size)
    if n == 0:
        return [None] * 9
    x = sample.astype(np.float64, copy=False)
    mean = _seq_sum(x) / n
    s = np.sort(x, kind="stable")
    dev = s - mean
    std = math.sqrt(_seq_sum(dev * dev) / n)
    out: list[float | None] = [mean, float(s[0]), float(s[-1])]
    for _, p in _PERCENTILES:
        out.append(float(s[nearest_rank_index(n, p)]))
    out.append(std)
    return out


def sketch_value(key: int) -> float:
    """Representative value of a DDSketch bucket."""
    if key == ZERO_BUCKET:
        return 0.0
    return math.exp(key * _LN_GAMMA) * _VALUE_SCALE


def sketch_quantile(buckets: dict[int, int], q: float) -> float | None:
    """Quantile q (0..1) of a DDSketch given as {bucket key: count}."""
    if not buckets:
        return None
    keys = np.fromiter(buckets.keys(), dtype=np.int64, count=len(buckets))
    counts = np.fromiter(buckets.values(), dtype=np.int64, count=len(buckets))
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    cum = np.cumsum(counts[order])
    total = int(cum[-1])
    if total <= 0:
        return None
    rank = q * float(total - 1)
    i = int(np.searchsorted(cum, rank, side="right"))  # first cum > rank
    if i >= keys.size:
        i = keys.size - 1
    return sketch_value(int(keys[i]))


def stream_stats(st: StreamStats) -> list[float | None]:
    """mean, min, max, median, p75, p90, p95, p99, std from streaming stats + sketch."""
    n = st.count
    if n <= 0:
        return [None] * 9
    out: list[float | None] = [st.total / n, float(st.min), float(st.max)]
    for _, p in _PERCENTILES:
        out.append(sketch_quantile(st.buckets, p / 100.0))
    out.append(math.sqrt(max(st.m2, 0.0) / n))
    return out


def _arr(values: Iterable[Any], dtype: Any) -> np.ndarray:
    return np.asarray(values, dtype=dtype)


def _per_s(count: float, ms: float) -> float:
    """Rate over a simulated duration: count / (ms / 1000) (bit-exact with the reference)."""
    if ms <= 0.0:
        return 0.0
    return count / (ms / 1000.0)


def _per_wall_s(count: float, ms: float) -> float:
    """Rate over wall time: count / ms * 1000 (the reference's operation order for these keys)."""
    if ms <= 0.0:
        return 0.0
    return count / ms * 1000.0


def build_summary(
    cols: MetricColumns,
    *,
    num_requests: int,
    prefill_worker_seconds: float,
    decode_worker_seconds: float,
    prefill_gpus_per_worker: int,
    decode_gpus_per_worker: int,
    wall_time_ms: float,
    sla_ttft_ms: float | None = None,
    sla_itl_ms: float | None = None,
    sla_e2e_ms: float | None = None,
) -> dict[str, Any]:
    status = _arr(cols.status, np.int64)
    done = status == STATUS_COMPLETED

    arrival = _arr(cols.arrival_ms, np.float64)[done]
    first = _arr(cols.first_token_ms, np.float64)[done]
    second = _arr(cols.second_token_ms, np.float64)[done]
    last = _arr(cols.last_token_ms, np.float64)[done]
    terminal = _arr(cols.terminal_ms, np.float64)[done]
    isl = _arr(cols.input_length, np.int64)[done]
    out_tok = _arr(cols.output_tokens, np.int64)[done]
    reused = _arr(cols.reused_tokens, np.int64)
    if len(cols.decode_reused_tokens) == len(reused):
        # Disagg: the reference's ratio takes each request's best reuse over all admissions,
        # decode-side readmissions included (its per-request field is the prefill side only).
        reused = np.maximum(reused, _arr(cols.decode_reused_tokens, np.int64))
    reused = reused[done]
    first_reused = _arr(cols.first_reused_tokens, np.int64)[done]

    completed = int(done.sum())
    total_in = int(isl.sum())
    total_out = int(out_tok.sum())
    duration_ms = float(terminal.max()) if completed else 0.0

    has1 = out_tok >= 1
    has2 = out_tok >= 2
    ttft = first[has1] - arrival[has1]
    e2e = last[has1] - arrival[has1]
    ttst = second[has2] - first[has2]
    tpot = (last[has2] - first[has2]) / (out_tok[has2] - 1).astype(np.float64)

    processed = total_in + total_out
    s: dict[str, Any] = {
        "kv_eviction_policy": "lru",
        "committed_prefill_tokens": int(cols.committed_prefill_tokens),
        "num_requests": int(num_requests),
        "completed_requests": completed,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "duration_ms": duration_ms,
        "wall_time_ms": float(wall_time_ms),
        "request_throughput_rps": _per_s(completed, duration_ms),
        "input_throughput_tok_s": _per_s(total_in, duration_ms),
        "output_throughput_tok_s": _per_s(total_out, duration_ms),
        "total_throughput_tok_s": _per_s(total_in + total_out, duration_ms),
        "prefill_worker_seconds": float(prefill_worker_seconds),
        "decode_worker_seconds": float(decode_worker_seconds),
        "prefill_gpus_per_worker": int(prefill_gpus_per_worker),
        "decode_gpus_per_worker": int(decode_gpus_per_worker),
        "gpu_hours": (
            float(prefill_worker_seconds) * prefill_gpus_per_worker
            + float(decode_worker_seconds) * decode_gpus_per_worker
        )
        / 3600.0,
        "power_w": None,
        "power_coverage": None,
    }

    if sla_ttft_ms is not None or sla_itl_ms is not None or sla_e2e_ms is not None:
        good = np.ones(completed, dtype=bool)
        # A request that produced no token has no TTFT/E2E sample, so it cannot meet those bounds.
        all_ttft = first - arrival
        all_e2e = last - arrival
        if sla_ttft_ms is not None:
            good &= has1 & (all_ttft <= sla_ttft_ms)
        if sla_e2e_ms is not None:
            good &= has1 & (all_e2e <= sla_e2e_ms)
        if sla_itl_ms is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                itl = (all_e2e - all_ttft) / (out_tok - 1).astype(np.float64)
            good &= (out_tok <= 1) | (itl <= sla_itl_ms)
        n_good = int(good.sum())
        s["goodput_completed_requests"] = n_good
        s["goodput_request_throughput_rps"] = _per_s(n_good, duration_ms)
        s["goodput_output_throughput_tok_s"] = _per_s(int(out_tok[good].sum()), duration_ms)

    s["processed_tokens"] = processed
    s["processed_tokens_per_s"] = _per_wall_s(processed, wall_time_ms)
    s["processed_output_tokens_per_s"] = _per_wall_s(total_out, wall_time_ms)
    s["prefix_cache_reused_ratio"] = float(reused.sum()) / total_in if total_in else 0.0
    s["first_admission_prefix_cache_reused_ratio"] = (
        float(first_reused.sum()) / total_in if total_in else 0.0
    )
    s["num_ttft_samples"] = int(ttft.size)
    s["num_tpot_samples"] = int(tpot.size)
    s["num_e2e_latency_samples"] = int(e2e.size)

    values: dict[str, list[float | None]] = {
        "ttft_ms": exact_stats(ttft),
        "ttst_ms": exact_stats(ttst),
        "tpot_ms": exact_stats(tpot),
        "itl_ms": stream_stats(cols.itl),
        "e2e_latency_ms": exact_stats(e2e),
        "output_token_throughput_per_user": stream_stats(cols.user_tput),
    }
    for metric in METRICS:
        for key, v in zip(stat_keys(metric), values[metric]):
            s[key] = v
    return s
