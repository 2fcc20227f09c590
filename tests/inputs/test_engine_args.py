"""Engine-arg parsing: nested 1.6 and flat 1.4 forms, defaults, validation, mapping."""
from __future__ import annotations

import json

import pytest

from dynosim.inputs.engine_args import parse_engine_args
from dynosim.inputs.errors import InputError
from engine.config import TIMING_FIXED, TIMING_POLYNOMIAL, EngineConfig

# The 1.6.1 normalised launch config for `{}` (minus its live-runtime "dynamo" section).
DEFAULT_NORMALIZED = {
    "engine": {
        "backend": "vllm",
        "num_gpu_blocks": 16384,
        "block_size": 64,
        "max_model_len": None,
        "max_num_seqs": 256,
        "max_num_batched_tokens": 8192,
        "prefill_schedule_interval": 1,
        "prefill_decode_interval": 0,
        "enable_prefix_caching": True,
        "enable_chunked_prefill": True,
        "speedup_ratio": 1.0,
        "decode_speedup_ratio": 1.0,
        "aic_nextn": None,
        "aic_nextn_accept_rates": None,
        "aic_mtp_seed": 42,
        "worker_type": "aggregated",
        "preemption_mode": "lifo",
        "emit_kv_events": False,
        "emit_kv_token_ids": False,
        "kv_transfer_bytes_per_token": None,
        "kv_transfer_bandwidth": None,
        "kv_transfer_timing_mode": "full_prompt",
        "timing_model": {"type": "polynomial"},
        "sglang": {
            "schedule_policy": "fifo",
            "max_prefill_tokens": 16384,
            "chunked_prefill_size": 8192,
            "clip_max_new_tokens": 4096,
            "schedule_conservativeness": 1.0,
        },
        "trtllm": {"capacity_scheduler_policy": "guaranteed_no_evict"},
    },
    "dp_size": 1,
    "tensor_parallel_size": 1,
    "startup_time": None,
    "num_gpu_blocks_is_explicit": False,
    "gpu_memory_utilization": None,
    "mem_fraction_static": None,
    "free_gpu_memory_fraction": None,
    "cuda_graph_reserved_bytes": None,
}

CONFIG_FIELDS = ("block_size", "num_gpu_blocks", "max_num_seqs", "max_num_batched_tokens",
                 "max_model_len", "enable_prefix_caching", "enable_chunked_prefill",
                 "preemption_lifo", "speedup_ratio", "decode_speedup_ratio", "timing_kind",
                 "fixed_prefill_ms", "fixed_decode_ms", "tensor_parallel_size", "startup_time_s")


def cfg_dict(c: EngineConfig) -> dict:
    return {f: getattr(c, f) for f in CONFIG_FIELDS}


def err_of(value, **kw) -> InputError:
    with pytest.raises(InputError) as ei:
        parse_engine_args(value, **kw)
    return ei.value


# ---------------------------------------------------------------------------------------------
# Defaults and forms


@pytest.mark.parametrize("value", [None, "{}", '{"engine": {}}', "  {}  "])
def test_defaults(value):
    p = parse_engine_args(value)
    assert p.normalized == DEFAULT_NORMALIZED
    assert list(p.normalized["engine"]) == list(DEFAULT_NORMALIZED["engine"])  # key order
    assert cfg_dict(p.config) == cfg_dict(EngineConfig())
    assert p.config.max_model_len == 0 and p.config.startup_time_s == -1.0
    assert p.ignored == []


def test_forms_are_reported():
    assert parse_engine_args(None).form == "default"
    assert parse_engine_args("{}").form == "flat"
    assert parse_engine_args('{"engine": {}}').form == "nested"


