from __future__ import annotations

from typing import Any

from planner.bootstrap import bootstrap_fpms
from planner.config import PlannerConfig
from planner.load import LoadInputs, LoadScaler, fpm_coverage_ok, scale_decision
from planner.perf_model import PerfModel
from planner.types import Capabilities, ForwardPassMetrics

CAPS = Capabilities(num_gpu=1, max_num_batched_tokens=8192, max_num_seqs=256,
                    max_kv_tokens=29249 * 64, context_length=131072)


def fpm(worker: int, *, dp: int = 0, p_tok: int = 0, d_req: int = 0, d_kv: int = 0,
        q_p_tok: int = 0, q_d_kv: int = 0, wall_ms: float = 0.0) -> ForwardPassMetrics:
    return ForwardPassMetrics(
        worker_id=worker, dp_rank=dp, wall_time_s=wall_ms / 1000.0,
        num_prefill_requests=1 if p_tok else 0, sum_prefill_tokens=p_tok,
        sum_prefill_kv_tokens=p_tok, var_prefill_length=0.0, num_decode_requests=d_req,
        sum_decode_kv_tokens=d_kv, var_decode_kv_tokens=0.0,
        queued_prefill_requests=1 if q_p_tok else 0, queued_prefill_tokens=q_p_tok,
        queued_decode_requests=0, queued_decode_kv_tokens=q_d_kv)


def fmap(*fs: ForwardPassMetrics) -> dict[tuple[int, int], ForwardPassMetrics]:
    return {(f.worker_id, f.dp_rank): f for f in fs}


def prefill_ms(isl: int) -> float:
    return 10.0 + 0.05 * isl


def decode_ms(b: int, ctx: int) -> float:
    return 5.0 + 0.02 * b + 2e-5 * b * ctx


def cfg(mode: str, **kw: Any) -> PlannerConfig:
    base: dict[str, Any] = dict(mode=mode, optimization_target="sla", ttft_ms=1500.0,
                                itl_ms=50.0, enable_load_scaling=True,
                                enable_throughput_scaling=True,
                                throughput_adjustment_interval_seconds=300,
                                load_adjustment_interval_seconds=10)
    base.update(kw)
    return PlannerConfig(**base)


def agg_scaler(c: PlannerConfig) -> LoadScaler:
    m = PerfModel("aggregated", CAPS)
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    m.observe(pre + dec)
    for p in (500, 1000, 2000, 4000, 8000):
        for kv in (10_000, 100_000):
            m.observe([fpm(0, p_tok=p, d_req=10, d_kv=kv, wall_ms=3.0 + 0.04 * p + 1e-5 * kv)])
    return LoadScaler(c, {"decode": CAPS}, {"agg": m})


def disagg_scaler(c: PlannerConfig) -> LoadScaler:
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    p = PerfModel("prefill", CAPS)
    p.observe(pre)
    d = PerfModel("decode", CAPS)
    d.observe(dec)
    return LoadScaler(c, {"prefill": CAPS, "decode": CAPS}, {"prefill": p, "decode": d})


def agg_inputs(fs: dict[tuple[int, int], ForwardPassMetrics], n: int, *, lb: int = 1,
               busy: bool = False) -> LoadInputs:
    return LoadInputs(mode="agg", fpms={"decode": fs}, ready={"decode": n},
                      busy={"decode": busy}, lower_bound={"prefill": 1, "decode": lb})


def disagg_inputs(p: dict[tuple[int, int], ForwardPassMetrics],
                  d: dict[tuple[int, int], ForwardPassMetrics], n_p: int, n_d: int, *,
                  lb_p: int = 1, busy_p: bool = False) -> LoadInputs:
    return LoadInputs(mode="disagg", fpms={"prefill": p, "decode": d},
                      ready={"prefill": n_p, "decode": n_d},
                      busy={"prefill": busy_p, "decode": False},
                      lower_bound={"prefill": lb_p, "decode": 1})


def test_scale_decision_rule() -> None:
    assert scale_decision([], 50, 2, 1, True).reason == "insufficient_data"
    assert scale_decision([60, 70], 50, 2, 1, True).desired == 3
    assert scale_decision([60, 40], 50, 2, 1, True).desired == 1
    assert scale_decision([60, 40], 50, 2, 2, True).desired == 2  # min_endpoint
    s = scale_decision([60, 40], 50, 2, 1, False)
    assert s.desired is None and s.reason == "no_change"
    assert scale_decision([10], 50, 1, 1, True).reason == "no_change"  # N = 1 never down


