from __future__ import annotations

import pytest

from planner.bootstrap import bootstrap_fpms, decode_points, prefill_points
from planner.perf_model import (
    Pass,
    PerfModel,
    Synthetic,
    classify,
    clamp_kv_hit_rate,
    ms_to_ns,
    ns_to_ms,
)
from planner.types import Capabilities, ForwardPassMetrics

CAPS = Capabilities(num_gpu=1, max_num_batched_tokens=8192, max_num_seqs=256,
                    max_kv_tokens=29249 * 64, context_length=None)


def fpm(*, wall_ms: float = 0.0, p_req: int = 0, p_tok: int = 0, d_req: int = 0,
        d_kv: int = 0, q_p_req: int = 0, q_p_tok: int = 0, q_d_req: int = 0, q_d_kv: int = 0,
        worker: int = 0) -> ForwardPassMetrics:
    return ForwardPassMetrics(
        worker_id=worker, dp_rank=0, wall_time_s=wall_ms / 1000.0,
        num_prefill_requests=p_req, sum_prefill_tokens=p_tok, sum_prefill_kv_tokens=p_tok,
        var_prefill_length=0.0, num_decode_requests=d_req, sum_decode_kv_tokens=d_kv,
        var_decode_kv_tokens=0.0, queued_prefill_requests=q_p_req,
        queued_prefill_tokens=q_p_tok, queued_decode_requests=q_d_req,
        queued_decode_kv_tokens=q_d_kv)


def prefill_ms(isl: int) -> float:
    return 10.0 + 0.05 * isl


def decode_ms(b: int, ctx: int) -> float:
    return 5.0 + 0.02 * b + 2e-5 * b * ctx


def mixed_ms(p: int, kv: int) -> float:
    return 3.0 + 0.04 * p + 1e-5 * kv


def agg_model() -> PerfModel:
    m = PerfModel("aggregated", CAPS)
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    m.observe(pre + dec)
    return m


def add_mixed(m: PerfModel) -> None:
    for p in (500, 1000, 2000, 4000, 8000):
        for kv in (10_000, 100_000):
            m.observe([fpm(wall_ms=mixed_ms(p, kv), p_req=1, p_tok=p, d_req=10, d_kv=kv)])


def test_classify() -> None:
    assert classify(Pass(1, 100, 0, 0)) == ("prefill", (100.0,))
    assert classify(Pass(0, 0, 4, 400)) == ("decode", (4.0, 400.0))
    assert classify(Pass(1, 100, 4, 400)) == ("mixed", (100.0, 400.0))
    assert classify(Pass(0, 0, 0, 0)) is None


def test_bootstrap_sweep_shape() -> None:
    assert prefill_points(8192) == [100 + 1011 * k for k in range(9)]
    pts = decode_points(256, 29249 * 64)
    assert len(pts) == 32
    assert [b for b, c in pts if c == 500] == [1 + 32 * k for k in range(8)]
    # a small KV cache stops each ctx row early
    small = decode_points(256, 100_000)
    assert all(b * c <= 100_000 for b, c in small)
    assert (33, 2000) in small and (65, 2000) not in small
    pre, dec = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    assert len(pre) == 9 and len(dec) == 32
    assert pre[0].sum_prefill_tokens == 100 and pre[0].wall_time_s == pytest.approx(0.015)
    assert dec[1].num_decode_requests == 33 and dec[1].sum_decode_kv_tokens == 33 * 500


def test_agg_bootstrap_readiness_and_averages() -> None:
    m = agg_model()
    assert m.ready
    assert m.stores["prefill"].count == 9 and m.stores["decode"].count == 32
    assert not m.stores["mixed"].ready
    # planner side: prefill points first, then 32 decode points adding 0 ISL
    assert m.avg_isl.value == pytest.approx(37296 / 41)
    assert m.avg_decode_length.value == pytest.approx((500 + 2000 + 4000 + 8000) / 4)
    # engine side: typical per-iteration prefill = (ceil(9/41), ceil(37296/41))
    assert m.typical_prefill() == (1, 910)
    # mixed queries need 5 live mixed samples
    assert m.get_scheduled_decode_itl([Synthetic(sched_decode_requests=10,
                                                 sched_decode_kv=50_000)]) is None
    assert m.find_engine_capacity(2000, 200, 1500, 50) is None


