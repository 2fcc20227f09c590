"""The planner's configuration (spec planner.md §1): fields, defaults, aliases, validation.

`load_planner_config(value)` takes what the user gave `--planner-config`: inline JSON, or the
path of a .json / .yaml / .yml file. Unlike the reference (pydantic, unknown keys ignored) an
unknown key is an error that lists the valid ones. Every problem is an `InputError`.

`PlannerConfig` is frozen; its `__post_init__` applies the easy-mode overrides (any
`optimization_target` other than "sla" forces load scaling on and throughput scaling off) and
then validates, so a config built in code is checked the same way as a loaded one.
"""
from __future__ import annotations

import importlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import msgspec

from dynosim.inputs.errors import InputError, show_value
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
    raise InputError(message, field=field)


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
# Loading


FLAG = "--planner-config"


def valid_keys() -> list[str]:
    """Top-level keys accepted in a planner config (canonical names and aliases)."""
    return sorted(set(PlannerConfig.__struct_fields__) | set(ALIASES))


def _read_source(value: str) -> tuple[Any, str]:
    text = value.strip()
    if text.startswith("{"):
        try:
            return json.loads(text), FLAG
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}", source=FLAG) from None
    if not os.path.isfile(value):
        raise InputError("neither inline JSON nor an existing file", source=FLAG,
                         field=value if len(value) < 200 else value[:197] + "...")
    try:
        with open(value, encoding="utf-8") as f:
            body = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=value) from None
    lower = value.lower()
    if lower.endswith((".yaml", ".yml")):
        return _parse_yaml(body, value), value
    try:
        return json.loads(body), value
    except json.JSONDecodeError as exc:
        if lower.endswith(".json"):
            raise InputError(f"not valid JSON: {exc.msg}", source=value, line=exc.lineno
                             ) from None
        # Unknown extension: JSON first, then YAML (as the reference).
        return _parse_yaml(body, value), value


def _parse_yaml(body: str, source: str) -> Any:
    """PyYAML when installed (the `yaml` extra); otherwise the subset planner configs use."""
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        return _parse_simple_yaml(body, source)
    try:
        return yaml.safe_load(body)
    except yaml.YAMLError as exc:
        line = None
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            line = int(mark.line) + 1
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                         source=source, line=line) from None


_YAML_WORDS: dict[str, Any] = {"true": True, "false": False, "yes": True, "no": False,
                               "null": None, "~": None, "": None}


def _yaml_scalar(text: str, source: str, lineno: int) -> Any:
    t = text.strip()
    if t.lower() in _YAML_WORDS:
        return _YAML_WORDS[t.lower()]
    if t[:1] in "[{\"":
        try:
            return json.loads(t)
        except json.JSONDecodeError:
            raise InputError(f"cannot read the value {t!r} (flow values must be JSON; install "
                             "the 'yaml' extra for full YAML)", source=source,
                             line=lineno) from None
    if t[:1] == "'" and t[-1:] == "'":
        return t[1:-1].replace("''", "'")
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def _parse_simple_yaml(body: str, source: str) -> dict[str, Any]:
    """Block mappings (nested by indentation) of scalars, with comments: what a planner
    config needs, without a YAML library."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for lineno, raw in enumerate(body.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip() or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        if not sep or not key or line.lstrip().startswith("- "):
            raise InputError("expected 'key: value' (lists and other YAML forms need the "
                             "'yaml' extra: pip install 'dynosim-tui[yaml]')", source=source,
                             line=lineno)
        while stack and indent <= stack[-1][0]:
            stack.pop()
        if not stack:
            raise InputError("inconsistent indentation", source=source, line=lineno)
        parent = stack[-1][1]
        key = key.strip().strip("\"'")
        if value.strip() == "":
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
        else:
            parent[key] = _yaml_scalar(value, source, lineno)
    return root


def _normalise(obj: Any, source: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InputError("expected a JSON/YAML object (mapping)", source=source)
    out: dict[str, Any] = {}
    fields = set(PlannerConfig.__struct_fields__)
    for key, v in obj.items():
        if not isinstance(key, str):
            raise InputError(f"keys must be strings, got {show_value(key)}", source=source)
        name = ALIASES.get(key, key)
        if name not in fields:
            raise InputError(f"unknown key; valid keys: {', '.join(valid_keys())}",
                             source=source, field=key)
        if name in out:
            raise InputError(f"'{name}' is given twice (directly and through an alias); "
                             "use one", source=source, field=key)
        out[name] = v
    sched = out.get("scheduling")
    if isinstance(sched, dict):
        known = set(SchedulingConfig.__struct_fields__)
        for key in sched:
            if key not in known:
                raise InputError(f"unknown key; valid keys: {', '.join(sorted(known))}",
                                 source=source, field=f"scheduling.{key}")
    return out


def _field_from_path(message: str) -> tuple[str, str | None]:
    # msgspec: "Expected `int`, got `str` - at `$.ttft_ms`"
    marker = " - at `$."
    i = message.rfind(marker)
    if i < 0:
        return message, None
    return message[:i], message[i + len(marker):].rstrip("`")


def planner_config_from_dict(obj: Any, source: str = FLAG) -> PlannerConfig:
    """Validate an already-decoded mapping (aliases accepted, unknown keys rejected)."""
    data = _normalise(obj, source)
    try:
        config = msgspec.convert(data, PlannerConfig)
    except InputError as exc:
        raise InputError(exc.message, source=source, field=exc.field) from None
    except msgspec.ValidationError as exc:
        message, field = _field_from_path(str(exc))
        raise InputError(message, source=source, field=field) from None
    if config.load_predictor == "prophet" and not config.is_easy and not _prophet_importable():
        raise InputError(f"load_predictor 'prophet' needs the optional extra: pip install "
                         f"'{PROPHET_EXTRA}'", source=source, field="load_predictor")
    return config


PROPHET_EXTRA = "dynosim-tui[prophet]"


def _prophet_importable() -> bool:
    try:
        importlib.import_module("prophet")
    except ImportError:
        return False
    return True


def load_planner_config(value: str) -> PlannerConfig:
    """Parse `--planner-config`: inline JSON or a .json/.yaml/.yml path."""
    obj, source = _read_source(value)
    return planner_config_from_dict(obj, source)


def check_replay_mode(config: PlannerConfig, topology: str, source: str = FLAG) -> None:
    """Replay runs only `agg` and `disagg`, and the config must match the deployment."""
    if config.mode not in REPLAY_MODES:
        raise InputError(f"replay supports mode 'agg' or 'disagg', got '{config.mode}'",
                         source=source, field="mode")
    if config.mode != topology:
        raise InputError(f"mode '{config.mode}' does not match the deployment "
                         f"('{topology}')", source=source, field="mode")


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
