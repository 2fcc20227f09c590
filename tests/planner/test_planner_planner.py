from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from planner.bootstrap import bootstrap_fpms
from planner.config import PlannerConfig, SchedulingConfig
from planner.errors import ConfigError
from planner.planner import Planner, merge_traffic, utc_label
from planner.types import Capabilities, Decision, ForwardPassMetrics, Observation, TrafficWindow

CAPS = Capabilities(num_gpu=1, max_num_batched_tokens=8192, max_num_seqs=256,
                    max_kv_tokens=29249 * 64, context_length=131072)

REFERENCE_KEYS = {
    "decode_engines", "engine_rps_decode", "engine_rps_prefill", "estimated_itl_ms",
    "estimated_ttft_ms", "gpu_hours", "kind", "load_decision_reason",
    "load_decision_reason_decode", "load_decision_reason_prefill", "num_decode_replicas",
    "num_prefill_replicas", "observed_input_sequence_tokens", "observed_itl_ms",
    "observed_kv_hit_rate", "observed_output_sequence_tokens",
    "observed_request_duration_seconds", "observed_requests_per_second", "observed_ttft_ms",
    "predicted_input_sequence_tokens", "predicted_kv_hit_rate",
    "predicted_output_sequence_tokens", "predicted_requests_per_second", "prefill_engines",
    "scale_to_decode", "scale_to_prefill", "schema", "throughput_decision_reason",
    "throughput_decision_reason_decode", "throughput_decision_reason_prefill",
    "throughput_lower_bound_decode", "throughput_lower_bound_prefill", "timestamp_s",
    "timestamp_utc",
}


def prefill_ms(isl: int) -> float:
    return 10.0 + 0.05 * isl


def decode_ms(b: int, ctx: int) -> float:
    return 5.0 + 0.02 * b + 2e-5 * b * ctx


def fpm(worker: int, *, p_tok: int = 0, d_req: int = 0, d_kv: int = 0, q_p_tok: int = 0,
        wall_ms: float = 0.0) -> ForwardPassMetrics:
    return ForwardPassMetrics(
        worker_id=worker, dp_rank=0, wall_time_s=wall_ms / 1000.0,
        num_prefill_requests=1 if p_tok else 0, sum_prefill_tokens=p_tok,
        sum_prefill_kv_tokens=p_tok, var_prefill_length=0.0, num_decode_requests=d_req,
        sum_decode_kv_tokens=d_kv, var_decode_kv_tokens=0.0,
        queued_prefill_requests=1 if q_p_tok else 0, queued_prefill_tokens=q_p_tok,
        queued_decode_requests=0, queued_decode_kv_tokens=0)


def window(dur: float = 10.0, n: int = 0, isl: float = 0.0, osl: float = 0.0) -> TrafficWindow:
    return TrafficWindow(duration_s=dur, num_req=n, avg_isl=isl, avg_osl=osl,
                         shape_count=n, avg_ttft_ms=100.0 if n else 0.0, ttft_count=n,
                         avg_itl_ms=9.0 if n else 0.0, itl_count=n, avg_kv_hit_rate=0.0,
                         kv_hit_count=0)


def config(**kw: Any) -> PlannerConfig:
    base: dict[str, Any] = dict(mode="agg", optimization_target="sla", ttft_ms=1500.0,
                                itl_ms=50.0, enable_load_scaling=True,
                                throughput_adjustment_interval_seconds=300,
                                load_adjustment_interval_seconds=10, load_predictor="constant",
                                prefill_engine_num_gpu=1, decode_engine_num_gpu=1)
    base.update(kw)
    return PlannerConfig(**base)


@dataclass
class FakeCluster:
    """Applies decisions like the reference simulator: start-up delay, LIFO removal."""

    n: int
    startup_s: float = 0.0
    component: str = "decode"
    starting: list[tuple[int, float]] = field(default_factory=list)  # (id, ready at)

    def observe(self, t: float, make_fpm: Callable[[int], ForwardPassMetrics],
                traffic: TrafficWindow | None = None,
                fresh: set[int] | None = None) -> Observation:
        became = [wid for wid, at in self.starting if at <= t + 1e-9]
        self.starting = [(w, a) for w, a in self.starting if a > t + 1e-9]
        self.n += len(became)
        active = list(range(self.n))
        # a worker activated at this very tick has not run a pass yet
        fpms = [make_fpm(w) for w in active if w not in became]
        return Observation(t_s=t, active={self.component: active},
                           starting={self.component: [w for w, _ in self.starting]},
                           draining={self.component: []}, fpms={self.component: fpms},
                           traffic=traffic or window())

    def apply(self, t: float, d: Decision) -> None:
        target = d.target.get(self.component)
        if target is None:
            return
        total = self.n + len(self.starting)
        if target > total:
            for k in range(total, target):
                self.starting.append((k, t + self.startup_s))
            if self.startup_s == 0.0:
                self.n = target
                self.starting = []
        elif target < total:
            drop = total - target
            while drop and self.starting:
                self.starting.pop()
                drop -= 1
            self.n -= drop


