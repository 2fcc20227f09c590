"""Hardware roofline timing model (aic_* args): accuracy against aiconfigurator's tables,
catalogs, config.json loading, KV capacity, and the formulas of spec perfmodel.md §3."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from dynosim.inputs.engine_args import parse_engine_args
from dynosim.perfmodel import fit as F
from dynosim.perfmodel.build import PerfModelError, model_shape, resolve
from dynosim.perfmodel.coeffs import calibrated_sets
from dynosim.perfmodel.gpus import known_gpus
from dynosim.perfmodel.memory import kv_capacity
from dynosim.perfmodel.models import find_model, known_models
from engine.config import TIMING_ROOFLINE
from engine.timing import make_timing
from helpers import DATA

PERF = DATA / "perf"
MULTI = PERF / "aic_multi_config_vllm0.24.0.csv"
HEADLINE_ARGS = {"aic_backend": "vllm", "aic_system": "h200_sxm",
                 "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1}
HEADLINE = ("h200_sxm", "nvidia/Llama-3.1-8B-Instruct-FP8", 1)


def _errors(points: list[F.Point], prefill, decode) -> tuple[list[float], list[float]]:
    pre, dec = [], []
    for p in points:
        if p.phase == F.PREFILL:
            pre.append(prefill(p) / p.ref_ms - 1.0)
        else:
            dec.append(decode(p) / p.ref_ms - 1.0)
    return pre, dec


def _max(xs: list[float]) -> float:
    return max(abs(x) for x in xs)


def _rms(xs: list[float]) -> float:
    return math.sqrt(sum(x * x for x in xs) / len(xs))


def _headline_points() -> list[F.Point]:
    pts = F.prefill_points(PERF / "aic_prefill_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv")
    pts += F.prefix_points(PERF / "aic_prefill_prefix_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv")
    pts += F.decode_points(PERF / "aic_decode_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv")
    return pts


# ---------------------------------------------------------------------------------------------
# Accuracy against the AIC tables


def test_headline_accuracy_through_the_engine_timer():
    """vllm / h200_sxm / Llama-3.1-8B-FP8 / TP1, as the engine sees it (engine args -> compiled
    timer): prefill (incl. cached-prefix grid) and decode within 10 % max, 5 % rms."""
    p = parse_engine_args(HEADLINE_ARGS)
    assert p.config.timing_kind == TIMING_ROOFLINE
    assert p.warnings == []
    timer = make_timing(p.config)
    pts = _headline_points()
    pre, dec = _errors(
        pts,
        lambda q: timer.prefill_raw_ms(q.batch, q.batch * q.isl, q.batch * q.prefix),
        lambda q: timer.decode_raw_ms(q.batch, q.batch * q.isl))
    assert len(pre) == 9 + 24 and len(dec) == 27
    assert _max(pre) <= 0.10 and _rms(pre) <= 0.05, (_max(pre), _rms(pre))
    assert _max(dec) <= 0.10 and _rms(dec) <= 0.05, (_max(dec), _rms(dec))


def _table_grids() -> dict[tuple[str, str, int], list[F.Point]]:
    return {(s, F.TABLE_MODELS[label][0], tp): pts
            for (s, label, tp), pts in F.multi_config_points(MULTI).items()}


def test_required_configs_are_calibrated():
    have = {(s.system, s.model, s.tp) for s in calibrated_sets() if s.quality == "calibrated"}
    llama_hopper = {(s, m, tp) for (s, m, tp) in _table_grids()
                    if s in ("h100_sxm", "h200_sxm") and "Llama" in m}
    assert len(llama_hopper) == 10
    assert llama_hopper <= have
    assert any(s == "b200_sxm" for s, _, _ in have)


@pytest.mark.parametrize("key", sorted(_table_grids()), ids=lambda k: f"{k[0]}-{k[1]}-tp{k[2]}")
def test_every_calibrated_config_within_15_percent(key):
    system, model, tp = key
    setup = resolve(system, model, "vllm", tp)
    assert setup.calibrated
    cal = next(s for s in calibrated_sets() if (s.system, s.model, s.tp) == key)
    r = setup.roofline()
    pre, dec = _errors(_table_grids()[key], lambda q: q.predict(r), lambda q: q.predict(r))
    worst = _max(pre + dec)
    assert worst == pytest.approx(cal.max_rel_err, abs=2e-3)  # the shipped figure is honest
    if cal.quality == "calibrated":
        assert worst <= 0.15, worst
        assert setup.warning is None
    else:  # shipped, but the engine warns
        assert setup.warning is not None and "rough" in setup.warning


def test_fit_reproduces_shipped_quality():
    """The fitter (scripts/calibrate.py) reaches the shipped error on a configuration."""
    key = ("h100_sxm", "nvidia/Llama-3.1-8B-Instruct-FP8", 1)
    setup = resolve(*key[:2], "vllm", key[2], coeffs="achievable")
    r = F.fit(setup, _table_grids()[key])
    cal = next(s for s in calibrated_sets() if (s.system, s.model, s.tp) == key)
    assert r.max_rel_err <= cal.max_rel_err + 0.005


# ---------------------------------------------------------------------------------------------
# Formulas: the uncalibrated "achievable" roofline equals spec perfmodel.md's own computation


def test_achievable_roofline_matches_spec_tables():
    setup = resolve(*HEADLINE[:2], "vllm", 1, coeffs="achievable")
    assert not setup.calibrated
    r = setup.roofline()
    for isl, ms in ROOFLINE_ACH_PREFILL:
        assert r.prefill_ms(1.0, float(isl), 0.0) == pytest.approx(ms, rel=1e-4)
    # decode (batch x context) and the TP4 70B row with its ring all-reduce
    assert r.decode_ms(1.0, 1024.0) == pytest.approx(3.0701, rel=1e-4)
    assert r.decode_ms(64.0, 64 * 4096.0) == pytest.approx(7.62, rel=1e-3)
    assert r.prefill_ms(1.0, 1024.0, 16384.0) == pytest.approx(29.9929, rel=1e-4)
    r70 = resolve("h200_sxm", "nvidia/Llama-3.1-70B-Instruct-FP8", tp=4,
                  coeffs="achievable").roofline()
    assert r70.prefill_ms(1.0, 1024.0, 0.0) == pytest.approx(46.1315, rel=1e-4)
    assert r70.decode_ms(256.0, 256 * 4096.0) == pytest.approx(25.2371, rel=1e-4)


# spec perfmodel.md §4 "roofline achievable" prefill column (batch 1, no prefix)
ROOFLINE_ACH_PREFILL = [(128, 3.2447), (512, 7.2617), (1024, 13.5425), (2048, 26.8621),
                        (4096, 56.5333), (8192, 128.0038), (16384, 319.4570), (32768, 896.4128)]


def test_parameter_counts_of_spec():
    shape = model_shape(find_model("nvidia/Llama-3.1-8B-Instruct-FP8"), 1)
    f = shape.fields
    assert f["dense_bytes"] == pytest.approx(6.979e9, rel=1e-3)  # P_lin, FP8
    assert f["head_bytes"] == pytest.approx(1.0506e9, rel=1e-3)  # BF16 lm_head
    assert shape.kv_bytes_per_token == 65536  # 64 KiB at FP8
    assert f["elem_bytes"] == pytest.approx(5.5e6, rel=0.01)
    bf16 = model_shape(find_model("meta-llama/Llama-3.1-8B-Instruct"), 1)
    assert bf16.kv_bytes_per_token == 131072
    assert find_model("meta-llama/Llama-3.1-8B-Instruct").params() == pytest.approx(8.03e9,
                                                                                    rel=2e-3)
    # TP splits heads/weights; KV heads replicate past TP = n_kv
    t8 = model_shape(find_model("nvidia/Llama-3.1-70B-Instruct-FP8"), 8)
    t16 = model_shape(find_model("nvidia/Llama-3.1-70B-Instruct-FP8"), 16)
    assert t16.kv_bytes_per_token == t8.kv_bytes_per_token


def test_step_time_shape():
    r = resolve(*HEADLINE[:2]).roofline()
    # more cached prefix costs more attention; more new tokens cost more
    assert r.prefill_ms(1, 1024, 0) < r.prefill_ms(1, 1024, 4096) < r.prefill_ms(1, 1024, 16384)
    assert r.prefill_ms(1, 512, 0) < r.prefill_ms(1, 1024, 0) < r.prefill_ms(4, 1024, 0)
    # decode: batch and context both matter; zero work costs nothing
    assert r.decode_ms(8, 8 * 1024) < r.decode_ms(8, 8 * 4096) < r.decode_ms(64, 64 * 4096)
    assert r.prefill_ms(0, 100, 0) == 0.0 and r.prefill_ms(1, 0, 100) == 0.0
    assert r.decode_ms(0, 0) == 0.0
    # a mixed pass streams the weights once: cheaper than prefill + decode, dearer than either
    mixed = r.mixed_ms(1, 512, 0, 32, 32 * 2048)
    pre, dec = r.prefill_ms(1, 512, 0), r.decode_ms(32, 32 * 2048)
    assert max(pre, dec) < mixed < pre + dec
    assert r.mixed_ms(0, 0, 0, 32, 32 * 2048) == pytest.approx(dec)


def test_moe_touches_more_experts_with_more_tokens():
    r = resolve("h200_sxm", "Qwen/Qwen3-30B-A3B-FP8").roofline()
    assert r.weights_s(1.0) < r.weights_s(8.0) < r.weights_s(256.0)
    assert r.weights_s(1e6) == pytest.approx(r.weights_s(1e7))  # every expert read once


def test_query_cost_is_microseconds():
    timer = make_timing(parse_engine_args(HEADLINE_ARGS).config)
    n = 20000
    t0 = time.perf_counter()
    for i in range(n):
        timer.decode_ms(1 + i % 256, 1000 + 37 * i)
        timer.prefill_ms(1 + i % 4, 4096 + i, 1024)
    per_call = (time.perf_counter() - t0) / (2 * n)
    assert per_call < 25e-6, per_call  # ~0.2 us compiled, a few us interpreted


# ---------------------------------------------------------------------------------------------
# Catalogs and local configs


def test_catalog_names():
    for name in ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B",
                 "nvidia/Llama-3.1-8B-Instruct-FP8", "meta-llama/Llama-3.1-70B-Instruct",
                 "nvidia/Llama-3.1-70B-Instruct-FP8", "Qwen/Qwen3-8B", "Qwen/Qwen3-32B",
                 "Qwen/Qwen3-30B-A3B", "qwen/qwen3-32b-fp8"):
        find_model(name)
    assert {"h100_sxm", "h200_sxm", "b200_sxm"} <= set(known_gpus())
    assert resolve("b200", HEADLINE[1]).gpu.name == "b200_sxm"
    m = find_model("Qwen/Qwen3-30B-A3B")
    assert m.is_moe and m.n_experts == 128 and m.top_k == 8
    assert m.params() == pytest.approx(30.5e9, rel=0.01)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(PerfModelError) as e:
        resolve("h200_sxm", "acme/Unknown-7B")
    assert e.value.key == "model"
    for name in known_models()[:5]:
        assert name in str(e.value)
    with pytest.raises(PerfModelError) as e:
        resolve("tpu_v5", HEADLINE[1])
    assert e.value.key == "system" and "h200_sxm" in str(e.value)
    with pytest.raises(PerfModelError) as e:
        resolve(*HEADLINE[:2], kv_dtype="fp3")
    assert e.value.key == "kv_dtype"


def _write_llama8b(d: Path, fp8: bool) -> Path:
    d.mkdir()
    (d / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "vocab_size": 128256, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}))
    if fp8:
        (d / "hf_quant_config.json").write_text(json.dumps(
            {"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}}))
    return d


def test_local_config_json_equals_catalog(tmp_path):
    d = _write_llama8b(tmp_path / "llama8b-fp8", fp8=True)
    local = resolve("h200_sxm", str(d), coeffs="achievable").roofline()
    ref = resolve(*HEADLINE[:2], coeffs="achievable").roofline()
    for b, ctx in ((1, 1024), (64, 4096)):
        assert local.decode_ms(b, b * ctx) == pytest.approx(ref.decode_ms(b, b * ctx))
    assert local.prefill_ms(1, 2048, 512) == pytest.approx(ref.prefill_ms(1, 2048, 512))
    # the config file itself works too, and a BF16 checkpoint has BF16 KV
    bf = _write_llama8b(tmp_path / "llama8b", fp8=False)
    assert find_model(str(bf / "config.json")).kv_dtype == "bf16"
    p = parse_engine_args({**HEADLINE_ARGS, "aic_model_path": str(d)})
    assert any("uncalibrated" in w for w in p.warnings)  # not a known calibrated name
    assert p.config.num_gpu_blocks == parse_engine_args(HEADLINE_ARGS).config.num_gpu_blocks


def test_broken_local_config(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 10}')
    with pytest.raises(PerfModelError) as e:
        resolve("h200_sxm", str(tmp_path))
    assert "num_hidden_layers" in str(e.value)


# ---------------------------------------------------------------------------------------------
# KV capacity


def test_num_gpu_blocks_of_the_reference():
    """The reference derives 29249 blocks (64 tokens) for Llama-3.1-8B-FP8 TP1 on H200 at
    gpu_memory_utilization 0.9."""
    p = parse_engine_args(HEADLINE_ARGS)
    assert p.config.num_gpu_blocks == pytest.approx(29249, rel=0.02)
    assert p.normalized["engine"]["num_gpu_blocks"] == p.config.num_gpu_blocks
    setup = resolve(*HEADLINE[:2])
    # AIC: 1,871,952 tokens with FP8 KV and 935,968 with BF16 KV
    assert kv_capacity(setup, 64).kv_tokens == pytest.approx(1871952, rel=0.02)
    bf16kv = resolve(*HEADLINE[:2], kv_dtype="bfloat16")
    assert kv_capacity(bf16kv, 64).kv_tokens == pytest.approx(935968, rel=0.02)
    # block size and memory fraction scale it
    assert kv_capacity(setup, 16).num_gpu_blocks == pytest.approx(4 * 29249, rel=0.02)
    less = kv_capacity(setup, 64, gpu_memory_utilization=0.5).num_gpu_blocks
    assert 0.4 * 29249 < less < 0.55 * 29249


def test_model_that_does_not_fit():
    with pytest.raises(PerfModelError) as e:
        from dynosim.perfmodel.setup import configure_aic
        configure_aic(backend="vllm", system="h100_sxm", model="meta-llama/Llama-3.1-70B-Instruct",
                      tp=1, block_size=64)
    assert e.value.key == "memory" and "does not fit" in str(e.value)