def test_fpm_coverage() -> None:
    two = fmap(fpm(0), fpm(1))
    assert fpm_coverage_ok(two, 2)
    assert not fpm_coverage_ok(two, 3)  # a fresh worker has not run a pass yet
    dp = fmap(fpm(0, dp=0), fpm(0, dp=1), fpm(1, dp=0), fpm(1, dp=1))
    assert fpm_coverage_ok(dp, 2)
    assert not fpm_coverage_ok(fmap(fpm(0, dp=0), fpm(0, dp=1), fpm(1, dp=0)), 2)


def test_agg_guards() -> None:
    s = agg_scaler(cfg("agg"))
    assert s.decide(agg_inputs({}, 2)).reason == "no_fpm_data"
    assert s.decide(agg_inputs(fmap(fpm(0), fpm(1)), 2, busy=True)).reason == \
        "scaling_in_progress"
    assert s.decide(agg_inputs(fmap(fpm(0), fpm(1)), 3)).reason == "worker_count_mismatch"
    empty = LoadScaler(cfg("agg"), {"decode": CAPS}, {"agg": PerfModel("aggregated", CAPS)})
    assert empty.decide(agg_inputs(fmap(fpm(0)), 1)).reason == "insufficient_data"
    off = agg_scaler(cfg("agg", enable_load_scaling=False))
    assert off.decide(agg_inputs(fmap(fpm(0)), 1)).reason == "disabled"


def test_agg_estimates_missing_means_no_change() -> None:
    m = PerfModel("aggregated", CAPS)
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    m.observe(pre + dec)  # ready, but no mixed store: the agg queries return None
    s = LoadScaler(cfg("agg"), {"decode": CAPS}, {"agg": m})
    r = s.decide(agg_inputs(fmap(fpm(0, d_req=3, d_kv=3000), fpm(1, d_req=1, d_kv=900)), 2))
    assert r.reason == "no_change" and r.target is None
    assert r.est_ttft_ms is None and r.est_itl_ms is None


def test_agg_scale_up_and_budget_cap() -> None:
    s = agg_scaler(cfg("agg", itl_ms=200.0))
    heavy = fmap(fpm(0, d_req=100, d_kv=20_000_000), fpm(1, d_req=100, d_kv=20_000_000))
    r = s.decide(agg_inputs(heavy, 2))
    assert r.reason == "scale_up" and r.target == {"decode": 3}
    assert r.est_itl_ms is not None and r.est_itl_ms > 200.0
    eight = fmap(*[fpm(w, d_req=100, d_kv=20_000_000) for w in range(8)])
    r = s.decide(agg_inputs(eight, 8))
    assert r.reason == "no_change" and r.target is None  # 9 clamped to the 8-GPU budget


def test_agg_scale_down_and_throughput_floor() -> None:
    s = agg_scaler(cfg("agg", itl_ms=200.0))
    idle = fmap(*[fpm(w, d_req=5, d_kv=10_000) for w in range(3)])
    r = s.decide(agg_inputs(idle, 3))
    assert r.reason == "scale_down" and r.target == {"decode": 2}
    r = s.decide(agg_inputs(idle, 3, lb=3))
    assert r.reason == "scale_down_capped_by_throughput" and r.target is None
    # the floor can raise by more than one replica in one tick
    r = s.decide(agg_inputs(idle, 3, lb=6))
    assert r.reason == "scale_up" and r.target == {"decode": 6}


def test_agg_scale_down_refused_by_consolidation() -> None:
    s = agg_scaler(cfg("agg", itl_ms=200.0))
    queued = fmap(*[fpm(w, d_req=5, d_kv=10_000, q_p_tok=25_000) for w in range(3)])
    r = s.decide(agg_inputs(queued, 3))
    assert r.est_ttft_ms is not None and r.est_ttft_ms < 1500.0
    assert r.reason == "scale_down_refused_consolidation" and r.target is None


def test_disagg_prefill_scale_up_sets_both() -> None:
    s = disagg_scaler(cfg("disagg"))
    r = s.decide(disagg_inputs(fmap(fpm(0, q_p_tok=40_000)), fmap(fpm(0, d_req=8, d_kv=8000)),
                               1, 1))
    assert r.target == {"prefill": 2, "decode": 1}
    assert (r.reason, r.reason_prefill, r.reason_decode) == ("scale_up", "scale_up",
                                                             "no_change")
    assert r.est_ttft_ms is not None and r.est_ttft_ms > 1500.0


