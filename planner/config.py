"""The planner's configuration (spec planner.md §1): fields, defaults, aliases, validation.

`planner_config_from_dict(obj)` validates a decoded mapping (reading the text is the edge's
job: `dynosim.planner_setup.load_planner_config`). Unlike the reference (pydantic, unknown keys
ignored) an unknown key is an error that lists the valid ones. Every problem is a `ConfigError`.

`PlannerConfig` is frozen; its `__post_init__` applies the easy-mode overrides (any
`optimization_target` other than "sla" forces load scaling on and throughput scaling off) and
then validates, so a config built in code is checked the same way as a loaded one.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import msgspec

from planner.errors import ConfigError, show_value
from planner.types import Capabilities

Mode = Literal["disagg", "prefill", "decode", "agg"]
Target = Literal["throughput", "latency", "load", "sla"]
PredictorName = Literal["constant", "arima", "kalman", "prophet"]

REPLAY_MODES = ("agg", "disagg")

# alias -> canonical field name (the reference's pydantic aliases)
ALIASES: dict[str, str] = {
    "ttft": "ttft_ms",
    "itl": "itl_ms",
    "throughput_adjustment_interval": "throughput_adjustment_interval_seconds",
    "load_adjustment_interval": "load_adjustment_interval_seconds",
}


class SchedulingConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`scheduling.*`: the base tick period and (live-only) plugin plumbing."""

    scale_interval_seconds: float | None = None  # None = derived (gcd, §1)
    tick_max_duration_seconds: float = 30.0  # pipeline timeout; irrelevant offline
    external_plugins: list[Any] = msgspec.field(default_factory=list)  # live only
    gateway: Any = None  # live only


class PlannerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Every field of the reference PlannerConfig that replay reads or accepts (spec §1)."""

    mode: Mode = "disagg"
    optimization_target: Target = "throughput"
    ttft_ms: float = 500.0
    itl_ms: float = 50.0
    enable_throughput_scaling: bool = True
    enable_load_scaling: bool = False
    throughput_adjustment_interval_seconds: int = 180
    load_adjustment_interval_seconds: int = 5
    scheduling: SchedulingConfig = msgspec.field(default_factory=SchedulingConfig)
    min_endpoint: int = 1
    max_gpu_budget: int = 8  # negative disables
    min_gpu_budget: int = -1  # negative disables
    prefill_engine_num_gpu: int | None = None  # GPU-hours only; None -> engine TP (see below)
    decode_engine_num_gpu: int | None = None
    load_predictor: PredictorName = "arima"
    load_predictor_log1p: bool = False
    prophet_window_size: int = 50
    kalman_q_level: float = 1.0
    kalman_q_trend: float = 0.1
    kalman_r: float = 10.0
    kalman_min_points: int = 5  # stored, not used for gating (as the reference)
    load_predictor_warmup_trace: str | None = None
    max_num_fpm_samples: int = 64
    fpm_sample_bucket_size: int = 16
    load_min_observations: int = 5
    load_scaling_down_sensitivity: int = 80
    prefill_scale_up_queue_tokens: int | None = None
    prefill_scale_down_queue_tokens: int | None = None
    decode_scale_up_kv_rate: float | None = None
    decode_scale_down_kv_rate: float | None = None
    speculative_nextn: int = 0
    pre_deployment_sweeping_mode: Literal["none", "rapid", "thorough"] = "rapid"
    aic_interpolation: dict[str, Any] | None = None  # live only
    aic_perf_model: dict[str, Any] | None = None  # live only
    profile_results_dir: str = "profiling_results"
    report_interval_hours: float | None = 24.0
    report_output_dir: str = "./planner_reports"
    report_filename: str | None = None
    report_write_gzip_log: bool = True
    live_dashboard_port: int = 8080
    advisory: bool = False
    # live / Kubernetes plumbing: accepted, ignored by replay
    backend: str = "vllm"
    environment: str = "kubernetes"
    namespace: str = "dynamo"
    model_name: str | None = None
    metric_pulling_prometheus_endpoint: str | None = None
    metric_reporting_prometheus_port: int = 0
    throughput_metrics_source: str = "frontend"
    global_planner_namespace: str | None = None
    log_dir: str | None = None
    plugin_registration: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.optimization_target != "sla":
            # Easy mode: no perf model, static thresholds, reactive loop only.
            msgspec.structs.force_setattr(self, "enable_load_scaling", True)
            msgspec.structs.force_setattr(self, "enable_throughput_scaling", False)
        _validate(self)

    @property
    def is_easy(self) -> bool:
        return self.optimization_target != "sla"

    @property
    def throughput_active(self) -> bool:
        """The predictive loop runs (only with the `sla` target)."""
        return self.enable_throughput_scaling and self.optimization_target == "sla"

    @property
    def scale_interval_s(self) -> float:
        """The base tick period: given, or the gcd (ms resolution) of the active intervals."""
        given = self.scheduling.scale_interval_seconds
        if given is not None:
            return float(given)
        ms = [_to_ms(self.load_adjustment_interval_seconds)]
        if self.throughput_active:
            ms.append(_to_ms(self.throughput_adjustment_interval_seconds))
        return math.gcd(*ms) / 1000.0


def _to_ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _fail(message: str, field: str | None = None) -> None:
    raise ConfigError(message, field)


def _validate(c: PlannerConfig) -> None:
    if not (math.isfinite(c.ttft_ms) and c.ttft_ms > 0):
        _fail(f"must be > 0, got {show_value(c.ttft_ms)}", "ttft_ms")
    if not (math.isfinite(c.itl_ms) and c.itl_ms > 0):
        _fail(f"must be > 0, got {show_value(c.itl_ms)}", "itl_ms")
    for name in ("throughput_adjustment_interval_seconds", "load_adjustment_interval_seconds"):
        if getattr(c, name) <= 0:
            _fail(f"must be > 0, got {getattr(c, name)}", name)
    if c.min_endpoint < 0:
        _fail(f"must be >= 0, got {c.min_endpoint}", "min_endpoint")
    for name in ("prefill_engine_num_gpu", "decode_engine_num_gpu"):
        v = getattr(c, name)
        if v is not None and v < 0:
            _fail(f"must be >= 0, got {v}", name)
    if c.max_num_fpm_samples < 1:
        _fail(f"must be >= 1, got {c.max_num_fpm_samples}", "max_num_fpm_samples")
    if not 1 <= c.load_min_observations <= c.max_num_fpm_samples:
        _fail(f"must be between 1 and max_num_fpm_samples ({c.max_num_fpm_samples}), "
              f"got {c.load_min_observations}", "load_min_observations")
    b = c.fpm_sample_bucket_size
    if b < 1 or math.isqrt(b) ** 2 != b:
        _fail(f"must be a perfect square (1, 4, 9, 16, ...), got {b}", "fpm_sample_bucket_size")
    if not 0 <= c.load_scaling_down_sensitivity <= 100:
        _fail(f"must be between 0 and 100, got {c.load_scaling_down_sensitivity}",
              "load_scaling_down_sensitivity")
    if c.speculative_nextn < 0:
        _fail(f"must be >= 0, got {c.speculative_nextn}", "speculative_nextn")
    if c.prophet_window_size < 1:
        _fail(f"must be >= 1, got {c.prophet_window_size}", "prophet_window_size")
    for name in ("kalman_q_level", "kalman_q_trend", "kalman_r"):
        v = getattr(c, name)
        if not math.isfinite(v) or v < 0:
            _fail(f"must be a finite number >= 0, got {show_value(v)}", name)
    for name in ("decode_scale_up_kv_rate", "decode_scale_down_kv_rate"):
        v = getattr(c, name)
        if v is not None and not (math.isfinite(v) and 0 <= v <= 100):
            _fail(f"must be a percentage between 0 and 100, got {show_value(v)}", name)
    for name in ("prefill_scale_up_queue_tokens", "prefill_scale_down_queue_tokens"):
        v = getattr(c, name)
        if v is not None and v < 0:
            _fail(f"must be >= 0, got {v}", name)
    if c.optimization_target == "load":
        _validate_load_thresholds(c)
    if not (c.enable_throughput_scaling or c.enable_load_scaling):
        _fail("at least one scaling loop must be enabled "
              "(enable_throughput_scaling or enable_load_scaling)", "enable_load_scaling")
    load_s = c.load_adjustment_interval_seconds
    tp_s = c.throughput_adjustment_interval_seconds
    if c.enable_load_scaling and c.throughput_active and load_s >= tp_s:
        _fail(f"load_adjustment_interval_seconds ({load_s}) must be shorter than "
              f"throughput_adjustment_interval_seconds ({tp_s}) when both loops are on",
              "load_adjustment_interval_seconds")
    given = c.scheduling.scale_interval_seconds
    if given is not None:
        if not (math.isfinite(given) and given > 0) or _to_ms(given) <= 0:
            _fail(f"must be > 0 (ms resolution), got {show_value(given)}",
                  "scheduling.scale_interval_seconds")
        s_ms = _to_ms(given)
        intervals = [("load_adjustment_interval_seconds", load_s)]
        if c.throughput_active:
            intervals.append(("throughput_adjustment_interval_seconds", tp_s))
        for name, v in intervals:
            if _to_ms(v) % s_ms != 0:
                _fail(f"{name} ({v}) is not a multiple of the scale interval ({given})",
                      "scheduling.scale_interval_seconds")
    if not (math.isfinite(c.scheduling.tick_max_duration_seconds)
            and c.scheduling.tick_max_duration_seconds > 0):
        _fail("must be > 0", "scheduling.tick_max_duration_seconds")


def _validate_load_thresholds(c: PlannerConfig) -> None:
    if c.mode in ("prefill", "disagg"):
        up, down = c.prefill_scale_up_queue_tokens, c.prefill_scale_down_queue_tokens
        if up is None or down is None:
            _fail("optimization_target 'load' needs prefill_scale_up_queue_tokens and "
                  f"prefill_scale_down_queue_tokens in mode '{c.mode}'",
                  "prefill_scale_up_queue_tokens" if up is None
                  else "prefill_scale_down_queue_tokens")
        elif up <= down:
            _fail(f"must be greater than prefill_scale_down_queue_tokens ({down}), got {up}",
                  "prefill_scale_up_queue_tokens")
    if c.mode in ("decode", "agg", "disagg"):
        upf, downf = c.decode_scale_up_kv_rate, c.decode_scale_down_kv_rate
        if upf is None or downf is None:
            _fail("optimization_target 'load' needs decode_scale_up_kv_rate and "
                  f"decode_scale_down_kv_rate in mode '{c.mode}'",
                  "decode_scale_up_kv_rate" if upf is None else "decode_scale_down_kv_rate")
        elif upf <= downf:
            _fail(f"must be greater than decode_scale_down_kv_rate ({downf}), got {upf}",
                  "decode_scale_up_kv_rate")


# --------------------------------------------------------------------------------------------
# From a decoded mapping


def valid_keys() -> list[str]:
    """Top-level keys accepted in a planner config (canonical names and aliases)."""
    return sorted(set(PlannerConfig.__struct_fields__) | set(ALIASES))


def _normalise(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ConfigError(f"expected a JSON/YAML object (mapping), got {show_value(obj)}")
    out: dict[str, Any] = {}
    fields = set(PlannerConfig.__struct_fields__)
    for key, v in obj.items():
        if not isinstance(key, str):
            raise ConfigError(f"keys must be strings, got {show_value(key)}")
        name = ALIASES.get(key, key)
        if name not in fields:
            raise ConfigError(f"unknown key; valid keys: {', '.join(valid_keys())}", key)
        if name in out:
            raise ConfigError(f"'{name}' is given twice (directly and through an alias); "
                              "use one", key)
        out[name] = v
    sched = out.get("scheduling")
    if isinstance(sched, dict):
        known = set(SchedulingConfig.__struct_fields__)
        for key in sched:
            if key not in known:
                raise ConfigError(f"unknown key; valid keys: {', '.join(sorted(known))}",
                                  f"scheduling.{key}")
    return out


def _field_from_path(message: str) -> tuple[str, str | None]:
    # msgspec: "Expected `int`, got `str` - at `$.ttft_ms`"
    marker = " - at `$."
    i = message.rfind(marker)
    if i < 0:
        return message, None
    return message[:i], message[i + len(marker):].rstrip("`")


def _with_value(message: str, data: Any, field: str | None) -> str:
    """msgspec's "Expected `float`, got `str`" shows the value given instead of its type."""
    node = data
    for key in (field or "").split("."):
        if not isinstance(node, dict) or key not in node:
            return message
        node = node[key]
    head, sep, _ = message.rpartition(", got `")
    return f"{head}, got {show_value(node)}" if sep else message


