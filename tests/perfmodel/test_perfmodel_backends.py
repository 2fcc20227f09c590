"""Hardware timing per backend: with aic_backend "sglang" or "trtllm" the roofline uses the
coefficient set fitted to that backend's aiconfigurator kernels (tests/data/perf/aic_grid_*.csv,
written by scripts/aic_grid.py), not vLLM's."""
from __future__ import annotations

from dataclasses import replace
import pytest

from dynosim.inputs.engine_args import parse_engine_args
from dynosim.perfmodel import dtypes
from dynosim.perfmodel import fit as F
from dynosim.perfmodel.build import make_params, resolve
from dynosim.perfmodel.coeffs import calibrated_sets, find_calibrated
from engine.config import TIMING_ROOFLINE
from engine.roofline import Roofline
from engine.timing import make_timing
from helpers import DATA

PERF = DATA / "perf"
GRIDS = {"sglang": PERF / "aic_grid_sglang0.5.14.csv",
         "trtllm": PERF / "aic_grid_trtllm1.3.0rc20.csv"}
MAX_ERR = 0.10
FP8_8B = "nvidia/Llama-3.1-8B-Instruct-FP8"


def _grids() -> dict[F.GridKey, list[F.Point]]:
    out: dict[F.GridKey, list[F.Point]] = {}
    for path in GRIDS.values():
        out.update(F.grid_points(path))
    return out


def _args(key: F.GridKey) -> dict[str, object]:
    return {"aic_backend": key.backend, "aic_system": key.system, "aic_model_path": key.model,
            "aic_tp_size": key.tp}


def _engine_errors(key: F.GridKey, points: list[F.Point]) -> list[float]:
    """Relative errors of the engine's own timer (engine args -> compiled timing model)."""
    p = parse_engine_args(_args(key))
    assert p.config.timing_kind == TIMING_ROOFLINE
    assert p.warnings == [], p.warnings  # a calibrated set: nothing to warn about
    timer = make_timing(p.config)
    out = []
    for q in points:
        if q.phase == F.PREFILL:
            ms = timer.prefill_raw_ms(q.batch, q.batch * q.isl, q.batch * q.prefix)
        else:
            ms = timer.decode_raw_ms(q.batch, q.batch * q.isl)
        out.append(ms / q.ref_ms - 1.0)
    return out


@pytest.mark.parametrize("key", sorted(_grids(), key=lambda k: (k.backend, k.system, k.model)),
                         ids=lambda k: f"{k.backend}-{k.system}-{k.model}-tp{k.tp}")
def test_backend_set_within_10_percent_of_its_table(key):
    points = _grids()[key]
    assert {q.phase for q in points} == {F.PREFILL, F.DECODE}
    assert any(q.prefix > 0 for q in points) and any(q.batch > 1 and q.phase == F.PREFILL
                                                     for q in points)
    errs = _engine_errors(key, points)
    worst = max(abs(e) for e in errs)
    assert worst <= MAX_ERR, worst
    cal = find_calibrated(key.system, key.model, key.backend, key.tp)
    assert cal is not None and cal.quality == "calibrated"
    assert cal.backend_version == {"sglang": "0.5.14", "trtllm": "1.3.0rc20"}[key.backend]
    assert worst == pytest.approx(cal.max_rel_err, abs=2e-3)  # the shipped figure is honest
    assert cal.points == len(points)


def test_required_backend_sets_are_shipped():
    """H200 and H100, Llama-3.1-8B and a mixture-of-experts model, for both backends."""
    have = {(s.backend, s.system, s.model, s.tp) for s in calibrated_sets()
            if s.quality == "calibrated" and s.max_rel_err <= MAX_ERR}
    for backend in ("sglang", "trtllm"):
        for system in ("h200_sxm", "h100_sxm"):
            assert (backend, system, FP8_8B, 1) in have
            assert (backend, system, "meta-llama/Llama-3.1-8B-Instruct", 1) in have
            moe = [m for (b, s, m, _) in have if (b, s) == (backend, system)
                   and resolve(s, m).model.is_moe]
            assert moe, (backend, system)


def test_table_quantization_matches_the_catalog():
    """What aiconfigurator resolved for each checkpoint is what the roofline counts."""
    for key in _grids():
        setup = resolve(key.system, key.model, key.backend, key.tp)
        cal = find_calibrated(key.system, key.model, key.backend, key.tp)
        assert cal is not None
        assert dtypes.kv_dtype(cal.kv_dtype) == setup.model.kv_dtype
        assert setup.fmha_dtype == ("fp8" if key.fmha == "fp8" else "bf16") == cal.fmha_dtype


