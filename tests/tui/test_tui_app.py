"""The live view driven through Textual's Pilot: controls, export, end of trace, quitting, and
that the TUI's final numbers are the headless report's."""
from __future__ import annotations

import asyncio
import functools
import math
import json
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from textual import events
from textual.widgets._footer import FooterKey

from helpers import SYNTH, TINY, WALL_KEYS, aio
from dynosim.cli import main
from dynosim.replay import RunOptions, build_replay
from tui.app import DynosimApp
from tui.dialogs import ConfirmQuit, FinishedDialog, HelpScreen
from tui.footer import QuietFooter
from tui.main_screen import ExportSettings
from tui.pacing import MAX_SPEED
from tui.status_bar import StatusBar

EXPORT_FILES = {"report.json", "requests.jsonl", "requests.parquet", "summary.txt",
                "report.html", "worker_samples.parquet"}
SIZE = (100, 30)
def make_app(tmp_path: Path, trace: str = TINY, workers: int = 2, **kw: Any) -> DynosimApp:
    replay = build_replay(RunOptions(trace=trace, num_workers=workers))
    return DynosimApp(replay, export=ExportSettings(base_dir=str(tmp_path)), **kw)


def capture_notes(app: DynosimApp) -> list[str]:
    notes: list[str] = []
    real = app.notify

    def notify(message: str, **kw: Any) -> None:
        notes.append(message)
        real(message, **kw)

    app.notify = notify  # type: ignore[method-assign]
    return notes


