"""Sweeps end to end (issue 14): every point is an ordinary run, results are resumable and
identical across executors, failures are recorded, Ctrl-C leaves complete files."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from helpers import ROOT
from dynosim.cli import main as cli_main
from dynosim.cli import make_parser, options_from_args
from dynosim.sweep.executors import LocalPoolExecutor, SerialExecutor
from dynosim.sweep.runner import run_sweep
from dynosim.sweep.search import GridStrategy
from dynosim.sweep.spec import load_spec, spec_from_mapping
from dynosim.sweep.table import format_summary

PREFIX = str(ROOT / "traces" / "prefix_heavy.jsonl")
TIMING = {"engine": {"timing_model": {"type": "fixed", "prefill_ms": 40, "decode_ms": 5}}}
# wall-clock figures differ between any two runs of the same config
WALL_KEYS = ("wall_time_ms", "processed_tokens_per_s", "processed_output_tokens_per_s")
WALL_COLUMNS = ("wall_s", "worker_rss_mb", "worker")


def small_spec(tmp_path: Path) -> str:
    p = tmp_path / "spec.yaml"
    p.write_text(f"""name: small
base:
  trace: {PREFIX}
  router_mode: kv_router
  router_config: {{overlap_score_weight: 1.0}}
  extra_engine_args: {json.dumps(TIMING)}
axes:
  weight: {{path: router_config.overlap_score_weight, values: [0.0, 2.0]}}
  num_workers: [1, 2]
constraints:
  p90_ttft_ms: 400
  gpus: {{max: 2}}
objectives:
  rank: output_tok_s_per_gpu
  pareto: [gpus, p90_ttft_ms]