def _matched(backend: str) -> list[tuple[F.Point, float]]:
    """(backend point, vLLM reference ms) on the same shape, H200 Llama-3.1-8B-FP8 TP1."""
    vllm = {(q.phase, q.batch, q.isl, q.prefix): q.ref_ms
            for q in F.prefill_points(PERF / "aic_prefill_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv")
            + F.prefix_points(PERF / "aic_prefill_prefix_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv")
            + F.decode_points(PERF / "aic_decode_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv")}
    key = F.GridKey(backend, "h200_sxm", FP8_8B, 1, "fp8")
    return [(q, vllm[(q.phase, q.batch, q.isl, q.prefix)]) for q in F.grid_points(GRIDS[backend])[key]
            if (q.phase, q.batch, q.isl, q.prefix) in vllm]


@pytest.mark.parametrize("backend", ["sglang", "trtllm"])
def test_step_times_follow_the_backends_kernels_not_vllms(backend):
    """Where aiconfigurator's backend kernels differ from vLLM's by more than 15 %, the timer
    selected by aic_backend lands on that backend's number, and the vLLM timer does not."""
    base = {"aic_system": "h200_sxm", "aic_model_path": FP8_8B, "aic_tp_size": 1}
    mine = make_timing(parse_engine_args({**base, "aic_backend": backend}).config)
    vllm = make_timing(parse_engine_args({**base, "aic_backend": "vllm"}).config)

    def ms(timer, q: F.Point) -> float:
        if q.phase == F.PREFILL:
            return timer.prefill_raw_ms(q.batch, q.batch * q.isl, q.batch * q.prefix)
        return timer.decode_raw_ms(q.batch, q.batch * q.isl)

    differing = [(q, ref_v) for q, ref_v in _matched(backend) if abs(q.ref_ms / ref_v - 1) > 0.15]
    assert len(differing) >= 5
    for q, _ in differing:
        assert abs(ms(mine, q) / q.ref_ms - 1) <= MAX_ERR, q
        assert abs(ms(vllm, q) / q.ref_ms - 1) > MAX_ERR, q  # vLLM's set would miss it


def test_attention_dtype_follows_the_backend():
    assert resolve("h200_sxm", FP8_8B, "vllm").fmha_dtype == "bf16"
    assert resolve("h200_sxm", FP8_8B, "sglang").fmha_dtype == "fp8"
    assert resolve("h200_sxm", FP8_8B, "trtllm").fmha_dtype == "fp8"
    assert resolve("h200_sxm", "meta-llama/Llama-3.1-8B-Instruct", "trtllm").fmha_dtype == "bf16"
    # FP8 attention runs at the FP8 tensor-core rate
    fp8 = resolve("h200_sxm", FP8_8B, "sglang").params()
    assert fp8.f_attn == resolve("h200_sxm", FP8_8B, "sglang").gpu.fp8_flops
    # overriding it keeps the fitted efficiencies and says so
    p = parse_engine_args({"aic_backend": "sglang", "aic_system": "h200_sxm",
                           "aic_model_path": FP8_8B, "aic_fmha_dtype": "bfloat16"})
    assert len(p.warnings) == 1 and "override" in p.warnings[0] and "attention" in p.warnings[0]


def test_backend_version_outside_the_fit_warns():
    base = {"aic_backend": "trtllm", "aic_system": "h100_sxm", "aic_model_path": FP8_8B}
    assert parse_engine_args({**base, "aic_backend_version": "1.3.0rc20"}).warnings == []
    w = parse_engine_args({**base, "aic_backend_version": "1.3.0rc23"}).warnings
    assert len(w) == 1 and "trtllm 1.3.0rc20" in w[0]


def test_moe_spread_scales_the_tokens_that_pick_experts():
    """moe_spread s: a pass of T tokens reads the experts s·T uniformly routed tokens would."""
    setup = resolve("h200_sxm", "Qwen/Qwen3-30B-A3B-FP8", coeffs="achievable")
    assert setup.coeffs.moe_spread == 1.0
    uniform = Roofline(make_params(setup.model, setup.gpu, 1, setup.coeffs))
    assert uniform.p.top_k == setup.model.top_k  # spread 1 leaves the shape untouched
    half = Roofline(make_params(setup.model, setup.gpu, 1, replace(setup.coeffs,
                                                                   moe_spread=0.5)))
    for t in (2.0, 16.0, 64.0):
        assert half.weights_s(t) == pytest.approx(uniform.weights_s(t / 2), rel=1e-9)
    assert half.weights_s(1e6) == pytest.approx(uniform.weights_s(1e6))  # all experts at most
    # the shipped MoE sets learned a skewed routing (fewer distinct experts than uniform)
    moe = [s for s in calibrated_sets() if resolve(s.system, s.model).model.is_moe]
    assert moe and all(0.05 < s.coeffs.moe_spread < 1.0 for s in moe)


def test_fit_reproduces_a_shipped_backend_set():
    key = F.GridKey("sglang", "h100_sxm", FP8_8B, 1, "fp8")
    setup = resolve(key.system, key.model, key.backend, key.tp, coeffs="achievable")
    r = F.fit(setup, F.grid_points(GRIDS["sglang"])[key])
    cal = find_calibrated(key.system, key.model, key.backend, key.tp)
    assert cal is not None and r.max_rel_err <= cal.max_rel_err + 0.005
