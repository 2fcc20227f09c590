"""The live sweep view (issue 15 item 4) driven through Textual's Pilot: statuses as points
run, pause / skip / sort / frontier keys, Enter into the replay view of a finished point (the
same run, re-simulated) and Esc back, quitting mid-sweep; and its snapshots."""
from __future__ import annotations

import gc
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from helpers import ROOT, TINY, aio
from dynosim.sweep.cli import LiveSweep
from dynosim.sweep.executors import SerialExecutor
from dynosim.sweep.runner import build_points, run_sweep
from dynosim.sweep.spec import spec_from_mapping
from tui.sweep_app import SweepApp
from tui.sweep_chart import chart_text, panels, tick_labels, y_range
from tui.sweep_point import PointScreen
from tui.sweep_screen import SweepScreen

PREFIX = str(ROOT / "traces" / "prefix_heavy.jsonl")
TIMING = {"timing_model": {"type": "fixed", "prefill_ms": 40, "decode_ms": 5}}
SIZE = (120, 40)


def one_axis_job(out: str) -> LiveSweep:
    # TINY at 1..4 workers: 1 and 2 miss the 1500 ms p90 TTFT bound; ranked by output
    # throughput, 4 workers first
    spec = spec_from_mapping({"base": {"trace": TINY}, "axes": {"num_workers": [1, 2, 3, 4]},
                              "constraints": {"p90_ttft_ms": 1500}}, "test", "workers")
    return LiveSweep(spec, build_points(spec), out, SerialExecutor, force=False,
                     keep_html=False, html=True, executor_name="serial")


def two_axis_job(out: str) -> LiveSweep:
    spec = spec_from_mapping({
        "base": {"trace": PREFIX, "router_mode": "kv_router", "extra_engine_args": TIMING},
        "axes": {"num_workers": [1, 2, 3, 4],
                 "weight": {"path": "router_config.overlap_score_weight", "values": [0.0, 2.0]}},
        "constraints": {"p90_ttft_ms": 70},
        "objectives": {"rank": "output_tok_s_per_gpu", "pareto": ["gpus", "p90_ttft_ms"]}},
        "test", "router")
    return LiveSweep(spec, build_points(spec), out, SerialExecutor, force=False,
                     keep_html=False, html=True, executor_name="serial")


async def wait_for(cond: Any, pilot: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.05)


def statuses(screen: SweepScreen) -> list[str]:
    return [screen.state.points[i].status for i in sorted(screen.state.points)]


def column(screen: SweepScreen, name: str) -> list[str]:
    t = screen.table
    return [str(t.get_cell_at((r, screen.columns.index(name)))) for r in range(t.row_count)]


def finished(screen: SweepScreen) -> bool:
    return screen.state.result is not None and screen.ended_shown