def test_queued_prefill_time_chunks() -> None:
    m = PerfModel("prefill", CAPS)
    pre, _ = bootstrap_fpms(prefill_ms, decode_ms, CAPS)
    m.observe(pre)
    ns = m.get_queued_prefill_time([Synthetic(queued_prefill_requests=3,
                                              queued_prefill_tokens=20_000)])
    # chunks 8192 + 8192 + 3616: three passes of 10 ms + 0.05 ms/token
    assert ns == ms_to_ns(3 * 10.0 + 0.05 * 20_000)
    assert m.get_queued_prefill_time([Synthetic()]) == 0
    assert m.get_scheduled_decode_itl([Synthetic(sched_decode_requests=1)]) is None
    d = PerfModel("decode", CAPS)
    assert d.get_queued_prefill_time([Synthetic(queued_prefill_tokens=5)]) is None


def test_agg_itl_substitutes_typical_prefill() -> None:
    m = agg_model()
    add_mixed(m)
    assert m.stores["mixed"].ready
    ns = m.get_scheduled_decode_itl([Synthetic(sched_decode_requests=10,
                                               sched_decode_kv=50_000)])
    p_req, p_tok = m.typical_prefill()
    assert ns is not None
    assert ns_to_ms(ns) == pytest.approx(mixed_ms(p_tok, 50_000), rel=1e-9)
    # an explicit scheduled prefill wins over the typical one
    ns2 = m.get_scheduled_decode_itl([Synthetic(sched_prefill_requests=1,
                                                sched_prefill_tokens=4000,
                                                sched_decode_requests=10,
                                                sched_decode_kv=50_000)])
    assert ns2 is not None and ns_to_ms(ns2) == pytest.approx(mixed_ms(4000, 50_000), rel=1e-9)


def test_agg_queued_prefill_keeps_decode_load() -> None:
    m = agg_model()
    add_mixed(m)
    ns = m.get_queued_prefill_time([Synthetic(sched_decode_requests=10, sched_decode_kv=40_000,
                                              queued_prefill_requests=2,
                                              queued_prefill_tokens=10_000)])
    assert ns is not None
    expected = mixed_ms(8192, 40_000) + mixed_ms(1808, 40_000)
    assert ns_to_ms(ns) == pytest.approx(expected, rel=1e-9)


def test_prefill_capacity_prefers_eligible() -> None:
    m = PerfModel("prefill", CAPS)
    m.observe(bootstrap_fpms(prefill_ms, decode_ms, CAPS)[0])
    cap = m.find_engine_capacity(1000, 100, ttft_sla_ms=300.0)
    assert cap is not None and cap.eligible
    # ttft(b) = 10 + 50 b ms <= 300 -> b = 5
    assert cap.ttft_ns == ms_to_ns(260.0)
    assert cap.rps == pytest.approx(5 / 0.26)
    loose = m.find_engine_capacity(1000, 100, ttft_sla_ms=None)
    assert loose is not None and loose.rps == pytest.approx(8 / 0.41)  # max batch C // isl
    big = m.find_engine_capacity(10_000, 100, ttft_sla_ms=100.0)
    assert big is not None and not big.eligible  # best point returned even if SLA missed
    assert big.ttft_ns == ms_to_ns(2 * 10.0 + 0.05 * 10_000)