def test_disagg_prefill_scale_down_and_refusal() -> None:
    s = disagg_scaler(cfg("disagg"))
    dec = fmap(fpm(0, d_req=8, d_kv=8000))
    r = s.decide(disagg_inputs(fmap(fpm(0), fpm(1)), dec, 2, 1))
    assert r.target == {"prefill": 1, "decode": 1}
    assert (r.reason, r.reason_prefill, r.reason_decode) == ("scale_down", "scale_down",
                                                             "no_change")
    r = s.decide(disagg_inputs(fmap(fpm(0, q_p_tok=12_000), fpm(1, q_p_tok=12_000)), dec, 2, 1))
    assert r.target is None
    assert (r.reason, r.reason_prefill, r.reason_decode) == (
        "scale_down_refused_consolidation", "scale_down_refused_consolidation", "no_change")
    r = s.decide(disagg_inputs(fmap(fpm(0), fpm(1)), dec, 2, 1, lb_p=2))
    assert r.target is None
    assert (r.reason, r.reason_prefill) == ("scale_down_capped_by_throughput",
                                            "scale_down_capped_by_throughput")


def test_disagg_guards() -> None:
    s = disagg_scaler(cfg("disagg"))
    r = s.decide(disagg_inputs({}, {}, 1, 1))
    assert (r.reason, r.reason_prefill, r.reason_decode) == ("no_fpm_data",) * 3
    r = s.decide(disagg_inputs(fmap(fpm(0)), fmap(fpm(0)), 1, 1, busy_p=True))
    assert (r.reason, r.reason_prefill, r.reason_decode) == ("scaling_in_progress",) * 3
    r = s.decide(disagg_inputs(fmap(fpm(0)), fmap(fpm(0)), 2, 1))
    assert (r.reason, r.reason_prefill, r.reason_decode) == ("worker_count_mismatch",) * 3


def test_disagg_decode_cache_limit_refuses() -> None:
    s = disagg_scaler(cfg("disagg", itl_ms=500.0))
    kv = CAPS.max_kv_tokens * 3 // 4  # x 2/1 after consolidation > capacity
    r = s.decide(disagg_inputs(fmap(fpm(0)), fmap(fpm(0, d_req=10, d_kv=kv),
                                                   fpm(1, d_req=10, d_kv=kv)), 1, 2))
    assert r.reason_decode == "scale_down_refused_consolidation"


def easy(mode: str, target: str, **kw: Any) -> LoadScaler:
    c = PlannerConfig(mode=mode, optimization_target=target,  # type: ignore[arg-type]
                      **kw)
    caps = {"prefill": CAPS, "decode": CAPS}
    return LoadScaler(c, caps, {})


def test_easy_agg_throughput_and_latency() -> None:
    kv = CAPS.max_kv_tokens
    s = easy("agg", "throughput")
    over = fmap(fpm(0, d_kv=kv // 2, q_d_kv=kv // 2, q_p_tok=10), fpm(1))
    r = s.decide(agg_inputs(over, 2))
    assert r.target == {"decode": 3} and r.reason == "scale_up"
    low = fmap(fpm(0, d_kv=int(kv * 0.5)), fpm(1, d_kv=int(kv * 0.59)))
    r = s.decide(agg_inputs(low, 2))
    assert r.target == {"decode": 1} and r.reason == "scale_down"
    mid = fmap(fpm(0, d_kv=int(kv * 0.7)), fpm(1))
    r = s.decide(agg_inputs(mid, 2))
    assert r.target is None and r.reason == "no_change"
    lat = easy("agg", "latency")
    assert lat.decide(agg_inputs(mid, 2)).target == {"decode": 3}  # > 40 %


def test_easy_load_target_thresholds_are_inclusive() -> None:
    kv = CAPS.max_kv_tokens
    s = easy("disagg", "load", prefill_scale_up_queue_tokens=1000,
             prefill_scale_down_queue_tokens=100, decode_scale_up_kv_rate=80.0,
             decode_scale_down_kv_rate=20.0)
    r = s.decide(disagg_inputs(fmap(fpm(0, q_p_tok=1000)), fmap(fpm(0, d_kv=-(-kv * 4 // 5))),
                               1, 1))
    assert r.target == {"prefill": 2, "decode": 2}
    r = s.decide(disagg_inputs(fmap(fpm(0, q_p_tok=100), fpm(1)), fmap(fpm(0)), 2, 1))
    assert r.target == {"prefill": 1, "decode": 1}
    assert r.reason_prefill == "scale_down"


def test_easy_prefill_latency_uses_context_length() -> None:
    s = easy("disagg", "latency")
    ctx = CAPS.context_length or 0
    r = s.decide(disagg_inputs(fmap(fpm(0, q_p_tok=-(-ctx // 10))), fmap(fpm(0)), 1, 1))
    assert r.target is not None and r.target["prefill"] == 2
    r = s.decide(disagg_inputs(fmap(fpm(0), fpm(1)), fmap(fpm(0)), 2, 1))
    assert r.target is not None and r.target["prefill"] == 1