@aio
async def test_statuses_ranks_and_frontier_as_points_land(tmp_path: Path) -> None:
    app = SweepApp(one_axis_job(str(tmp_path / "out")), start_paused=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.sweep_screen
        await wait_for(lambda: screen.state.points and screen.table.row_count == 4, pilot)
        await pilot.pause(0.3)
        assert statuses(screen) == ["queued"] * 4  # paused: nothing dispatched
        assert "PAUSED" in screen.header_text().plain
        assert not (tmp_path / "out" / "results.csv").exists()
        await pilot.press("p")
        await wait_for(lambda: finished(screen), pilot)
        await pilot.pause(0.3)
        assert statuses(screen) == ["infeasible", "infeasible", "done", "done"]
        assert column(screen, "rank") == ["4", "3", "2", "1"]
        assert column(screen, "status")[0].startswith("infeasible: p90_ttft_ms 2521>1500")
        assert [c == "★" for c in column(screen, "★")] == [False, False, True, True]
        header = screen.header_text().plain
        assert "FINISHED" in header and "4/4 finished · 2 infeasible" in header
        assert screen.html_path == str(tmp_path / "out" / "sweep.html")
        assert Path(screen.html_path).read_text().startswith("<!DOCTYPE html>")
        frame = pl.read_csv(tmp_path / "out" / "results.csv")
        assert frame["status"].to_list() == ["ok"] * 4


@aio
async def test_a_rerun_shows_reused_points_infeasible_ones_too(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    run_sweep(one_axis_job(out).spec, out, SerialExecutor)
    app = SweepApp(one_axis_job(out))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.sweep_screen
        await wait_for(lambda: finished(screen), pilot)
        await pilot.pause(0.3)
        status = column(screen, "status")
        assert status[0].startswith("reused, infeasible: p90_ttft_ms 2521>15")
        assert status[1].startswith("reused, infeasible: p90_ttft_ms 2011>15")
        assert status[2:] == ["reused", "reused"]
        assert [c == "★" for c in column(screen, "★")] == [False, False, True, True]
        assert column(screen, "rank") == ["4", "3", "2", "1"]
        header = screen.header_text().plain
        assert "4/4 finished · 2 infeasible" in header and "4 reused" in header


@aio
async def test_short_metric_headers_and_a_hint_when_columns_are_out_of_sight(tmp_path: Path
                                                                             ) -> None:
    out = str(tmp_path / "out")
    run_sweep(one_axis_job(out).spec, out, SerialExecutor)
    for width, hint in ((80, True), (260, False)):
        app = SweepApp(one_axis_job(out))
        async with app.run_test(size=(width, 30)) as pilot:
            screen = app.sweep_screen
            await wait_for(lambda: finished(screen), pilot)
            await pilot.pause(0.3)
            labels = [c.label.plain for c in screen.table.columns.values()]
            assert labels == ["#", "★", "num_workers", "status", "rank", "out_tok/s",
                              "out_tok/s/gpu", "out_tok/s/user", "p90_ttft_ms", "gpus"]
            assert screen.columns[5] == "output_throughput_tok_s"  # keys keep the names
            assert ("→ more columns" in str(screen.table.border_subtitle)) == hint


@aio
async def test_skip_a_queued_point_sort_and_frontier_only(tmp_path: Path) -> None:
    app = SweepApp(one_axis_job(str(tmp_path / "out")), start_paused=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.sweep_screen
        await wait_for(lambda: screen.table.row_count == 4, pilot)
        await pilot.press("down", "x")  # point #1 (2 workers)
        await wait_for(lambda: screen.state.points[1].status == "skipped", pilot)
        await pilot.press("p")
        await wait_for(lambda: finished(screen), pilot)
        await pilot.pause(0.3)
        assert statuses(screen) == ["infeasible", "skipped", "done", "done"]
        assert [r["status"] for r in screen.state.result.rows] == ["ok", "pending", "ok", "ok"]
        # sort by p90 TTFT: the cursor's column, ascending, then descending, then grid order
        col = screen.columns.index("p90_ttft_ms")
        screen.table.move_cursor(row=0, column=col)
        await pilot.press("s")
        assert column(screen, "#") == ["3", "2", "0", "1"]  # the unrun point last
        await pilot.press("s")
        assert column(screen, "#") == ["0", "2", "3", "1"]
        await pilot.press("s")
        assert column(screen, "#") == ["0", "1", "2", "3"]
        await pilot.press("f")
        assert column(screen, "#") == ["2", "3"]
        assert "frontier only" in screen.header_text().plain


@aio
async def test_enter_opens_the_point_in_the_replay_view_and_esc_returns(tmp_path: Path
                                                                        ) -> None:
    app = SweepApp(one_axis_job(str(tmp_path / "out")))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.sweep_screen
        await wait_for(lambda: finished(screen), pilot)
        await pilot.pause(0.3)
        row = screen.state.table.rows[2]
        screen.table.move_cursor(row=2, column=0)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, PointScreen), pilot)
        view = app.screen
        assert isinstance(view, PointScreen)
        assert view.driver.replay.options == screen.job.points[2].options
        view.seek(1e12)  # run it through: the same run the sweep measured
        await pilot.pause()
        assert view.driver.finished
        assert view.report().summary["p90_ttft_ms"] == row["p90_ttft_ms"]
        await wait_for(lambda: app.screen is not view, pilot)  # the finished dialog
        await pilot.press("escape")  # closes the dialog
        await pilot.pause()
        await pilot.press("space")
        await pilot.press("escape")
        await wait_for(lambda: app.screen is screen, pilot)
        await pilot.press("up", "up", "enter")  # an infeasible point opens too
        await wait_for(lambda: isinstance(app.screen, PointScreen), pilot)
        assert app.screen.driver.replay.options == screen.job.points[0].options
        await pilot.pause(0.2)
        await pilot.press("escape")
        await wait_for(lambda: app.screen is screen, pilot)


def test_closing_a_point_replay_leaves_no_coroutine_unawaited(tmp_path: Path) -> None:
    """Enter then Esc at once: the replay view's engine loop is started once and torn down
    cleanly ("coroutine 'MainScreen._pump' was never awaited" came from a second start that
    cancelled the first before it ran). Warnings are errors here; one raised in a finalizer
    reaches sys.unraisablehook, caught too."""
    unraisable: list[str] = []
    started: list[str] = []

    @aio
    async def drive() -> None:
        app = SweepApp(one_axis_job(str(tmp_path / "out")))
        async with app.run_test(size=SIZE) as pilot:
            screen = app.sweep_screen
            await wait_for(lambda: finished(screen), pilot)
            await pilot.pause(0.3)
            for row in (2, 3):
                screen.table.move_cursor(row=row, column=0)
                await pilot.press("enter")
                await wait_for(lambda: isinstance(app.screen, PointScreen), pilot)
                view = app.screen
                started.extend(w.name for w in view.workers if w.group == "engine")
                await pilot.press("escape")
                await wait_for(lambda: app.screen is screen, pilot)

    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            drive()
            gc.collect()
    finally:
        sys.unraisablehook = old_hook
    assert started == ["engine", "engine"]  # one engine loop per opened point
    assert unraisable == []


@aio
async def test_queued_points_do_not_open_and_quit_stops_mid_sweep(tmp_path: Path) -> None:
    app = SweepApp(one_axis_job(str(tmp_path / "out")), start_paused=True)
    notes: list[str] = []
    real = app.notify
    app.notify = lambda message, **kw: (notes.append(message), real(message, **kw))[1]  # type: ignore[method-assign,func-returns-value]
    async with app.run_test(size=SIZE) as pilot:
        screen = app.sweep_screen
        await wait_for(lambda: screen.table.row_count == 4, pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, SweepScreen)
        assert any("only a finished point opens" in n for n in notes)
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, pilot)
    res = screen.state.result
    assert res is not None and res.interrupted and res.ran == 0
    assert pl.read_csv(tmp_path / "out" / "results.csv")["status"].to_list() == ["pending"] * 4


