"""The Ray executor for real (issue 14): one local `ray.init(num_cpus=2)` shared by the Ray
tests; the results table equals the serial one (wall-time columns aside)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import ROOT
from dynosim.sweep.executors import RayExecutor, SerialExecutor
from dynosim.sweep.runner import run_sweep
from dynosim.sweep.spec import load_spec, spec_from_mapping

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


def test_ray_workers_report_progress_and_a_cancel_stops_a_running_point(local_ray,
                                                                        tmp_path: Path) -> None:
    # the live view's path on Ray: notes through a queue actor, a cancel through ray.cancel
    from dynosim.sweep.events import PointFinished, PointProgress, PointStarted, SweepControl

    # the synthetic trace three times over, so point 0 is still running (by seconds) when the
    # driver reads its first progress note, however loaded the machine
    rows = [json.loads(line) for line in
            (ROOT / "traces" / "synthetic_trace.jsonl").read_text().splitlines() if line.strip()]
    span = max(r["timestamp"] for r in rows) + 1.0
    stride = 1 + max(h for r in rows for h in r["hash_ids"])
    trace = tmp_path / "tripled.jsonl"
    trace.write_text("".join(
        json.dumps(dict(r, timestamp=r["timestamp"] + k * span,
                        hash_ids=[h + k * stride for h in r["hash_ids"]])) + "\n"
        for k in range(3) for r in rows))
    spec = spec_from_mapping({"base": {"trace": str(trace), "num_workers": 1},
                              "axes": {"seed": [0, 1]}}, "test", "t")
    control = SweepControl()
    events: list = []

    def observer(ev) -> None:
        events.append(ev)
        if isinstance(ev, PointProgress) and ev.index == 0:
            control.skip(0)

    res = run_sweep(spec, str(tmp_path / "out"), RayExecutor, observer=observer,
                    control=control)
    assert {e.index for e in events if isinstance(e, PointStarted)} == {0, 1}
    progress = [e for e in events if isinstance(e, PointProgress)]
    assert progress and all(e.total == 3 * len(rows) for e in progress)
    done = {e.index: e.status for e in events if isinstance(e, PointFinished)}
    assert done == {0: "cancelled", 1: "ok"}
    assert [r["status"] for r in res.rows] == ["pending", "ok"]


def test_ray_failure_is_recorded(local_ray, tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text("base: {input_tokens: 256, output_tokens: 8, request_count: 20}\n"
                 "axes: {request_rate: [10.0, null]}\n")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "o"), RayExecutor)
    assert [r["status"] for r in res.rows] == ["ok", "failed"]
    assert "exactly one of --request-rate" in res.rows[1]["error"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def ray_head(local_ray):
    """A separate Ray cluster, as a user starts one with `ray start --head`. It keeps its files
    in its own short temp dir, so it never becomes the "current cluster" that a plain
    `ray.init()` elsewhere would try to join (and then refuse num_cpus). Token auth, on by
    default in newer Rays, is off for both sides here (the CLI test of the hint is below)."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    ray_bin = Path(sys.executable).with_name("ray")
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # unix socket paths must stay short
    port = _free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp}", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(Path(temp).glob("session_latest/logs/raylet.out")):
            assert head.poll() is None, head.stderr.read() if head.stderr else ""
            assert time.monotonic() < deadline, "ray start --head did not come up in 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_cli_joins_a_running_cluster(ray_head, tmp_path: Path) -> None:
    """`--ray-address` for real: a separate driver process joins the head, ships this
    installation (compiled engine included) as the tasks' working_dir, and writes the same
    table as the serial executor."""
    import csv
    import subprocess
    import sys

    address, env = ray_head
    spec = spec_file(tmp_path)
    cli = str(Path(sys.executable).with_name("dynosim-tui"))
    done = subprocess.run([cli, "sweep", spec, "--executor", "ray", "--ray-address", address,
                           "--out", str(tmp_path / "ray"), "--no-html", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    serial = run_sweep(load_spec(spec), str(tmp_path / "serial"), SerialExecutor)

    def rows(path: Path) -> list[dict[str, str]]:
        with open(path) as f:
            return [{k: v for k, v in r.items() if k not in WALL_COLUMNS}
                    for r in csv.DictReader(f)]

    assert rows(tmp_path / "ray" / "results.csv") == rows(tmp_path / "serial" / "results.csv")
    assert {r["status"] for r in rows(tmp_path / "ray" / "results.csv")} == {"ok"}


def test_cli_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).with_name("dynosim-tui"))
    port = _free_port()  # nothing listens there
    done = subprocess.run([cli, "sweep", spec_file(tmp_path), "--executor", "ray",
                           "--ray-address", f"127.0.0.1:{port}", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()  # one line, nothing before it
    assert line.startswith(f"dynosim-tui sweep: error: --ray-address 127.0.0.1:{port}: "
                           "cannot join the Ray cluster: "), done.stderr[-2000:]
    assert not (tmp_path / "o").exists()  # the executor comes up before anything is made
