# Over 450 lines on purpose: one concept, most of it the declarative table of engine keys (data).
"""Engine-argument parsing (`--extra-engine-args` and friends) -> `EngineConfig`.

Two input shapes are accepted:

* the nested 1.6 launch config: ``{"engine": {...engine keys...}, "dp_size": 1,
  "tensor_parallel_size": 1, "startup_time": null, ...}``. Engine keys at the top level are an
  error in this form.
* the flat 1.4 form: engine keys and the top-level keys side by side, e.g.
  ``{"block_size": 16, "num_gpu_blocks": 100}``; a few 1.4-only names are understood too
  (``engine_type``, ``is_prefill``/``is_decode``, ``aic_*`` model descriptors, ...).

The form is decided by the presence of an ``engine`` key. Unknown keys are rejected with the list
of valid keys. Every value is type-checked. Keys that the reference accepts but that have no
effect in this engine are accepted and listed in `ParsedEngineArgs.ignored`; settings that would
change results in ways this engine does not model yet (attention-DP, SGLang's LPM policy and
prefill/decode cadence, external timing providers, speculative decoding, KV offload tiers, ...)
raise "not supported yet".

`engine.backend` (1.4: `engine_type`) picks the scheduler family: "vllm", "sglang" or "trtllm"
(spec backends.md). Their defaults differ only in `block_size` (64, 1 = SGLang's page size, 32).
`aic_backend` picks the hardware model's kernel tables only, never the scheduler: Dynamo 1.6.1's
replay has no aic_backend at all, and its mocker CLI derives the perf-model backend from the
engine type (never the reverse).
"""
from __future__ import annotations

from typing import Any

# The value checks under the short names the key table below uses.
from dynosim.inputs.checks import FRACTION, NONNEG_INT, NONNEG_NUM, PORT, POS_INT, Check
from dynosim.inputs.checks import anything as _any, boolean as _bool, enum as _enum
from dynosim.inputs.checks import int_range as _int_range, is_int as _is_int, is_num as _is_num
from dynosim.inputs.checks import mapping as _obj, num_range as _num_range, string as _str
from dynosim.inputs.errors import InputError, json_kind, show_value
from dynosim.inputs.source import read_mapping, with_field_line
from dynosim.perfmodel.build import PerfModelError
from dynosim.perfmodel.setup import AicTiming, configure_aic
from engine.config import BACKEND_NAMES, TIMING_FIXED, TIMING_POLYNOMIAL, EngineConfig

# ---------------------------------------------------------------------------------------------
# How a key affects this engine.
USED = "used"  # mapped onto EngineConfig (or needed by the CLI, e.g. worker_type)
IGNORED = "ignored"  # accepted for compatibility, no effect here
UNSUPPORTED = "unsupported"  # accepted only at its default / unset


class _Key:
    __slots__ = ("name", "check", "default", "nullable", "effect", "in_defaults")

    def __init__(
        self,
        name: str,
        check: Check,
        default: Any,
        *,
        nullable: bool = False,
        effect: str = USED,
        in_defaults: bool = True,
    ) -> None:
        self.name = name
        self.check = check
        self.default = default
        # nullable: JSON null is accepted (means "unset": the default is used)
        self.nullable = nullable
        self.effect = effect
        # in_defaults: echoed in the normalised config even when not given
        self.in_defaults = in_defaults


_SGLANG_KEYS = (
    # the reference replay refuses the CLI's "fcfs" alias, so do we
    _Key("schedule_policy", _enum("fifo", "lpm"), "fifo"),
    _Key("max_prefill_tokens", POS_INT, 16384),
    _Key("chunked_prefill_size", POS_INT, 8192),  # a multiple of block_size
    _Key("clip_max_new_tokens", NONNEG_INT, 4096),
    _Key("schedule_conservativeness", NONNEG_NUM, 1.0),
)
# Default block size per backend (the reference's _normalize_mocker_config, probed).
BLOCK_SIZE_DEFAULT = {"vllm": 64, "sglang": 1, "trtllm": 32}
_TRTLLM_KEYS = (_Key("capacity_scheduler_policy", _enum("guaranteed_no_evict"),
                     "guaranteed_no_evict"),)

