"""The sweep's event hook and controls (issue 15 item 4): what run_sweep tells an observer,
and pause / skip / cancel / stop from another thread; the headless progress built on them."""
from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import dynosim.sweep.evaluate as evaluate_mod
from helpers import TINY, long_trace
from dynosim.sweep.events import PointFinished, PointProgress, PointQueued, PointStarted, \
    SweepControl, SweepEnded, SweepStarted, SweepState, fmt_seconds, status_label
from dynosim.sweep.executors import LocalPoolExecutor, SerialExecutor
from dynosim.sweep.progress import HeadlessProgress
from dynosim.sweep.runner import run_sweep
from dynosim.sweep.spec import spec_from_mapping


def tiny_spec(n: int = 3, **base: Any) -> Any:
    return spec_from_mapping({"base": {"trace": TINY, **base},
                              "axes": {"seed": list(range(n))},
                              "constraints": {"p90_ttft_ms": 1e9}}, "test", "t")


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_events_in_order_with_ranked_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr(evaluate_mod, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(evaluate_mod, "CHUNK_STEPS", 20)
    events: list[Any] = []
    res = run_sweep(tiny_spec(), str(tmp_path), SerialExecutor, observer=events.append)
    assert isinstance(events[0], SweepStarted) and events[0].todo == [0, 1, 2]
    assert kinds(events[1:4]) == ["PointQueued"] * 3
    assert isinstance(events[-1], SweepEnded) and events[-1].result is res
    per_point = [e for e in events[4:-1] if e.index == 1]
    assert isinstance(per_point[0], PointStarted)
    progress = [e for e in per_point if isinstance(e, PointProgress)]
    assert progress and progress[-1].total == 16
    assert [p.sim_ms for p in progress] == sorted(p.sim_ms for p in progress)
    assert isinstance(per_point[-1], PointFinished) and per_point[-1].status == "ok"
    # the rows handed out with a finish hold every point finished so far, ranked
    first = next(e for e in events if isinstance(e, PointFinished))
    rows = first.table().rows
    assert [r["status"] for r in rows] == ["ok", "pending", "pending"]
    assert first.table().ranked == [0]
    last = [e for e in events if isinstance(e, PointFinished)][-1].table()
    assert last.ranked == res.ranked and last.pareto == res.pareto


def test_rerun_reports_reused_points_and_runs_nothing(tmp_path: Path) -> None:
    run_sweep(tiny_spec(2), str(tmp_path), SerialExecutor)
    events: list[Any] = []
    run_sweep(tiny_spec(2), str(tmp_path), SerialExecutor, observer=events.append)
    assert kinds(events) == ["SweepStarted", "SweepEnded"]
    assert events[0].reused == [0, 1] and events[0].todo == []
    state = SweepState()
    for e in events:
        state.apply(e)
    assert state.count("reused") == 2


def test_headless_lines_name_infeasible_points_and_a_rerun_counts_reused(tmp_path: Path
                                                                         ) -> None:
    spec = spec_from_mapping({"base": {"trace": TINY}, "axes": {"num_workers": [1, 4]},
                              "constraints": {"p90_ttft_ms": 1500}}, "test", "w")
    lines = []
    for _ in range(2):
        stream = io.StringIO()
        run_sweep(spec, str(tmp_path), SerialExecutor,
                  observer=HeadlessProgress(str, stream=stream, bar=False))
        lines.append(stream.getvalue().splitlines())
    first, rerun = lines
    assert first[0].startswith("[1/2] 0: infeasible: p90_ttft_ms 2521>1500 (+68%) (")
    assert first[1].startswith("[2/2] 1: ok (")
    assert rerun == ["2 of 2 points reused from an earlier run (1 infeasible)"]


def test_a_reused_infeasible_point_says_both(tmp_path: Path) -> None:
    spec = spec_from_mapping({"base": {"trace": TINY}, "axes": {"num_workers": [1, 4]},
                              "constraints": {"p90_ttft_ms": 1500}}, "test", "w")
    run_sweep(spec, str(tmp_path), SerialExecutor)
    state = SweepState()
    run_sweep(spec, str(tmp_path), SerialExecutor, observer=state.apply)
    p0, p1 = state.points[0], state.points[1]
    assert (p0.status, p0.reused, p1.status, p1.reused) == ("infeasible", True, "reused", True)
    assert status_label(p0.status, p0.reused, p0.error) == (
        "reused, infeasible: p90_ttft_ms 2521>1500 (+68%)")
    assert status_label(p1.status, p1.reused, p1.error) == "reused"
    assert state.reused_count() == 2 and state.count("infeasible") == 1


def test_skip_and_cancel_from_the_observer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr(evaluate_mod, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(evaluate_mod, "CHUNK_STEPS", 20)
    control = SweepControl()
    events: list[Any] = []

    def observer(ev: Any) -> None:
        events.append(ev)
        if isinstance(ev, PointQueued) and ev.index == 2:
            control.skip(2)  # queued: never dispatched
        if isinstance(ev, PointProgress) and ev.index == 0:
            control.skip(0)  # running: cancelled at its next progress report

    res = run_sweep(tiny_spec(), str(tmp_path), SerialExecutor, observer=observer,
                    control=control)
    finished = {e.index: e.status for e in events if isinstance(e, PointFinished)}
    assert finished == {0: "cancelled", 1: "ok", 2: "skipped"}
    assert [r["status"] for r in res.rows] == ["pending", "ok", "pending"]
    assert res.cancelled == 2 and res.failed == 0 and not res.interrupted
    assert not list((tmp_path / "points").glob("*.failed.json"))  # nothing stored for them
    again = run_sweep(tiny_spec(), str(tmp_path), SerialExecutor)
    assert again.skipped == 1 and again.ran == 2  # a rerun runs what was skipped


def test_pause_holds_dispatch_and_stop_ends_the_sweep(tmp_path: Path) -> None:
    control = SweepControl()
    control.pause()
    events: list[Any] = []
    t = threading.Thread(target=lambda: events.append(
        run_sweep(tiny_spec(), str(tmp_path), SerialExecutor, observer=events.append,
                  control=control)))
    t.start()
    t.join(0.5)
    assert t.is_alive() and not any(isinstance(e, PointStarted) for e in events)
    control.stop()
    t.join(10)
    assert not t.is_alive()
    res = events[-1]
    assert res.interrupted and res.ran == 0
    assert (tmp_path / "results.csv").exists()  # the tables are written either way


def test_pool_workers_report_progress_and_a_cancel_stops_a_running_point(tmp_path: Path
                                                                         ) -> None:
    # seconds of work: long enough for progress reports and a cancel that lands mid-run
    spec = spec_from_mapping({"base": {"trace": long_trace(tmp_path), "num_workers": 1},
                              "axes": {"seed": [0]}}, "test", "t")
    control = SweepControl()
    events: list[Any] = []

    def observer(ev: Any) -> None:
        events.append(ev)
        if isinstance(ev, PointProgress):
            control.skip(ev.index)

    res = run_sweep(spec, str(tmp_path), lambda: LocalPoolExecutor(1), observer=observer,
                    control=control)
    started = [e for e in events if isinstance(e, PointStarted)]
    assert started and started[0].worker.split(":")[1].isdigit()
    progress = [e for e in events if isinstance(e, PointProgress)]
    assert progress and 0 < progress[0].sim_ms and progress[0].total == 8 * 3993
    assert [e.status for e in events if isinstance(e, PointFinished)] == ["cancelled"]
    assert res.rows[0]["status"] == "pending"


def test_state_eta_and_headless_progress(tmp_path: Path) -> None:
    now = [100.0]
    stream = io.StringIO()
    prog = HeadlessProgress(lambda i: f"seed={i}", stream=stream, bar=True,
                            clock=lambda: now[0])

    def observer(ev: Any) -> None:
        if isinstance(ev, PointFinished):
            now[0] += 4.0
        prog(ev)
        if isinstance(ev, PointFinished) and ev.index == 0:
            # one of three finished after 4 s: two left at that rate
            assert prog.state.eta_s() == pytest.approx(8.0)
            assert "1/3 points" in prog.render() and "eta 0:08" in prog.render()

    run_sweep(tiny_spec(), str(tmp_path), SerialExecutor, observer=observer)
    text = stream.getvalue()
    assert "[1/3] seed=0: ok (" in text and "[3/3] seed=2: ok (" in text
    assert text.endswith("\r\x1b[K")  # the bar is cleared at the end
    assert fmt_seconds(3725) == "1:02:05" and fmt_seconds(None) == "--"


def test_sweep_off_a_terminal_runs_headless(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(f"base: {{trace: {TINY}}}\n"
                                        "axes: {num_workers: [1, 2, 3, 4]}\n"
                                        "constraints: {p90_ttft_ms: 1500}\n")
    out = subprocess.run([sys.executable, "-m", "dynosim.cli", "sweep", "spec.yaml", "--out",
                          "out", "--no-html"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    # one line per point, numbered in completion order (the pool's two jobs race)
    assert [line.split("] ")[0] for line in lines[1:]] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert sorted(line.split("] ")[1].split(" (")[0] for line in lines[1:]) == [
        "num_workers=1: infeasible: p90_ttft_ms 2521>1500", "num_workers=2: infeasible: "
        "p90_ttft_ms 2011>1500", "num_workers=3: ok", "num_workers=4: ok"]
    assert "\x1b" not in out.stderr  # no bar
    assert "best feasible point: #3" in out.stdout


@pytest.mark.parametrize("executor", ["serial", "pool"])
def test_a_point_over_the_timeout_is_recorded_as_failed(tmp_path: Path, executor: str,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    # --point-timeout: the synthetic trace played 8 times (seconds of work) is cancelled and recorded
    # as a timed-out failure (a rerun retries it, as it retries every failure; the finished
    # point is reused); the 16-request trace (milliseconds) finishes
    monkeypatch.setattr(evaluate_mod, "CHUNK_STEPS", 20)  # serial: notes often enough
    spec = spec_from_mapping({"base": {"trace": TINY, "num_workers": 1},
                              "axes": {"t": {"path": "trace", "values": [long_trace(tmp_path), TINY]}}},
                             "test", "t")
    make = SerialExecutor if executor == "serial" else (lambda: LocalPoolExecutor(1))
    res = run_sweep(spec, str(tmp_path), make, point_timeout_s=0.3)
    assert [r["status"] for r in res.rows] == ["failed", "ok"]
    assert res.rows[0]["error"] == "timed out after 0.3 s (--point-timeout)"
    assert res.failed == 1 and res.cancelled == 0
    again = run_sweep(spec, str(tmp_path), make, point_timeout_s=0.3)
    assert again.ran == 1 and again.skipped == 1
    assert [r["status"] for r in again.rows] == ["failed", "ok"]
