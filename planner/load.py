"""Load (reactive) scaling on every load tick (spec planner.md §7).

Inputs are the last-seen FPM of every (worker, dp rank) of a component, the ready worker
counts, whether a previous scaling is still in progress, the throughput loop's lower bounds and
the perf models (SLA target) - or static thresholds (easy targets, §7.5).

SLA rule per component: scale up by one when EVERY worker's estimate exceeds the SLA; else
scale down by one when N > 1 and a consolidation check (the load of N workers carried by N-1,
k = N/(N-1), must stay inside a `load_scaling_down_sensitivity` fraction of the SLA) passes on
every worker; else no opinion. Then the throughput floor, `min_endpoint` and the GPU budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from planner.budget import clamp_pair, clamp_single
from planner.config import PlannerConfig
from planner.perf_model import PerfModel
from planner.types import Capabilities, ForwardPassMetrics

FpmMap = Mapping[tuple[int, int], ForwardPassMetrics]

# Easy-mode static thresholds (§7.5): prefill = queued tokens / context length,
# decode = KV utilisation (scheduled + queued) / max_kv_tokens.
PREFILL_UP = {"throughput": 1.0, "latency": 0.1}
PREFILL_DOWN = {"throughput": 0.1, "latency": 0.0}
DECODE_UP = {"throughput": 1.0, "latency": 0.4}
DECODE_DOWN = {"throughput": 0.6, "latency": 0.1}

_REASON_PRIORITY = {
    "scale_up": 4,
    "scale_down_capped_by_throughput": 3,
    "scale_down": 2,
    "no_change": 1,
}


@dataclass
class LoadInputs:
    mode: str  # "agg" | "disagg"
    fpms: dict[str, FpmMap]  # component -> cached FPMs
    ready: dict[str, int]  # component -> ready (active) workers
    busy: dict[str, bool]  # component -> scaling still in progress (§6.2)
    lower_bound: dict[str, int]  # throughput floors
    kv_hit_rate: float | None = None
    accept_length: float = 1.0


@dataclass
class LoadResult:
    target: dict[str, int] | None = None  # SET per component; None = no opinion
    reason: str | None = None
    reason_prefill: str | None = None
    reason_decode: str | None = None
    est_ttft_ms: float | None = None
    est_itl_ms: float | None = None
    # per-worker estimates, for diagnostics
    ttft_estimates: list[float] = field(default_factory=list)
    itl_estimates: list[float] = field(default_factory=list)


@dataclass
class _Sub:
    """One sub-decision: desired replicas (None = no opinion) and why."""

    desired: int | None
    reason: str | None = None
    refused: bool = False
    estimates: list[float] = field(default_factory=list)


def fpm_coverage_ok(fpms: FpmMap, ready: int) -> bool:
    """Every ready worker reports all its dp ranks, and no other worker reports."""
    ranks: dict[int, set[int]] = {}
    for wid, dp in fpms:
        ranks.setdefault(wid, set()).add(dp)
    if len(ranks) != ready:
        return False
    sizes = {len(v) for v in ranks.values()}
    if len(sizes) > 1:
        return False
    dp_size = sizes.pop() if sizes else 1
    return len(fpms) == ready * dp_size


def scale_decision(estimates: list[float], sla: float, n: int, min_endpoint: int,
                   can_scale_down: bool) -> _Sub:
    if not estimates:
        return _Sub(None, "insufficient_data", estimates=estimates)
    if all(t > sla for t in estimates):
        return _Sub(n + 1, estimates=estimates)
    if n > 1 and can_scale_down:
        return _Sub(max(n - 1, min_endpoint), estimates=estimates)
    return _Sub(None, "no_change", estimates=estimates)


def _ordered(fpms: FpmMap) -> list[ForwardPassMetrics]:
    return [fpms[k] for k in sorted(fpms)]


class LoadScaler:
    def __init__(self, config: PlannerConfig, caps: Mapping[str, Capabilities],
                 models: Mapping[str, PerfModel]) -> None:
        self.config = config
        self.caps = caps
        self.models = models  # "prefill"/"decode"/"agg" (empty in easy mode)

    # ---- helpers ------------------------------------------------------------------------------

    def _gpu(self, component: str) -> int:
        caps = self.caps.get(component)
        return caps.num_gpu if caps is not None else 1

    def _single_budget(self, desired: int, component: str) -> int:
        c = self.config
        return clamp_single(max(desired, c.min_endpoint), self._gpu(component),
                            c.min_gpu_budget, c.max_gpu_budget, c.min_endpoint)

    def _k(self, n: int) -> float:
        return n / (n - 1) if n > 1 else 1.0

    # ---- SLA sub-decisions ----------------------------------------------------------------

    def _prefill_sla(self, fpms: FpmMap, n: int, kv: float | None) -> _Sub:
        model = self.models["prefill"]
        if not model.ready or n == 0 or model.caps.max_num_batched_tokens <= 0:
            return _Sub(None, "insufficient_data")
        return self._ttft_side(model, fpms, n, kv, agg=False)

    def _decode_sla(self, fpms: FpmMap, n: int, accept: float) -> _Sub:
        model = self.models["decode"]
        if not model.ready or n == 0:
            return _Sub(None, "insufficient_data")
        return self._itl_side(model, fpms, n, accept, agg=False)

    def _agg_prefill_sla(self, fpms: FpmMap, n: int, kv: float | None) -> _Sub:
        return self._ttft_side(self.models["agg"], fpms, n, kv, agg=True)

    def _ttft_side(self, model: PerfModel, fpms: FpmMap, n: int, kv: float | None,
                   agg: bool) -> _Sub:
        """Per-worker queued-prefill TTFT estimates and the prefill consolidation check.
        Aggregated workers also carry their decode work (scaled by k, queued decode included),
        and there a refusal to consolidate is an opinion ("stay"), not a missing signal."""
        c = self.config
        s = c.load_scaling_down_sensitivity / 100.0
        k = self._k(n)
        dk = k if agg else 1.0  # decode work moves with the consolidation only on agg workers
        estimates: list[float] = []
        can_down = n > 1
        refused = False
        for fpm in _ordered(fpms):
            est = model.estimate_queued_prefill_time_ms(fpm, kv_hit_rate=kv)
            if est is not None:
                estimates.append(est)
            if not can_down:
                continue
            t_own = model.estimate_queued_prefill_time_ms(
                fpm, kv_hit_rate=kv, queue_scale=0.0, decode_scale=dk, include_queued_decode=agg)
            post = model.estimate_queued_prefill_time_ms(
                fpm, kv_hit_rate=kv, queue_scale=k, decode_scale=dk, include_queued_decode=agg)
            if t_own is None or (agg and post is None):
                can_down = False
                continue
            budget = (c.ttft_ms - t_own) * s
            if budget <= 0 or (post is not None and post - t_own >= budget):
                can_down, refused = False, True
            elif post is None:
                can_down = False
        sub = scale_decision(estimates, c.ttft_ms, n, c.min_endpoint, can_down)
        if sub.desired is None and refused:
            if agg:
                sub.desired, sub.refused = n, True
            sub.reason = "scale_down_refused_consolidation"
        return sub

    def _agg_decode_sla(self, fpms: FpmMap, n: int, accept: float) -> _Sub:
        return self._itl_side(self.models["agg"], fpms, n, accept, agg=True)

    def _itl_side(self, model: PerfModel, fpms: FpmMap, n: int, accept: float,
                  agg: bool) -> _Sub:
        """Per-worker ITL estimates and the decode consolidation check (§7.3). Aggregated
        workers also count their queued prefill as KV, and for them a refusal is an opinion
        ("stay"), not a missing signal."""
        c = self.config
        s = c.load_scaling_down_sensitivity / 100.0
        k = self._k(n)
        max_kv = model.caps.max_kv_tokens
        estimates: list[float] = []
        can_down = n > 1
        refused = False
        for fpm in _ordered(fpms):
            est = model.estimate_scheduled_decode_itl_ms(fpm, include_queued_decode=True,
                                                         accept_length=accept)
            if est is not None:
                estimates.append(est)
            if not can_down:
                continue
            kv = fpm.sum_decode_kv_tokens + fpm.queued_decode_kv_tokens
            if agg:
                kv += fpm.queued_prefill_tokens
            if max_kv > 0 and int(kv * k) >= max_kv:
                can_down, refused = False, True
                continue
            post = model.estimate_scheduled_decode_itl_ms(
                fpm, decode_scale=k, include_queued_decode=True,
                include_queued_prefill_as_kv=agg, accept_length=accept)
            if post is None:
                can_down = False
            elif post >= c.itl_ms * s:
                can_down, refused = False, True
        sub = scale_decision(estimates, c.itl_ms, n, c.min_endpoint, can_down)
        if sub.desired is None and refused:
            sub.reason = "scale_down_refused_consolidation"
            if agg:
                sub.desired, sub.refused = n, True
        return sub

    # ---- easy sub-decisions (§7.5) ------------------------------------------------------------

    def _prefill_easy(self, fpms: FpmMap, n: int) -> _Sub:
        c = self.config
        if n == 0:
            return _Sub(None, "insufficient_data")
        target = c.optimization_target
        values: list[float]
        if target == "load":
            up_i, down_i = c.prefill_scale_up_queue_tokens, c.prefill_scale_down_queue_tokens
            if up_i is None or down_i is None:
                return _Sub(None, "insufficient_data")
            up, down = float(up_i), float(down_i)
            values = [float(f.queued_prefill_tokens) for f in _ordered(fpms)]
        else:
            caps = self.caps.get("prefill")
            ctx = caps.context_length if caps is not None else None
            if not ctx or ctx <= 0:
                return _Sub(None, "insufficient_data")
            up, down = PREFILL_UP[target], PREFILL_DOWN[target]
            values = [f.queued_prefill_tokens / ctx for f in _ordered(fpms)]
        if not values:
            return _Sub(None, "insufficient_data")
        if any(v >= up for v in values):
            return _Sub(n + 1)
        if n > 1:
            down_ok = (all(v < down for v in values) if target == "throughput"
                       else all(v <= down for v in values))
            if down_ok:
                return _Sub(max(n - 1, c.min_endpoint))
        return _Sub(None, "no_change")

    def _decode_easy(self, fpms: FpmMap, n: int, component: str, agg: bool) -> _Sub:
        c = self.config
        caps = self.caps.get(component)
        max_kv = caps.max_kv_tokens if caps is not None else 0
        if max_kv <= 0 or n == 0:
            return _Sub(None, "insufficient_data")
        target = c.optimization_target
        is_load = target == "load"
        if is_load:
            if c.decode_scale_up_kv_rate is None or c.decode_scale_down_kv_rate is None:
                return _Sub(None, "insufficient_data")
            up, down = c.decode_scale_up_kv_rate / 100.0, c.decode_scale_down_kv_rate / 100.0
        else:
            up, down = DECODE_UP[target], DECODE_DOWN[target]
        utils = []
        for f in _ordered(fpms):
            used = f.sum_decode_kv_tokens + f.queued_decode_kv_tokens
            if agg:
                used += f.queued_prefill_tokens
            utils.append(used / max_kv)
        if not utils:
            return _Sub(None, "insufficient_data")
        if any((u >= up) if is_load else (u > up) for u in utils):
            return _Sub(n + 1)
        down_ok = all((u <= down) if is_load else (u < down) for u in utils)
        if n > 1 and down_ok:
            return _Sub(max(n - 1, c.min_endpoint))
        return _Sub(None, "no_change")

    # ---- per-topology drivers -----------------------------------------------------------------

    def decide(self, inp: LoadInputs) -> LoadResult:
        if not self.config.enable_load_scaling:
            return LoadResult(reason="disabled")
        if inp.mode == "agg":
            return self._decide_agg(inp)
        return self._decide_disagg(inp)

    def _decide_agg(self, inp: LoadInputs) -> LoadResult:
        c = self.config
        fpms = inp.fpms.get("decode") or {}
        n = inp.ready.get("decode", 0)
        if not fpms:
            return LoadResult(reason="no_fpm_data")
        if inp.busy.get("decode", False):
            return LoadResult(reason="scaling_in_progress")
        if not fpm_coverage_ok(fpms, n):
            return LoadResult(reason="worker_count_mismatch")
        floor = inp.lower_bound.get("decode", 1) if c.throughput_active else 0

        if c.is_easy:
            sub = self._decode_easy(fpms, n, "decode", agg=True)
            if sub.desired is None:
                return LoadResult(reason=sub.reason)
            original = sub.desired
            desired = self._single_budget(max(original, c.min_endpoint, floor), "decode")
            if desired < n:
                reason = "scale_down_capped_by_throughput" if desired > original else "scale_down"
            elif desired > n:
                reason = "scale_up"
            else:
                reason = "no_change"
            return LoadResult(target={"decode": desired}, reason=reason)

        model = self.models["agg"]
        if not model.ready:
            return LoadResult(reason="insufficient_data")
        accept = inp.accept_length
        if model.caps.max_num_batched_tokens <= 0:
            p = _Sub(None)
        else:
            p = self._agg_prefill_sla(fpms, n, inp.kv_hit_rate)
        d = self._agg_decode_sla(fpms, n, accept)
        res = LoadResult(ttft_estimates=p.estimates, itl_estimates=d.estimates)
        res.est_ttft_ms = max(p.estimates) if p.estimates else None
        res.est_itl_ms = max(d.estimates) if d.estimates else None
        any_refused = p.refused or d.refused

        pd, dd = p.desired, d.desired
        if pd is not None and pd > n:
            desired = pd
        elif dd is not None and dd > n:
            desired = dd
        elif pd is None and dd is not None and dd < n:
            desired = dd  # prefill signal missing: decode alone may scale down
        elif pd is not None and pd < n and dd is not None and dd < n:
            desired = max(pd, dd)
        else:
            desired = n
        original = desired
        desired = self._single_budget(max(desired, c.min_endpoint, floor), "decode")
        floor_capped = desired > original and original < n
        if desired == n:
            if any_refused and not floor_capped:
                res.reason = "scale_down_refused_consolidation"
            else:
                res.reason = "scale_down_capped_by_throughput" if floor_capped else "no_change"
            return res
        if desired < n:
            res.reason = "scale_down_capped_by_throughput" if floor_capped else "scale_down"
        else:
            res.reason = "scale_up"
        res.target = {"decode": desired}
        return res

    def _decide_disagg(self, inp: LoadInputs) -> LoadResult:
        c = self.config
        p_fpms = inp.fpms.get("prefill") or {}
        d_fpms = inp.fpms.get("decode") or {}
        n_p = inp.ready.get("prefill", 0)
        n_d = inp.ready.get("decode", 0)

        def all_three(reason: str) -> LoadResult:
            return LoadResult(reason=reason, reason_prefill=reason, reason_decode=reason)

        if not p_fpms and not d_fpms:
            return all_three("no_fpm_data")
        if inp.busy.get("prefill", False) or inp.busy.get("decode", False):
            return all_three("scaling_in_progress")
        if p_fpms and not fpm_coverage_ok(p_fpms, n_p):
            return all_three("worker_count_mismatch")
        if d_fpms and not fpm_coverage_ok(d_fpms, n_d):
            return all_three("worker_count_mismatch")

        res = LoadResult()
        p = _Sub(None)
        d = _Sub(None)
        if p_fpms:
            p = (self._prefill_easy(p_fpms, n_p) if c.is_easy
                 else self._prefill_sla(p_fpms, n_p, inp.kv_hit_rate))
        if d_fpms:
            d = (self._decode_easy(d_fpms, n_d, "decode", agg=False) if c.is_easy
                 else self._decode_sla(d_fpms, n_d, inp.accept_length))
        res.ttft_estimates, res.itl_estimates = p.estimates, d.estimates
        res.est_ttft_ms = max(p.estimates) if p.estimates else None
        res.est_itl_ms = max(d.estimates) if d.estimates else None

        orig_p = p.desired if p.desired is not None else n_p
        orig_d = d.desired if d.desired is not None else n_d
        fp, fd = orig_p, orig_d
        if c.throughput_active:
            fp = max(fp, inp.lower_bound.get("prefill", 1))
            fd = max(fd, inp.lower_bound.get("decode", 1))
        post_p, post_d = fp, fd
        fp, fd = max(fp, c.min_endpoint), max(fd, c.min_endpoint)
        fp, fd = clamp_pair(fp, fd, self._gpu("prefill"), self._gpu("decode"),
                            c.min_gpu_budget, c.max_gpu_budget, c.min_endpoint)

        def reason_for(final: int, original: int, post_floor: int, current: int) -> str:
            capped = post_floor > original and original < current
            if final > current:
                return "scale_up"
            if final < current:
                return "scale_down_capped_by_throughput" if capped else "scale_down"
            return "scale_down_capped_by_throughput" if capped else "no_change"

        res.reason_prefill = reason_for(fp, orig_p, post_p, n_p)
        res.reason_decode = reason_for(fd, orig_d, post_d, n_d)
        res.reason = max((res.reason_prefill, res.reason_decode),
                         key=lambda r: _REASON_PRIORITY.get(r, 0))
        if fp == n_p and fd == n_d:
            if p.reason is not None and p.reason != "no_change":
                res.reason_prefill = p.reason
            if d.reason is not None and d.reason != "no_change":
                res.reason_decode = d.reason
            for cand in (p.reason, d.reason):
                if cand is not None and cand != "no_change":
                    res.reason = cand
                    break
            return res
        res.target = {"prefill": fp, "decode": fd}
        return res