def planner_config_from_dict(obj: Any) -> PlannerConfig:
    """Validate an already-decoded mapping (aliases accepted, unknown keys rejected)."""
    data = _normalise(obj)
    try:
        config = msgspec.convert(data, PlannerConfig)
    except msgspec.ValidationError as exc:
        message, field = _field_from_path(str(exc))
        raise ConfigError(_with_value(message, data, field), field) from None
    if config.load_predictor == "prophet" and not config.is_easy and not _prophet_importable():
        raise ConfigError(f"load_predictor 'prophet' needs the optional extra: pip install "
                          f"'{PROPHET_EXTRA}'", "load_predictor")
    return config


PROPHET_EXTRA = "dynosim-tui[prophet]"


def _prophet_importable() -> bool:
    try:
        importlib.import_module("prophet")
    except ImportError:
        return False
    return True


def check_replay_mode(config: PlannerConfig, topology: str) -> None:
    """Replay runs only `agg` and `disagg`, and the config must match the deployment."""
    if config.mode not in REPLAY_MODES:
        raise ConfigError(f"replay supports mode 'agg' or 'disagg', got '{config.mode}'", "mode")
    if config.mode != topology:
        raise ConfigError(f"mode '{config.mode}' does not match the deployment ('{topology}')",
                          "mode")