# Hardware timing model (spec perfmodel.md): active when aic_backend is set, in either form.
# Without aic_backend these keys are accepted and have no effect (as in the reference).
_AIC_KEYS: tuple[_Key, ...] = (
    _Key("aic_backend", _enum("vllm", "sglang", "trtllm"), None, nullable=True,
         in_defaults=False),
    _Key("aic_system", _str, None, nullable=True, in_defaults=False),
    _Key("aic_model_path", _str, None, nullable=True, in_defaults=False),
    _Key("aic_tp_size", POS_INT, None, nullable=True, in_defaults=False),
    _Key("aic_backend_version", _str, None, nullable=True, in_defaults=False),
    _Key("aic_gemm_dtype", _str, None, nullable=True, in_defaults=False),
    _Key("aic_kv_cache_dtype", _str, None, nullable=True, in_defaults=False),
    _Key("aic_fmha_dtype", _str, None, nullable=True, in_defaults=False),
    _Key("aic_moe_dtype", _str, None, nullable=True, in_defaults=False),
    _Key("aic_comm_dtype", _str, None, nullable=True, in_defaults=False),
    _Key("aic_moe_tp_size", POS_INT, None, nullable=True, in_defaults=False),
    _Key("aic_moe_ep_size", POS_INT, None, nullable=True, in_defaults=False),
    _Key("aic_attention_dp_size", POS_INT, None, nullable=True, in_defaults=False),
    _Key("aic_systems_path", _str, None, nullable=True, effect=IGNORED, in_defaults=False),
    # this project's own: "roofline" (default) or "aiconfigurator" (the optional extra)
    _Key("aic_provider", _enum("roofline", "aiconfigurator"), None, nullable=True,
         in_defaults=False),
)
# Used by the roofline; the rest only by the aiconfigurator provider.
_AIC_ROOFLINE_KEYS = ("aic_backend", "aic_system", "aic_model_path", "aic_tp_size",
                      "aic_backend_version",
                      "aic_gemm_dtype", "aic_kv_cache_dtype", "aic_fmha_dtype",
                      "aic_attention_dp_size", "aic_provider")
_AIC_PERF_FIELD = {"system": "aic_system", "model": "aic_model_path", "backend": "aic_backend",
                   "tp": "aic_tp_size", "gemm_dtype": "aic_gemm_dtype",
                   "kv_dtype": "aic_kv_cache_dtype", "fmha_dtype": "aic_fmha_dtype",
                   "provider": "aic_provider"}