NESTED = {
    "engine": {
        "block_size": 16, "num_gpu_blocks": 100, "max_num_seqs": 8, "max_num_batched_tokens": 512,
        "max_model_len": 4096, "enable_prefix_caching": False, "enable_chunked_prefill": False,
        "preemption_mode": "fifo", "speedup_ratio": 2, "decode_speedup_ratio": 1.5,
    },
    "tensor_parallel_size": 4,
    "startup_time": 30,
}
EXPECTED = {
    "block_size": 16, "num_gpu_blocks": 100, "max_num_seqs": 8, "max_num_batched_tokens": 512,
    "max_model_len": 4096, "enable_prefix_caching": False, "enable_chunked_prefill": False,
    "preemption_lifo": False, "speedup_ratio": 2.0, "decode_speedup_ratio": 1.5,
    "timing_kind": TIMING_POLYNOMIAL, "fixed_prefill_ms": 0.0, "fixed_decode_ms": 0.0,
    "tensor_parallel_size": 4, "startup_time_s": 30.0,
}


def test_nested_form_maps_every_field():
    p = parse_engine_args(json.dumps(NESTED))
    assert p.form == "nested"
    assert cfg_dict(p.config) == EXPECTED
    assert p.normalized["engine"]["block_size"] == 16
    assert p.normalized["engine"]["speedup_ratio"] == 2.0
    assert p.normalized["startup_time"] == 30.0
    assert p.normalized["engine"]["num_gpu_blocks"] == 100
    # untouched keys keep their defaults
    assert p.normalized["engine"]["aic_mtp_seed"] == 42


def test_flat_form_is_equivalent():
    flat = dict(NESTED["engine"], tensor_parallel_size=4, startup_time=30)
    p = parse_engine_args(json.dumps(flat))
    assert p.form == "flat"
    assert cfg_dict(p.config) == EXPECTED
    assert p.normalized == parse_engine_args(json.dumps(NESTED)).normalized


def test_flat_example_from_brief():
    p = parse_engine_args('{"block_size": 16, "num_gpu_blocks": 100}')
    assert p.config.block_size == 16 and p.config.num_gpu_blocks == 100
    assert p.config.max_num_seqs == 256


def test_dict_input_is_accepted():
    assert parse_engine_args({"engine": {"block_size": 32}}).config.block_size == 32


def test_exact_python_types():
    p = parse_engine_args('{"engine": {"speedup_ratio": 3, "decode_speedup_ratio": 2, '
                          '"timing_model": {"type": "fixed", "prefill_ms": 5, "decode_ms": 1}},'
                          ' "startup_time": 1}')
    c = p.config
    for f in ("speedup_ratio", "decode_speedup_ratio", "fixed_prefill_ms", "fixed_decode_ms",
              "startup_time_s"):
        assert type(getattr(c, f)) is float, f
    for f in ("block_size", "num_gpu_blocks", "max_num_seqs", "max_num_batched_tokens",
              "max_model_len", "timing_kind", "tensor_parallel_size"):
        assert type(getattr(c, f)) is int, f
    for f in ("enable_prefix_caching", "enable_chunked_prefill", "preemption_lifo"):
        assert type(getattr(c, f)) is bool, f


def test_speedup_zero_stays_zero():
    p = parse_engine_args('{"engine": {"speedup_ratio": 0, "decode_speedup_ratio": 0}}')
    assert p.config.speedup_ratio == 0.0 and p.config.decode_speedup_ratio == 0.0


def test_nullable_keys_fall_back_to_defaults():
    p = parse_engine_args('{"engine": {"block_size": null, "max_model_len": null, '
                          '"max_num_seqs": null}, "startup_time": null}')
    assert p.config.block_size == 64 and p.config.max_model_len == 0
    assert p.config.max_num_seqs == 256 and p.config.startup_time_s == -1.0
    assert p.normalized["engine"]["block_size"] == 64


# ---------------------------------------------------------------------------------------------
# Timing models


def test_fixed_timing_mapping():
    p = parse_engine_args('{"engine": {"timing_model": '
                          '{"type": "fixed", "prefill_ms": 120, "decode_ms": 2.5}}}')
    assert p.config.timing_kind == TIMING_FIXED
    assert p.config.fixed_prefill_ms == 120.0 and p.config.fixed_decode_ms == 2.5
    assert p.normalized["engine"]["timing_model"] == {"type": "fixed", "prefill_ms": 120.0,
                                                       "decode_ms": 2.5}


def test_fixed_timing_in_flat_form():
    p = parse_engine_args('{"timing_model": {"type": "fixed", "prefill_ms": 1, "decode_ms": 0}}')
    assert p.config.timing_kind == TIMING_FIXED and p.config.fixed_decode_ms == 0.0


