from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from planner.config import planner_config_from_dict, resolve_gpus
from dynosim.outputs.planner_log import (
    event_line,
    planner_report_section,
    read_snapshot_log,
    snapshot_log_path,
    stdout_lines,
    write_snapshot_log,
)
from planner.types import Capabilities, ScalingEvent
from helpers import planner_reference

CAPS = Capabilities(num_gpu=2, max_num_batched_tokens=8192, max_num_seqs=256,
                    max_kv_tokens=1000, context_length=None)
REF_META_KEYS = {"generated_at_utc", "html_report_path", "itl_ms", "kind", "num_snapshots",
                 "schema", "ttft_ms"}


def test_event_and_stdout_lines() -> None:
    evs = [ScalingEvent(110.0, "agg", 2, 3, "scale_up"),
           ScalingEvent(500.0, "agg", 8, 7, "scale_down")]
    assert event_line(evs[0]) == "  t=110.0s [agg]: 2 -> 3 (scale_up)"
    assert stdout_lines(evs, 102) == [
        "Scaling events:",
        "  t=110.0s [agg]: 2 -> 3 (scale_up)",
        "  t=500.0s [agg]: 8 -> 7 (scale_down)",
        "Planner ticks: 102",
    ]
    assert stdout_lines([], 5, "x.log.jsonl.gz") == [
        "Scaling events: none", "Planner ticks: 5", "Planner diagnostics log: x.log.jsonl.gz"]


def test_snapshot_log_round_trip(tmp_path: Path) -> None:
    path = snapshot_log_path(str(tmp_path / "reports"), "planner_agg.html")
    assert path.endswith(os.path.join("reports", "planner_agg.log.jsonl.gz"))
    snaps: list[dict[str, object]] = [{"timestamp_s": 10.0, "kind": "snapshot", "b": 1, "a": None}]
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    write_snapshot_log(path, snaps, 1500, 50, "./planner_reports/planner_agg.html", when)
    meta, rows = read_snapshot_log(path)
    assert set(meta) == REF_META_KEYS
    assert meta["num_snapshots"] == 1 and meta["ttft_ms"] == 1500.0 and meta["itl_ms"] == 50.0
    assert meta["generated_at_utc"] == "2026-01-02T03:04:05+00:00"
    assert rows == snaps
    with gzip.open(path, "rt") as f:
        second = f.read().splitlines()[1]
    assert second == json.dumps(snaps[0], sort_keys=True)  # keys sorted as the reference
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["planner_agg.log.jsonl.gz"]


def test_snapshot_log_write_is_atomic(tmp_path: Path) -> None:
    path = str(tmp_path / "p.log.jsonl.gz")
    write_snapshot_log(path, [{"x": 1}], 1.0, 1.0)
    with pytest.raises(TypeError):
        write_snapshot_log(path, [{"x": object()}], 1.0, 1.0)
    _, rows = read_snapshot_log(path)  # the old file is intact, no temporary left over
    assert rows == [{"x": 1}]
    assert sorted(os.listdir(tmp_path)) == ["p.log.jsonl.gz"]


def test_reading_a_reference_shaped_log(tmp_path: Path) -> None:
    run = planner_reference("run_agg_syn")
    assert set(run["metadata"]) == REF_META_KEYS
    path = str(tmp_path / "copy.log.jsonl.gz")
    write_snapshot_log(path, run["snapshots"], 1500.0, 50.0)
    meta, rows = read_snapshot_log(path)
    assert rows == run["snapshots"] and meta["num_snapshots"] == 102


def test_report_section() -> None:
    cfg = planner_config_from_dict({"mode": "disagg", "optimization_target": "sla",
                                    "enable_load_scaling": True, "prefill_engine_num_gpu": 1,
                                    "throughput_adjustment_interval_seconds": 300,
                                    "load_adjustment_interval_seconds": 10})
    gpus = resolve_gpus(cfg, {"prefill": CAPS, "decode": CAPS})
    sec = planner_report_section(cfg, gpus, [ScalingEvent(100.0, "prefill", 1, 2, "scale_up")],
                                 102, 0.6722, 0.681, "planner.log.jsonl.gz")
    assert sec["scaling_events"] == [{"time_s": 100.0, "component": "prefill", "from": 1,
                                      "to": 2, "reason": "scale_up"}]
    assert sec["total_ticks"] == 102 and sec["num_scaling_events"] == 1
    assert sec["gpu_hours_planner"] == 0.6722 and sec["gpu_hours_lifetime"] == 0.681
    conf = sec["config"]
    assert isinstance(conf, dict)
    assert conf["prefill_engine_num_gpu"] == 1 and conf["prefill_engine_num_gpu_defaulted"] is False
    assert conf["decode_engine_num_gpu"] == 2 and conf["decode_engine_num_gpu_defaulted"] is True
    assert conf["scale_interval_seconds"] == 10.0
    json.dumps(sec)  # JSON-serialisable