def agg_planner(**kw: Any) -> Planner:
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    return Planner(config(**kw), "agg", {"decode": CAPS}, {"prefill": pre, "decode": dec})


def heavy(worker: int) -> ForwardPassMetrics:
    # mixed passes: they also train the mixed store (wall time > 0), ITL far above 50 ms
    return fpm(worker, p_tok=4000, d_req=50, d_kv=1_500_000, wall_ms=3 + 0.04 * 4000 + 15)


def test_tick_kinds_and_recording() -> None:
    p = agg_planner(scheduling=SchedulingConfig(scale_interval_seconds=5.0))
    cl = FakeCluster(2)
    recorded = []
    for k in range(1, 125):
        t = 5.0 * k
        d = p.tick(cl.observe(t, lambda w: fpm(w, d_req=1, d_kv=100)))
        if d.snapshot is not None:
            recorded.append((t, d.snapshot.throughput_decision_reason))
    assert [t for t, _ in recorded] == [10.0 * k for k in range(1, 63)]
    assert [t for t, r in recorded if r is not None] == [300.0, 600.0]
    assert p.total_ticks == 124


def test_ticks_must_move_forward() -> None:
    p = agg_planner()
    cl = FakeCluster(1)
    p.tick(cl.observe(10.0, lambda w: fpm(w)))
    with pytest.raises(ValueError):
        p.tick(cl.observe(10.0, lambda w: fpm(w)))


def test_mode_must_match_and_capabilities_present() -> None:
    with pytest.raises(ConfigError, match="does not match"):
        Planner(config(), "disagg", {"prefill": CAPS, "decode": CAPS})
    with pytest.raises(ConfigError, match="capabilities"):
        Planner(config(mode="disagg"), "disagg", {"decode": CAPS})


def test_scale_up_gated_while_starting_like_the_reference() -> None:
    p = agg_planner()
    cl = FakeCluster(2, startup_s=60.0)
    reasons: dict[float, str] = {}
    ups = []
    for k in range(1, 30):
        t = 10.0 * k
        d = p.tick(cl.observe(t, heavy))
        assert d.snapshot is not None
        reasons[t] = str(d.snapshot.load_decision_reason)
        for ev in d.events:
            ups.append((t, ev.from_replicas, ev.to_replicas, ev.reason))
        cl.apply(t, d)
    first = ups[0][0]
    # one scale-up per start-up delay + one tick for the new worker's first pass + one tick
    assert [u[0] for u in ups[:3]] == [first, first + 70.0, first + 140.0]
    assert ups[0][1:] == (2, 3, "scale_up") and ups[1][1:] == (3, 4, "scale_up")
    for t in range(int(first) + 10, int(first) + 60, 10):
        assert reasons[float(t)] == "scaling_in_progress"
    assert reasons[first + 60.0] == "worker_count_mismatch"


def test_scale_up_every_tick_without_startup_and_budget_cap() -> None:
    p = agg_planner()
    cl = FakeCluster(2)
    decisions = []
    for k in range(1, 20):
        t = 10.0 * k
        d = p.tick(cl.observe(t, heavy))
        cl.apply(t, d)
        decisions.append(d)
    assert cl.n == 8  # max_gpu_budget 8 with 1 GPU per replica
    events = [e for d in decisions for e in d.events]
    assert [e.to_replicas for e in events] == list(range(3, 9))
    times = [e.t_s for e in events]
    assert times == [times[0] + 10.0 * i for i in range(6)]  # one step per load tick
    last = decisions[-1].snapshot
    assert last is not None and last.load_decision_reason == "no_change"  # 9 clamped to 8


def test_consecutive_scale_downs_are_not_blocked_by_draining() -> None:
    p = agg_planner(itl_ms=200.0)
    # train the mixed store at low load first
    p.models["agg"].observe([fpm(0, p_tok=300 + 50 * k, d_req=4, d_kv=4000 + 100 * k,
                                 wall_ms=3 + 0.04 * (300 + 50 * k)) for k in range(12)])
    cl = FakeCluster(5)
    events = []
    for k in range(1, 9):
        t = 10.0 * k
        obs = cl.observe(t, lambda w: fpm(w, d_req=2, d_kv=2000))
        obs.draining["decode"].extend([90, 91])  # draining workers never block
        d = p.tick(obs)
        cl.apply(t, d)
        events += [(e.t_s, e.from_replicas, e.to_replicas) for e in d.events]
    assert events == [(10.0, 5, 4), (20.0, 4, 3), (30.0, 3, 2), (40.0, 2, 1)]


