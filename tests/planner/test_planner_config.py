from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from planner.config import (
    PlannerConfig,
    SchedulingConfig,
    check_replay_mode,
    planner_config_from_dict,
    resolve_gpus,
)
from planner.errors import ConfigError
from planner.types import Capabilities

TUTORIAL = {
    "mode": "agg",
    "optimization_target": "sla",
    "ttft_ms": 1500,
    "itl_ms": 50,
    "enable_throughput_scaling": True,
    "enable_load_scaling": True,
    "pre_deployment_sweeping_mode": "rapid",
    "throughput_adjustment_interval_seconds": 300,
    "load_adjustment_interval_seconds": 10,
    "prefill_engine_num_gpu": 1,
    "decode_engine_num_gpu": 1,
    "report_filename": "planner_agg.html",
}


def caps(num_gpu: int = 1) -> Capabilities:
    return Capabilities(num_gpu=num_gpu, max_num_batched_tokens=8192, max_num_seqs=256,
                        max_kv_tokens=29249 * 64, context_length=None)


def test_defaults_match_the_spec() -> None:
    c = PlannerConfig()
    assert c.mode == "disagg"
    assert c.optimization_target == "throughput"
    assert (c.ttft_ms, c.itl_ms) == (500.0, 50.0)
    assert c.throughput_adjustment_interval_seconds == 180
    assert c.load_adjustment_interval_seconds == 5
    assert c.scheduling.tick_max_duration_seconds == 30.0
    assert (c.min_endpoint, c.max_gpu_budget, c.min_gpu_budget) == (1, 8, -1)
    assert c.load_predictor == "arima"
    assert (c.kalman_q_level, c.kalman_q_trend, c.kalman_r, c.kalman_min_points) == (
        1.0, 0.1, 10.0, 5)
    assert (c.max_num_fpm_samples, c.fpm_sample_bucket_size, c.load_min_observations) == (
        64, 16, 5)
    assert c.load_scaling_down_sensitivity == 80
    assert c.prophet_window_size == 50
    assert c.report_write_gzip_log is True
    # Default target is an easy mode: throughput loop forced off, load loop forced on.
    assert c.enable_load_scaling is True
    assert c.enable_throughput_scaling is False
    assert c.scale_interval_s == 5.0


def test_aliases() -> None:
    c = planner_config_from_dict({"optimization_target": "sla", "ttft": 900, "itl": 20,
                                  "throughput_adjustment_interval": 60,
                                  "load_adjustment_interval": 4, "enable_load_scaling": True})
    assert (c.ttft_ms, c.itl_ms) == (900.0, 20.0)
    assert c.throughput_adjustment_interval_seconds == 60
    assert c.load_adjustment_interval_seconds == 4
    assert c.scale_interval_s == 4.0


def test_alias_and_canonical_together_fail() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        planner_config_from_dict({"ttft": 1, "ttft_ms": 2})


def test_unknown_nested_scheduling_key() -> None:
    with pytest.raises(ConfigError, match="scheduling.interval"):
        planner_config_from_dict({"scheduling": {"interval": 3}})


def test_type_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as exc:
        planner_config_from_dict({"min_endpoint": "two"})
    assert exc.value.field == "min_endpoint"
    with pytest.raises(ConfigError) as exc:
        planner_config_from_dict({"mode": "cluster"})
    assert exc.value.field == "mode"
    with pytest.raises(ConfigError) as exc:
        planner_config_from_dict({"scheduling": {"scale_interval_seconds": "x"}})
    assert exc.value.field == "scheduling.scale_interval_seconds"


@pytest.mark.parametrize("patch, field", [
    ({"ttft_ms": 0}, "ttft_ms"),
    ({"ttft_ms": -5}, "ttft_ms"),
    ({"fpm_sample_bucket_size": 15}, "fpm_sample_bucket_size"),
    ({"load_adjustment_interval_seconds": 0}, "load_adjustment_interval_seconds"),
    ({"load_adjustment_interval_seconds": 300}, "load_adjustment_interval_seconds"),
    ({"enable_load_scaling": False, "enable_throughput_scaling": False}, "enable_load_scaling"),
    ({"scheduling": {"scale_interval_seconds": 7}}, "scheduling.scale_interval_seconds"),
    ({"load_scaling_down_sensitivity": 101}, "load_scaling_down_sensitivity"),
    ({"load_min_observations": 65}, "load_min_observations"),
])
def test_validation_rules(patch: dict[str, object], field: str) -> None:
    data = {**TUTORIAL, **patch}
    with pytest.raises(ConfigError) as exc:
        planner_config_from_dict(data)
    assert exc.value.field == field