""")
    return str(p)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("sweep_serial")
    spec = load_spec(small_spec(tmp))
    res = run_sweep(spec, str(tmp / "out"), SerialExecutor)
    return spec, res, tmp / "out"


def _strip(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in WALL_KEYS and k != "sweep"}


def test_results_table_and_point_files(serial_run) -> None:
    spec, res, out = serial_run
    frame = pl.read_parquet(out / "results.parquet")
    csv = pl.read_csv(out / "results.csv")
    assert frame.height == csv.height == 4
    assert frame["point"].to_list() == [0, 1, 2, 3]
    assert frame["weight"].to_list() == [0.0, 0.0, 2.0, 2.0]
    assert frame["num_workers"].to_list() == [1, 2, 1, 2]
    for col in ("status", "feasible", "penalty", "violations", "rank", "pareto",
                "mean_ttft_ms", "p90_ttft_ms", "p99_itl_ms", "output_throughput_tok_s",
                "gpu_hours", "gpu_hours_planner", "scaling_events", "gpus", "wall_s",
                "config_hash", "command"):
        assert col in frame.columns, col
    assert frame["status"].to_list() == ["ok"] * 4
    assert frame["gpus"].to_list() == [1.0, 2.0, 1.0, 2.0]
    for row in frame.iter_rows(named=True):
        report = json.loads((out / "points" / f"{row['config_hash']}.json").read_text())
        assert report["p90_ttft_ms"] == row["p90_ttft_ms"]
        assert report["sweep"]["axes"] == {"weight": row["weight"],
                                           "num_workers": row["num_workers"]}
    assert not list((out / "points").glob("*.html"))  # no per-point HTML unless asked


def test_ranking_penalties_and_pareto(serial_run) -> None:
    spec, res, out = serial_run
    rows = {r["point"]: r for r in res.rows}
    for r in rows.values():
        over = max(r["p90_ttft_ms"] / 400 - 1, 0)
        assert r["penalty"] == pytest.approx(over)
        assert r["feasible"] == (over == 0)
    ranks = sorted(rows.values(), key=lambda r: r["rank"])
    feasible = [r for r in ranks if r["feasible"]]
    infeasible = [r for r in ranks if not r["feasible"]]
    assert ranks == feasible + infeasible
    assert [r["output_tok_s_per_gpu"] for r in feasible] == sorted(
        (r["output_tok_s_per_gpu"] for r in feasible), reverse=True)
    assert [r["penalty"] for r in infeasible] == sorted(r["penalty"] for r in infeasible)
    # the Pareto set: no feasible point is at least as good on both and better on one
    pool = feasible or list(rows.values())
    for r in pool:
        dominated = any(o["gpus"] <= r["gpus"] and o["p90_ttft_ms"] <= r["p90_ttft_ms"]
                        and (o["gpus"], o["p90_ttft_ms"]) != (r["gpus"], r["p90_ttft_ms"])
                        for o in pool)
        assert r["pareto"] == (not dominated)
    if feasible:
        assert res.best == feasible[0]["point"]


def test_point_report_equals_the_standalone_run(serial_run, tmp_path: Path) -> None:
    """The best point's reproducing command, run as a single CLI replay, writes the same
    JSON report (wall-clock figures aside) as the sweep stored."""
    spec, res, out = serial_run
    row = next(r for r in res.rows if r["point"] == (res.best if res.best is not None else 0))
    argv = shlex.split(row["command"])[1:]
    assert options_from_args(make_parser().parse_args(argv)) == res.points[row["point"]].options
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([*argv, "--report-json", str(tmp_path / "r.json")]) == 0
    standalone = json.loads((tmp_path / "r.json").read_text())
    stored = json.loads((out / "points" / f"{row['config_hash']}.json").read_text())
    assert _strip(stored) == _strip(standalone)


def test_rerun_skips_finished_points_and_force_redoes_them(tmp_path: Path) -> None:
    spec = load_spec(small_spec(tmp_path))
    out = str(tmp_path / "out")
    first = run_sweep(spec, out, SerialExecutor)
    assert (first.ran, first.skipped) == (4, 0)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "points").iterdir()}
    calls = []

    def no_runs():
        calls.append(1)
        return SerialExecutor()

    again = run_sweep(spec, out, no_runs)
    assert (again.ran, again.skipped, calls) == (0, 4, [])
    assert {p.name: p.stat().st_mtime_ns
            for p in (tmp_path / "out" / "points").iterdir()} == mtimes
    assert [r["rank"] for r in again.rows] == [r["rank"] for r in first.rows]
    forced = run_sweep(spec, out, SerialExecutor, force=True)
    assert (forced.ran, forced.skipped) == (4, 0)


def test_a_rerun_says_reused_and_infeasible_and_keeps_the_table(tmp_path: Path) -> None:
    """A reused point that misses a constraint reads "reused, infeasible" in the terminal
    summary (a reused feasible one "reused"), and the results table a rerun writes is the
    fresh run's, status and feasibility included."""
    spec = spec_from_mapping({"base": {"trace": str(ROOT / "traces" / "mooncake_tiny.jsonl")},
                              "axes": {"num_workers": [1, 2, 3, 4]},
                              "constraints": {"p90_ttft_ms": 1500}}, "test", "workers")
    out = str(tmp_path / "out")
    first = run_sweep(spec, out, SerialExecutor)
    fresh = pl.read_csv(tmp_path / "out" / "results.csv")
    feasible = {r["point"]: r["feasible"] for r in first.rows}
    assert sorted(feasible.values()) == [False, False, True, True]  # both kinds present
    fresh_summary = format_summary(first)
    again = run_sweep(spec, out, SerialExecutor)
    assert again.reused == {0, 1, 2, 3}
    assert pl.read_csv(tmp_path / "out" / "results.csv").equals(fresh)
    for res, words in ((first, {True: "done", False: "infeasible"}),
                       (again, {True: "reused", False: "reused, infeasible"})):
        text = format_summary(res)
        lines = text.splitlines()
        status_at = lines[2].index("status")
        statuses = {int(r["point"]): lines[4 + k][status_at:].split("  ")[0]
                    for k, r in enumerate(sorted(res.rows, key=lambda r: r["rank"]))}
        assert statuses == {i: words[f] for i, f in feasible.items()}, text
    assert "4 reused from an earlier run (2 of them infeasible)" in format_summary(again)
    assert "reused" not in fresh_summary.split("\n", 4)[4].split("finished")[0]


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """A synthetic workload needs one arrival law: the point with neither fails at load time,
    after the up-front checks; the others run."""
    p = tmp_path / "spec.yaml"
    p.write_text("""base: {input_tokens: 512, output_tokens: 16, request_count: 40}
axes:
  request_rate: [20.0, null]
""")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor)
    rows = res.rows
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert "exactly one of --request-rate" in rows[1]["error"]
    assert res.failed == 1 and rows[1]["rank"] is None
    failed = json.loads((tmp_path / "out" / "points" /
                         f"{rows[1]['config_hash']}.failed.json").read_text())
    assert failed["error"] == rows[1]["error"]
    frame = pl.read_csv(tmp_path / "out" / "results.csv")
    assert frame["status"].to_list() == ["ok", "failed"]


