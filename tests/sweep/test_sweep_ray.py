"""The Ray executor for real (issue 14): one local `ray.init(num_cpus=2)` shared by the Ray
tests; the results table equals the serial one (wall-time columns aside)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import ROOT
from dynosim.sweep.executors import RayExecutor, SerialExecutor
from dynosim.sweep.runner import run_sweep
from dynosim.sweep.spec import load_spec

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed "
                          "(pip install 'dynosim-tui[ray]'; .ci/run installs it)")
pytestmark = pytest.mark.slow  # a local Ray takes ~20 s to start here
WALL_COLUMNS = ("wall_s", "worker_rss_mb", "worker")


@pytest.fixture(scope="session")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def spec_file(tmp_path: Path) -> str:
    p = tmp_path / "spec.yaml"
    timing = {"engine": {"timing_model": {"type": "fixed", "prefill_ms": 40, "decode_ms": 5}}}
    p.write_text(f"""base:
  trace: {ROOT / 'traces' / 'multiturn.jsonl'}
  extra_engine_args: {json.dumps(timing)}
axes:
  num_workers: [1, 2]
  speed: {{path: arrival_speedup_ratio, values: [1.0, 2.0]}}
constraints: {{p90_ttft_ms: 2000}}
""")
    return str(p)


def _table(rows):
    return [{k: v for k, v in r.items() if k not in WALL_COLUMNS} for r in rows]


def test_ray_table_equals_serial(local_ray, tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    serial = run_sweep(spec, str(tmp_path / "serial"), SerialExecutor)
    executors: list[RayExecutor] = []

    def make():
        executors.append(RayExecutor())
        return executors[0]

    on_ray = run_sweep(spec, str(tmp_path / "ray"), make)
    assert _table(on_ray.rows) == _table(serial.rows)
    assert {r["status"] for r in on_ray.rows} == {"ok"}
    ex = executors[0]
    assert ex.slots == 4  # two CPUs, a little queue each
    # the trace went to the object store once for the four points (arrival_speedup_ratio is
    # applied on the worker's copy)
    assert ex.puts == 1
    assert ray.is_initialized()  # a Ray we did not start is left running


def test_ray_failure_is_recorded(local_ray, tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text("base: {input_tokens: 256, output_tokens: 8, request_count: 20}\n"
                 "axes: {request_rate: [10.0, null]}\n")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "o"), RayExecutor)
    assert [r["status"] for r in res.rows] == ["ok", "failed"]
    assert "exactly one of --request-rate" in res.rows[1]["error"]
