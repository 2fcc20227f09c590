"""aic_* engine args: both forms, precedence of explicit settings, the optional
aiconfigurator provider, and a replay driven by the roofline."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dynosim.inputs.engine_args import parse_engine_args
from dynosim.inputs.errors import InputError
from dynosim.replay import RunOptions, build_replay
from dynosim.perfmodel import aic
from engine.config import TIMING_EXTERNAL, TIMING_FIXED, TIMING_POLYNOMIAL, TIMING_ROOFLINE
from engine.timing import make_timing, round_ns

AIC = {"aic_backend": "vllm", "aic_system": "h200_sxm",
       "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1}


def err_of(value) -> InputError:
    with pytest.raises(InputError) as ei:
        parse_engine_args(value)
    return ei.value


def test_flat_and_nested_forms_agree():
    flat = parse_engine_args(json.dumps(AIC))
    nested = parse_engine_args({"engine": dict(AIC)})
    for p in (flat, nested):
        assert p.config.timing_kind == TIMING_ROOFLINE
        assert p.config.roofline is not None
        assert p.perf is not None and p.perf.setup.calibrated
        assert p.ignored == [] and p.warnings == []
    assert flat.config.num_gpu_blocks == nested.config.num_gpu_blocks
    tf, tn = make_timing(flat.config), make_timing(nested.config)
    assert tf.prefill_ms(2, 4000, 1000) == tn.prefill_ms(2, 4000, 1000)
    assert tf.decode_ms(7, 9000) == tn.decode_ms(7, 9000)
    assert nested.normalized["engine"]["aic_system"] == "h200_sxm"


def test_explicit_timing_and_blocks_win():
    """The planner set-up: aic args + explicit polynomial timing + explicit num_gpu_blocks."""
    p = parse_engine_args({**AIC, "timing_model": {"type": "polynomial"},
                           "num_gpu_blocks": 29249, "block_size": 64, "startup_time": 60})
    assert p.config.timing_kind == TIMING_POLYNOMIAL
    assert p.config.num_gpu_blocks == 29249
    assert p.config.startup_time_s == 60.0
    assert p.perf is not None and not p.perf.timing and p.perf.capacity is None
    assert p.perf.setup.roofline().decode_ms(1, 1024) > 0  # the identity stays available
    fixed = parse_engine_args({"engine": {**AIC, "timing_model": {"type": "fixed",
                                          "prefill_ms": 5, "decode_ms": 1}}})
    assert fixed.config.timing_kind == TIMING_FIXED
    assert fixed.config.num_gpu_blocks != 16384  # derived: the aic args still size the cache
    explicit = parse_engine_args({**AIC, "num_gpu_blocks": 1000})
    assert explicit.config.timing_kind == TIMING_ROOFLINE and explicit.config.num_gpu_blocks == 1000
    flag = parse_engine_args({"engine": dict(AIC), "num_gpu_blocks_is_explicit": True})
    assert flag.config.num_gpu_blocks == 16384


def test_gpu_memory_utilization_is_used_with_aic():
    base = parse_engine_args({"engine": dict(AIC)}).config.num_gpu_blocks
    p = parse_engine_args({"engine": dict(AIC), "gpu_memory_utilization": 0.8})
    assert p.config.num_gpu_blocks < base
    assert "gpu_memory_utilization" not in p.ignored
    # block size changes the count, not the tokens
    p16 = parse_engine_args({"engine": {**AIC, "block_size": 16}})
    assert abs(p16.config.num_gpu_blocks * 16 - base * 64) < 64


def test_tp_from_either_key():
    a = parse_engine_args({"engine": {**AIC, "aic_tp_size": 2}})
    b = parse_engine_args({"engine": {k: v for k, v in AIC.items() if k != "aic_tp_size"},
                           "tensor_parallel_size": 2})
    assert a.config.tensor_parallel_size == b.config.tensor_parallel_size == 2
    assert a.config.num_gpu_blocks == b.config.num_gpu_blocks
    e = err_of({"engine": {**AIC, "aic_tp_size": 2}, "tensor_parallel_size": 4})
    assert e.field == "engine.aic_tp_size" and "conflicts" in str(e)


def test_uncalibrated_combination_warns():
    p = parse_engine_args({**AIC, "aic_system": "l40s", "aic_model_path": "Qwen/Qwen3-8B"})
    assert p.config.timing_kind == TIMING_ROOFLINE
    assert len(p.warnings) == 1 and "uncalibrated" in p.warnings[0]
    p = parse_engine_args({**AIC, "aic_backend": "sglang", "aic_system": "b200_sxm"})
    assert "uncalibrated" in p.warnings[0] and "(sglang)" in p.warnings[0]
    # a dtype override keeps the fitted efficiencies but says so
    p = parse_engine_args({**AIC, "aic_kv_cache_dtype": "bfloat16"})
    assert "override" in p.warnings[0]
    assert p.config.num_gpu_blocks < parse_engine_args(AIC).config.num_gpu_blocks


def test_aic_keys_without_backend_have_no_effect():
    p = parse_engine_args({"aic_system": "h200_sxm", "aic_model_path": "x/y", "aic_tp_size": 2})
    assert p.config.timing_kind == TIMING_POLYNOMIAL and p.perf is None
    assert sorted(p.ignored) == ["aic_model_path", "aic_system", "aic_tp_size"]
    p = parse_engine_args({"engine": {"aic_system": "h200_sxm"}})
    assert p.ignored == ["engine.aic_system"]


def test_roofline_ignores_provider_only_keys():
    p = parse_engine_args({**AIC, "aic_backend_version": "0.24.0", "aic_moe_ep_size": 2,
                           "aic_systems_path": "/x"})
    assert sorted(p.ignored) == ["aic_moe_ep_size", "aic_systems_path"]
    assert p.warnings == []  # the planner guide's version is the one the sets are fitted to
    p = parse_engine_args({**AIC, "aic_backend_version": "0.27.0"})
    assert p.ignored == [] and "0.27.0 is not modelled" in p.warnings[0]


@pytest.mark.parametrize("value, field, fragment", [
    ({"aic_backend": "vllm"}, "aic_system", "required with aic_backend"),
    ({"engine": {"aic_backend": "vllm", "aic_system": "h200_sxm"}}, "engine.aic_model_path",
     "required with aic_backend"),
    ({**AIC, "aic_model_path": "acme/Nope-1B"}, "aic_model_path",
     "known models: meta-llama/Llama-3.1-8B-Instruct"),
    ({**AIC, "aic_system": "h300"}, "aic_system", "known: h100_sxm, h200_sxm"),
    ({**AIC, "aic_backend": "tgi"}, "aic_backend", 'expected one of "vllm"'),
    ({**AIC, "aic_gemm_dtype": "fp7"}, "aic_gemm_dtype", "unknown weight/GEMM dtype"),
    ({**AIC, "aic_tp_size": 3}, "aic_tp_size", "do not split"),
    ({**AIC, "aic_attention_dp_size": 2}, "aic_attention_dp_size", "not supported yet"),
    ({**AIC, "aic_provider": "magic"}, "aic_provider", 'expected "roofline" or'),
    ({**AIC, "aic_system": "h100_sxm", "aic_model_path": "meta-llama/Llama-3.1-70B-Instruct"},
     "num_gpu_blocks", "does not fit"),
])
def test_aic_errors(value, field, fragment):
    e = err_of(value)
    assert e.field == field, (e.field, str(e))
    assert fragment in str(e), str(e)


# ---------------------------------------------------------------------------------------------
# Optional aiconfigurator provider


def test_aiconfigurator_provider_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "aiconfigurator_core", None)  # import fails
    aic.provider.cache_clear()
    assert not aic.available()
    e = err_of({**AIC, "aic_provider": "aiconfigurator"})
    assert e.field == "aic_provider"
    assert "dynosim-tui[aic]" in str(e) and "aiconfigurator-core" in str(e)
    # an explicit timing model does not need it
    p = parse_engine_args({**AIC, "aic_provider": "aiconfigurator",
                           "timing_model": {"type": "polynomial"}})
    assert p.config.timing_kind == TIMING_POLYNOMIAL


FAKE_CORE = '''
calls = []
class AicEngine:
    def __init__(self, spec):
        self.spec = spec
    @classmethod
    def from_spec(cls, spec, db):
        return cls(spec)
    def predict_prefill_latency(self, bs, isl, prefix):
        calls.append(("prefill", bs, isl, prefix))
        return 10.0 + 0.01 * bs * (isl - prefix) + 0.001 * prefix
    def predict_decode_latency(self, bs, isl, osl):
        calls.append(("decode", bs, isl, osl))
        return 0.5 + 0.001 * bs * isl / 1000.0
'''
FAKE_SDK_ENGINE = '''
from aiconfigurator_core import calls
class EngineHandle:
    spec_bytes = b"spec"
    @classmethod
    def compile(cls, model_path, system, backend, **kw):
        calls.append(("compile", model_path, system, backend, tuple(sorted(kw.items()))))
        return cls()
'''


def test_aiconfigurator_provider_with_a_stand_in(tmp_path, monkeypatch):
    pkg = tmp_path / "aiconfigurator_core"
    (pkg / "sdk").mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_CORE)
    (pkg / "sdk" / "__init__.py").write_text("")
    (pkg / "sdk" / "engine.py").write_text(FAKE_SDK_ENGINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    for m in ("aiconfigurator_core", "aiconfigurator_core.sdk", "aiconfigurator_core.sdk.engine"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    aic.provider.cache_clear()
    try:
        p = parse_engine_args({**AIC, "aic_provider": "aiconfigurator",
                               "aic_backend_version": "0.24.0"})
        import aiconfigurator_core as core
        assert p.config.timing_kind == TIMING_EXTERNAL and p.warnings == []
        assert p.ignored == []
        compile_call = core.calls[0]
        assert compile_call[:4] == ("compile", "nvidia/Llama-3.1-8B-Instruct-FP8", "h200_sxm",
                                    "vllm")
        assert ("backend_version", "0.24.0") in compile_call[4]
        t = make_timing(p.config)
        # prefill gets (batch, mean end incl. prefix, mean prefix); decode (batch, mean ctx, 2)
        assert t.prefill_ms(2, 5000, 1000) == round_ns(10.0 + 0.01 * 2 * 2000 + 0.001 * 500)
        assert core.calls[-1] == ("prefill", 2, 2500, 500)
        assert t.decode_ms(4, 4003) == 1.0  # clamped to >= 1 ms like the reference
        assert core.calls[-1] == ("decode", 4, 1000, 2)
        n = len(core.calls)
        for _ in range(100):  # memoized
            t.prefill_ms(2, 5000, 1000)
            t.decode_ms(4, 4003)
        assert len(core.calls) == n
        # the same configuration reuses the compiled engine
        parse_engine_args({**AIC, "aic_provider": "aiconfigurator",
                           "aic_backend_version": "0.24.0"})
        assert sum(1 for c in core.calls if c[0] == "compile") == 1
    finally:
        aic.provider.cache_clear()


# ---------------------------------------------------------------------------------------------
# A replay timed by the roofline


def test_replay_with_aic_args():
    p = parse_engine_args(AIC)
    timer = make_timing(p.config)
    opts = RunOptions(input_tokens=1000, output_tokens=3, request_count=1, request_rate=1.0,
                      extra_engine_args=json.dumps(AIC))
    replay = build_replay(opts)
    replay.run_to_end(1000)
    s = replay.report().summary
    assert s["completed_requests"] == 1
    assert s["mean_ttft_ms"] == pytest.approx(timer.prefill_ms(1, 1000, 0), abs=1e-6)
    # roofline: ~15 ms for 1k tokens on H200, vs 32 ms of the default polynomial
    assert 10.0 < s["mean_ttft_ms"] < 20.0