# engine.* keys of the 1.6 launch config, in the reference's order.
_ENGINE_KEYS: tuple[_Key, ...] = (
    _Key("backend", _enum("vllm", "sglang", "trtllm"), "vllm"),
    _Key("num_gpu_blocks", POS_INT, 16384),
    _Key("block_size", POS_INT, 64, nullable=True),
    _Key("max_model_len", POS_INT, None, nullable=True),
    _Key("max_num_seqs", POS_INT, 256, nullable=True),
    _Key("max_num_batched_tokens", POS_INT, 8192, nullable=True),
    _Key("prefill_schedule_interval", POS_INT, 1, effect=IGNORED),
    _Key("prefill_decode_interval", NONNEG_INT, 0),
    _Key("enable_prefix_caching", _bool, True),
    _Key("enable_chunked_prefill", _bool, True),
    _Key("speedup_ratio", NONNEG_NUM, 1.0),
    _Key("decode_speedup_ratio", NONNEG_NUM, 1.0),
    _Key("aic_nextn", _int_range(1, 5), None, nullable=True, effect=UNSUPPORTED),
    _Key("aic_nextn_accept_rates", _str, None, nullable=True, effect=IGNORED),
    _Key("aic_mtp_seed", NONNEG_INT, 42, effect=IGNORED),
    *_AIC_KEYS,
    _Key("worker_type", _enum("aggregated", "prefill", "decode"), "aggregated"),
    _Key("preemption_mode", _enum("lifo", "fifo"), "lifo"),
    _Key("emit_kv_events", _bool, False, effect=IGNORED),
    _Key("emit_kv_token_ids", _bool, False, effect=IGNORED),
    _Key("kv_bytes_per_token", NONNEG_INT, None, nullable=True, effect=IGNORED,
         in_defaults=False),
    _Key("kv_transfer_bytes_per_token", NONNEG_NUM, None, nullable=True),  # disagg hand-off
    _Key("kv_cache_bytes_per_token", NONNEG_INT, None, nullable=True, effect=IGNORED,
         in_defaults=False),
    _Key("kv_cache_groups", _any, None, nullable=True, effect=UNSUPPORTED, in_defaults=False),
    _Key("kv_cache_capacity_bytes", NONNEG_INT, None, nullable=True, effect=UNSUPPORTED,
         in_defaults=False),
    _Key("native_host_offload", _obj, None, nullable=True, effect=UNSUPPORTED,
         in_defaults=False),
    _Key("state_cache", _obj, None, nullable=True, effect=UNSUPPORTED, in_defaults=False),
    _Key("prefix_match_unit", POS_INT, None, nullable=True, effect=UNSUPPORTED,
         in_defaults=False),
    _Key("g3_offload", _obj, None, nullable=True, effect=UNSUPPORTED, in_defaults=False),
    _Key("kv_transfer_bandwidth", NONNEG_NUM, None, nullable=True),  # GB/s, disagg hand-off
    _Key("kv_transfer_timing_mode", _enum("full_prompt", "destination_missing"),
         "full_prompt"),
    _Key("timing_model", _obj, {"type": "polynomial"}),
    # ours: "1.4" reproduces Dynamo 1.4.2's mocker timing (e.g. to diff against 1.4.2 runs)
    _Key("timing_compat", _enum("1.6", "1.4"), "1.6", in_defaults=False),
    _Key("sglang", _obj, None, effect=IGNORED),  # sub-keys checked separately
    _Key("trtllm", _obj, None, effect=IGNORED),
)

# Top-level keys of the 1.6 launch config (besides "engine").
_TOP_KEYS: tuple[_Key, ...] = (
    _Key("dp_size", POS_INT, 1, effect=UNSUPPORTED),
    _Key("tensor_parallel_size", POS_INT, 1),
    _Key("startup_time", NONNEG_NUM, None, nullable=True),
    _Key("num_gpu_blocks_is_explicit", _bool, False, effect=IGNORED),
    _Key("gpu_memory_utilization", FRACTION, None, nullable=True, effect=IGNORED),
    _Key("mem_fraction_static", FRACTION, None, nullable=True, effect=IGNORED),
    _Key("free_gpu_memory_fraction", FRACTION, None, nullable=True, effect=IGNORED),
    _Key("cuda_graph_reserved_bytes", NONNEG_INT, None, nullable=True, effect=IGNORED),
)

# Flat 1.4 (MockEngineArgs) names that are not 1.6 names. engine_type/is_prefill/is_decode are
# translated; the rest are accepted with no effect or refused as not supported.
_LEGACY_KEYS: tuple[_Key, ...] = (
    _Key("engine_type", _enum("vllm", "sglang", "trtllm"), None, nullable=True),
    _Key("is_prefill", _bool, False, nullable=True),
    _Key("is_decode", _bool, False, nullable=True),
    _Key("planner_profile_data", _str, None, nullable=True, effect=UNSUPPORTED),
    _Key("g1_backend", _str, None, nullable=True, effect=IGNORED),
    _Key("enable_local_indexer", _bool, False, nullable=True, effect=IGNORED),
    _Key("bootstrap_port", PORT, None, nullable=True, effect=IGNORED),
    _Key("handoff_session_timeout_ms", POS_INT, None, nullable=True, effect=IGNORED),
    _Key("num_g2_blocks", NONNEG_INT, None, nullable=True, effect=UNSUPPORTED),
    _Key("num_g3_blocks", NONNEG_INT, None, nullable=True, effect=UNSUPPORTED),
    _Key("enable_g4_storage", _bool, False, nullable=True, effect=UNSUPPORTED),
    _Key("offload_batch_size", NONNEG_INT, None, nullable=True, effect=IGNORED),
    *(
        _Key(f"bandwidth_{n}_gbps", NONNEG_NUM, None, nullable=True, effect=IGNORED)
        for n in ("g1_to_g2", "g2_to_g1", "g2_to_g3", "g3_to_g2", "g2_to_g4", "g4_to_g2")
    ),
    _Key("reasoning", _obj, None, nullable=True, effect=IGNORED),
    _Key("response_replay_trace_path", _str, None, nullable=True, effect=IGNORED),
    _Key("zmq_kv_events_port", PORT, None, nullable=True, effect=IGNORED),
    _Key("zmq_replay_port", PORT, None, nullable=True, effect=IGNORED),
    _Key("router_queue_policy", _str, None, nullable=True, effect=IGNORED),
    _Key("has_perf_model", _any, None, nullable=True, effect=IGNORED),
)

