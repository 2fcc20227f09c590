"""SGLang scheduler: the reference's worked examples (spec backends.md §3, numbers from the 1.6.1
binary) and the progress invariant that the reference breaks (§5.1)."""
from __future__ import annotations

import json

import pytest

from helpers import TINY
from dynosim.replay import RunOptions, build_replay
from engine.config import BACKEND_SGLANG, EngineConfig
from engine.sim import Simulation
from engine.topology import Topology
from engine.workload import Workload


def sg(block_size: int = 64, num_gpu_blocks: int = 16384, **kw: int) -> EngineConfig:
    c = EngineConfig()
    c.backend = BACKEND_SGLANG
    c.block_size = block_size
    c.num_gpu_blocks = num_gpu_blocks
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def replay(reqs: list[tuple[float, int, int, list[int]]], cfg: EngineConfig) -> Simulation:
    wl = Workload(512)
    for t, isl, osl, ids in reqs:
        wl.add(t, 0.0, isl, osl, ids, -1, 0)
    sim = Simulation(wl, Topology(1, cfg))
    sim.run()
    return sim


def ttft(sim: Simulation, i: int) -> float:
    m = sim.metrics
    k = m.req.index(i)
    return m.first_token_ms[k] - m.arrival_ms[k]


def test_chunk_budget_is_the_remaining_per_pass_budget() -> None:
    sim = replay([(0.0, 3000, 2, [1, 2, 3, 4, 5, 6]), (0.0, 3001, 2, [7, 8, 9, 10, 11, 12]),
                  (0.0, 3002, 2, [13, 14, 15, 16, 17, 18])], sg())
    assert ttft(sim, 0) == pytest.approx(168.761662, abs=1e-6)
    assert ttft(sim, 1) == pytest.approx(168.761662, abs=1e-6)
    assert ttft(sim, 2) == pytest.approx(198.091841, abs=1e-6)  # its last 826 tokens next pass
    assert list(sim.metrics.first_admit_ms) == [0.0, 0.0, 0.0]


def test_max_prefill_tokens_is_a_gate() -> None:
    sim = replay([(0.0, 3000, 2, [1, 2, 3, 4, 5, 6]), (0.0, 3001, 2, [7, 8, 9, 10, 11, 12]),
                  (0.0, 3002, 2, [13, 14, 15, 16, 17, 18])], sg(sglang_max_prefill_tokens=4000))
    assert [round(ttft(sim, i), 6) for i in range(3)] == [65.84073, 131.69917, 197.575321]


def test_no_same_pass_prefix_reuse_and_prefill_first() -> None:
    sim = replay([(0.0, 2000, 2, [1, 2, 3, 4]), (0.0, 2000, 2, [1, 2, 3, 4])], sg())
    assert ttft(sim, 0) == ttft(sim, 1) == pytest.approx(83.971162, abs=1e-6)  # P(4000)
    assert list(sim.metrics.reused_tokens) == [0, 0]
    # B arrives while A decodes: B's prefill pass gives A no token
    sim = replay([(0.0, 1000, 20, [1, 2]), (100.0, 2000, 2, [3, 4, 5, 6])], sg())
    assert ttft(sim, 1) == pytest.approx(50.159983, abs=1e-6)


def test_decode_retraction_victim_and_readmission() -> None:
    cfg = sg(num_gpu_blocks=40, sglang_clip_max_new_tokens=1)
    sim = replay([(0.0, 1000, 1000, [1, 2]), (0.0, 1001, 1000, [3, 4])], cfg)
    m = sim.metrics
    k = m.req.index(0)  # tie on generated tokens: the first in running order goes
    assert m.admissions[k] == 2
    assert m.terminal_ms[k] == pytest.approx(52001.136775, rel=1e-9)
    assert ttft(sim, 0) == ttft(sim, 1) == pytest.approx(48.552296, abs=1e-6)


@pytest.mark.parametrize("interval, admitted", [
    (0, 48.552296), (1, 54.395321), (2, 60.238449), (3, 66.08168)])
def test_prefill_decode_interval_runs_that_many_decode_passes_after_a_prefill(
        interval: int, admitted: float) -> None:
    # two prompts prefill together at 0; two more arrive during that pass and wait for
    # `interval` decode passes after it (the 1.6.1 binary's numbers)
    sim = replay([(0.0, 1000, 20, [1, 2]), (0.0, 1000, 20, [7, 8]), (30.0, 2000, 5, [3, 4, 5, 6]),
                  (40.0, 500, 5, [9])], sg(sglang_prefill_decode_interval=interval))
    m = sim.metrics
    assert [m.first_admit_ms[m.req.index(i)] for i in (2, 3)] == pytest.approx(
        [admitted, admitted], abs=1e-6)


