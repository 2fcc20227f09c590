"""The one reader of "inline JSON or a path (JSON/YAML)" and the flags built on it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynosim.inputs.engine_args import parse_engine_args
from dynosim.inputs.errors import InputError
from dynosim.inputs.router_config import parse_router_config
from dynosim.inputs.source import read_mapping
from dynosim.planner_setup import load_planner_config, warmup_from_trace
from dynosim.replay import RunOptions, build_replay
from helpers import SYNTH

TUTORIAL = {
    "mode": "agg", "optimization_target": "sla", "ttft_ms": 1500, "itl_ms": 50,
    "enable_throughput_scaling": True, "enable_load_scaling": True,
    "throughput_adjustment_interval_seconds": 300, "load_adjustment_interval_seconds": 10,
}

READERS = [
    ("--extra-engine-args", lambda v: parse_engine_args(v)),
    ("--router-config", lambda v: parse_router_config(v)),
    ("--planner-config", lambda v: load_planner_config(v)),
]


def error(read: object, value: str) -> str:
    with pytest.raises(InputError) as exc:
        read(value)  # type: ignore[operator]
    text = str(exc.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("flag, read", READERS, ids=[f for f, _ in READERS])
def test_one_wording_for_a_missing_file(flag: str, read: object, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    msg = error(read, missing)
    assert msg.startswith(f"{flag}: cannot read {missing!r}: no such file (the value must be "
                          "inline JSON starting with '{' or the path of ")
    assert "is a directory" in error(read, str(tmp_path))
    assert msg.startswith(f"{flag}: ")
    assert "empty string" in error(read, "  ")


@pytest.mark.parametrize("flag, read", READERS, ids=[f for f, _ in READERS])
def test_duplicate_keys_and_bad_json(flag: str, read: object, tmp_path: Path) -> None:
    assert error(read, '{"a": 1, "a": 2}') == f"{flag}: field 'a': key given twice"
    assert error(read, "{bad").startswith(f"{flag}: invalid JSON: ")
    assert "expected a JSON" in error(read, "[1, 2]")
    assert "NaN is not a JSON number" in error(read, '{"a": NaN}')
    p = tmp_path / "multi.json"
    p.write_text('{\n  "a": ,\n}')
    assert error(read, str(p)).startswith(f"{p}:2: invalid JSON: ")
    p.write_bytes(b'{"a": "\xff"}')
    assert error(read, str(p)) == f"{p}: not UTF-8 text (byte 7)"


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "args.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps({"engine": {"block_size": 32}}).encode())
    assert parse_engine_args(str(p)).config.block_size == 32
    y = tmp_path / "planner.yaml"
    y.write_bytes(b"\xef\xbb\xbfmode: agg\noptimization_target: sla\nenable_load_scaling: true\n")
    assert load_planner_config(str(y)).mode == "agg"


def test_planner_config_inline_and_files(tmp_path: Path) -> None:
    c = load_planner_config(json.dumps(TUTORIAL))
    assert (c.mode, c.ttft_ms, c.scale_interval_s) == ("agg", 1500.0, 10.0)
    assert c.throughput_active
    j = tmp_path / "p.json"
    j.write_text(json.dumps(TUTORIAL))
    assert load_planner_config(str(j)).ttft_ms == 1500.0
    y = tmp_path / "p.yaml"
    y.write_text("# tutorial config\nmode: agg\noptimization_target: sla\nttft: 700  # ms\n"
                 "enable_load_scaling: true\nload_adjustment_interval_seconds: 10\n"
                 "scheduling:\n  scale_interval_seconds: 10\n"
                 "report_filename: 'my report.html'\n")
    cfg = load_planner_config(str(y))
    assert cfg.ttft_ms == 700.0 and cfg.enable_load_scaling is True
    assert cfg.scale_interval_s == 10.0 and cfg.report_filename == "my report.html"
    # any other name: JSON first, then YAML
    other = tmp_path / "planner.conf"
    other.write_text("mode: agg\noptimization_target: latency\n")
    assert load_planner_config(str(other)).optimization_target == "latency"


def test_yaml_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: agg\njust a line\n")
    assert error(load_planner_config, str(bad)).startswith(f"{bad}:2: invalid YAML: ")
    bad.write_text("mode: agg\nscheduling:\n\tscale_interval_seconds: 10\n")  # a tab indent
    assert error(load_planner_config, str(bad)).startswith(f"{bad}:3: invalid YAML: ")
    bad.write_text("mode: agg\nttft_ms: 1\nttft_ms: 2\n")
    assert error(load_planner_config, str(bad)) == f"{bad}:3: field 'ttft_ms': key given twice"
    bad.write_text("- 1\n- 2\n")
    assert error(load_planner_config, str(bad)).startswith(
        f"{bad}: expected a JSON/YAML object, got array")
    bad.write_text("")
    assert "got null" in error(load_planner_config, str(bad))


def test_planner_problems_name_the_source(tmp_path: Path) -> None:
    msg = error(load_planner_config, '{"ttft_mss": 3}')
    assert msg.startswith("--planner-config: field 'ttft_mss': unknown key; valid keys: ")
    assert "load_predictor" in msg
    p = tmp_path / "p.json"
    p.write_text(json.dumps({**TUTORIAL, "ttft_ms": -1}))
    assert error(load_planner_config, str(p)) == f"{p}: field 'ttft_ms': must be > 0, got -1.0"


def test_read_mapping_returns_the_source(tmp_path: Path) -> None:
    assert read_mapping('{"a": 1}', "--flag") == ({"a": 1}, "--flag")
    p = tmp_path / "x.json"
    p.write_text('{"b": [1, 2]}')
    assert read_mapping(str(p), "--flag") == ({"b": [1, 2]}, str(p))


def test_warmup_trace_is_read_by_the_edge(tmp_path: Path) -> None:
    rows = [
        {"timestamp": 0, "input_length": 100, "output_length": 10, "hash_ids": [1]},
        {"timestamp": 1000, "input_length": 300, "output_length": 30, "hash_ids": [2]},
        {"timestamp": 9000, "input_length": 500, "output_length": 50, "hash_ids": [3]},
    ]
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert warmup_from_trace(str(path), 4.0) == [(2, 200.0, 20.0), (0, 0.0, 0.0),
                                                 (1, 500.0, 50.0)]
    cfg = {**TUTORIAL, "throughput_adjustment_interval_seconds": 4,
           "load_adjustment_interval_seconds": 2, "load_predictor_warmup_trace": str(path)}
    replay = build_replay(RunOptions(trace=SYNTH, num_workers=1, planner_config=json.dumps(cfg)))
    assert replay.planner is not None and replay.planner.warmup_intervals == 3
    cfg["load_predictor_warmup_trace"] = str(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="missing.jsonl"):
        build_replay(RunOptions(trace=SYNTH, num_workers=1, planner_config=json.dumps(cfg)))