_ENGINE_BY_NAME = {k.name: k for k in _ENGINE_KEYS}
_TOP_BY_NAME = {k.name: k for k in _TOP_KEYS}
_LEGACY_BY_NAME = {k.name: k for k in _LEGACY_KEYS}
_NESTED_TOP_NAMES = ("engine", *(k.name for k in _TOP_KEYS))
_FLAT_NAMES = (*(k.name for k in _ENGINE_KEYS), *(k.name for k in _TOP_KEYS),
               *(k.name for k in _LEGACY_KEYS))


class ParsedEngineArgs:
    """Result of `parse_engine_args`.

    config:     the engine's per-worker settings.
    normalized: the nested 1.6 launch config with every default filled in (for echoing).
    ignored:    dotted names of keys that were given but have no effect in this engine.
    form:       "nested", "flat" or "default" (nothing given).
    warnings:   messages for the user (e.g. an uncalibrated hardware timing model).
    perf:       the hardware timing model chosen by aic_* args (None without aic_backend).
    """

    __slots__ = ("config", "normalized", "ignored", "form", "warnings", "perf")

    def __init__(self, config: EngineConfig, normalized: dict[str, Any], ignored: list[str],
                 form: str, warnings: list[str] | None = None,
                 perf: AicTiming | None = None) -> None:
        self.config = config
        self.normalized = normalized
        self.ignored = ignored
        self.form = form
        self.warnings = warnings if warnings is not None else []
        self.perf = perf

    def __repr__(self) -> str:
        return f"ParsedEngineArgs(form={self.form!r}, normalized={self.normalized!r})"


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source
        self.ignored: list[str] = []
        self.warnings: list[str] = []
        # names given in the engine section / at the top level, and the engine field prefix
        self.engine_given: set[str] = set()
        self.top_given: set[str] = set()
        self.prefix = ""

    def fail(self, message: str, field: str | None = None) -> InputError:
        return InputError(message, source=self.source, field=field)


def _unknown(
    ctx: _Ctx, key: str, prefix: str, valid: tuple[str, ...], hint: str = ""
) -> InputError:
    listed = ", ".join(valid)
    return ctx.fail(f"unknown key{hint}; valid keys: {listed}", field=prefix + key)


_UNSUPPORTED_WHAT = {
    "aic_nextn": "speculative decoding (MTP draft tokens)",
    "kv_cache_groups": "hybrid-attention KV cache groups",
    "kv_cache_capacity_bytes": "byte-sized KV cache capacity (hybrid attention)",
    "state_cache": "per-request state cache (hybrid attention)",
    "prefix_match_unit": "a prefix match unit other than the block size",
    "native_host_offload": "host KV offload",
    "g3_offload": "G3 KV offload",
    "num_g2_blocks": "KV offload tiers (G2)",
    "num_g3_blocks": "KV offload tiers (G3)",
    "enable_g4_storage": "KV offload tiers (G4)",
    "planner_profile_data": "profile-driven timing",
}


def _not_supported(ctx: _Ctx, field: str, what: str) -> InputError:
    return ctx.fail(f"{what} is not supported yet", field=field)


def _apply(ctx: _Ctx, spec: _Key, value: Any, field: str) -> Any:
    """Validate one value; returns the value to store (default when null)."""
    if value is None:
        if spec.nullable:
            return spec.default
        raise ctx.fail(f"must not be null ({_expect_of(spec)})", field=field)
    err = spec.check(value)
    if err is not None:
        raise ctx.fail(err, field=field)
    if isinstance(value, float) or (spec.check in (NONNEG_NUM, FRACTION) and _is_int(value)):
        value = float(value)
    if spec.effect == IGNORED and value != spec.default:
        ctx.ignored.append(field)
    return value