def test_a_point_that_strands_requests_is_infeasible_unless_the_spec_says(tmp_path: Path) -> None:
    """170 blocks strand a preempted request (the CLI exits 1 on that run): its latencies cover
    only the requests that finished, so it cannot be the best point, whatever its p90 TTFT."""
    tiny = str(ROOT / "traces" / "mooncake_tiny.jsonl")
    body = f"""base: {{trace: {tiny}}}
axes:
  blocks: {{path: extra_engine_args.engine.num_gpu_blocks, values: [170, 100000]}}
objectives: {{rank: p90_ttft_ms}}
"""
    p = tmp_path / "spec.yaml"
    p.write_text(body)
    rows = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor).rows
    stuck, fine = rows
    assert stuck["status"] == "ok" and stuck["stranded_requests"] > 0
    assert stuck["feasible"] is False and stuck["penalty"] is None
    assert "stranded_requests" in stuck["violations"] and "could not finish" in stuck["violations"]
    assert fine["stranded_requests"] == 0 and fine["feasible"] is True and fine["rank"] == 1
    # A spec that constrains the count itself is obeyed instead.
    p.write_text(body + "constraints: {stranded_requests: {max: 1000}}\n")
    rows = run_sweep(load_spec(str(p)), str(tmp_path / "out2"), SerialExecutor).rows
    assert rows[0]["feasible"] is True and rows[0]["violations"] == ""


def test_local_pool_gives_the_serial_table_and_parses_once_per_worker(serial_run,
                                                                       tmp_path: Path) -> None:
    spec, res, _ = serial_run
    outcomes = []
    pool = LocalPoolExecutor(2)
    real_poll = pool.poll_outcome

    def spy(timeout_s):
        o = real_poll(timeout_s)
        if o is not None:
            outcomes.append(o)
        return o

    pool.poll_outcome = spy  # type: ignore[method-assign]
    local = run_sweep(load_spec(small_spec(tmp_path)), str(tmp_path / "out"), lambda: pool)

    def table(rows):
        return [{k: v for k, v in r.items() if k not in WALL_COLUMNS and k != "command"}
                for r in rows]

    assert table(local.rows) == table(res.rows)
    per_worker: dict[str, int] = {}
    for o in outcomes:
        per_worker[o.worker] = max(per_worker.get(o.worker, 0), o.trace_parses)
    assert set(per_worker.values()) == {1}  # one parse per worker process, not per point
    assert sum(1 for o in outcomes) == 4


def test_keep_html_writes_each_points_report(tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(f"base: {{trace: {ROOT / 'traces' / 'mooncake_tiny.jsonl'}}}\n"
                 "axes: {num_workers: [1, 2]}\n")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor, keep_html=True)
    for r in res.rows:
        assert (tmp_path / "out" / "points" / f"{r['config_hash']}.html").read_text().startswith(
            "<!DOCTYPE html>")