def test_prefill_decode_interval_gates_chunk_continuations_too() -> None:
    reqs = [(0.0, 1000, 200, [1, 2]), (50.0, 20000, 3, list(range(10, 50)))]
    assert ttft(replay(reqs, sg(num_gpu_blocks=1000)), 1) == pytest.approx(417.027041, abs=1e-6)
    sim = replay(reqs, sg(num_gpu_blocks=1000, sglang_prefill_decode_interval=2))
    assert ttft(sim, 1) == pytest.approx(443.355818, abs=1e-6)  # 2 decode passes per chunk


def test_prefill_decode_interval_idle_countdown_resets_the_new_token_ratio() -> None:
    # A's 299 decode passes decay the ratio; B completes in its prefill pass and the worker goes
    # idle mid-countdown: the idle passes reset the ratio to 0.7, so D (arriving while C runs)
    # waits for C's reservation to shrink (it would be admitted at 8068.25657 with the decayed
    # ratio; 1.6.1: 9228.490773)
    reqs = [(0.0, 1000, 300, [1, 2]), (7000.0, 100, 1, [3]), (8000.0, 1000, 2000, [5, 6]),
            (8010.0, 1000, 500, [7, 8])]
    sim = replay(reqs, sg(num_gpu_blocks=60, sglang_prefill_decode_interval=2))
    m = sim.metrics
    assert m.first_admit_ms[m.req.index(3)] == pytest.approx(9228.490773, abs=1e-6)
    sim = replay(reqs, sg(num_gpu_blocks=60))
    assert sim.metrics.first_admit_ms[sim.metrics.req.index(3)] == pytest.approx(8032.105859,
                                                                                 abs=1e-6)


def _run_checking_progress(opts: RunOptions) -> dict:
    """Every instant the engine processes must change something: time moves on, or a request
    arrives, runs, completes or is rejected. The reference aborts on (or spins in) such passes."""
    rp = build_replay(opts)
    sim = rp.sim
    last = None
    while sim.step():
        snap = sim.snapshot()
        state = (sim.now, snap.arrived, snap.completed, snap.rejected,
                 tuple((w.busy, w.waiting, w.running, w.active_blocks, w.prefill_tokens)
                       for w in snap.workers))
        assert state != last, f"no progress at {sim.now} ms"
        last = state
    assert sim.completed + sim.rejected == len(sim.wl)  # nobody left stranded
    return rp.report().summary


def test_requests_that_never_fit_are_rejected_up_front_not_deadlocked() -> None:
    # Default page size 1: a 16,384-token pool; mooncake_tiny has three longer prompts.
    opts = RunOptions(trace=TINY, extra_engine_args='{"engine": {"backend": "sglang"}}')
    warnings = build_replay(opts).warnings()
    assert any("3 request(s) rejected" in w and "trace lines 9, 11, 13" in w for w in warnings)
    s = _run_checking_progress(opts)
    assert (s["num_requests"], s["completed_requests"]) == (16, 13)


def test_an_unadmittable_head_is_rejected_by_an_idle_worker() -> None:
    # max_prefill_tokens below every prompt: the reference stops ("effect-free pass").
    eng = {"engine": {"backend": "sglang", "block_size": 64, "sglang": {"max_prefill_tokens": 100}}}
    s = _run_checking_progress(RunOptions(trace=TINY, extra_engine_args=json.dumps(eng)))
    assert s["num_requests"] == 16 and s["completed_requests"] < 16


def test_disaggregated_requests_that_never_fit_are_rejected_up_front() -> None:
    # Default page size 1 on both pools: the decode pool (16,384 tokens) must take the prompt and
    # the clipped output; the three long prompts of mooncake_tiny cannot, the rest run.
    eng = '{"engine": {"backend": "sglang"}}'
    opts = RunOptions(trace=TINY, prefill_engine_args=eng, decode_engine_args=eng)
    warnings = build_replay(opts).warnings()
    assert any("3 request(s) rejected" in w and "trace lines 9, 11, 13" in w for w in warnings)
    s = _run_checking_progress(opts)
    assert (s["num_requests"], s["completed_requests"]) == (16, 13)
