"""What one sweep point measures: the run report's summary values plus the planner's figures
and a few derived ones users rank by. One flat `name -> number` mapping per point, built from the
point's JSON report only (so a resumed sweep rebuilds it from the file on disk)."""
from __future__ import annotations

import math
from typing import Any, Mapping

from dynosim.outputs.summary import METRICS, stat_keys

# Summary scalars of the run report (the reference's keys) that are numbers.
_SUMMARY_SCALARS = (
    "num_requests", "completed_requests", "total_input_tokens", "total_output_tokens",
    "duration_ms", "request_throughput_rps", "input_throughput_tok_s",
    "output_throughput_tok_s", "total_throughput_tok_s", "prefill_worker_seconds",
    "decode_worker_seconds", "gpu_hours", "prefix_cache_reused_ratio",
    "goodput_completed_requests", "goodput_request_throughput_rps",
    "goodput_output_throughput_tok_s",
)
# Ours, derived per point (see `point_metrics`).
DERIVED = {
    "gpus": "peak GPUs provisioned (workers x TP per pool; with a planner the most it scaled to)",
    "initial_gpus": "GPUs at the start (workers x TP per pool)",
    "avg_gpus": "time-averaged GPUs: gpu_hours / run hours",
    "output_tok_s_per_gpu": "output_throughput_tok_s / avg_gpus",
    "output_tok_s_per_user": "mean_output_token_throughput_per_user",
    "scaling_events": "planner scaling events (0 without a planner)",
    "gpu_hours_planner": "the planner's active-replica GPU-hours (= gpu_hours without one)",
    "planner_ticks": "planner ticks (0 without a planner)",
    "rejected_requests": "requests the engine rejected",
    "stranded_requests": "requests left waiting when the replay ran out of events (it did not finish)",
}
METRIC_NAMES: tuple[str, ...] = (
    *_SUMMARY_SCALARS,
    *(k for m in METRICS for k in stat_keys(m)),
    *DERIVED,
)
_MAXIMISE_HINTS = ("throughput", "tok_s", "_rps", "goodput", "reused_ratio",
                   "completed_requests", "per_user")


def default_goal(metric: str) -> str:
    """'max' for rates and throughputs, 'min' for latencies, GPUs, GPU-hours, events."""
    return "max" if any(h in metric for h in _MAXIMISE_HINTS) else "min"


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _peak_gpus(run: Mapping[str, Any], tp: Mapping[str, int]) -> int:
    """Replays the planner's scaling events over the initial worker counts."""
    counts = dict(run.get("workers", {}))
    alias = {"agg": "aggregated", "decode": "decode", "prefill": "prefill"}

    def gpus() -> int:
        return sum(n * tp.get(pool, 1) for pool, n in counts.items())

    peak = gpus()
    planner = run.get("planner") or {}
    for ev in planner.get("scaling_events", []):
        pool = alias.get(ev["component"], ev["component"])
        if pool == "decode" and "aggregated" in counts:
            pool = "aggregated"
        counts[pool] = ev["to"]
        peak = max(peak, gpus())
    return peak


def point_metrics(report: Mapping[str, Any]) -> dict[str, float | None]:
    """Every metric of METRIC_NAMES from one run's JSON report (None where it has no value)."""
    run = report["dynosim"]
    out: dict[str, float | None] = {k: _num(report.get(k)) for k in METRIC_NAMES
                                    if k not in DERIVED}
    tp = {"aggregated": int(report.get("decode_gpus_per_worker") or 1),
          "decode": int(report.get("decode_gpus_per_worker") or 1),
          "prefill": int(report.get("prefill_gpus_per_worker") or 1)}
    initial = sum(n * tp.get(pool, 1) for pool, n in run.get("workers", {}).items())
    planner = run.get("planner")
    duration_h = (out["duration_ms"] or 0.0) / 3.6e6
    gpu_hours = out["gpu_hours"]
    avg = gpu_hours / duration_h if gpu_hours is not None and duration_h > 0 else None
    tput = out["output_throughput_tok_s"]
    out.update({
        "gpus": float(_peak_gpus(run, tp)),
        "initial_gpus": float(initial),
        "avg_gpus": avg,
        "output_tok_s_per_gpu": tput / avg if tput is not None and avg else None,
        "output_tok_s_per_user": out.get("mean_output_token_throughput_per_user"),
        "scaling_events": float(planner["num_scaling_events"]) if planner else 0.0,
        "gpu_hours_planner": (_num(planner["gpu_hours_planner"]) if planner else gpu_hours),
        "planner_ticks": float(planner["total_ticks"]) if planner else 0.0,
        "rejected_requests": _num(run.get("rejected_requests")),
        "stranded_requests": _num(run.get("stranded_requests")),
    })
    return {k: (v if v is None or math.isfinite(v) else None) for k, v in out.items()}