# --------------------------------------------------------------------------------------------
# GPUs per replica for the planner's GPU-hours line


@dataclass(frozen=True)
class ResolvedGpus:
    """GPUs per replica used for the planner's GPU-hours (spec §6.3).

    The reference leaves unset values at 0 (GPU-hours silently 0); we fall back to the
    engine's GPUs per replica (`Capabilities.num_gpu`) and record that we did.
    """

    prefill: int | None  # None: no prefill component (agg)
    decode: int
    prefill_defaulted: bool
    decode_defaulted: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "prefill_engine_num_gpu": self.prefill,
            "decode_engine_num_gpu": self.decode,
            "prefill_engine_num_gpu_defaulted": self.prefill_defaulted,
            "decode_engine_num_gpu_defaulted": self.decode_defaulted,
        }


def resolve_gpus(config: PlannerConfig, capabilities: Mapping[str, Capabilities]) -> ResolvedGpus:
    d_caps = capabilities.get("decode")
    d_default = d_caps.num_gpu if d_caps is not None else 1
    decode = config.decode_engine_num_gpu
    if config.mode == "agg" or "prefill" not in capabilities:
        prefill = None
        p_defaulted = False
    else:
        prefill = config.prefill_engine_num_gpu
        p_defaulted = prefill is None
        if prefill is None:
            prefill = capabilities["prefill"].num_gpu
    return ResolvedGpus(
        prefill=prefill,
        decode=decode if decode is not None else d_default,
        prefill_defaulted=p_defaulted,
        decode_defaulted=decode is None,
    )
