"""The output plan as the live view uses it (start-up check, each export) and the staging rules
shared by both front ends (tests/cli/test_cli_edges.py drives the headless CLI)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dynosim.outputs.plan import plan_live_outputs, plan_outputs
from dynosim.outputs.writers import OutputError, StagedFiles, remove_stale_staging, stream_target
from dynosim.replay import RunOptions, build_replay
from helpers import TINY
from tui.export import default_export_dir, export_report


def test_live_view_start_up_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"^f/r\.json: .*/f is not a directory$"):
        plan_live_outputs("f/r.json", None, [], base_dir=str(tmp_path))
    with pytest.raises(OutputError, match="is the input trace of this run"):
        plan_live_outputs(None, TINY, [("input trace", TINY)], base_dir=str(tmp_path))
    with pytest.raises(OutputError, match="is not a directory"):
        plan_live_outputs(None, None, [], base_dir=str(tmp_path / "f"))
    plan_live_outputs(str(tmp_path / "r.json"), None, [], base_dir=str(tmp_path))
    assert os.listdir(tmp_path) == ["f"]  # checking writes nothing


def test_live_export_is_planned_like_a_headless_one(tmp_path: Path) -> None:
    replay = build_replay(RunOptions(trace=TINY))
    replay.run_to_end()
    report = replay.report()
    first = default_export_dir(str(tmp_path))
    written = export_report(report, first, report_json=str(tmp_path / "r.json"))
    assert sorted(os.listdir(first)) == ["report.html", "report.json", "requests.jsonl",
                                         "requests.parquet", "summary.txt",
                                         "worker_samples.parquet"]
    assert written.paths["--report-json"] == str(tmp_path / "r.json")
    (Path(first) / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not from a dynosim export"):
        export_report(report, first)
    with pytest.raises(OutputError, match="is the output of both"):
        export_report(report, str(tmp_path / "e2"), report_json=str(tmp_path / "e2/report.json"))
    assert not (tmp_path / "e2").exists()


def test_stream_targets() -> None:
    assert stream_target("/dev/null") == (True, None)
    assert stream_target("/nonexistent/x")[0] is False
    assert stream_target(TINY) == (False, None)


def test_only_old_leftovers_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead_old = tmp_path / ".r.json.dynosim-999999999-1.tmp"
    dead_young = tmp_path / ".r.json.dynosim-999999999-2.tmp"
    mine = tmp_path / f".r.json.dynosim-{os.getpid()}-3.tmp"
    other = tmp_path / ".r.json.tmp"  # not ours: never touched
    for p in (dead_old, dead_young, mine, other):
        p.write_text("x")
    old = time.time() - 3600
    for p in (dead_old, mine, other):
        os.utime(p, (old, old))
    assert remove_stale_staging(tmp_path) == [dead_old.name]
    assert sorted(os.listdir(tmp_path)) == sorted([dead_young.name, mine.name, other.name])


def test_a_failed_set_removes_the_folders_it_made(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "r.json"
    with pytest.raises(RuntimeError):
        with StagedFiles() as staged:
            with staged.open(target) as fh:
                fh.write(b"{}")
            raise RuntimeError("later failure")
    assert os.listdir(tmp_path) == []


def test_plan_names_the_default_report_only_without_outputs(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plan_outputs(default_json=True)
    assert plan.report_json is not None and plan.report_json.exclusive
    assert plan_outputs(report_jsonl="x.jsonl", default_json=True).report_json is None
    assert plan_outputs(export_dir="out", default_json=True).report_json is None