async def wait_for(cond: Any, pilot: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await pilot.pause(0.02)


def exports(tmp_path: Path) -> list[Path]:
    return sorted(p for p in tmp_path.iterdir() if p.name.startswith("dynosim_export_"))


@aio
async def test_pause_resume_and_real_time(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        d = app.driver
        assert d.running and d.clock.speed == 1.0  # opens playing in real time
        t0, c0 = time.perf_counter(), d.clock_ms
        await pilot.pause(0.6)
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        # 1x: the simulated clock follows the wall clock (one UI tick of slack either way).
        assert d.clock_ms - c0 == pytest.approx(elapsed_ms, abs=120.0)
        await pilot.press("space")
        assert not d.running
        frozen = d.clock_ms
        await pilot.pause(0.2)
        assert d.clock_ms == frozen
        assert "PAUSED" in app.main_screen.query_one(StatusBar).render().plain
        await pilot.press("space")
        assert d.running


@aio
async def test_step_runs_exactly_one_instant(tmp_path: Path) -> None:
    app = make_app(tmp_path, paused=True)
    ref = build_replay(RunOptions(trace=TINY, num_workers=2)).sim
    async with app.run_test(size=SIZE) as pilot:
        sim = app.driver.sim
        for _ in range(5):
            await pilot.press("n")
            ref.step()
            assert sim.now == ref.now and sim.snapshot().passes == ref.snapshot().passes
            assert not app.driver.running
        assert app.driver.clock_ms == sim.now
        # Stepping while playing pauses first.
        await pilot.press("space", "n")
        assert not app.driver.running


@aio
async def test_next_decision_without_planner_only_notifies(tmp_path: Path) -> None:
    app = make_app(tmp_path, paused=True)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        passes, clock = app.driver.sim.snapshot().passes, app.driver.clock_ms
        await pilot.press("d")
        assert any("No planner" in n for n in notes)
        assert app.driver.sim.snapshot().passes == passes and app.driver.clock_ms == clock
        assert not app.driver.running
        assert not app.main_screen.query("PlannerPanel")  # not mounted: no planner


@aio
async def test_speed_keys(tmp_path: Path) -> None:
    app = make_app(tmp_path, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        clock = app.driver.clock
        status = app.main_screen.query_one(StatusBar)
        await pilot.press("plus")
        assert clock.speed == 10.0 and " 10x" in status.render().plain
        await pilot.press("plus", "plus", "minus")
        assert clock.speed == 100.0
        await pilot.press("m")
        assert clock.speed == MAX_SPEED and " max" in status.render().plain
        await pilot.press("minus")
        assert clock.speed == 10000.0
        await pilot.press("r")
        assert clock.speed == 1.0
        assert clock.paused  # speed keys never start or stop the run


@aio
async def test_key_presses_do_not_rebuild_the_footer(tmp_path: Path) -> None:
    # Textual announces "bindings may have changed" after every key; rebuilding the footer
    # then costs a full layout (tens of ms of replay at max speed). Ours rebuilds only when
    # what it shows changes.
    app = make_app(tmp_path, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.main_screen.query_one(QuietFooter)
        keys = {k.key for k in footer.query(FooterKey)}
        assert {"space", "n", "d", "r", "m", "e", "q"} <= keys
        rebuilds = 0
        real = footer.recompose

        async def recompose() -> None:
            nonlocal rebuilds
            rebuilds += 1
            await real()

        footer.recompose = recompose  # type: ignore[method-assign]
        await pilot.press("plus", "minus", "m", "r", "space", "space")
        await pilot.pause()
        assert rebuilds == 0 and {k.key for k in footer.query(FooterKey)} == keys
        app.main_screen.bindings_updated_signal.publish(app.main_screen)  # unchanged: no-op
        await pilot.pause()
        assert rebuilds == 0
        footer._shown = ()  # as if the bindings had changed since the last build
        app.main_screen.bindings_updated_signal.publish(app.main_screen)
        await pilot.pause()
        assert rebuilds == 1


@aio
async def test_keys_win_over_the_focused_table(tmp_path: Path) -> None:
    app = make_app(tmp_path, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is not None and app.focused.id == "workers"
        await pilot.press("down", "space")
        assert app.driver.running


@aio
async def test_export_of_the_run_so_far(tmp_path: Path) -> None:
    app = make_app(tmp_path, paused=True)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        app.driver.seek(4000.0)
        completed = app.driver.sim.completed
        await pilot.press("e")
        await wait_for(lambda: any("Exported" in n for n in notes), pilot)
        [out] = exports(tmp_path)
        assert {p.name for p in out.iterdir()} == EXPORT_FILES
        assert str(out) in notes[-1]
        report = json.loads((out / "report.json").read_text())
        assert report["completed_requests"] == completed
        assert report["dynosim"]["finished"] is False
        assert len((out / "requests.jsonl").read_text().splitlines()) == completed
        assert not app.driver.running  # was paused, stays paused


@aio
async def test_end_of_trace_pauses_and_offers_export(tmp_path: Path) -> None:
    app = make_app(tmp_path, speed=MAX_SPEED)
    notes = capture_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: isinstance(app.screen, FinishedDialog), pilot)
        assert app.driver.finished and app.driver.clock.paused
        await pilot.press("e")
        await wait_for(lambda: any("Exported" in n for n in notes), pilot)
        [out] = exports(tmp_path)
        assert json.loads((out / "report.json").read_text())["dynosim"]["finished"] is True
        await pilot.press("q")  # finished: no question asked
        await wait_for(lambda: not app.is_running, pilot)


@aio
async def test_quit_asks_while_unfinished(tmp_path: Path) -> None:
    app = make_app(tmp_path, paused=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "q")
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("n")
        assert app.is_running and not isinstance(app.screen, ConfirmQuit)
        await pilot.press("q", "y")
        await wait_for(lambda: not app.is_running, pilot)


@aio
async def test_final_numbers_equal_the_headless_report(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([TINY, "--num-workers", "2", "--headless", "--report-json", "h.json",
                 "--no-progress"]) == 0
    headless = json.loads((tmp_path / "h.json").read_text())
    app = make_app(tmp_path, speed=MAX_SPEED)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(lambda: app.driver.finished, pilot)
        tui = json.loads(json.dumps(app.main_screen.report().json_obj()))
    for obj in (headless, tui):
        for key in WALL_KEYS:
            obj.pop(key)
    assert tui == headless


def test_input_errors_surface_before_the_app_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import tui.launch

    opened: list[object] = []
    monkeypatch.setattr(tui.launch, "run_tui", lambda replay, **kw: opened.append(replay) or 0)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    missing = str(tmp_path / "missing.jsonl")
    assert main([missing]) == 2  # the live view's path: the shared builder refuses first
    assert opened == []
    err = capsys.readouterr().err
    assert err.startswith(f"dynosim-tui: error: {missing}: ")
    assert main([missing, "--headless"]) == 2
    assert capsys.readouterr().err == err
    assert main([TINY]) == 0 and len(opened) == 1  # a good trace reaches the view, built


@pytest.mark.slow
@aio
async def test_max_speed_keys_act_mid_run_and_replay_completes(tmp_path: Path) -> None:
    """Keys pressed during a max-speed run act at once and the replay still runs to the end
    with every request. (How fast and how smooth it is lives in `make bench`:
    bench/tui_bench.py measures frame rate, key latency and overhead vs headless.)"""
    app = make_app(tmp_path, trace=SYNTH, workers=4, paused=True, speed=MAX_SPEED)
    async with app.run_test(size=SIZE) as pilot:
        # Not pilot.press: it waits for the process to go idle, which a max-speed run never does.
        app.post_message(events.Key("space", " "))
        await wait_for(lambda: app.driver.running, pilot, timeout=10)
        app.post_message(events.Key("r", "r"))
        await wait_for(lambda: app.driver.clock.speed == 1.0, pilot, timeout=10)
        app.post_message(events.Key("m", "m"))
        await wait_for(lambda: app.driver.clock.speed == MAX_SPEED, pilot, timeout=10)
        await wait_for(lambda: app.driver.finished, pilot, timeout=120)
        assert app.driver.replay.sim.completed == 3993


