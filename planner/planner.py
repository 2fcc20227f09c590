"""The planner in the loop: one `Planner.tick(observation)` per scale interval (spec §2.2).

Per tick, in order:
 1. tick kinds: a load tick every `load_adjustment_interval_seconds`, a throughput tick every
    `throughput_adjustment_interval_seconds` (SLA target only), both anchored at t = 0;
 2. worker counts: ready = active, non-draining = active + starting; the remembered target of
    the last scale request gives `expected` / `in_progress` (§6.2);
 3. the last-seen FPM cache per (worker, dp rank) is refreshed and pruned to active workers;
    traffic windows are merged until a tick consumes them;
 4. GPU-hours (planner view, §6.3): active replicas x GPUs x time since the previous tick,
    from the second tick on;
 5. load tick + SLA target: every cached FPM is added to the perf model(s);
 6. throughput tick: predictors observe the window and forecast; the throughput loop sets the
    load loop's floor (load on) or proposes targets (load off);
 7. load tick: the load loop proposes targets;
 8. merge (load beats throughput), project against the ready counts, final budget clamp,
    compare with the non-draining counts -> ScalingEvents and absolute targets.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Mapping, Sequence

from planner.budget import clamp_pair, clamp_single
from planner.config import PlannerConfig, ResolvedGpus, check_replay_mode, resolve_gpus
from planner.errors import ConfigError
from planner.load import LoadInputs, LoadResult, LoadScaler
from planner.perf_model import PerfModel
from planner.predictors import LoadPredictors
from planner.throughput import ThroughputResult, compute_agg, compute_disagg, proposal
from planner.types import (
    Capabilities,
    Decision,
    ForwardPassMetrics,
    Observation,
    TickSnapshot,
    ScalingEvent,
    TrafficWindow,
)

SCHEMA = "planner_diagnostics_snapshot_log_v1"
_EPS = 1e-6


def merge_traffic(acc: TrafficWindow | None, w: TrafficWindow) -> TrafficWindow:
    """Two consecutive windows as one: sums, and count-weighted averages (§2.1)."""
    if acc is None:
        return w

    def avg(a: float, na: int, b: float, nb: int) -> float:
        n = na + nb
        return (a * na + b * nb) / n if n > 0 else 0.0

    return TrafficWindow(
        duration_s=acc.duration_s + w.duration_s,
        num_req=acc.num_req + w.num_req,
        avg_isl=avg(acc.avg_isl, acc.shape_count, w.avg_isl, w.shape_count),
        avg_osl=avg(acc.avg_osl, acc.shape_count, w.avg_osl, w.shape_count),
        shape_count=acc.shape_count + w.shape_count,
        avg_ttft_ms=avg(acc.avg_ttft_ms, acc.ttft_count, w.avg_ttft_ms, w.ttft_count),
        ttft_count=acc.ttft_count + w.ttft_count,
        avg_itl_ms=avg(acc.avg_itl_ms, acc.itl_count, w.avg_itl_ms, w.itl_count),
        itl_count=acc.itl_count + w.itl_count,
        avg_kv_hit_rate=avg(acc.avg_kv_hit_rate, acc.kv_hit_count, w.avg_kv_hit_rate,
                            w.kv_hit_count),
        kv_hit_count=acc.kv_hit_count + w.kv_hit_count,
    )


def utc_label(t_s: float) -> str:
    """The reference's epoch-based clock label: 10 s -> 1970-01-01T00:00:10+00:00."""
    return datetime.fromtimestamp(t_s, tz=timezone.utc).isoformat()