def test_polynomial_timing_explicit():
    p = parse_engine_args('{"engine": {"timing_model": {"type": "polynomial"}}}')
    assert p.config.timing_kind == TIMING_POLYNOMIAL


@pytest.mark.parametrize("tm, field, fragment", [
    ({"type": "fixed", "prefill_ms": 5}, "engine.timing_model.decode_ms", "required"),
    ({"type": "fixed", "decode_ms": 5}, "engine.timing_model.prefill_ms", "required"),
    ({"type": "fixed", "prefill_ms": -1, "decode_ms": 1}, "engine.timing_model.prefill_ms",
     "got -1"),
    ({"type": "fixed", "prefill_ms": True, "decode_ms": 1}, "engine.timing_model.prefill_ms",
     "got true"),
    ({"type": "fixed", "prefill_ms": 1, "decode_ms": 1, "x": 2}, "engine.timing_model.x",
     "valid keys: type, prefill_ms, decode_ms"),
    ({"type": "polynomial", "x": 1}, "engine.timing_model.x", "valid keys: type"),
    ({"type": "external", "provider": "ais", "config": {}}, "engine.timing_model.type",
     "not supported yet"),
    ({"type": "foo"}, "engine.timing_model.type", '"polynomial", "fixed", "external"'),
    ({}, "engine.timing_model.type", "missing"),
    ("polynomial", "engine.timing_model", "expected an object"),
])
def test_timing_model_errors(tm, field, fragment):
    e = err_of(json.dumps({"engine": {"timing_model": tm}}))
    assert e.field == field
    assert str(e).startswith(f"--extra-engine-args: field '{field}': ")
    assert fragment in str(e), str(e)


# ---------------------------------------------------------------------------------------------
# Unknown keys and form detection


def test_unknown_engine_key_lists_valid_keys():
    e = err_of('{"engine": {"foo": 1}}')
    assert e.field == "engine.foo"
    text = str(e)
    assert "unknown key" in text
    for k in ("backend", "num_gpu_blocks", "block_size", "max_num_seqs", "preemption_mode",
              "timing_model", "kv_transfer_bandwidth", "sglang", "trtllm"):
        assert k in text


def test_unknown_top_level_key_lists_valid_keys():
    e = err_of('{"engine": {}, "foo": 1}')
    assert e.field == "foo"
    assert ("valid keys: engine, dp_size, tensor_parallel_size, startup_time, "
            "num_gpu_blocks_is_explicit, gpu_memory_utilization, mem_fraction_static, "
            "free_gpu_memory_fraction, cuda_graph_reserved_bytes") in str(e)


def test_flat_engine_key_next_to_engine_object_is_rejected():
    e = err_of('{"engine": {"block_size": 16}, "num_gpu_blocks": 8}')
    assert e.field == "num_gpu_blocks"
    assert '{"engine": {"num_gpu_blocks": ...}}' in str(e)


def test_unknown_flat_key_lists_valid_keys():
    e = err_of('{"block_size": 16, "blocksize": 16}')
    assert e.field == "blocksize"
    assert "valid keys: backend, num_gpu_blocks, block_size" in str(e)
    assert "tensor_parallel_size" in str(e)


def test_unknown_sub_object_key():
    e = err_of('{"engine": {"sglang": {"page_sizes": 1}}}')
    assert e.field == "engine.sglang.page_sizes"
    assert "schedule_policy" in str(e)


# ---------------------------------------------------------------------------------------------
# Type and range checks


