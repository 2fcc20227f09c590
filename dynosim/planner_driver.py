"""The planner in the loop: at every tick, turn the engine's state into an Observation, ask
the planner, and apply its replica targets (the engine handles start-up delay and draining).

Uncompiled glue: the engine stays free of planner types, the planner free of engine types."""
from __future__ import annotations

from typing import Protocol

from engine.passmetrics import PassMetrics
from engine.pool import POOL_AGG, POOL_DECODE, POOL_PREFILL, STATE_ACTIVE, STATE_DRAINING, STATE_STARTING
from engine.sim import Simulation
from engine.worker import Worker
from planner.types import Decision, ForwardPassMetrics, Observation, TrafficWindow


class PlannerLike(Protocol):
    def tick(self, obs: Observation) -> Decision: ...


def _fpm(w: Worker) -> ForwardPassMetrics:
    m: PassMetrics = w.fpm
    return ForwardPassMetrics(
        worker_id=w.local_idx, dp_rank=0, wall_time_s=m.wall_ms / 1000.0,
        num_prefill_requests=m.prefill_reqs, sum_prefill_tokens=m.prefill_tokens,
        sum_prefill_kv_tokens=m.prefill_kv_tokens, var_prefill_length=0.0,
        num_decode_requests=m.decode_reqs, sum_decode_kv_tokens=m.decode_kv_tokens,
        var_decode_kv_tokens=0.0, queued_prefill_requests=m.queued_prefill_reqs,
        queued_prefill_tokens=m.queued_prefill_tokens, queued_decode_requests=0,
        queued_decode_kv_tokens=0)


# A worker whose last pass ended this long ago reports an all-zero forward pass instead of that
# pass, whether idle since or inside a long pass (probed on 1.4.2 with 1-s ticks: shown at
# 998 ms, zero at 1009 ms, whatever the tick spacing; and zero for a prefill worker 1.1 s into
# a long prefill at 110 s of the run_disagg_syn reference).
IDLE_FPM_AFTER_MS = 1000.0


def _idle_fpm(w: Worker) -> ForwardPassMetrics:
    """The all-zero forward pass of a worker with no recent pass (the planner treats it as
    empty work, never as a tuning sample)."""
    return ForwardPassMetrics(
        worker_id=w.local_idx, dp_rank=0, wall_time_s=0.0, num_prefill_requests=0,
        sum_prefill_tokens=0, sum_prefill_kv_tokens=0, var_prefill_length=0.0,
        num_decode_requests=0, sum_decode_kv_tokens=0, var_decode_kv_tokens=0.0,
        queued_prefill_requests=0, queued_prefill_tokens=0, queued_decode_requests=0,
        queued_decode_kv_tokens=0)


class PlannerDriver:
    def __init__(self, sim: Simulation, planner: PlannerLike) -> None:
        self.sim = sim
        self.planner = planner
        self.components = (("prefill", POOL_PREFILL), ("decode", POOL_DECODE)) if (
            sim.back is not None) else (("decode", POOL_AGG),)
        self.seen_passes: dict[int, int] = {}  # worker -> passes when last observed

    def observe(self) -> Observation:
        sim = self.sim
        active: dict[str, list[int]] = {}
        starting: dict[str, list[int]] = {}
        draining: dict[str, list[int]] = {}
        fpms: dict[str, list[ForwardPassMetrics]] = {}
        for name, kind in self.components:
            pool = sim.pool_of(kind)
            active[name], starting[name], draining[name], fpms[name] = [], [], [], []
            for g in pool.ids:
                w = sim.workers[g]
                if w.state == STATE_ACTIVE:
                    active[name].append(w.local_idx)
                elif w.state == STATE_STARTING:
                    starting[name].append(w.local_idx)
                elif w.state == STATE_DRAINING:
                    draining[name].append(w.local_idx)
                passes = w.fpm.passes
                fresh = passes > self.seen_passes.get(g, 0)
                self.seen_passes[g] = passes
                if w.state != STATE_ACTIVE or passes == 0:
                    continue  # absent until its first pass (the planner sees the mismatch)
                if sim.now - w.fpm.end_ms >= IDLE_FPM_AFTER_MS:
                    fpms[name].append(_idle_fpm(w))
                elif fresh:
                    fpms[name].append(_fpm(w))
        tr = sim.traffic
        n = tr.completed
        traffic = TrafficWindow(
            duration_s=(sim.now - tr.start_ms) / 1000.0, num_req=tr.arrivals,
            avg_isl=tr.sum_isl / n if n else 0.0, avg_osl=tr.sum_osl / n if n else 0.0,
            shape_count=n,
            avg_ttft_ms=tr.sum_ttft_ms / tr.ttft_count if tr.ttft_count else 0.0,
            ttft_count=tr.ttft_count,
            avg_itl_ms=tr.sum_itl_ms / tr.itl_count if tr.itl_count else 0.0,
            itl_count=tr.itl_count,
            avg_kv_hit_rate=tr.sum_kv_hit_rate / tr.kv_hit_count if tr.kv_hit_count else 0.0,
            kv_hit_count=tr.kv_hit_count)
        return Observation(t_s=sim.now / 1000.0, active=active, starting=starting,
                           draining=draining, fpms=fpms, traffic=traffic)

    def on_tick(self) -> Decision:
        """Called when the engine stopped at a tick (sim.at_tick): decide and apply."""
        decision = self.planner.tick(self.observe())
        for name, kind in self.components:
            target = decision.target.get(name)
            if target is not None:
                self.sim.scale(kind, target)
        return decision
