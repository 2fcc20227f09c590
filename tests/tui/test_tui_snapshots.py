"""Snapshots of the live view on the tiny trace at fixed simulated times (paused, so nothing
depends on the wall clock). Update with `pytest tests/test_tui_snapshots.py --snapshot-update`
after checking the new SVGs in the report."""
from __future__ import annotations

from typing import Any

from helpers import TINY
from dynosim.replay import RunOptions, build_replay
from tui.app import DynosimApp



def tiny_app(**kw: Any) -> DynosimApp:
    return DynosimApp(build_replay(RunOptions(trace=TINY, num_workers=4, **kw)), paused=True)


def at(t_ms: float, *keys: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()  # let the main screen mount
        pilot.app.main_screen.seek(t_ms)
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(tiny_app(), terminal_size=(80, 24), run_before=at(3000.0))


def test_main_screen_120x36_with_sla(snap_compare: Any) -> None:
    # --sla-ttft-ms/--sla-itl-ms draw SLA lines; a larger terminal gives the plots more room.
    assert snap_compare(tiny_app(sla_ttft_ms=800.0, sla_itl_ms=60.0), terminal_size=(120, 36),
                        run_before=at(5000.0))


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(tiny_app(), terminal_size=(80, 24), run_before=at(1000.0, "question_mark"))


def test_end_of_trace(snap_compare: Any) -> None:
    assert snap_compare(tiny_app(), terminal_size=(100, 30), run_before=at(1e9))