@pytest.mark.parametrize("engine, field, fragment", [
    ({"block_size": "16"}, "engine.block_size", 'expected a positive integer, got "16"'),
    ({"block_size": 16.0}, "engine.block_size", "got 16.0"),
    ({"block_size": True}, "engine.block_size", "got true"),
    ({"block_size": 0}, "engine.block_size", "got 0"),
    ({"num_gpu_blocks": -5}, "engine.num_gpu_blocks", "got -5"),
    ({"num_gpu_blocks": None}, "engine.num_gpu_blocks", "must not be null"),
    ({"max_num_seqs": 0}, "engine.max_num_seqs", "positive"),
    ({"max_num_batched_tokens": 0}, "engine.max_num_batched_tokens", "positive"),
    ({"max_model_len": 0}, "engine.max_model_len", "positive"),
    ({"enable_prefix_caching": 1}, "engine.enable_prefix_caching", "true or false"),
    ({"enable_chunked_prefill": "yes"}, "engine.enable_chunked_prefill", "true or false"),
    ({"speedup_ratio": -1}, "engine.speedup_ratio", ">= 0"),
    ({"speedup_ratio": True}, "engine.speedup_ratio", "got true"),
    ({"decode_speedup_ratio": "2"}, "engine.decode_speedup_ratio", '"2"'),
    ({"preemption_mode": "FIFO"}, "engine.preemption_mode", '"lifo" or "fifo"'),
    ({"backend": "foo"}, "engine.backend", '"vllm", "sglang", "trtllm"'),
    ({"worker_type": "x"}, "engine.worker_type", '"aggregated", "prefill", "decode"'),
    ({"kv_transfer_timing_mode": "bogus"}, "engine.kv_transfer_timing_mode", "full_prompt"),
    ({"kv_transfer_bandwidth": -1}, "engine.kv_transfer_bandwidth", ">= 0"),
    ({"aic_mtp_seed": -1}, "engine.aic_mtp_seed", "non-negative"),
    ({"emit_kv_events": 0}, "engine.emit_kv_events", "true or false"),
    ({"sglang": None}, "engine.sglang", "JSON object"),
    ({"sglang": {"schedule_conservativeness": -1}}, "engine.sglang.schedule_conservativeness",
     ">= 0"),
])
def test_engine_value_errors(engine, field, fragment):
    e = err_of(json.dumps({"engine": engine}))
    assert e.field == field
    assert str(e).startswith(f"--extra-engine-args: field '{field}': "), str(e)
    assert fragment in str(e), str(e)


