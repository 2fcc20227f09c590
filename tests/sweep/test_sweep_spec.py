"""Sweep specs (issue 14): ranges, derived axes, and one-line errors naming file:line:field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import ROOT
from dynosim.inputs.errors import InputError
from dynosim.sweep.axes import grid, point_config, to_options
from dynosim.sweep.runner import build_points
from dynosim.sweep.spec import load_spec

TINY = str(ROOT / "traces" / "mooncake_tiny.jsonl")
AIC = {"aic_backend": "vllm", "aic_system": "h200_sxm",
       "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1}


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def error_of(path: str, build: bool = False) -> str:
    with pytest.raises(InputError) as e:
        spec = load_spec(path)
        if build:
            build_points(spec)
    return str(e.value)


def test_ranges_linear_log_and_integers(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, f"""
base: {{trace: {TINY}}}
axes:
  a: {{path: arrival_speedup_ratio, range: {{start: 0.5, stop: 2, step: 0.25}}}}
  b: {{path: num_workers, range: {{start: 1, stop: 8, num: 4, scale: log}}}}
  c: {{path: seed, range: {{start: 0, stop: 30, step: 10}}}}
  d: {{path: kv_event_lag_ms, range: {{start: 1, stop: 100, step: 10, scale: log}}}}
"""))
    vals = {a.name: a.values for a in spec.axes}
    assert vals["a"] == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    assert vals["b"] == (1, 2, 4, 8)  # integer ends stay integers
    assert vals["c"] == (0, 10, 20, 30) and all(isinstance(v, int) for v in vals["c"])
    assert vals["d"] == (1.0, 10.0, 100.0)
    assert len(grid(spec)) == 7 * 4 * 4 * 3  # product by default


def test_json_spec_and_zip(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, json.dumps({
        "base": {"trace": TINY},
        "axes": {"num_workers": [1, 2, 3], "seed": {"values": [5, 6, 7]}},
        "combine": "zip"}), "spec.json"))
    assert grid(spec) == [(1, 5), (2, 6), (3, 7)]


def test_trace_is_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(Path(TINY).read_text())
    spec = load_spec(write(tmp_path, "base: {trace: t.jsonl}\naxes: {seed: [1, 2]}\n"))
    assert spec.base["trace"] == str(tmp_path / "t.jsonl")


@pytest.mark.parametrize("text,where,words", [
    ("base: {trace: T}\naxes: {seed: [1]}\nobjective: {}\n", ":3: field 'objective'",
     ["unknown top-level key", "valid: name, base, axes, combine, constraints, objectives"]),
    ("base: {trace: T, num_workerz: 2}\naxes: {seed: [1]}\n", ":1: field 'base.num_workerz'",
     ["unknown base setting", "num_workers"]),
    ("base: {trace: T}\naxes:\n  x:\n    path: engine_args.startup_time\n    values: [1]\n",
     ":4: field 'axes.x.path'", ["'engine_args' is not a run setting", "extra_engine_args"]),
    ("base: {trace: T}\naxes: {}\n", ":2: field 'axes'", ["no axes"]),
    ("base: {trace: T}\naxes: {seed: []}\n", ":2: field 'axes.seed'", ["non-empty list"]),
    ("base: {trace: T}\naxes:\n  seed: {values: [1], steps: 2}\n", ":3: field 'axes.seed.steps'",
     ["unknown axis key", "valid: path, values, range"]),
    ("base: {trace: T}\naxes: {seed: [1]}\nconstraints:\n  p90_ttft: 100\n",
     ":4: field 'constraints.p90_ttft'", ["unknown metric", "p90_ttft_ms", "gpus"]),
    ("base: {trace: T}\naxes: {seed: [1, 2], num_workers: [1]}\ncombine: zip\n",
     ":3: field 'combine'", ["equal length", "seed: 2, num_workers: 1"]),
    ("base: {trace: T}\naxes: {topology: [agg:2, 'disagg:1']}\n", ":2: field 'axes.topology",
     ["agg:N or disagg:P:D"]),
    ("base: {trace: T}\naxes: {seed: [1]}\naxes: {seed: [2]}\n", ":3: field 'axes'",
     ["duplicate key"]),
    ("base: {trace: T}\naxes:\n  s: {path: seed, range: {start: 0, stop: 5, step: 0}}\n",
     ":3: field 'axes.s.range.step'", ["must be > 0"]),
    ("base: {trace: T}\naxes: {seed: [1]}\nobjectives: {pareto: [gpus]}\n",
     ":3: field 'objectives.pareto'", ["two metrics"]),
])
def test_one_line_errors(tmp_path: Path, text: str, where: str, words: list[str]) -> None:
    path = write(tmp_path, text.replace("T", TINY))
    msg = error_of(path)
    assert "\n" not in msg and msg.startswith(path + where), msg
    for w in words:
        assert w in msg, msg


def test_a_path_inside_engine_args_that_does_not_exist(tmp_path: Path) -> None:
    """The factory's own engine-args check names the bad key (and the valid ones) at the
    axis's line."""
    path = write(tmp_path, f"""base:
  trace: {TINY}
  extra_engine_args: {{engine: {{block_size: 16}}}}
axes:
  st:
    path: extra_engine_args.startup_tme
    values: [0, 10]
""")
    msg = error_of(path, build=True)
    assert msg.startswith(f"{path}:5: field 'axes.st'"), msg
    assert "startup_tme" in msg and "startup_time" in msg and "(at point st=0)" in msg