def test_load_interval_may_equal_throughput_when_throughput_is_off() -> None:
    c = planner_config_from_dict({**TUTORIAL, "enable_throughput_scaling": False,
                                  "load_adjustment_interval_seconds": 300})
    assert c.scale_interval_s == 300.0


def test_load_target_thresholds() -> None:
    base = {"mode": "disagg", "optimization_target": "load"}
    with pytest.raises(ConfigError, match="prefill_scale_up_queue_tokens"):
        planner_config_from_dict(base)
    with pytest.raises(ConfigError) as exc:
        planner_config_from_dict({**base, "prefill_scale_up_queue_tokens": 100,
                                  "prefill_scale_down_queue_tokens": 100,
                                  "decode_scale_up_kv_rate": 80,
                                  "decode_scale_down_kv_rate": 20})
    assert exc.value.field == "prefill_scale_up_queue_tokens"
    with pytest.raises(ConfigError) as exc:
        planner_config_from_dict({**base, "prefill_scale_up_queue_tokens": 100,
                                  "prefill_scale_down_queue_tokens": 10,
                                  "decode_scale_up_kv_rate": 20,
                                  "decode_scale_down_kv_rate": 30})
    assert exc.value.field == "decode_scale_up_kv_rate"
    ok = planner_config_from_dict({**base, "prefill_scale_up_queue_tokens": 100,
                                   "prefill_scale_down_queue_tokens": 10,
                                   "decode_scale_up_kv_rate": 80,
                                   "decode_scale_down_kv_rate": 20})
    assert ok.enable_load_scaling and not ok.enable_throughput_scaling
    # agg needs only the decode thresholds
    agg = planner_config_from_dict({"mode": "agg", "optimization_target": "load",
                                    "decode_scale_up_kv_rate": 80,
                                    "decode_scale_down_kv_rate": 20})
    assert agg.mode == "agg"


def test_easy_mode_overrides_and_scale_interval() -> None:
    c = planner_config_from_dict({**TUTORIAL, "optimization_target": "latency"})
    assert c.enable_load_scaling and not c.enable_throughput_scaling
    assert not c.throughput_active
    # throughput interval no longer takes part in the gcd
    assert c.scale_interval_s == 10.0


def test_scale_interval_gcd_at_ms_resolution() -> None:
    c = PlannerConfig(optimization_target="sla", enable_load_scaling=True,
                      load_adjustment_interval_seconds=4,
                      throughput_adjustment_interval_seconds=6)
    assert c.scale_interval_s == 2.0
    c = PlannerConfig(optimization_target="sla", enable_load_scaling=True,
                      load_adjustment_interval_seconds=10,
                      throughput_adjustment_interval_seconds=300,
                      scheduling=SchedulingConfig(scale_interval_seconds=2.5))
    assert c.scale_interval_s == 2.5


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a JSON/YAML object"):
        planner_config_from_dict([1, 2])


def test_replay_mode_check() -> None:
    c = planner_config_from_dict({**TUTORIAL, "mode": "prefill"})
    with pytest.raises(ConfigError, match="agg' or 'disagg"):
        check_replay_mode(c, "disagg")
    with pytest.raises(ConfigError, match="does not match"):
        check_replay_mode(planner_config_from_dict(TUTORIAL), "disagg")
    check_replay_mode(planner_config_from_dict(TUTORIAL), "agg")


def test_gpu_counts_default_to_engine_tp() -> None:
    c = planner_config_from_dict({**TUTORIAL, "mode": "disagg", "prefill_engine_num_gpu": None,
                                  "decode_engine_num_gpu": None})
    g = resolve_gpus(c, {"prefill": caps(2), "decode": caps(4)})
    assert (g.prefill, g.decode) == (2, 4)
    assert g.prefill_defaulted and g.decode_defaulted
    g = resolve_gpus(planner_config_from_dict({**TUTORIAL, "mode": "disagg"}),
                     {"prefill": caps(2), "decode": caps(4)})
    assert (g.prefill, g.decode) == (1, 1)
    assert not g.prefill_defaulted and not g.decode_defaulted
    # agg: only the decode value is used
    g = resolve_gpus(planner_config_from_dict({"mode": "agg", "optimization_target": "sla",
                                               "enable_load_scaling": True}),
                     {"decode": caps(8)})
    assert g.prefill is None and g.decode == 8 and g.decode_defaulted
    assert g.as_dict()["decode_engine_num_gpu_defaulted"] is True