def test_throughput_only_proposes_clamped_targets() -> None:
    p = agg_planner(enable_load_scaling=False, load_predictor="constant")
    cl = FakeCluster(1)
    snap = None
    for k in range(1, 31):
        t = 10.0 * k
        # a mixed-pass workload so the agg capacity query can answer
        obs = cl.observe(t, lambda w: fpm(w, p_tok=200 * k, d_req=10, d_kv=20_000 + 500 * k,
                                            wall_ms=3 + 0.04 * 200 * k + 1e-5 * (20_000 + 500 * k)),
                         traffic=window(10.0, 500 if k == 30 else 0, 2000.0, 200.0))
        d = p.tick(obs)
        cl.apply(t, d)
        if k < 30:
            assert d.snapshot is not None and d.snapshot.load_decision_reason == "disabled"
        snap = d.snapshot if d.snapshot is not None else snap
    assert snap is not None
    assert snap.throughput_decision_reason == "scale"
    rps = snap.engine_rps_decode
    assert isinstance(rps, float) and rps > 0
    want = min(8, max(1, math.ceil((500 / 300) / rps)))
    assert cl.n == want
    assert snap.predicted_requests_per_second == pytest.approx(500 / 300)


def test_gpu_hours_first_interval_not_counted() -> None:
    p = agg_planner()
    cl = FakeCluster(3)
    p.tick(cl.observe(10.0, lambda w: fpm(w)))
    assert p.gpu_hours == 0.0
    obs = cl.observe(20.0, lambda w: fpm(w))
    obs.starting["decode"].append(7)  # starting workers are not counted
    p.tick(obs)
    assert p.gpu_hours == pytest.approx(3 * 10 / 3600)


def test_traffic_merge_and_observed_carry_forward() -> None:
    a = TrafficWindow(10.0, 4, 1000.0, 100.0, 2, 50.0, 2, 8.0, 4, 0.5, 2)
    b = TrafficWindow(10.0, 6, 2000.0, 300.0, 6, 70.0, 6, 10.0, 4, 0.0, 0)
    m = merge_traffic(merge_traffic(None, a), b)
    assert (m.duration_s, m.num_req, m.shape_count) == (20.0, 10, 8)
    assert m.avg_isl == pytest.approx((1000 * 2 + 2000 * 6) / 8)
    assert m.avg_osl == pytest.approx((100 * 2 + 300 * 6) / 8)
    assert m.avg_ttft_ms == pytest.approx((50 * 2 + 70 * 6) / 8)
    assert m.avg_itl_ms == pytest.approx(9.0)
    assert m.avg_kv_hit_rate == pytest.approx(0.5)

    p = agg_planner()
    cl = FakeCluster(2)
    snaps = []
    for k in range(1, 32):
        t = 10.0 * k
        n = 30 if k % 2 else 0
        d = p.tick(cl.observe(t, lambda w: fpm(w), traffic=window(10.0, n, 1500.0, 150.0)))
        snaps.append(d.snapshot)
    assert snaps[28] is not None and snaps[28].observed_requests_per_second is None
    s300 = snaps[29]
    assert s300 is not None
    assert s300.observed_requests_per_second == pytest.approx(15 * 30 / 300)
    assert s300.observed_input_sequence_tokens == pytest.approx(1500.0)
    assert s300.predicted_requests_per_second == pytest.approx(1.5)
    assert s300.predicted_input_sequence_tokens == pytest.approx(1500.0)
    assert s300.predicted_kv_hit_rate == 0.0
    s310 = snaps[30]
    assert s310 is not None
    assert s310.observed_requests_per_second == pytest.approx(1.5)  # carried forward
    assert s310.predicted_requests_per_second is None


def test_snapshot_fields_match_the_reference() -> None:
    p = agg_planner()
    cl = FakeCluster(2)
    d = p.tick(cl.observe(10.0, lambda w: fpm(w, d_req=3, d_kv=900, q_p_tok=7)))
    snap = d.snapshot
    assert snap is not None
    assert set(snap.as_row()) == REFERENCE_KEYS
    assert snap.timestamp_utc == "1970-01-01T00:00:10+00:00"
    assert snap.schema == "planner_diagnostics_snapshot_log_v1"
    assert snap.num_prefill_replicas is None and snap.num_decode_replicas == 2
    assert snap.prefill_engines == []
    assert snap.decode_engines == [
        {"dp_rank": 0, "inflight_decode_kv_tokens": 900, "queued_decode_kv_tokens": 0,
         "queued_prefill_tokens": 7, "worker_id": "0"},
        {"dp_rank": 0, "inflight_decode_kv_tokens": 900, "queued_decode_kv_tokens": 0,
         "queued_prefill_tokens": 7, "worker_id": "1"},
    ]
    assert snap.throughput_lower_bound_decode == 1
    assert utc_label(300.0) == "1970-01-01T00:05:00+00:00"


