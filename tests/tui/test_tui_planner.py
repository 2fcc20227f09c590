"""The live view with a real planner in the loop: the planner panel appears, `d` runs to the
next planner tick and pauses there, scale events reach the panel and the plots' markers."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
from pathlib import Path

import pytest

from helpers import SYNTH, aio
from dynosim.cli import main
from dynosim.replay import RunOptions, build_replay
from tui.app import DynosimApp
from tui.main_screen import ExportSettings

# Easy "load"-free target with a 10 s tick: scales on queue/KV pressure, no perf model needed.
PLANNER = json.dumps({"mode": "agg", "optimization_target": "latency",
                      "load_adjustment_interval_seconds": 10})


def make(tmp_path: Path) -> DynosimApp:
    replay = build_replay(RunOptions(trace=SYNTH, num_workers=1, planner_config=PLANNER))
    return DynosimApp(replay, export=ExportSettings(base_dir=str(tmp_path)))


@pytest.mark.slow
@aio
async def test_planner_panel_and_next_decision(tmp_path: Path) -> None:
    app = make(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        d = app.driver
        assert app.main_screen.planner_panel is not None
        view = d.planner
        assert view is not None and view.sla_ttft_ms == 500.0
        await pilot.press("d")
        await pilot.pause()
        assert not d.running
        assert d.replay.planner.total_ticks == 1
        assert d.replay.sim.now == 10_000.0  # paused at the first tick, 10 s
        for _ in range(40):  # later ticks: a latency target scales up under this load
            await pilot.press("d")
        await pilot.pause()
        assert d.replay.planner.total_ticks >= 30
        events = view.scale_events
        assert events and events[0].t_ms % 10_000.0 == 0.0
        # each row explains itself with the snapshot of the decision that made it
        first = next(dec for dec in d.replay.decisions if dec.events)
        assert events[0].snapshot is first.snapshot and first.snapshot is not None
        assert events[0].t_ms == first.snapshot.timestamp_s * 1000.0
        assert view.explain(0).startswith(
            f"t={events[0].t_ms / 1000:.0f}s agg: {events[0].from_count} -> ")
        # the panel shows the same rows, and a highlighted row its explanation
        panel = app.main_screen.planner_panel
        assert panel is not None and panel.display
        table = panel.query_one("#events")
        assert table.row_count == len(events)  # type: ignore[attr-defined]
        assert "SLA" in str(app.main_screen.query_one("#ttft").border_subtitle)
        await pilot.pause()
        assert str(panel.query_one("#why").render()) == view.explain(0)


def _log_rows(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line in f]
    rows[0].pop("generated_at_utc")  # the wall clock of the writing
    rows[0].pop("html_report_path")
    return rows


@aio
async def test_export_writes_what_a_headless_export_writes(tmp_path: Path) -> None:
    """The TUI's `e` and a headless `--export` write the same files, the planner's page and
    log in its report_output_dir included, with the same planner log."""
    def config(name: str) -> str:
        return json.dumps({"mode": "agg", "optimization_target": "latency",
                           "load_adjustment_interval_seconds": 1,
                           "report_output_dir": str(tmp_path / name),
                           "report_filename": "plan"})

    with contextlib.redirect_stdout(io.StringIO()):
        assert main([SYNTH, "--num-workers", "1", "--planner-config", config("cli_planner"),
                     "--max-sim-time-seconds", "30", "--export",
                     str(tmp_path / "cli_export")]) == 0
    replay = build_replay(RunOptions(trace=SYNTH, num_workers=1, max_sim_time_seconds=30,
                                     planner_config=config("tui_planner")))
    live = tmp_path / "live"
    live.mkdir()
    cli_export = tmp_path / "cli_export"
    want = sorted(p.name for p in cli_export.iterdir())

    def export_done() -> bool:  # every file in place, none still a temporary being written
        dirs = list(live.iterdir())
        return (len(dirs) == 1 and (tmp_path / "tui_planner").exists()
                and sorted(p.name for p in dirs[0].iterdir()) == want
                and len(os.listdir(tmp_path / "tui_planner")) == 2)

    app = DynosimApp(replay, export=ExportSettings(base_dir=str(live)))
    async with app.run_test(size=(120, 40)) as pilot:
        replay.run_to_end()
        await pilot.press("e")
        for _ in range(500):
            if export_done():
                break
            await pilot.pause(0.02)
    [tui_export] = list(live.iterdir())
    assert sorted(p.name for p in tui_export.iterdir()) == sorted(
        p.name for p in cli_export.iterdir())
    assert "planner.log.jsonl.gz" in {p.name for p in tui_export.iterdir()}
    names = ["plan.html", "plan.log.jsonl.gz"]
    assert sorted(os.listdir(tmp_path / "tui_planner")) == names
    assert sorted(os.listdir(tmp_path / "cli_planner")) == names
    tui_log = _log_rows(tmp_path / "tui_planner" / "plan.log.jsonl.gz")
    assert len(tui_log) > 20  # the metadata and a snapshot per load tick
    assert tui_log == _log_rows(tmp_path / "cli_planner" / "plan.log.jsonl.gz")
    assert ((tmp_path / "tui_planner" / "plan.html").read_text()
            == (tui_export / "report.html").read_text())
