"""Summary dict (spec §10.1) against reference outputs and hand-computed expectations."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import GOLDEN, WALL_KEYS as _RUN_WALL_KEYS, cols_for
from dynosim.outputs.summary import (
    METRICS,
    build_summary,
    exact_stats,
    nearest_rank_index,
    round_half_away,
    sketch_quantile,
    sketch_value,
    stat_keys,
)
from engine.metrics import (
    SKETCH_ALPHA,
    STATUS_COMPLETED,
    STATUS_REJECTED,
    ZERO_BUCKET,
    MetricColumns,
    StreamStats,
)

WALL_KEYS = _RUN_WALL_KEYS | {"call_wall_s"}
STREAM_METRICS = ("itl_ms", "output_token_throughput_per_user")


def cols_from_records(records: list[dict[str, Any]]) -> MetricColumns:
    """MetricColumns as the engine would fill them (rows in completion order) from reference records."""
    return cols_for(records, list(range(len(records))))


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary_like(ref: dict[str, Any], cols: MetricColumns, **kw: Any) -> dict[str, Any]:
    return build_summary(
        cols,
        num_requests=ref["num_requests"],
        prefill_worker_seconds=ref["prefill_worker_seconds"],
        decode_worker_seconds=ref["decode_worker_seconds"],
        prefill_gpus_per_worker=ref["prefill_gpus_per_worker"],
        decode_gpus_per_worker=ref["decode_gpus_per_worker"],
        wall_time_ms=ref.get("wall_time_ms", 1.0),
        **kw,
    )


def assert_matches_reference(ours: dict[str, Any], ref: dict[str, Any], skip: tuple[str, ...]) -> int:
    """Exact for ints/strings/None/percentiles; mean/std within 1e-13 relative (the reference's
    own summation order varies between runs). Returns the number of keys compared."""
    n = 0
    for k, v in ref.items():
        if k in skip or any(m in k for m in STREAM_METRICS):
            continue
        n += 1
        got = ours[k]
        if (k.startswith("mean_") or k.startswith("std_")) and isinstance(v, float):
            assert type(got) is float
            assert got == pytest.approx(v, rel=1e-13, abs=0.0), k
        else:
            assert got == v and type(got) is type(v), (k, got, v)
    return n


def test_tiny_matches_reference_summary() -> None:
    ref = json.loads((GOLDEN / "summary_tiny_ref.json").read_text())
    cols = cols_from_records(load_jsonl(GOLDEN / "tiny_w1.per_request.jsonl"))
    cols.committed_prefill_tokens = 129007
    ours = summary_like(ref, cols)
    assert list(ours) == [k for k in ref if k != "call_wall_s"]
    assert assert_matches_reference(ours, ref, skip=("call_wall_s",)) > 40
    # Wall-clock rates follow the reference's exact operation order.
    assert ours["processed_tokens_per_s"] == ref["processed_tokens_per_s"]
    assert ours["processed_output_tokens_per_s"] == ref["processed_output_tokens_per_s"]
    assert ours["gpu_hours"] == ref["gpu_hours"]
    # The engine-supplied streams are empty here, so their stats are all None.
    for m in STREAM_METRICS:
        assert all(ours[k] is None for k in stat_keys(m))
    json.dumps(ours)


def test_tiny_mean_std_bit_exact() -> None:
    # Completion-order mean + sorted-order squared deviations reproduce this run exactly.
    ref = json.loads((GOLDEN / "summary_tiny_ref.json").read_text())
    cols = cols_from_records(load_jsonl(GOLDEN / "tiny_w1.per_request.jsonl"))
    ours = summary_like(ref, cols)
    for m in ("ttft_ms", "ttst_ms", "tpot_ms", "e2e_latency_ms"):
        for k in stat_keys(m):
            assert ours[k] == ref[k], k


def test_rejections_match_reference() -> None:
    # max_model_len=7000: 8 of 16 requests rejected (no tokens, no admission).
    ref = json.loads((GOLDEN / "tiny_maxlen_w1.json").read_text())
    recs = load_jsonl(GOLDEN / "tiny_maxlen_w1.per_request.jsonl")
    assert sum(r["terminal_status"] == "rejected" for r in recs) == 8
    cols = cols_from_records(recs)
    cols.committed_prefill_tokens = ref["committed_prefill_tokens"]
    ours = summary_like(ref, cols)
    assert [k for k in ours if k not in WALL_KEYS] == [k for k in ref if k not in WALL_KEYS]
    assert ours["completed_requests"] == 8 and ours["num_requests"] == 16
    assert_matches_reference(ours, ref, skip=WALL_KEYS)


def _cols(rows: list[dict[str, Any]]) -> MetricColumns:
    c = MetricColumns()
    for i, r in enumerate(rows):
        c.req.append(i)
        c.worker.append(0)
        c.status.append(r.get("status", STATUS_COMPLETED))
        c.arrival_ms.append(r["arrival"])
        c.first_admit_ms.append(r.get("admit", r["arrival"]))
        c.first_token_ms.append(r.get("first", -1.0))
        c.second_token_ms.append(r.get("second", -1.0))
        c.last_token_ms.append(r.get("last", -1.0))
        c.terminal_ms.append(r.get("terminal", r.get("last", r["arrival"])))
        c.input_length.append(r.get("isl", 100))
        c.requested_output.append(r["out"])
        c.output_tokens.append(r["out"])
        c.reused_tokens.append(r.get("reused", 0))
        c.first_reused_tokens.append(r.get("first_reused", r.get("reused", 0)))
        c.admissions.append(1)
    return c


def _build(cols: MetricColumns, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        num_requests=len(cols),
        prefill_worker_seconds=0.0,
        decode_worker_seconds=10.0,
        prefill_gpus_per_worker=0,
        decode_gpus_per_worker=1,
        wall_time_ms=4.0,
    )
    args.update(kw)
    return build_summary(cols, **args)


HAND_ROWS: list[dict[str, Any]] = [
    # 3 tokens: ttft 10, ttst 5, tpot (30-10)/2 = 10, e2e 30
    {"arrival": 0.0, "first": 10.0, "second": 15.0, "last": 30.0, "out": 3, "isl": 100, "reused": 50},
    # 1 token: ttft = e2e = 20; no ttst/tpot sample
    {"arrival": 5.0, "first": 25.0, "last": 25.0, "out": 1, "isl": 200, "reused": 0},
    # 0 tokens, completed: counted in completed_requests/totals, no token-based sample
    {"arrival": 6.0, "terminal": 40.0, "out": 0, "isl": 300, "reused": 100, "first_reused": 20},
    # rejected: not counted anywhere except num_requests
    {"arrival": 7.0, "terminal": 99.0, "out": 0, "isl": 5000, "status": STATUS_REJECTED},
]


def test_sample_membership_and_totals() -> None:
    s = _build(_cols(HAND_ROWS))
    assert s["num_requests"] == 4
    assert s["completed_requests"] == 3
    assert s["total_input_tokens"] == 600
    assert s["total_output_tokens"] == 4
    assert s["duration_ms"] == 40.0  # the zero-token completion is the last terminal event
    assert s["request_throughput_rps"] == 3 / 0.04
    assert s["total_throughput_tok_s"] == 604 / 0.04
    assert (s["num_ttft_samples"], s["num_tpot_samples"], s["num_e2e_latency_samples"]) == (2, 1, 2)
    assert s["mean_ttft_ms"] == 15.0 and s["min_ttft_ms"] == 10.0 and s["max_ttft_ms"] == 20.0
    assert s["median_ttft_ms"] == 20.0  # index round(0.5) = 1 (half away from zero)
    assert s["std_ttft_ms"] == 5.0
    assert s["mean_ttst_ms"] == 5.0 and s["std_ttst_ms"] == 0.0
    assert s["mean_tpot_ms"] == 10.0
    assert s["mean_e2e_latency_ms"] == 25.0
    assert s["prefix_cache_reused_ratio"] == 150 / 600
    assert s["first_admission_prefix_cache_reused_ratio"] == 70 / 600
    assert s["processed_tokens"] == 604
    assert s["processed_tokens_per_s"] == 604 / 4.0 * 1000.0
    assert s["gpu_hours"] == 10.0 / 3600
    assert s["power_w"] is None and s["power_coverage"] is None
    assert "goodput_completed_requests" not in s


def test_gpu_hours_combines_roles() -> None:
    s = _build(
        _cols(HAND_ROWS[:1]),
        prefill_worker_seconds=7200.0,
        prefill_gpus_per_worker=2,
        decode_worker_seconds=3600.0,
        decode_gpus_per_worker=4,
    )
    assert s["gpu_hours"] == 8.0
    # 8 workers × 3542.944 s (spec §8)
    s = _build(_cols(HAND_ROWS[:1]), decode_worker_seconds=8 * 3542.944)
    assert s["gpu_hours"] == pytest.approx(7.8732, abs=5e-5)


def test_empty_run() -> None:
    s = _build(MetricColumns(), num_requests=0, wall_time_ms=0.0)
    assert s["completed_requests"] == 0 and s["duration_ms"] == 0.0
    assert s["request_throughput_rps"] == 0.0 and s["processed_tokens_per_s"] == 0.0
    assert s["prefix_cache_reused_ratio"] == 0.0
    for m in METRICS:
        assert all(s[k] is None for k in stat_keys(m))
    json.dumps(s)


def test_goodput_keys_and_bounds() -> None:
    rows = [
        {"arrival": 0.0, "first": 100.0, "second": 110.0, "last": 300.0, "out": 11},  # tpot 20
        {"arrival": 0.0, "first": 50.0, "second": 60.0, "last": 150.0, "out": 11},  # tpot 10
        {"arrival": 0.0, "first": 10.0, "last": 10.0, "out": 1},  # itl check skipped
        {"arrival": 0.0, "terminal": 5.0, "out": 0},  # no token: fails ttft/e2e bounds
    ]
    cols = _cols(rows)
    s = _build(cols, sla_ttft_ms=100.0)  # inclusive bound
    keys = list(s)
    i = keys.index("power_coverage")
    assert keys[i + 1 : i + 5] == [
        "goodput_completed_requests",
        "goodput_request_throughput_rps",
        "goodput_output_throughput_tok_s",
        "processed_tokens",
    ]
    assert s["goodput_completed_requests"] == 3
    assert s["goodput_request_throughput_rps"] == 3 / 0.3
    assert s["goodput_output_throughput_tok_s"] == 23 / 0.3
    s = _build(cols, sla_itl_ms=10.0)
    assert s["goodput_completed_requests"] == 3  # 0- and 1-token requests skip the ITL check
    s = _build(cols, sla_itl_ms=10.0, sla_e2e_ms=149.0)
    assert s["goodput_completed_requests"] == 1
    assert s["goodput_output_throughput_tok_s"] == 1 / 0.3


def test_rust_rounding_and_ranks() -> None:
    assert [round_half_away(x) for x in (0.5, 1.5, 2.5, 13.5, 2.4999, 0.49999999999999994)] == [
        1, 2, 3, 14, 2, 0,
    ]
    assert round_half_away(-2.5) == -3
    assert [nearest_rank_index(16, p) for p in (50, 75, 90, 95, 99)] == [8, 11, 14, 14, 15]
    assert nearest_rank_index(2, 50) == 1  # numpy/bankers rounding would give 0
    assert nearest_rank_index(1, 99) == 0
    assert [nearest_rank_index(101, p) for p in (50, 75, 90, 95, 99)] == [50, 75, 90, 95, 99]


def test_exact_stats_population_std_and_ranks() -> None:
    rng = np.random.default_rng(7)
    x = rng.exponential(100.0, size=1001)
    mean, mn, mx, med, p75, p90, p95, p99, std = exact_stats(x)
    s = np.sort(x)
    assert (mn, mx) == (s[0], s[-1])
    assert (med, p75, p90, p95, p99) == (s[500], s[750], s[900], s[950], s[990])
    assert mean == pytest.approx(float(np.mean(x)), rel=1e-14)
    assert std == pytest.approx(float(np.std(x, ddof=0)), rel=1e-12)
    assert std != pytest.approx(float(np.std(x, ddof=1)), rel=1e-6)
    assert exact_stats(np.array([])) == [None] * 9


def test_sketch_values_reproduce_reference_percentiles() -> None:
    # Every sketch percentile of the tiny run is a bucket value; reproduce them bit-for-bit.
    ref = json.loads((GOLDEN / "summary_tiny_ref.json").read_text())
    expected = {
        "median_itl_ms": 1191,
        "p75_itl_ms": 1212,
        "p90_itl_ms": 1227,
        "p95_itl_ms": 1227,
        "p99_itl_ms": 2590,
        "median_output_token_throughput_per_user": 2264,
        "p75_output_token_throughput_per_user": 2268,
        "p90_output_token_throughput_per_user": 2453,
        "p95_output_token_throughput_per_user": 2478,
        "p99_output_token_throughput_per_user": 2547,
    }
    for k, key in expected.items():
        assert sketch_value(key) == ref[k], k
    assert sketch_value(ZERO_BUCKET) == 0.0


def _brute(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[int(math.floor(q * (len(s) - 1)))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sketch_quantiles_within_relative_accuracy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gaps = np.concatenate([rng.normal(11.0, 0.6, 5000), rng.uniform(150, 200, 60)]).clip(0.5)
    st = StreamStats()
    for g in gaps.tolist():
        st.add(g)
    for q in (0.5, 0.75, 0.9, 0.95, 0.99):
        got = sketch_quantile(st.buckets, q)
        want = _brute(gaps.tolist(), q)
        assert got is not None
        assert abs(got - want) <= SKETCH_ALPHA * want * (1 + 1e-9), (q, got, want)


def test_sketch_rank_walk() -> None:
    # Hand-made buckets: counts 2, 3, 5 at keys 10, 20, 30 (n = 10, ranks q*9).
    b = {30: 5, 10: 2, 20: 3}
    assert sketch_quantile(b, 0.0) == sketch_value(10)
    assert sketch_quantile(b, 1 / 9) == sketch_value(10)  # rank 1 < cum 2
    assert sketch_quantile(b, 2 / 9) == sketch_value(20)  # rank 2: cum must exceed it
    assert sketch_quantile(b, 0.5) == sketch_value(20)  # rank 4.5 < cum 5
    assert sketch_quantile(b, 0.56) == sketch_value(30)  # rank 5.04
    assert sketch_quantile(b, 1.0) == sketch_value(30)
    assert sketch_quantile({}, 0.5) is None
    # Zeros sort first and report 0.0.
    st = StreamStats()
    for v in (0.0, 0.0, 0.0, 5.0):
        st.add(v)
    assert sketch_quantile(st.buckets, 0.5) == 0.0
    assert sketch_quantile(st.buckets, 1.0) == pytest.approx(5.0, rel=SKETCH_ALPHA)


def test_stream_metrics_use_exact_moments() -> None:
    gaps = [6.0, 10.0, 10.5, 11.0, 180.0]
    c = _cols(HAND_ROWS[:1])
    for g in gaps:
        c.itl.add(g)
        c.user_tput.add(1000.0 / g)
    s = _build(c)
    assert s["mean_itl_ms"] == pytest.approx(np.mean(gaps), rel=1e-15)
    assert s["min_itl_ms"] == 6.0 and s["max_itl_ms"] == 180.0
    assert s["std_itl_ms"] == pytest.approx(float(np.std(gaps)), rel=1e-12)
    assert s["median_itl_ms"] == pytest.approx(10.5, rel=SKETCH_ALPHA)
    # rank 0.99*4 = 3.96: the 4th value's bucket is the first whose cumulative count (4) exceeds it
    assert s["p99_itl_ms"] == pytest.approx(11.0, rel=SKETCH_ALPHA)
    tput = [1000.0 / g for g in gaps]
    assert s["max_output_token_throughput_per_user"] == max(tput)
    assert s["median_output_token_throughput_per_user"] == pytest.approx(1000 / 10.5, rel=SKETCH_ALPHA)


def test_values_are_plain_python_types() -> None:
    c = _cols(HAND_ROWS)
    c.itl.add(3.0)
    c.user_tput.add(1000 / 3.0)
    s = _build(c, sla_ttft_ms=50.0)
    for k, v in s.items():
        assert type(v) in (int, float, str, type(None)), (k, type(v))
    assert json.loads(json.dumps(s)) == s


def test_200k_requests_summarise_fast() -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    arrival = np.sort(rng.uniform(0, 3.6e6, n))
    first = arrival + rng.exponential(500.0, n)
    out = rng.integers(1, 800, n)
    second = np.where(out >= 2, first + 11.0, -1.0)
    last = first + (out - 1) * 11.5
    order = np.argsort(last, kind="stable")
    c = MetricColumns()
    c.req = order.tolist()
    c.worker = [0] * n
    c.status = [STATUS_COMPLETED] * n
    c.arrival_ms = arrival[order].tolist()
    c.first_admit_ms = arrival[order].tolist()
    c.first_token_ms = first[order].tolist()
    c.second_token_ms = second[order].tolist()
    c.last_token_ms = last[order].tolist()
    c.terminal_ms = last[order].tolist()
    c.input_length = rng.integers(100, 20000, n)[order].tolist()
    c.requested_output = out[order].tolist()
    c.output_tokens = out[order].tolist()
    c.reused_tokens = [0] * n
    c.first_reused_tokens = [0] * n
    c.admissions = [1] * n
    for g in rng.normal(11.5, 1.0, 20000).clip(1.0).tolist():
        c.itl.add(g)
        c.user_tput.add(1000.0 / g)
    t0 = time.perf_counter()
    s = _build(c, num_requests=n)
    elapsed = time.perf_counter() - t0
    assert s["num_ttft_samples"] == n
    assert s["max_e2e_latency_ms"] == float(np.max(last - arrival))
    assert elapsed < 1.0, elapsed