class Planner:
    """The planner for one replay.

    `mode` is the deployment ("agg" or "disagg") and must match `config.mode`.
    `capabilities`: "decode" (agg: the aggregated workers) and, for disagg, "prefill".
    `bootstrap`: the "rapid" FPM lists {"prefill": [...], "decode": [...]} (see
    `planner.bootstrap`), or None to start the perf model empty. In agg mode both lists seed
    the one aggregated model, prefill points first. Ignored by easy targets.
    `warmup`: (request count, avg ISL, avg OSL) per throughput interval fed to the predictors
    before t = 0 (`predictors.warmup_buckets` of `config.load_predictor_warmup_trace`, which
    the caller reads).
    """

    def __init__(self, config: PlannerConfig, mode: str,
                 capabilities: Mapping[str, Capabilities],
                 bootstrap: Mapping[str, Sequence[ForwardPassMetrics]] | None = None,
                 warmup: Sequence[tuple[int, float, float]] | None = None) -> None:
        check_replay_mode(config, mode)
        self.config = config
        self.mode = mode
        self.components: tuple[str, ...] = ("decode",) if mode == "agg" else ("prefill", "decode")
        for c in self.components:
            if c not in capabilities:
                raise ConfigError(f"no engine capabilities for the {c} workers", "capabilities")
        self.caps = dict(capabilities)
        self.gpus: ResolvedGpus = resolve_gpus(config, capabilities)

        self.models: dict[str, PerfModel] = {}
        if not config.is_easy:
            kw = dict(max_observations=config.max_num_fpm_samples,
                      min_observations=config.load_min_observations,
                      bucket_count=config.fpm_sample_bucket_size)
            if mode == "agg":
                self.models["agg"] = PerfModel("aggregated", self.caps["decode"], **kw)
            else:
                self.models["prefill"] = PerfModel("prefill", self.caps["prefill"], **kw)
                self.models["decode"] = PerfModel("decode", self.caps["decode"], **kw)
            if bootstrap:
                if mode == "agg":
                    self.models["agg"].observe(
                        list(bootstrap.get("prefill", [])) + list(bootstrap.get("decode", [])))
                else:
                    self.models["prefill"].observe(bootstrap.get("prefill", []))
                    self.models["decode"].observe(bootstrap.get("decode", []))
        self.bootstrap_counts = {k: len(v) for k, v in (bootstrap or {}).items()}

        self.predictors: LoadPredictors | None = None
        self.warmup_intervals = 0
        if not config.is_easy:
            self.predictors = LoadPredictors(config)
            if warmup is None and config.load_predictor_warmup_trace is not None:
                raise ConfigError("the warmup trace must be read by the caller and passed as "
                                  "`warmup` (see warmup_buckets)", "load_predictor_warmup_trace")
            if warmup:
                for n, isl, osl in warmup:
                    self.predictors.observe(n, isl, osl)
                self.predictors.reset_idle_skip()
                self.warmup_intervals = len(warmup)

        self.load_scaler = LoadScaler(config, self.caps, self.models)
        self.lower_bound = {"prefill": 1, "decode": 1}
        self.last_kv_hit_rate: float | None = None

        self._fpm_cache: dict[str, dict[tuple[int, int], ForwardPassMetrics]] = {
            c: {} for c in self.components}
        self._pending_traffic: TrafficWindow | None = None
        self._pending_target: dict[str, int | None] = {c: None for c in self.components}
        self._last_load_t = 0.0
        self._last_tp_t = 0.0
        self._last_t: float | None = None
        self._prev_gpu_t = 0.0
        self._observed: dict[str, float | None] = {}

        self.gpu_hours = 0.0
        self.total_ticks = 0  # the decisions themselves are the caller's to keep

    @property
    def scale_interval_s(self) -> float:
        return self.config.scale_interval_s

    # ---------------------------------------------------------------------------------------

    def _tick_kinds(self, t: float) -> tuple[bool, bool]:
        c = self.config
        is_load = t - self._last_load_t >= c.load_adjustment_interval_seconds - _EPS
        is_tp = (c.throughput_active
                 and t - self._last_tp_t >= c.throughput_adjustment_interval_seconds - _EPS)
        if is_load:
            self._last_load_t = t
        if is_tp:
            self._last_tp_t = t
        return is_load, is_tp

    def _update_cache(self, obs: Observation) -> None:
        for comp in self.components:
            cache = self._fpm_cache[comp]
            for fpm in obs.fpms.get(comp, []):
                cache[(fpm.worker_id, fpm.dp_rank)] = fpm
            active = set(obs.active.get(comp, []))
            for key in [k for k in cache if k[0] not in active]:
                del cache[key]

    def tick(self, obs: Observation) -> Decision:
        t = obs.t_s
        if self._last_t is not None and t <= self._last_t:
            raise ValueError(f"planner ticks must move forward: {t} after {self._last_t}")
        self._last_t = t
        self.total_ticks += 1
        cfg = self.config
        is_load, is_tp = self._tick_kinds(t)

        ready = {c: len(obs.active.get(c, [])) for c in self.components}
        non_draining = {c: ready[c] + len(obs.starting.get(c, [])) for c in self.components}
        busy: dict[str, bool] = {}
        for c in self.components:
            pending = self._pending_target[c]
            expected = pending if pending is not None else non_draining[c]
            in_progress = pending is not None and pending != non_draining[c]
            busy[c] = in_progress or expected != ready[c]

        self._update_cache(obs)
        self._pending_traffic = merge_traffic(self._pending_traffic, obs.traffic)

        if self._prev_gpu_t > 0.0:
            gp = self.gpus.prefill or 0
            active_gpus = ready.get("prefill", 0) * gp + ready["decode"] * self.gpus.decode
            self.gpu_hours += active_gpus * (t - self._prev_gpu_t) / 3600.0
        self._prev_gpu_t = t

        # 5. live tuning of the perf model(s)
        if is_load and not cfg.is_easy:
            if self.mode == "agg":
                if self._fpm_cache["decode"]:
                    self.models["agg"].observe(list(self._fpm_cache["decode"].values()))
            else:
                for c in ("prefill", "decode"):
                    if self._fpm_cache[c]:
                        self.models[c].observe(list(self._fpm_cache[c].values()))

        # traffic: consumed on throughput ticks, or on load ticks in SLA mode without the
        # predictive loop; easy targets never look at it (as the reference)
        if cfg.throughput_active:
            consume = is_tp
        else:
            consume = is_load and not cfg.is_easy
        traffic: TrafficWindow | None = None
        if consume:
            window, self._pending_traffic = self._pending_traffic, None
            if window is not None and window.duration_s > 0:
                traffic = window
                self._observe_traffic(window)

        # 6. throughput loop
        tp = ThroughputResult()
        tp_set: dict[str, int] | None = None
        pred: dict[str, float | None] = {}
        if is_tp:
            tp, tp_set, pred = self._throughput(traffic)

        # 7. load loop
        load = LoadResult()
        if is_load:
            load = self.load_scaler.decide(LoadInputs(
                mode=self.mode,
                fpms={c: self._fpm_cache[c] for c in self.components},
                ready=ready, busy=busy, lower_bound=dict(self.lower_bound),
                kv_hit_rate=self.last_kv_hit_rate))

        # 8. merge, project, clamp, compare
        scale_to = self._project(load.target, tp_set, ready)
        for c in self.components:
            if self._pending_target[c] is not None and non_draining[c] == self._pending_target[c]:
                self._pending_target[c] = None
        decision = Decision()
        if scale_to is not None:
            self._emit(t, scale_to, non_draining, decision)

        if is_load or is_tp or scale_to is not None:
            decision.snapshot = self._snapshot(t, ready, load, tp, pred, scale_to)
        return decision

    # ---------------------------------------------------------------------------------------

    def _observe_traffic(self, w: TrafficWindow) -> None:
        self._observed = {
            "observed_requests_per_second": w.num_req / w.duration_s,
            "observed_input_sequence_tokens": w.avg_isl,
            "observed_output_sequence_tokens": w.avg_osl,
            "observed_ttft_ms": w.avg_ttft_ms if w.ttft_count > 0 else None,
            "observed_itl_ms": w.avg_itl_ms if w.itl_count > 0 else None,
            "observed_kv_hit_rate": w.avg_kv_hit_rate,
        }
        self.last_kv_hit_rate = w.avg_kv_hit_rate

    def _throughput(self, traffic: TrafficWindow | None
                    ) -> tuple[ThroughputResult, dict[str, int] | None, dict[str, float | None]]:
        cfg = self.config
        pred: dict[str, float | None] = {}
        if traffic is None or self.predictors is None:
            return ThroughputResult(reason="no_traffic_data"), None, pred
        self.predictors.observe(traffic.num_req, traffic.avg_isl, traffic.avg_osl)
        try:
            nr, isl, osl = self.predictors.predict()
        except Exception:  # noqa: BLE001 - any predictor failure (e.g. Prophet) -> reason
            return ThroughputResult(reason="predict_failed"), None, pred
        demand = nr / traffic.duration_s
        pred = {
            "predicted_requests_per_second": demand,
            "predicted_input_sequence_tokens": isl,
            "predicted_output_sequence_tokens": osl,
            "predicted_kv_hit_rate": self.last_kv_hit_rate,
        }
        if self.mode == "agg":
            res = compute_agg(self.models["agg"], cfg, demand, isl, osl)
        else:
            res = compute_disagg(self.models["prefill"], self.models["decode"], cfg, demand,
                                 isl, osl)
        if not res.desired:
            return res, None, pred
        if cfg.enable_load_scaling:
            for comp, n in res.desired.items():
                self.lower_bound[comp] = n
            res.reason = "set_lower_bound"
            if self.mode == "disagg":
                res.reason_prefill = res.reason_decode = "set_lower_bound"
            return res, None, pred
        gpu = {c: self.caps[c].num_gpu for c in self.components}
        res.reason = "scale"
        if self.mode == "disagg":
            res.reason_prefill = res.reason_decode = "scale"
        return res, proposal(res, cfg, self.mode, gpu), pred

    def _project(self, load_set: dict[str, int] | None, tp_set: dict[str, int] | None,
                 ready: dict[str, int]) -> dict[str, int] | None:
        merged: dict[str, int] = {}
        for c in self.components:
            if load_set is not None and c in load_set:
                merged[c] = load_set[c]
            elif tp_set is not None and c in tp_set:
                merged[c] = tp_set[c]
            else:
                merged[c] = ready[c]
        if all(merged[c] == ready[c] for c in self.components):
            return None
        cfg = self.config
        if self.mode == "agg":
            out = {"decode": clamp_single(max(merged["decode"], cfg.min_endpoint),
                                          self.caps["decode"].num_gpu, cfg.min_gpu_budget,
                                          cfg.max_gpu_budget, cfg.min_endpoint)}
        else:
            p, d = clamp_pair(merged["prefill"], merged["decode"], self.caps["prefill"].num_gpu,
                              self.caps["decode"].num_gpu, cfg.min_gpu_budget,
                              cfg.max_gpu_budget, cfg.min_endpoint)
            out = {"prefill": p, "decode": d}
        if all(out[c] == ready[c] for c in self.components):
            return None
        return out

    def _emit(self, t: float, scale_to: dict[str, int], non_draining: dict[str, int],
              decision: Decision) -> None:
        if all(scale_to[c] == non_draining[c] for c in self.components):
            return
        for c in self.components:
            target = scale_to[c]
            if target == non_draining[c]:
                continue
            name = "agg" if self.mode == "agg" else c
            ev = ScalingEvent(t_s=t, component=name, from_replicas=non_draining[c],
                              to_replicas=target,
                              reason="scale_up" if target > non_draining[c] else "scale_down")
            decision.events.append(ev)
            self._pending_target[c] = target
        decision.target = dict(scale_to)

    def _engines(self, comp: str) -> list[dict[str, object]]:
        cache = self._fpm_cache.get(comp, {})
        return [
            {
                "worker_id": str(wid),
                "dp_rank": dp,
                "queued_prefill_tokens": f.queued_prefill_tokens,
                "queued_decode_kv_tokens": f.queued_decode_kv_tokens,
                "inflight_decode_kv_tokens": f.sum_decode_kv_tokens,
            }
            for (wid, dp), f in sorted(cache.items())
        ]

    def _snapshot(self, t: float, ready: dict[str, int], load: LoadResult,
                  tp: ThroughputResult, pred: dict[str, float | None],
                  scale_to: dict[str, int] | None) -> TickSnapshot:
        disagg = self.mode == "disagg"
        obs = self._observed
        return TickSnapshot(
            kind="snapshot",
            schema=SCHEMA,
            timestamp_s=t,
            timestamp_utc=utc_label(t),
            num_prefill_replicas=ready["prefill"] if disagg else None,
            num_decode_replicas=ready["decode"],
            observed_request_duration_seconds=None,
            estimated_ttft_ms=_finite_or_none(load.est_ttft_ms),
            estimated_itl_ms=_finite_or_none(load.est_itl_ms),
            engine_rps_prefill=tp.engine_rps_prefill,
            engine_rps_decode=tp.engine_rps_decode,
            throughput_lower_bound_prefill=self.lower_bound["prefill"],
            throughput_lower_bound_decode=self.lower_bound["decode"],
            load_decision_reason=load.reason,
            load_decision_reason_prefill=load.reason_prefill,
            load_decision_reason_decode=load.reason_decode,
            throughput_decision_reason=tp.reason,
            throughput_decision_reason_prefill=tp.reason_prefill,
            throughput_decision_reason_decode=tp.reason_decode,
            scale_to_prefill=scale_to.get("prefill") if scale_to else None,
            scale_to_decode=scale_to.get("decode") if scale_to else None,
            gpu_hours=self.gpu_hours,
            prefill_engines=self._engines("prefill") if disagg else [],
            decode_engines=self._engines("decode"),
            observed_requests_per_second=obs.get("observed_requests_per_second"),
            observed_input_sequence_tokens=obs.get("observed_input_sequence_tokens"),
            observed_output_sequence_tokens=obs.get("observed_output_sequence_tokens"),
            observed_ttft_ms=obs.get("observed_ttft_ms"),
            observed_itl_ms=obs.get("observed_itl_ms"),
            observed_kv_hit_rate=obs.get("observed_kv_hit_rate"),
            predicted_requests_per_second=pred.get("predicted_requests_per_second"),
            predicted_input_sequence_tokens=pred.get("predicted_input_sequence_tokens"),
            predicted_output_sequence_tokens=pred.get("predicted_output_sequence_tokens"),
            predicted_kv_hit_rate=pred.get("predicted_kv_hit_rate"),
        )


def _finite_or_none(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None
