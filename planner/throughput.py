"""Throughput (predictive) scaling, SLA target only (spec planner.md §4).

On a throughput tick the predicted request count becomes a demand rate
(`predicted_num_req / traffic duration`), the perf model gives one engine's sustainable rate
for the predicted request shape, and the replica need is `max(ceil(demand / engine), min)`.

With load scaling on, that need only becomes the load loop's floor (`set_lower_bound`); with it
off, it is budget-clamped and proposed as the target (`scale`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.budget import clamp_pair, clamp_single
from planner.config import PlannerConfig
from planner.perf_model import PerfModel


@dataclass
class ThroughputResult:
    # component ("prefill"/"decode") -> replicas needed; empty = no decision
    desired: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    reason_prefill: str | None = None
    reason_decode: str | None = None
    engine_rps_prefill: float | None = None
    engine_rps_decode: float | None = None


def _replicas(demand_rps: float, engine_rps: float, min_endpoint: int) -> int:
    return max(math.ceil(demand_rps / engine_rps), min_endpoint)


def compute_agg(model: PerfModel, config: PlannerConfig, demand_rps: float, isl: float,
                osl: float) -> ThroughputResult:
    res = ThroughputResult()
    if model.caps.max_num_batched_tokens <= 0:
        res.reason = "model_not_ready"
        return res
    cap = model.capacity_for(isl, osl, ttft_sla_ms=config.ttft_ms, itl_sla_ms=config.itl_ms)
    if cap is None or cap.rps <= 0:
        res.reason = "model_not_ready"
        return res
    res.engine_rps_prefill = res.engine_rps_decode = cap.rps
    res.desired["decode"] = _replicas(demand_rps, cap.rps, config.min_endpoint)
    return res


def compute_disagg(prefill: PerfModel, decode: PerfModel, config: PlannerConfig,
                   demand_rps: float, isl: float, osl: float) -> ThroughputResult:
    res = ThroughputResult()
    p_cap = prefill.capacity_for(isl, osl, ttft_sla_ms=config.ttft_ms)
    d_cap = decode.capacity_for(isl, osl, itl_sla_ms=config.itl_ms)
    p_ok = p_cap is not None and p_cap.rps > 0
    d_ok = d_cap is not None and d_cap.rps > 0
    if p_cap is not None and p_ok:
        res.engine_rps_prefill = p_cap.rps
    if d_cap is not None and d_ok:
        res.engine_rps_decode = d_cap.rps
    if not (p_ok and d_ok) or p_cap is None or d_cap is None:
        res.reason = "model_not_ready"
        res.reason_prefill = "partner_not_ready" if p_ok else "model_not_ready"
        res.reason_decode = "partner_not_ready" if d_ok else "model_not_ready"
        return res
    res.desired["prefill"] = _replicas(demand_rps, p_cap.rps, config.min_endpoint)
    res.desired["decode"] = _replicas(demand_rps, d_cap.rps, config.min_endpoint)
    return res


def proposal(res: ThroughputResult, config: PlannerConfig, mode: str, gpu: dict[str, int]
             ) -> dict[str, int]:
    """The budget-clamped SET targets when load scaling is off (reason `scale`)."""
    if mode == "agg":
        d = clamp_single(max(res.desired["decode"], config.min_endpoint), gpu["decode"],
                         config.min_gpu_budget, config.max_gpu_budget, config.min_endpoint)
        return {"decode": d}
    p, d = clamp_pair(res.desired["prefill"], res.desired["decode"], gpu["prefill"],
                      gpu["decode"], config.min_gpu_budget, config.max_gpu_budget,
                      config.min_endpoint)
    return {"prefill": p, "decode": d}
