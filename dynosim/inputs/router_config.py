"""`--router-config`: the KV router's knobs (the reference's KvRouterConfig names), validated."""
from __future__ import annotations

import json
import math
import os
from typing import Any

from dynosim.inputs.errors import InputError, show_value
from engine.kvrouter import KvRouterConfig

FLAG = "--router-config"

# key -> (kind, default). kind: "num>=0", "num", "bool", or a tuple of allowed strings.
_KEYS: dict[str, tuple[Any, Any]] = {
    "overlap_score_weight": ("num>=0", 1.0),
    "overlap_score_credit": ("num>=0", 1.0),  # alias of overlap_score_weight
    "prefill_load_scale": ("num>=0", 1.0),
    "decode_active_request_weight": ("num>=0", 0.0),
    "overlap_score_credit_decay": ("num>=0", 0.0),
    "router_temperature": ("num>=0", 0.0),
    "use_kv_events": ("bool", True),
    "router_track_active_blocks": ("bool", True),
    "router_assume_kv_reuse": ("bool", True),
    "router_track_prefill_tokens": ("bool", True),
    # Accepted at their defaults only: other values select behaviour we do not model.
    "router_track_output_blocks": ("bool", False),
    "router_queue_threshold": ("none", None),
    "router_queue_policy": (("fcfs",), "fcfs"),
    "router_prefill_load_model": (("none",), "none"),
    "host_cache_hit_weight": ("num>=0", 0.75),
    "disk_cache_hit_weight": ("num>=0", 0.25),
    "shared_cache_type": (("none",), "none"),
}
# use_kv_events=false makes the reference predict caches without events: not modelled.
_DEFAULT_ONLY = {"router_track_output_blocks", "router_queue_threshold", "use_kv_events"}


def _load(value: str) -> tuple[Any, str]:
    text = value.strip()
    if text.startswith("{"):
        source = FLAG
    else:
        source = value
        if not os.path.isfile(value):
            raise InputError("not inline JSON and no such file", source=FLAG, field=value)
        try:
            with open(value, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", source=value) from None
    try:
        return json.loads(text), source
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                         source=source) from None


def parse_router_config(value: str | None) -> tuple[KvRouterConfig, dict[str, Any]]:
    """The engine's router config and the normalised dict (every key, for the report)."""
    norm = {k: d for k, (_, d) in _KEYS.items()}
    del norm["overlap_score_credit"]
    cfg = KvRouterConfig()
    if value is None:
        return cfg, norm
    obj, source = _load(value)
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", source=source)
    if "overlap_score_weight" in obj and "overlap_score_credit" in obj:
        raise InputError("both 'overlap_score_weight' and its alias 'overlap_score_credit' "
                         "are given; use one", source=source, field="overlap_score_credit")
    for key, v in obj.items():
        if key not in _KEYS:
            raise InputError(f"unknown key; valid keys: {', '.join(sorted(_KEYS))}",
                             source=source, field=key)
        kind, default = _KEYS[key]
        if kind == "num>=0":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"expected a number >= 0, got {show_value(v)}", source=source,
                                 field=key)
            v = float(v)
        elif kind == "bool":
            if not isinstance(v, bool):
                raise InputError(f"expected true or false, got {show_value(v)}", source=source,
                                 field=key)
        elif kind == "none":
            if v is not None:
                raise InputError("router queueing is not supported yet; leave it null",
                                 source=source, field=key)
        elif v not in kind:
            raise InputError(f"only {', '.join(map(repr, kind))} is supported, got "
                             f"{show_value(v)}", source=source, field=key)
        if key in _DEFAULT_ONLY and v != default:
            raise InputError(f"only {show_value(default)} is supported", source=source,
                             field=key)
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