@pytest.mark.parametrize("top, field, fragment", [
    ({"dp_size": 0}, "dp_size", "positive"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size", "positive"),
    ({"startup_time": -1}, "startup_time", ">= 0"),
    ({"startup_time": "x"}, "startup_time", '"x"'),
    ({"num_gpu_blocks_is_explicit": 1}, "num_gpu_blocks_is_explicit", "true or false"),
    ({"gpu_memory_utilization": 2}, "gpu_memory_utilization", "[0, 1]"),
    ({"cuda_graph_reserved_bytes": -1}, "cuda_graph_reserved_bytes", "non-negative"),
    ({"engine": None}, "engine", "expected a JSON object, got null"),
    ({"engine": 3}, "engine", "expected a JSON object, got 3"),
])
def test_top_level_value_errors(top, field, fragment):
    e = err_of(json.dumps(top))
    assert e.field == field
    assert fragment in str(e), str(e)


def test_same_checks_apply_in_flat_form():
    e = err_of('{"block_size": "16"}')
    assert e.field == "block_size" and 'got "16"' in str(e)


# ---------------------------------------------------------------------------------------------
# Supported / ignored / not supported


@pytest.mark.parametrize("value, field", [
    ('{"dp_size": 2}', "dp_size"),
    ('{"engine": {"aic_nextn": 2}}', "engine.aic_nextn"),
    ('{"engine": {"native_host_offload": {"num_host_blocks": 4}}}', "engine.native_host_offload"),
    ('{"engine": {"kv_cache_groups": []}}', "engine.kv_cache_groups"),
    ('{"num_g2_blocks": 100}', "num_g2_blocks"),
    ('{"planner_profile_data": "/x.npz"}', "planner_profile_data"),
])
def test_not_supported_yet(value, field):
    e = err_of(value)
    assert e.field == field
    assert "not supported yet" in str(e)


def test_accepted_keys_without_effect_are_listed():
    p = parse_engine_args(json.dumps({
        "engine": {"emit_kv_events": True, "kv_transfer_bandwidth": 64,
                   "kv_transfer_bytes_per_token": 1000, "aic_mtp_seed": 42,
                   "prefill_schedule_interval": 1, "aic_nextn_accept_rates": "0.5",
                   "kv_bytes_per_token": 1000},
        "gpu_memory_utilization": 0.9,
    }))
    # kv_transfer_* are used by a disaggregated hand-off (the factory warns about them in an
    # aggregated run), so the parser does not list them.
    assert sorted(p.ignored) == sorted([
        "engine.emit_kv_events", "engine.aic_nextn_accept_rates",
        "engine.kv_bytes_per_token", "gpu_memory_utilization"])
    assert p.normalized["engine"]["kv_transfer_bandwidth"] == 64.0
    assert p.normalized["engine"]["kv_bytes_per_token"] == 1000
    assert "kv_cache_bytes_per_token" not in p.normalized["engine"]  # not given, not echoed
    assert cfg_dict(p.config) == cfg_dict(EngineConfig())


def test_dp_size_one_and_vllm_backend_are_fine():
    p = parse_engine_args('{"engine": {"backend": "vllm"}, "dp_size": 1}')
    assert p.normalized["dp_size"] == 1


def test_legacy_flat_names():
    p = parse_engine_args('{"engine_type": "vllm", "is_prefill": true, "aic_system": "h200_sxm",'
                          ' "bootstrap_port": 1234, "block_size": 32}')
    assert p.normalized["engine"]["backend"] == "vllm"
    assert p.normalized["engine"]["worker_type"] == "prefill"
    assert p.config.block_size == 32
    assert "aic_system" in p.ignored and "bootstrap_port" in p.ignored
    e = err_of('{"is_prefill": true, "is_decode": true}')
    assert e.field == "is_decode"
    e = err_of('{"is_decode": true, "worker_type": "prefill"}')
    assert e.field == "is_decode"


def test_legacy_names_are_not_valid_inside_engine():
    e = err_of('{"engine": {"engine_type": "vllm"}}')
    assert e.field == "engine.engine_type" and "unknown key" in str(e)


# ---------------------------------------------------------------------------------------------
# Sources: inline JSON vs file path


def test_json_file(tmp_path):
    p = tmp_path / "args.json"
    p.write_text(json.dumps(NESTED))
    assert cfg_dict(parse_engine_args(str(p)).config) == EXPECTED


def test_errors_in_a_file_name_the_file(tmp_path):
    p = tmp_path / "args.json"
    p.write_text('{"engine": {"block_size": "x"}}')
    e = err_of(str(p))
    assert str(e).startswith(f"{p}: field 'engine.block_size': ")
    p.write_text("{nope")
    assert str(err_of(str(p))).startswith(f"{p}: invalid JSON")
    p.write_text("[1]")
    assert "expected a JSON object, got array" in str(err_of(str(p)))


def test_missing_path_is_named(tmp_path):
    missing = str(tmp_path / "nope.json")
    e = err_of(missing, what="--prefill-engine-args")
    assert str(e).startswith("--prefill-engine-args: ")
    assert repr(missing) in str(e)


def test_directory_path(tmp_path):
    assert "directory" in str(err_of(str(tmp_path)))


@pytest.mark.parametrize("value, fragment", [
    ("{bad json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object, got array"),
    ("", "empty"),
    ('{"a": 1} {"b": 2}', "invalid JSON"),
])
def test_inline_errors(value, fragment):
    e = err_of(value, what="--decode-engine-args")
    assert str(e).startswith("--decode-engine-args: ")
    assert fragment in str(e)
    assert "\n" not in str(e)


# ---------------------------------------------------------------------------------------------
# SGLang and TRT-LLM backends (spec backends.md §1; messages and limits probed on 1.6.1)


@pytest.mark.parametrize("value, backend, block_size", [
    ('{"engine": {"backend": "sglang"}}', 1, 1),
    ('{"engine": {"backend": "trtllm"}}', 2, 32),
    ('{"engine": {"backend": "sglang", "block_size": null}}', 1, 1),
    ('{"engine": {"backend": "sglang", "block_size": 64}}', 1, 64),
    ('{"engine_type": "trtllm"}', 2, 32),
    ('{"backend": "sglang", "block_size": 16}', 1, 16),
])
def test_backend_selects_scheduler_and_block_size_default(value, backend, block_size):
    p = parse_engine_args(value)
    assert p.config.backend == backend
    assert p.config.block_size == block_size
    assert p.normalized["engine"]["block_size"] == block_size


def test_sglang_options_reach_the_config():
    p = parse_engine_args(json.dumps({"engine": {
        "backend": "sglang", "block_size": 16, "prefill_decode_interval": 3, "sglang": {
            "max_prefill_tokens": 4000, "chunked_prefill_size": 4096, "clip_max_new_tokens": 0,
            "schedule_conservativeness": 2.5}}}))
    c = p.config
    assert (c.sglang_max_prefill_tokens, c.sglang_chunked_prefill_size,
            c.sglang_clip_max_new_tokens, c.sglang_conservativeness,
            c.sglang_prefill_decode_interval) == (4000, 4096, 0, 2.5, 3)
    assert not c.sglang_lpm and p.ignored == []
    d = EngineConfig()
    assert (d.sglang_max_prefill_tokens, d.sglang_chunked_prefill_size,
            d.sglang_clip_max_new_tokens, d.sglang_conservativeness,
            d.sglang_prefill_decode_interval) == (16384, 8192, 4096, 1.0, 0)


@pytest.mark.parametrize("engine, field, fragment", [
    ({"backend": "sglang", "enable_chunked_prefill": False}, "engine.enable_chunked_prefill",
     "enable_chunked_prefill=false is not supported for backend=sglang"),
    ({"backend": "sglang", "block_size": 64, "sglang": {"chunked_prefill_size": 100}},
     "engine.sglang.chunked_prefill_size", "divisible by block_size 64"),
    ({"backend": "sglang", "sglang": {"chunked_prefill_size": 0}},
     "engine.sglang.chunked_prefill_size", "positive integer"),
    ({"backend": "sglang", "sglang": {"max_prefill_tokens": 0}},
     "engine.sglang.max_prefill_tokens", "positive integer"),
    ({"backend": "sglang", "sglang": {"clip_max_new_tokens": 1.5}},
     "engine.sglang.clip_max_new_tokens", "non-negative integer"),
    ({"backend": "sglang", "sglang": {"schedule_policy": "fcfs"}},
     "engine.sglang.schedule_policy", '"fifo" or "lpm"'),
    ({"backend": "sglang", "sglang": {"schedule_policy": None}},
     "engine.sglang.schedule_policy", "must not be null"),
    ({"backend": "sglang", "sglang": {"page_size": 64}}, "engine.sglang.page_size",
     "valid keys: schedule_policy, max_prefill_tokens, chunked_prefill_size, "
     "clip_max_new_tokens, schedule_conservativeness"),
    ({"backend": "trtllm", "trtllm": {"foo": 1}}, "engine.trtllm.foo",
     "valid keys: capacity_scheduler_policy"),
    ({"backend": "trtllm", "trtllm": {"capacity_scheduler_policy": "max_utilization"}},
     "engine.trtllm.capacity_scheduler_policy", '"guaranteed_no_evict"'),
    ({"backend": "sglang", "prefill_schedule_interval": 2}, "engine.prefill_schedule_interval",
     "supported only for backend=vllm"),
    ({"backend": "trtllm", "prefill_decode_interval": 2}, "engine.prefill_decode_interval",
     "supported only for backend=sglang"),
])
def test_backend_option_errors(engine, field, fragment):
    e = err_of(json.dumps({"engine": engine}))
    assert e.field == field
    assert fragment in str(e), str(e)


def test_other_backends_settings_and_unused_keys_are_listed_as_ignored():
    p = parse_engine_args('{"engine": {"sglang": {"clip_max_new_tokens": 10}}}')
    assert p.ignored == ["engine.sglang"] and p.config.backend == 0
    p = parse_engine_args('{"engine": {"backend": "sglang", "max_num_batched_tokens": 1000,'
                          ' "preemption_mode": "fifo"}}')
    assert sorted(p.ignored) == ["engine.max_num_batched_tokens", "engine.preemption_mode"]
    p = parse_engine_args('{"engine": {"backend": "trtllm", "preemption_mode": "fifo"}}')
    assert p.ignored == ["engine.preemption_mode"]
