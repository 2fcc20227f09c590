"""`--router-config`: the KV router's knobs (the reference's KvRouterConfig names), validated."""
from __future__ import annotations

from typing import Any

from dynosim.inputs.checks import NONNEG_NUM, Check, boolean
from dynosim.inputs.errors import InputError, show_value
from dynosim.inputs.source import read_mapping, with_field_line
from engine.kvrouter import KvRouterConfig

FLAG = "--router-config"


def _null(v: Any) -> str | None:
    return None if v is None else "router queueing is not supported yet; leave it null"


def _only(value: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v == value else f"only {value!r} is supported, got {show_value(v)}"
    return check


# key -> (check, default)
_KEYS: dict[str, tuple[Check, Any]] = {
    "overlap_score_weight": (NONNEG_NUM, 1.0),
    "overlap_score_credit": (NONNEG_NUM, 1.0),  # alias of overlap_score_weight
    "prefill_load_scale": (NONNEG_NUM, 1.0),
    "decode_active_request_weight": (NONNEG_NUM, 0.0),
    "overlap_score_credit_decay": (NONNEG_NUM, 0.0),
    "router_temperature": (NONNEG_NUM, 0.0),
    "use_kv_events": (boolean, True),
    "router_track_active_blocks": (boolean, True),
    "router_assume_kv_reuse": (boolean, True),
    "router_track_prefill_tokens": (boolean, True),
    # Accepted at their defaults only: other values select behaviour we do not model.
    "router_track_output_blocks": (boolean, False),
    "router_queue_threshold": (_null, None),
    "router_queue_policy": (_only("fcfs"), "fcfs"),
    "router_prefill_load_model": (_only("none"), "none"),
    "host_cache_hit_weight": (NONNEG_NUM, 0.75),
    "disk_cache_hit_weight": (NONNEG_NUM, 0.25),
    "shared_cache_type": (_only("none"), "none"),
}
# use_kv_events=false makes the reference predict caches without events: not modelled.
_DEFAULT_ONLY = {"router_track_output_blocks", "router_queue_threshold", "use_kv_events"}


def parse_router_config(value: str | None) -> tuple[KvRouterConfig, dict[str, Any]]:
    """The engine's router config and the normalised dict (every key, for the report)."""
    norm = {k: d for k, (_, d) in _KEYS.items()}
    del norm["overlap_score_credit"]
    cfg = KvRouterConfig()
    if value is None:
        return cfg, norm
    obj, source = read_mapping(value, FLAG, yaml_files=True)
    try:
        return _parse(obj, source, cfg, norm)
    except InputError as exc:
        raise with_field_line(exc, source, FLAG) from None


def _parse(obj: dict[str, Any], source: str, cfg: KvRouterConfig, norm: dict[str, Any]
           ) -> tuple[KvRouterConfig, dict[str, Any]]:
    if "overlap_score_weight" in obj and "overlap_score_credit" in obj:
        raise InputError("both 'overlap_score_weight' and its alias 'overlap_score_credit' "
                         "are given; use one", source=source, field="overlap_score_credit")
    for key, v in obj.items():
        if key not in _KEYS:
            raise InputError(f"unknown key; valid keys: {', '.join(sorted(_KEYS))}",
                             source=source, field=key)
        check, default = _KEYS[key]
        problem = check(v)
        if problem is None and key in _DEFAULT_ONLY and v != default:
            problem = f"only {show_value(default)} is supported"
        if problem is not None:
            raise InputError(problem, source=source, field=key)
        if check is NONNEG_NUM:
            v = float(v)  # the report shows 1.0 whether 1 or 1.0 was given
        norm["overlap_score_weight" if key == "overlap_score_credit" else key] = v
    cfg.overlap_credit = float(norm["overlap_score_weight"])
    cfg.prefill_load_scale = float(norm["prefill_load_scale"])
    cfg.decode_active_request_weight = float(norm["decode_active_request_weight"])
    cfg.credit_decay = float(norm["overlap_score_credit_decay"])
    cfg.temperature = float(norm["router_temperature"])
    cfg.use_kv_events = bool(norm["use_kv_events"])
    cfg.track_active_blocks = bool(norm["router_track_active_blocks"])
    cfg.assume_kv_reuse = bool(norm["router_assume_kv_reuse"])
    cfg.track_prefill_tokens = bool(norm["router_track_prefill_tokens"])
    return cfg, norm
