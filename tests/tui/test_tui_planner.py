"""The live view with a real planner in the loop: the planner panel appears, `d` runs to the
next planner tick and pauses there, scale events reach the panel and the plots' markers."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from helpers import SYNTH
from dynosim.replay import RunOptions, build_replay
from tui.app import DynosimApp
from tui.main_screen import ExportSettings
from tui.planner_hooks import find_planner

# Easy "load"-free target with a 10 s tick: scales on queue/KV pressure, no perf model needed.
PLANNER = json.dumps({"mode": "agg", "optimization_target": "latency",
                      "load_adjustment_interval_seconds": 10})


def make(tmp_path: Path) -> DynosimApp:
    replay = build_replay(RunOptions(trace=SYNTH, num_workers=1, planner_config=PLANNER))
    return DynosimApp(replay, export=ExportSettings(base_dir=str(tmp_path)))


def test_planner_panel_and_next_decision(tmp_path: Path) -> None:
    async def run() -> None:
        app = make(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            d = app.driver
            assert app.main_screen.planner_panel is not None
            view = find_planner(d.replay)
            assert view is not None and view.sla_ttft_ms is not None
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
            assert "->" in view.explain(0)
    asyncio.run(asyncio.wait_for(run(), timeout=120))