def _expect_of(spec: _Key) -> str:
    err = spec.check(object())
    if err and err.startswith("expected "):
        return err.split(", got ")[0]
    return "a value"


def _sub_object(
    ctx: _Ctx, keys: tuple[_Key, ...], value: dict[str, Any], field: str
) -> dict[str, Any]:
    by_name = {k.name: k for k in keys}
    out = {k.name: k.default for k in keys}
    for name, v in value.items():
        spec = by_name.get(name)
        if spec is None:
            raise _unknown(ctx, name, field + ".", tuple(by_name))
        out[name] = _apply(ctx, spec, v, f"{field}.{name}")
    return out


def _timing(ctx: _Ctx, value: dict[str, Any], field: str) -> dict[str, Any]:
    kind = value.get("type")
    if "type" not in value:
        raise ctx.fail('missing "type" (one of "polynomial", "fixed", "external")',
                       field=field + ".type")
    if kind == "polynomial":
        extra = [k for k in value if k != "type"]
        if extra:
            raise _unknown(ctx, extra[0], field + ".", ("type",),
                           hint=' for timing_model type "polynomial"')
        return {"type": "polynomial"}
    if kind == "fixed":
        valid = ("type", "prefill_ms", "decode_ms")
        for k in value:
            if k not in valid:
                raise _unknown(ctx, k, field + ".", valid, hint=' for timing_model type "fixed"')
        out: dict[str, Any] = {"type": "fixed"}
        for k in ("prefill_ms", "decode_ms"):
            if k not in value:
                raise ctx.fail('required for timing_model type "fixed"', field=f"{field}.{k}")
            v = value[k]
            err = NONNEG_NUM(v)
            if err is not None:
                raise ctx.fail(err, field=f"{field}.{k}")
            out[k] = float(v)
        return out
    if kind == "external":
        raise _not_supported(ctx, field + ".type",
                             'timing_model type "external" (AIC / profile-driven timing)')
    raise ctx.fail(
        f'expected one of "polynomial", "fixed", "external", got {show_value(kind)}',
        field=field + ".type",
    )