def _sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from dynosim.cli import main; "
            "sys.exit(main(sys.argv[1:]))", "sweep", *args]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_cleanly_and_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {{trace: {PREFIX}, extra_engine_args: {json.dumps(TIMING)}}}\n"
                    "axes: {seed: {range: {start: 0, stop: 11, step: 1}}}\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(_sweep_cmd(str(spec), "--out", str(out), "--jobs", "1",
                                       "--no-html"), cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("[1/12]"):
            break
    os.killpg(proc.pid, sig)  # the whole group, as a terminal's Ctrl-C does
    stdout, stderr = proc.communicate(timeout=60)
    # 130 for Ctrl-C, 143 for SIGTERM, as a single run's (Slurm and systemd read 128 + 15)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), stderr
    assert "rerun the same command to resume" in stderr
    assert ("terminated (SIGTERM)" in stderr) == (sig == signal.SIGTERM)
    frame = pl.read_csv(out / "results.csv")
    done = frame.filter(pl.col("status") == "ok").height
    assert 1 <= done < 12 and frame.height == 12
    assert set(frame["status"].to_list()) <= {"ok", "pending"}
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no temp or staged files
    again = subprocess.run(_sweep_cmd(str(spec), "--out", str(out), "--jobs", "1",
                                      "--no-html"), cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{done} reused from an earlier run" in again.stdout
    assert pl.read_csv(out / "results.csv")["status"].to_list() == ["ok"] * 12


def test_main_cli_has_no_prefix_matching(tmp_path: Path) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        cli_main([str(ROOT / "traces" / "mooncake_tiny.jsonl"), "--out", str(tmp_path)])
    assert e.value.code == 2 and "unrecognized arguments: --out" in err.getvalue()


def test_sweep_cli_a_broken_trace_writes_nothing(tmp_path: Path) -> None:
    """A broken trace (every point reads it) fails the sweep before anything runs, as a bad
    spec does: exit 2, one line naming the trace's file and line, no output directory
    (it failed every point, one by one, and wrote their failures)."""
    trace = tmp_path / "t.jsonl"
    good = (ROOT / "traces" / "mooncake_tiny.jsonl").read_text().splitlines()
    trace.write_text("\n".join(good[:3] + ['{"timestamp": 5, "input_length": ', *good[4:]]))
    spec = tmp_path / "s.yaml"
    spec.write_text(f"base: {{trace: {trace}}}\naxes: {{num_workers: [1, 2]}}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    done = subprocess.run(_sweep_cmd(str(spec), "--out", str(tmp_path / "o"), "--executor",
                                     "serial"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"dynosim-tui sweep: error: {trace}:4: invalid JSON"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_sweep_cli_banner_comes_with_the_start_and_a_finished_sweep_needs_no_executor(
        tmp_path: Path) -> None:
    """The banner is written once the executor is up; a rerun with every point on disk makes
    none, so it needs no Ray cluster (this address answers nothing)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(f"base: {{trace: {ROOT / 'traces' / 'mooncake_tiny.jsonl'}}}\n"
                    "axes: {num_workers: [1, 2]}\n")
    out = str(tmp_path / "o")
    first = subprocess.run(_sweep_cmd(str(spec), "--out", out, "--executor", "serial",
                                      "--no-html"), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines()[0] == (
        f"sweep 's': 2 points, executor serial, results in {out}")
    again = subprocess.run(_sweep_cmd(str(spec), "--out", out, "--executor", "ray",
                                      "--ray-address", "127.0.0.1:9", "--no-html"),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        f"sweep 's': 2 points, executor ray, results in {out}",
        "2 of 2 points reused from an earlier run"]


def test_sweep_cli_bad_spec_exits_2_with_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("base: {}\naxes: {seed: [1]}\nconstrains: {}\n")
    out = subprocess.run(_sweep_cmd(str(spec), "--out", str(tmp_path / "o")),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"dynosim-tui sweep: error: {spec}:3: field 'constrains': unknown top-level key "
        "'constrains'; valid: name, base, axes, combine, constraints, objectives, "
        "search, capacity")
    assert not (tmp_path / "o").exists()  # nothing written


def _grid_order(size: int, slots: int, cheaper_first: bool) -> list[int]:
    """The order a grid hands out points on `slots` workers when the point with the lower
    (cheaper_first) or the higher index of those running finishes first."""
    g, running, order = GridStrategy(size), [], []
    while True:
        new = g.ask(slots - len(running))
        if not new and not running:
            return order
        running += new
        order += new
        done = min(running) if cheaper_first else max(running)
        running.remove(done)
        g.tell(done, None, False)


def test_grid_runs_the_costlier_end_first_beside_others() -> None:
    # one slot: grid order
    assert _grid_order(6, 1, True) == [0, 1, 2, 3, 4, 5]
    # two slots: both ends first; index 0 finishing first marks the high end as the costly
    # side, so the rest follow from there down (the cheapest points fill the tail)
    assert _grid_order(6, 2, True) == [0, 5, 4, 3, 2, 1]
    assert _grid_order(6, 2, False) == [0, 5, 1, 2, 3, 4]
    assert sorted(_grid_order(31, 3, True)) == list(range(31))  # each point once
    # an end taken from disk gives no cost signal: grid order for the rest
    g = GridStrategy(5)
    assert g.ask(1) == [0] and g.ask(1) == [4]
    g.tell(0, None, True)
    assert g.ask(3) == [1, 2, 3]


def test_a_worker_freezes_its_parsed_trace_out_of_the_collectors_scans() -> None:
    import gc

    from dynosim.replay import RunOptions
    from dynosim.sweep.evaluate import WorkloadCache

    opts = RunOptions(trace=str(ROOT / "traces" / "mooncake_tiny.jsonl"))
    plain, frozen = WorkloadCache(), WorkloadCache(freeze=True)
    try:
        plain.base(opts)
        assert gc.get_freeze_count() == 0
        wl = frozen.base(opts)
        assert gc.get_freeze_count() > 0 and frozen.base(opts) is wl and frozen.parses == 1
        assert len(wl.arrival_ms) == len(plain.base(opts).arrival_ms) == 16
    finally:
        gc.unfreeze()