def test_bad_planner_value_points_at_the_axis(tmp_path: Path) -> None:
    path = write(tmp_path, f"""base:
  trace: {TINY}
  planner_config: {{mode: agg, ttft_ms: 1500, itl_ms: 50}}
axes:
  ttft: {{path: planner_config.ttft_ms, values: [500, -1]}}
""")
    msg = error_of(path, build=True)
    assert msg.startswith(f"{path}:5: field 'axes.ttft'") and "ttft_ms" in msg, msg
    assert "ttft=-1" in msg


def test_a_type_error_names_the_value(tmp_path: Path) -> None:
    """One axis line holds several values: the message says which one is wrong."""
    path = write(tmp_path, f"base: {{trace: {TINY}}}\naxes: {{seed: [1, 'x2']}}\n")
    msg = error_of(path, build=True)
    assert msg.startswith(f"{path}:2: field 'axes.seed'"), msg
    assert "got `str` 'x2'" in msg and "(at point seed=x2)" in msg, msg


def test_a_setting_no_point_uses_is_refused(tmp_path: Path) -> None:
    """As the CLI refuses `--request-rate` with a trace, a spec may not carry it silently."""
    path = write(tmp_path, f"base:\n  trace: {TINY}\n  request_rate: 5\naxes: {{seed: [1, 2]}}\n")
    msg = error_of(path, build=True)
    assert msg.startswith(f"{path}:3: field 'base.request_rate'"), msg
    assert "not to a trace file" in msg and "no point of this sweep uses it" in msg, msg
    path = write(tmp_path, f"base: {{trace: {TINY}}}\naxes:\n  lag: {{path: kv_event_lag_ms, "
                 "values: [0, 5]}\n", "axis.yaml")
    msg = error_of(path, build=True)
    assert msg.startswith(f"{path}:3: field 'axes.lag'") and "kv_router" in msg, msg


def test_a_setting_some_points_use_is_kept(tmp_path: Path) -> None:
    """kv_event_lag_ms matters to the kv_router points only; base num_workers to agg ones."""
    path = write(tmp_path, f"""base:
  trace: {TINY}
  num_workers: 3
  kv_event_lag_ms: 5
axes:
  router_mode: [round_robin, kv_router]
  topology: [agg:2, disagg:1:1]
""")
    points = build_points(load_spec(path))
    assert [p.options.kv_event_lag_ms for p in points] == [5] * 4
    assert sorted(p.options.router_mode for p in points) == ["kv_router"] * 2 + ["round_robin"] * 2


def test_missing_trace_is_a_spec_error(tmp_path: Path) -> None:
    path = write(tmp_path, "base: {trace: nope.jsonl}\naxes: {seed: [1]}\n")
    assert error_of(path, build=True) == f"{path}:1: field 'base.trace': trace file not found"


def test_topology_and_tp_build_the_pools(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, json.dumps({
        "base": {"trace": TINY, "extra_engine_args": {"engine": AIC, "startup_time": 30},
                 "planner_config": {"mode": "agg", "ttft_ms": 1500, "itl_ms": 50,
                                    "decode_engine_num_gpu": 1, "prefill_engine_num_gpu": 1}},
        "axes": {"topology": ["agg:4", "disagg:1:3"], "tp": [1, 2]}})))
    opts = [to_options(point_config(spec, c)) for c in grid(spec)]
    agg2, dis2 = opts[1], opts[3]
    assert agg2.num_workers == 4 and agg2.prefill_engine_args is None
    args = json.loads(agg2.extra_engine_args or "")
    assert args["tensor_parallel_size"] == 2 and args["engine"]["aic_tp_size"] == 2
    assert args["startup_time"] == 30
    assert dis2.extra_engine_args is None
    assert (dis2.num_prefill_workers, dis2.num_decode_workers) == (1, 3)
    for pool in (dis2.prefill_engine_args, dis2.decode_engine_args):
        p = json.loads(pool or "")
        assert p["tensor_parallel_size"] == 2 and p["engine"]["aic_tp_size"] == 2
    planner = json.loads(dis2.planner_config or "")
    assert planner["mode"] == "disagg" and planner["decode_engine_num_gpu"] == 2
    # every point passes the factory's checks, and each has its own hash
    points = build_points(spec)
    assert len({p.config_hash for p in points}) == 4


def test_the_readme_example_spec_is_valid() -> None:
    points = build_points(load_spec(str(ROOT / "examples" / "sweeps" / "router_topology.yaml")))
    assert len(points) == 5 * 6 * 3 * 2
    assert len({p.config_hash for p in points}) == len(points)