@aio
async def test_a_failed_point_shows_its_error(tmp_path: Path) -> None:
    spec = spec_from_mapping({"base": {"input_tokens": 512, "output_tokens": 16,
                                       "request_count": 40},
                              "axes": {"request_rate": [20.0, None]}}, "test", "rates")
    job = LiveSweep(spec, build_points(spec), str(tmp_path / "out"), SerialExecutor,
                    force=False, keep_html=False, html=False, executor_name="serial")
    app = SweepApp(job)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.sweep_screen
        await wait_for(lambda: finished(screen), pilot)
        await pilot.pause(0.3)
        assert statuses(screen) == ["done", "failed"]
        assert column(screen, "status")[1].startswith("failed: --request-rate")
        assert "1 failed" in screen.header_text().plain
        await pilot.press("down", "enter")  # a failed point has no run to replay
        assert isinstance(app.screen, SweepScreen)


def test_the_pareto_chart_fits_its_axes_to_the_points(tmp_path: Path) -> None:
    """The scatter's y axis spans the points plus a margin, not 0..max (p90 TTFT 49-76 ms
    here: from 0 the frontier was squashed into the top third)."""
    job = two_axis_job(str(tmp_path / "out"))
    res = run_sweep(job.spec, job.out, SerialExecutor)
    (panel,) = panels(job.spec, res.rows, 20)
    lo, hi = min(panel.ys), max(panel.ys)
    y_lo, y_hi = y_range(panel)
    margin = (hi - lo) * 0.08
    assert (y_lo, y_hi) == pytest.approx((lo - margin, hi + margin))
    labels = [line.split("┤")[0].strip() for line in chart_text(50, 20, [panel]).splitlines()
              if "┤" in line]
    assert float(labels[-1]) == pytest.approx(y_lo, abs=0.5) and float(labels[-1]) > 40
    assert float(labels[0]) == pytest.approx(y_hi, abs=0.5)
    # a narrow range keeps its tick labels apart (fmt_value alone would print 1.5k thrice)
    assert tick_labels([1500.0, 1510.0, 1520.0]) == ["1.5k", "1.51k", "1.52k"]
    # a metric against a single axis still starts at 0 (read against its SLA line)
    one = one_axis_job(str(tmp_path / "one"))
    one_res = run_sweep(one.spec, one.out, SerialExecutor)
    assert y_range(panels(one.spec, one_res.rows, 20)[0])[0] == 0.0


# ---- snapshots (serial executor, a frozen clock: elapsed and ETA are fixed) -----------------
def frozen_app(job: LiveSweep, **kw: Any) -> SweepApp:
    return SweepApp(job, clock=lambda: 0.0, **kw)


def until_finished(pilot: Any) -> Any:
    async def run_before(pilot: Any) -> None:
        screen = pilot.app.sweep_screen
        end = time.monotonic() + 60
        while not finished(screen):
            assert time.monotonic() < end
            await pilot.pause(0.05)
        screen.refresh_view()
        # notify() only posts a message: let it land before clearing, or the toast appears
        # after the clear and covers the chart (seen on a clean clone)
        await pilot.pause(0.2)
        pilot.app.clear_notifications()
        await pilot.pause(0.3)
    return run_before


def test_snapshot_queued_80x24(snap_compare: Any, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def run_before(pilot: Any) -> None:
        await pilot.pause(0.5)

    assert snap_compare(frozen_app(one_axis_job("out"), start_paused=True),
                        terminal_size=(80, 24), run_before=run_before)


def test_snapshot_finished_1d_80x24(snap_compare: Any, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert snap_compare(frozen_app(one_axis_job("out")), terminal_size=(80, 24),
                        run_before=until_finished(None))


def test_snapshot_pareto_120x40(snap_compare: Any, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert snap_compare(frozen_app(two_axis_job("out")), terminal_size=(120, 40),
                        run_before=until_finished(None))
