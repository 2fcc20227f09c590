"""Hand-computed single-request cases of spec engine.md §6.2, from the formulas alone."""
from __future__ import annotations

import math

import pytest

from engine.config import TIMING_FIXED, EngineConfig
from engine.sim import Simulation
from engine.topology import Topology
from engine.timing import PolynomialTiming, round_ns
from engine.workload import Workload


def prefill(t: int) -> float:
    return round_ns(4.209989e-07 * t * t + 1.518344e-02 * t + 16.50142)


def decode(a: int, cap: int = 16384 * 64) -> float:
    p = min(1.0, a / cap)
    return round_ns(max(1.0, -25.74 * p * p + 54.01 * p + 5.74))


def replay(reqs: list[tuple[float, int, int]], cfg: EngineConfig | None = None) -> Simulation:
    wl = Workload(512)
    for k, (t, isl, osl) in enumerate(reqs):
        n = -(-isl // 512)
        wl.add(t, 0.0, isl, osl, [1000 * k + j for j in range(n)], -1, 0)
    sim = Simulation(wl, Topology(1, cfg))
    sim.run()
    return sim


def token_times(sim: Simulation, i: int) -> tuple[float, float, float]:
    m = sim.metrics
    k = m.req.index(i)
    return m.first_token_ms[k] - m.arrival_ms[k], m.second_token_ms[k], m.last_token_ms[k]


def test_polynomial_values_of_the_spec() -> None:
    assert prefill(1000) == pytest.approx(32.105859, abs=1e-6)
    assert prefill(8192) == pytest.approx(169.136918, abs=1e-6)
    assert decode(0) == pytest.approx(5.74)
    assert decode(16384 * 64 // 2) == pytest.approx(26.31, abs=1e-3)
    assert decode(16384 * 64) == pytest.approx(34.01, abs=1e-9)


def test_isl_1000_osl_10() -> None:
    sim = replay([(0.0, 1000, 10)])
    ttft, second, last = token_times(sim, 0)
    assert ttft == pytest.approx(32.105859, abs=1e-9)
    assert second - ttft == pytest.approx(5.791536, abs=1e-9)  # decode(1001)
    expected_e2e = 32.105859 + sum(decode(1000 + k) for k in range(1, 10))
    assert last == pytest.approx(expected_e2e, abs=1e-9)
    assert last == pytest.approx(84.231535, abs=1e-6)


@pytest.mark.parametrize(
    ("isl", "ttft"),
    [(8192, 169.136918), (8193, 185.653522), (20000, 415.183328), (100, 18.023974)],
)
def test_chunked_prefill_ttft(isl: int, ttft: float) -> None:
    sim = replay([(0.0, isl, 3)])
    assert token_times(sim, 0)[0] == pytest.approx(ttft, abs=1e-6)


def test_first_itl_after_long_prompt() -> None:
    sim = replay([(0.0, 20000, 3)])
    ttft, second, _ = token_times(sim, 0)
    assert second - ttft == pytest.approx(6.760845, abs=1e-6)


def test_arrival_during_decode_joins_next_pass() -> None:
    # A (ISL 1000) decodes; B (ISL 2000) arrives at 100 ms and is admitted at A's pass end.
    sim = replay([(0.0, 1000, 200), (100.0, 2000, 2)])
    m = sim.metrics
    kb = m.req.index(1)
    assert m.first_admit_ms[kb] == pytest.approx(101.607687, abs=1e-6)
    assert m.first_token_ms[kb] == pytest.approx(155.952137, abs=1e-6)


def test_speedup_ratios() -> None:
    cfg = EngineConfig()
    cfg.speedup_ratio = 2.0
    sim = replay([(0.0, 1000, 3)], cfg)
    ttft, second, _ = token_times(sim, 0)
    assert ttft == pytest.approx(16.052930, abs=1e-6)
    assert second - ttft == pytest.approx(2.895768, abs=1e-6)
    cfg = EngineConfig()
    cfg.decode_speedup_ratio = 2.0
    sim = replay([(0.0, 1000, 3)], cfg)
    ttft, second, _ = token_times(sim, 0)
    assert ttft == pytest.approx(32.105859, abs=1e-6)
    assert second - ttft == pytest.approx(2.895768, abs=1e-6)


def test_speedup_zero_means_unscaled() -> None:
    cfg = EngineConfig()
    cfg.speedup_ratio = 0.0
    assert token_times(replay([(0.0, 1000, 2)], cfg), 0)[0] == pytest.approx(32.105859, abs=1e-6)


def test_fixed_timing_and_budget_split() -> None:
    # A decodes; B with ISL 8192 arrives: 8191 + 1 token split => B's TTFT takes two passes.
    cfg = EngineConfig()
    cfg.timing_kind = TIMING_FIXED
    cfg.fixed_prefill_ms = 100.0
    cfg.fixed_decode_ms = 10.0
    sim = replay([(0.0, 100, 50), (150.0, 8192, 2)], cfg)
    m = sim.metrics
    ka = m.req.index(0)
    kb = m.req.index(1)
    assert m.first_token_ms[ka] == pytest.approx(100.0)
    # B is admitted at the first pass end after 150 (A decodes every 10 ms from 100).
    admit = m.first_admit_ms[kb]
    assert admit == pytest.approx(150.0)
    assert m.first_token_ms[kb] == pytest.approx(admit + 2 * 110.0)


def test_prefix_hit_capped_to_leave_one_token() -> None:
    # The same 1024-token prompt twice: the repeat reuses 960 tokens and computes 64.
    wl = Workload(512)
    wl.add(0.0, 0.0, 1024, 2, [7, 8], -1, 0)
    wl.add(1000.0, 0.0, 1024, 2, [7, 8], -1, 0)
    sim = Simulation(wl, Topology(1))
    sim.run()
    m = sim.metrics
    k = m.req.index(1)
    assert m.reused_tokens[k] == 960
    assert m.first_token_ms[k] - m.arrival_ms[k] == pytest.approx(17.474885, abs=1e-6)


def test_same_pass_visibility() -> None:
    wl = Workload(512)
    wl.add(0.0, 0.0, 2000, 2, [1, 2, 3, 4], -1, 0)
    wl.add(0.0, 0.0, 2000, 2, [1, 2, 3, 4], -1, 0)
    sim = Simulation(wl, Topology(1))
    sim.run()
    m = sim.metrics
    assert sorted(m.reused_tokens) == [0, 1984]
    for k in range(2):
        assert m.first_token_ms[k] == pytest.approx(48.822282, abs=1e-6)


def test_output_length_zero_completes_without_token() -> None:
    sim = replay([(0.0, 1000, 0)])
    m = sim.metrics
    assert m.status == [0]
    assert m.output_tokens == [0]
    assert m.first_token_ms == [-1.0]
    assert m.terminal_ms[0] == pytest.approx(32.105859, abs=1e-6)


def test_too_large_prompt_is_rejected() -> None:
    cfg = EngineConfig()
    cfg.num_gpu_blocks = 10  # 640 tokens
    sim = replay([(0.0, 1000, 5), (0.0, 500, 2)], cfg)
    m = sim.metrics
    assert m.status[m.req.index(0)] == 1
    assert m.status[m.req.index(1)] == 0


def test_polynomial_prefill_uses_floored_batch_means() -> None:
    t = PolynomialTiming(EngineConfig())
    # two prompts: ends 1001 and 1000, starts 0 and 0 -> means 1000 and 0 -> T = 2000, not 2001
    assert t.prefill_raw_ms(2, 2001, 0) == pytest.approx(
        4.209989e-07 * 2000**2 + 1.518344e-02 * 2000 + 16.50142)
    assert math.isclose(t.decode_raw_ms(1, 10**9), 34.01)


def test_timing_compat_1_4_reproduces_the_older_mocker() -> None:
    """Spec §12: Dynamo 1.4.2 charged decode for the request whose prefill completes in the
    pass and keyed decode time on physical active blocks x block_size."""
    from dynosim.inputs.engine_args import parse_engine_args

    cfg = parse_engine_args('{"engine": {"timing_compat": "1.4"}}').config
    assert cfg.compat_1_4
    assert token_times(replay([(0.0, 1000, 3)], cfg), 0)[0] == pytest.approx(37.898579, abs=1e-6)
    assert token_times(replay([(0.0, 8192, 3)], cfg), 0)[0] == pytest.approx(175.297300, abs=1e-6)
    # the default stays 1.6.1's
    assert not parse_engine_args(None).config.compat_1_4