def test_fpm_cache_keeps_idle_workers_and_prunes_removed() -> None:
    p = agg_planner()
    obs = Observation(10.0, {"decode": [0, 1]}, {"decode": []}, {"decode": []},
                      {"decode": [fpm(0, d_kv=10), fpm(1, d_kv=20)]}, window())
    p.tick(obs)
    # worker 1 ran no pass since: its last FPM stays; worker 0 updates
    obs = Observation(20.0, {"decode": [0, 1]}, {"decode": []}, {"decode": []},
                      {"decode": [fpm(0, d_kv=30)]}, window())
    s = p.tick(obs).snapshot
    assert s is not None
    engines = s.decode_engines
    assert isinstance(engines, list)
    assert [e["inflight_decode_kv_tokens"] for e in engines] == [30, 20]
    obs = Observation(30.0, {"decode": [0]}, {"decode": []}, {"decode": [1]},
                      {"decode": [fpm(1, d_kv=40)]}, window())
    s = p.tick(obs).snapshot
    assert s is not None
    engines = s.decode_engines
    assert isinstance(engines, list)
    assert [e["worker_id"] for e in engines] == ["0"]


def test_disagg_decision_targets_and_events() -> None:
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    p = Planner(config(mode="disagg"), "disagg", {"prefill": CAPS, "decode": CAPS},
                {"prefill": pre, "decode": dec})
    obs = Observation(10.0, {"prefill": [0], "decode": [0]},
                      {"prefill": [], "decode": []}, {"prefill": [], "decode": []},
                      {"prefill": [fpm(0, q_p_tok=40_000)], "decode": [fpm(0, d_req=8,
                                                                                d_kv=8000)]},
                      window())
    d = p.tick(obs)
    assert d.target == {"prefill": 2, "decode": 1}
    assert [(e.component, e.from_replicas, e.to_replicas, e.reason) for e in d.events] == [
        ("prefill", 1, 2, "scale_up")]
    assert d.snapshot is not None
    assert d.snapshot.scale_to_prefill == 2 and d.snapshot.scale_to_decode == 1
    assert d.snapshot.load_decision_reason_prefill == "scale_up"
    assert d.snapshot.num_prefill_replicas == 1
    # the new prefill worker is starting: both sides wait
    obs2 = Observation(20.0, {"prefill": [0], "decode": [0]},
                       {"prefill": [1], "decode": []}, {"prefill": [], "decode": []},
                       {"prefill": [fpm(0, q_p_tok=40_000)], "decode": []}, window())
    d2 = p.tick(obs2)
    assert d2.snapshot is not None
    assert d2.snapshot.load_decision_reason == "scaling_in_progress"
    assert d2.snapshot.load_decision_reason_decode == "scaling_in_progress"
    assert not d2.events and not d2.target


def test_sla_load_only_reads_traffic_every_load_tick() -> None:
    p = agg_planner(enable_throughput_scaling=False)
    cl = FakeCluster(2)
    tr = TrafficWindow(10.0, 20, 1000.0, 100.0, 20, 80.0, 20, 7.0, 20, 0.25, 20)
    s = p.tick(cl.observe(10.0, lambda w: fpm(w), traffic=tr)).snapshot
    assert s is not None
    assert s.observed_requests_per_second == pytest.approx(2.0)
    assert s.observed_kv_hit_rate == 0.25 and p.last_kv_hit_rate == 0.25
    assert s.predicted_requests_per_second is None  # no predictive loop
    assert s.throughput_decision_reason is None


def test_easy_mode_has_no_models_and_ignores_traffic() -> None:
    p = Planner(config(optimization_target="throughput"), "agg", {"decode": CAPS})
    assert p.models == {} and p.predictors is None
    cl = FakeCluster(2)
    kv = CAPS.max_kv_tokens
    d = p.tick(cl.observe(10.0, lambda w: fpm(w, d_kv=kv + 1), traffic=window(10.0, 5, 1.0, 1.0)))
    assert d.target == {"decode": 3}
    assert d.snapshot is not None and d.snapshot.observed_requests_per_second is None
    assert d.snapshot.load_decision_reason == "scale_up"


def test_warmup_feeds_the_predictors_before_t0() -> None:
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    p = Planner(config(load_predictor="kalman"), "agg", {"decode": CAPS},
                {"prefill": pre, "decode": dec}, warmup=[(0, 0.0, 0.0), (900, 3000.0, 200.0),
                                                         (1200, 3500.0, 210.0)])
    assert p.warmup_intervals == 3
    assert p.predictors is not None
    assert p.predictors.num_req.get_last_value() == 1200.0
    # the leading-zero skip is re-armed: an idle first live window is skipped
    p.predictors.observe(0, 0.0, 0.0)
    assert p.predictors.num_req.get_last_value() == 1200.0