def _engine_section(ctx: _Ctx, given: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Validate engine keys (already restricted to known names) -> normalised engine dict."""
    out: dict[str, Any] = {}
    for spec in _ENGINE_KEYS:
        field = prefix + spec.name
        if spec.name not in given:
            if spec.in_defaults:
                out[spec.name] = _default_copy(spec)
            continue
        v = given[spec.name]
        if spec.name == "timing_model":
            if not isinstance(v, dict):
                raise ctx.fail(
                    f'expected an object like {{"type": "polynomial"}}, got {show_value(v)}',
                    field=field)
            out[spec.name] = _timing(ctx, v, field)
        elif spec.name in ("sglang", "trtllm"):
            if not isinstance(v, dict):
                raise ctx.fail(f"expected a JSON object, got {show_value(v)}", field=field)
            keys = _SGLANG_KEYS if spec.name == "sglang" else _TRTLLM_KEYS
            out[spec.name] = _sub_object(ctx, keys, v, field)
            if v and out["backend"] != spec.name:
                ctx.ignored.append(field)  # another backend's settings (the reference too)
        else:
            val = _apply(ctx, spec, v, field)
            if val is not None or spec.in_defaults:
                out[spec.name] = val
    if given.get("block_size") is None:
        out["block_size"] = BLOCK_SIZE_DEFAULT[out["backend"]]
    return out


def _default_copy(spec: _Key) -> Any:
    if spec.name == "timing_model":
        return {"type": "polynomial"}
    if spec.name == "sglang":
        return {k.name: k.default for k in _SGLANG_KEYS}
    if spec.name == "trtllm":
        return {k.name: k.default for k in _TRTLLM_KEYS}
    return spec.default


def _top_section(ctx: _Ctx, given: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in _TOP_KEYS:
        out[spec.name] = (_apply(ctx, spec, given[spec.name], prefix + spec.name)
                          if spec.name in given else spec.default)
    return out


def _check_backend(ctx: _Ctx, eng: dict[str, Any], given: dict[str, Any], prefix: str) -> None:
    """Backend-specific rules, as the reference's launch-config validation words them."""
    backend = eng["backend"]
    if eng["prefill_decode_interval"] != 0 and backend != "sglang":
        raise ctx.fail("prefill_decode_interval is supported only for backend=sglang",
                       field=prefix + "prefill_decode_interval")
    if backend == "sglang":
        if eng["prefill_schedule_interval"] != 1:
            raise ctx.fail("prefill_schedule_interval is supported only for backend=vllm; use "
                           "prefill_decode_interval for backend=sglang",
                           field=prefix + "prefill_schedule_interval")
        if not eng["enable_chunked_prefill"]:
            raise ctx.fail("enable_chunked_prefill=false is not supported for backend=sglang",
                           field=prefix + "enable_chunked_prefill")
        sg = eng["sglang"]
        if sg["chunked_prefill_size"] % eng["block_size"] != 0:
            raise ctx.fail(f"must be divisible by block_size {eng['block_size']}, got "
                           f"{sg['chunked_prefill_size']}",
                           field=prefix + "sglang.chunked_prefill_size")
        # SGLang budgets prefill by chunked_prefill_size and never preempts (it retracts).
        for name in ("max_num_batched_tokens", "preemption_mode"):
            if given.get(name) is not None:
                ctx.ignored.append(prefix + name)
    elif backend == "trtllm" and given.get("preemption_mode") is not None:
        ctx.ignored.append(prefix + "preemption_mode")  # guaranteed-no-evict never preempts


def _check_supported(ctx: _Ctx, norm: dict[str, Any], engine_prefix: str) -> None:
    eng = norm["engine"]
    if norm["dp_size"] != 1:
        raise _not_supported(ctx, "dp_size",
                             f"dp_size {norm['dp_size']} (attention data parallelism; use 1)")
    for spec in _ENGINE_KEYS:
        if spec.effect == UNSUPPORTED and eng.get(spec.name) is not None:
            raise _not_supported(ctx, engine_prefix + spec.name,
                                 _UNSUPPORTED_WHAT.get(spec.name, spec.name))


def _aic(ctx: _Ctx, norm: dict[str, Any]) -> AicTiming | None:
    """The hardware timing model of aic_* args (None without aic_backend). Derives
    num_gpu_blocks from GPU memory unless it was given explicitly."""
    eng = norm["engine"]
    prefix = ctx.prefix
    given = [k.name for k in _AIC_KEYS if eng.get(k.name) is not None]
    if eng.get("aic_backend") is None:
        for name in given:
            if _ENGINE_BY_NAME[name].effect == USED:
                ctx.ignored.append(prefix + name)
        return None
    for name in ("aic_system", "aic_model_path"):
        if eng.get(name) is None:
            example = '"h200_sxm"' if name == "aic_system" else '"nvidia/Llama-3.1-8B-Instruct-FP8"'
            raise ctx.fail(f"required with aic_backend (e.g. {example})", field=prefix + name)
    if eng.get("aic_attention_dp_size") not in (None, 1):
        raise _not_supported(ctx, prefix + "aic_attention_dp_size",
                             f"aic_attention_dp_size {eng['aic_attention_dp_size']} (attention "
                             "data parallelism; use 1)")
    tp = eng.get("aic_tp_size")
    if tp is None:
        tp = norm["tensor_parallel_size"]
    elif "tensor_parallel_size" in ctx.top_given and tp != norm["tensor_parallel_size"]:
        raise ctx.fail(f"conflicts with tensor_parallel_size {norm['tensor_parallel_size']}",
                       field=prefix + "aic_tp_size")
    provider = eng.get("aic_provider") or "roofline"
    timing_explicit = "timing_model" in ctx.engine_given
    blocks_explicit = ("num_gpu_blocks" in ctx.engine_given
                       or bool(norm["num_gpu_blocks_is_explicit"]))
    try:
        perf = configure_aic(
            backend=eng["aic_backend"], system=eng["aic_system"], model=eng["aic_model_path"],
            tp=int(tp), gemm_dtype=eng.get("aic_gemm_dtype"),
            kv_dtype=eng.get("aic_kv_cache_dtype"), fmha_dtype=eng.get("aic_fmha_dtype"),
            provider=provider, backend_version=eng.get("aic_backend_version"),
            moe_tp_size=eng.get("aic_moe_tp_size"), moe_ep_size=eng.get("aic_moe_ep_size"),
            timing=not timing_explicit,
            block_size=None if blocks_explicit else int(eng["block_size"]),
            gpu_memory_utilization=norm["gpu_memory_utilization"],
            max_num_batched_tokens=int(eng["max_num_batched_tokens"]),
            max_num_seqs=int(eng["max_num_seqs"]))
    except PerfModelError as e:
        field = "num_gpu_blocks" if e.key == "memory" else _AIC_PERF_FIELD.get(e.key, "aic_backend")
        raise ctx.fail(str(e), field=prefix + field) from None
    if provider == "roofline" or timing_explicit:
        for name in given:
            if name not in _AIC_ROOFLINE_KEYS and _ENGINE_BY_NAME[name].effect == USED:
                ctx.ignored.append(prefix + name)
    if perf.capacity is not None:
        eng["num_gpu_blocks"] = perf.capacity.num_gpu_blocks
        ctx.ignored = [k for k in ctx.ignored if k != "gpu_memory_utilization"]
    ctx.warnings.extend(perf.warnings)
    return perf


def _to_config(norm: dict[str, Any], perf: AicTiming | None = None) -> EngineConfig:
    eng = norm["engine"]
    c = EngineConfig()
    c.backend = BACKEND_NAMES.index(eng["backend"])
    sg = eng["sglang"]
    c.sglang_lpm = sg["schedule_policy"] == "lpm"
    c.sglang_max_prefill_tokens = int(sg["max_prefill_tokens"])
    c.sglang_chunked_prefill_size = int(sg["chunked_prefill_size"])
    c.sglang_clip_max_new_tokens = int(sg["clip_max_new_tokens"])
    c.sglang_conservativeness = float(sg["schedule_conservativeness"])
    c.sglang_prefill_decode_interval = int(eng["prefill_decode_interval"])
    c.block_size = int(eng["block_size"])
    c.num_gpu_blocks = int(eng["num_gpu_blocks"])
    c.max_num_seqs = int(eng["max_num_seqs"])
    c.max_num_batched_tokens = int(eng["max_num_batched_tokens"])
    c.max_model_len = 0 if eng["max_model_len"] is None else int(eng["max_model_len"])
    c.enable_prefix_caching = bool(eng["enable_prefix_caching"])
    c.enable_chunked_prefill = bool(eng["enable_chunked_prefill"])
    c.preemption_lifo = eng["preemption_mode"] == "lifo"
    c.speedup_ratio = float(eng["speedup_ratio"])
    c.decode_speedup_ratio = float(eng["decode_speedup_ratio"])
    tm = eng["timing_model"]
    if tm["type"] == "fixed":
        c.timing_kind = TIMING_FIXED
        c.fixed_prefill_ms = float(tm["prefill_ms"])
        c.fixed_decode_ms = float(tm["decode_ms"])
    else:
        c.timing_kind = TIMING_POLYNOMIAL
    c.compat_1_4 = eng.get("timing_compat") == "1.4"
    c.tensor_parallel_size = int(norm["tensor_parallel_size"])
    c.startup_time_s = -1.0 if norm["startup_time"] is None else float(norm["startup_time"])
    if perf is not None:
        c.tensor_parallel_size = perf.tp
        perf.apply(c)
    return c


def _parse_nested(ctx: _Ctx, obj: dict[str, Any]) -> dict[str, Any]:
    for key in obj:
        if key not in _NESTED_TOP_NAMES:
            hint = ""
            if key in _ENGINE_BY_NAME or key in _LEGACY_BY_NAME:
                hint = (f' at the top level (with an "engine" object present, engine settings '
                        f'go inside it: {{"engine": {{"{key}": ...}}}})')
            raise _unknown(ctx, key, "", _NESTED_TOP_NAMES, hint=hint)
    eng = obj["engine"]
    if not isinstance(eng, dict):
        raise ctx.fail(f"expected a JSON object, got {show_value(eng)}", field="engine")
    valid = tuple(_ENGINE_BY_NAME)
    for key in eng:
        if key not in _ENGINE_BY_NAME:
            hint = ""
            if key in _TOP_BY_NAME:  # e.g. startup_time, which the planner's scale-ups take
                hint = (f' in "engine" ({key} is a top-level key, beside it: '
                        f'{{"engine": {{...}}, "{key}": ...}})')
            raise _unknown(ctx, key, "engine.", valid, hint=hint)
    norm: dict[str, Any] = {"engine": _engine_section(ctx, eng, "engine.")}
    norm.update(_top_section(ctx, obj))
    _check_supported(ctx, norm, "engine.")
    _check_backend(ctx, norm["engine"], eng, "engine.")
    ctx.engine_given, ctx.top_given, ctx.prefix = set(eng), set(obj), "engine."
    return norm


def _parse_flat(ctx: _Ctx, obj: dict[str, Any]) -> dict[str, Any]:
    for key in obj:
        if key not in _FLAT_NAMES:
            raise _unknown(ctx, key, "", _FLAT_NAMES)
    engine_given: dict[str, Any] = {}
    top_given: dict[str, Any] = {}
    legacy: dict[str, Any] = {}
    for key, v in obj.items():
        if key in _ENGINE_BY_NAME:
            engine_given[key] = v
        elif key in _TOP_BY_NAME:
            top_given[key] = v
        else:
            legacy[key] = _apply(ctx, _LEGACY_BY_NAME[key], v, key)
    # 1.4 spellings of 1.6 settings.
    if legacy.get("engine_type") is not None:
        if "backend" in engine_given and engine_given["backend"] != legacy["engine_type"]:
            raise ctx.fail(f'conflicts with backend {show_value(engine_given["backend"])}',
                           field="engine_type")
        engine_given["backend"] = legacy["engine_type"]
    if legacy.get("is_prefill") and legacy.get("is_decode"):
        raise ctx.fail("is_prefill and is_decode cannot both be true", field="is_decode")
    for flag, role in (("is_prefill", "prefill"), ("is_decode", "decode")):
        if legacy.get(flag):
            if engine_given.get("worker_type", role) != role:
                other = show_value(engine_given["worker_type"])
                raise ctx.fail(f"conflicts with worker_type {other}", field=flag)
            engine_given["worker_type"] = role
    for key, v in legacy.items():
        spec = _LEGACY_BY_NAME[key]
        if spec.effect == UNSUPPORTED and v not in (None, False, 0):
            raise _not_supported(ctx, key, _UNSUPPORTED_WHAT.get(key, key))
    norm: dict[str, Any] = {"engine": _engine_section(ctx, engine_given, "")}
    norm.update(_top_section(ctx, top_given))
    _check_supported(ctx, norm, "")
    _check_backend(ctx, norm["engine"], engine_given, "")
    ctx.engine_given, ctx.top_given, ctx.prefix = set(engine_given), set(top_given), ""
    return norm


def parse_engine_args(
    value: str | dict[str, Any] | None, *, what: str = "--extra-engine-args"
) -> ParsedEngineArgs:
    """Parse engine args given as inline JSON, a path to a JSON file, an already-decoded dict,
    or None (all defaults). `what` names the argument in error messages for inline values."""
    if value is None:
        obj: Any = {}
        ctx = _Ctx(what)
        form = "default"
    else:
        if isinstance(value, dict):
            obj, source = value, what
        elif isinstance(value, str):
            obj, source = read_mapping(value, what, yaml_files=True)
        else:
            raise InputError(f"expected a JSON string or path, got {type(value).__name__}",
                             source=what)
        ctx = _Ctx(source)
        if not isinstance(obj, dict):
            raise ctx.fail(f"expected a JSON object, got {json_kind(obj)} {show_value(obj)}")
        form = "nested" if "engine" in obj else "flat"
    try:
        norm = _parse_nested(ctx, obj) if form == "nested" else _parse_flat(ctx, obj)
        perf = _aic(ctx, norm)
    except InputError as exc:
        raise with_field_line(exc, ctx.source, what) from None
    return ParsedEngineArgs(_to_config(norm, perf), norm, ctx.ignored, form, ctx.warnings, perf)
