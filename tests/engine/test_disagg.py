"""Disaggregated prefill/decode: the hand-off rules the reference showed (fixed timing)."""
from __future__ import annotations

import pytest

from helpers import fixed_timing
from engine.sim import Simulation
from engine.topology import Topology
from engine.pool import POOL_DECODE, POOL_PREFILL
from engine.workload import Workload


def disagg(wl: Workload, p: int = 1, d: int = 1, bw: float = 0.0, bpt: float = 0.0) -> Simulation:
    topo = Topology(0)
    topo.disaggregated = True
    topo.prefill_cfg = fixed_timing()
    topo.decode_cfg = fixed_timing()
    topo.num_prefill = p
    topo.num_decode = d
    topo.transfer_bandwidth_gbps = bw
    topo.transfer_bytes_per_token = bpt
    sim = Simulation(wl, topo)
    sim.run()
    return sim


def one_request(isl: int = 1000, osl: int = 5) -> Workload:
    wl = Workload(512)
    wl.add(0.0, 0.0, isl, osl, list(range(-(-isl // 512))), -1, 0)
    return wl


def test_first_token_comes_from_a_decode_pass() -> None:
    # spec §9.3: prefill 100 + decode 10 => TTFT 110
    m = disagg(one_request()).collect()
    assert m.first_token_ms == [pytest.approx(110.0)]
    assert m.last_token_ms == [pytest.approx(150.0)]
    assert m.output_tokens == [5]
    assert m.source_held_ms == [pytest.approx(100.0)]
    assert m.dest_reserved_ms == [pytest.approx(100.0)]
    assert m.dest_activated_ms == [pytest.approx(100.0)]
    assert m.decode_admit_ms == [pytest.approx(100.0)]
    assert m.source_released_ms == [pytest.approx(100.0)]


def test_transfer_delay_is_tokens_times_bytes_over_bandwidth() -> None:
    # 1000 tokens x 1e5 B/token at 1 GB/s = 100 ms => TTFT 210
    m = disagg(one_request(), bw=1.0, bpt=1e5).collect()
    assert m.first_token_ms == [pytest.approx(210.0)]
    assert m.dest_activated_ms == [pytest.approx(200.0)]


def test_pools_roles_and_worker_seconds_inputs() -> None:
    wl = Workload(512)
    for i in range(6):
        wl.add(0.0, 0.0, 600, 3, [10 * i, 10 * i + 1], -1, 0)
    sim = disagg(wl, p=2, d=3)
    snap = sim.snapshot()
    assert [w.kind for w in snap.workers] == [POOL_PREFILL] * 2 + [POOL_DECODE] * 3
    m = sim.collect()
    assert sorted(set(m.prefill_worker)) == [0, 1]
    assert sorted(set(m.worker)) == [0, 1, 2]  # indices within the decode pool
    # all KV freed at the end, on both sides
    assert all(w.active_blocks == 0 for w in snap.workers)


def test_source_is_released_at_the_prefill_workers_next_pass_boundary() -> None:
    # Two requests: the second's prefill keeps the prefill worker busy from 100 to 200, so
    # the first's source KV (activated at 100 after the first pass) is freed... at once, as
    # the prefill worker is between passes at 100; the second's at 200.
    wl = Workload(512)
    wl.add(0.0, 0.0, 1000, 3, [1, 2], -1, 0)
    wl.add(50.0, 0.0, 1000, 3, [3, 4], -1, 0)
    m = disagg(wl).collect()
    k0, k1 = m.req.index(0), m.req.index(1)
    assert m.source_released_ms[k0] == pytest.approx(100.0)
    assert m.source_released_ms[k1] == pytest.approx(200.0)
    assert m.first_token_ms[k1] == pytest.approx(210.0)


def test_a_prefill_side_rejection_records_no_decode_worker() -> None:
    """A prompt the prefill workers refuse (max_model_len) never gets a decode worker: its
    metrics row says -1 and its record's decode_worker_idx is None, as Dynamo 1.6.1 exports it
    (checked on this run: all 16 records' workers and routes equal the reference's); the
    prefill worker that rejected it is prefill_worker_idx. It was the last decode worker."""
    import json

    from helpers import TINY
    from dynosim.replay import RunOptions, build_replay

    replay = build_replay(RunOptions(
        trace=TINY, num_prefill_workers=2, num_decode_workers=3,
        prefill_engine_args=json.dumps({"engine": {"max_model_len": 3000,
                                                   "worker_type": "prefill"}}),
        decode_engine_args=json.dumps({"engine": {"worker_type": "decode"}})))
    replay.run_to_end()
    records = replay.report().records()
    rejected = [r for r in records if r["terminal_status"] == "rejected"]
    assert len(rejected) == 15 and all(r["input_length"] >= 3000 for r in rejected)
    for r in rejected:
        assert r["decode_worker_idx"] is None
        assert [(h["pool"], h["logical_worker_id"]) for h in r["routing_history"]] == [
            ("prefill", r["prefill_worker_idx"])]
    assert {r["prefill_worker_idx"] for r in rejected} == {0, 1}
    (done,) = [r for r in records if r["terminal_status"] == "completed"]
    assert done["decode_worker_idx"] == 0 and done["prefill_worker_idx"] == 1
    cols = replay.sim.metrics
    assert sorted(w for w, s in zip(cols.worker, cols.status) if s == 1) == [-1] * 15