def test_decode_capacity() -> None:
    m = PerfModel("decode", CAPS)
    m.observe(bootstrap_fpms(prefill_ms, decode_ms, CAPS)[1])
    cap = m.find_engine_capacity(1000, 200, itl_sla_ms=10.0)
    assert cap is not None and cap.eligible
    # ctx = 1100: itl(b) = 5 + 0.042 b ms <= 10 -> b = 119
    assert cap.itl_ns == ms_to_ns(5.0 + 0.042 * 119)
    assert cap.rps == pytest.approx(119 / (200 * (5.0 + 0.042 * 119) / 1000), rel=1e-6)
    assert m.find_engine_capacity(1000, 0, itl_sla_ms=10.0) is None


def test_agg_capacity() -> None:
    m = agg_model()
    add_mixed(m)
    cap = m.find_engine_capacity(1000, 100, ttft_sla_ms=1500.0, itl_sla_ms=50.0)
    assert cap is not None and cap.eligible
    # itl(b) = 3 + 0.04 * 10 b + 1e-5 * 1050 b = 3 + 0.4105 b <= 50 -> b = 114
    itl_ms = 3.0 + 0.4105 * 114
    assert cap.itl_ns == ms_to_ns(itl_ms)
    assert cap.ttft_ns == ms_to_ns(mixed_ms(1140 + 1000, 114 * 1050))
    assert cap.rps == pytest.approx(114 / (100 * itl_ms / 1000), rel=1e-6)
    assert cap.ttft_ns is not None and cap.itl_ns is not None
    assert cap.e2e_ns == cap.ttft_ns + cap.itl_ns * 99


def test_synthetic_fpms() -> None:
    m = agg_model()
    f = fpm(p_req=1, p_tok=3000, d_req=7, d_kv=7000, q_p_req=2, q_p_tok=10_000, q_d_req=3,
            q_d_kv=900)
    avg = m.avg_isl.value
    s = m.synthetic_prefill(f, kv_hit_rate=0.25)
    assert s.queued_prefill_tokens == pytest.approx(int(-(-((10_000 + avg) * 0.75) // 1)))
    assert s.queued_prefill_requests == 3
    assert (s.sched_decode_requests, s.sched_decode_kv) == (7, 7000)
    assert s.sched_prefill_tokens == 0
    own = m.synthetic_prefill(f, queue_scale=0.0, decode_scale=2.0, include_queued_decode=True)
    assert own.queued_prefill_requests == 1
    assert (own.sched_decode_requests, own.sched_decode_kv) == (20, 15_800)
    d = m.synthetic_decode(f, decode_scale=1.5, include_queued_prefill_as_kv=True)
    # aggregated: scheduled prefill zeroed; kv = (7000 + 900 + 10000) * 1.5 + avg decode len
    assert (d.sched_prefill_requests, d.sched_prefill_tokens) == (0, 0)
    assert d.sched_decode_kv == int(-(-((17_900 * 1.5) + m.avg_decode_length.value) // 1))
    assert d.sched_decode_requests == int(-(-(12 * 1.5 + 1) // 1))
    assert clamp_kv_hit_rate(None) == 0.0 and clamp_kv_hit_rate(2.0) == 0.95


def test_estimates_in_ms() -> None:
    m = PerfModel("prefill", CAPS)
    m.observe(bootstrap_fpms(prefill_ms, decode_ms, CAPS)[0])
    avg = m.avg_isl.value  # prefill points only here
    assert avg == pytest.approx(37296 / 9)
    est = m.estimate_queued_prefill_time_ms(fpm(q_p_req=1, q_p_tok=1000))
    tokens = int(-(-(1000 + avg) // 1))
    assert est == pytest.approx(prefill_ms(tokens))
    assert m.estimate_queued_prefill_time_ms(fpm(), queue_scale=0.0) == pytest.approx(
        prefill_ms(int(-(-avg // 1))))
    # nanosecond quantisation as the reference's Durations
    assert ns_to_ms(ms_to_ns(8.2434314)) == 8.243431000000001
