"""TUI at max speed on synthetic_trace (4 workers): header frames per second, the longest gap
between frames, key latency, and the replay's wall time against the engine work it did (the
issue's targets: >= 10 frames/s, keys within 100 ms, at most 30% slower than headless).
Prints one JSON line. Run by `make bench`."""
from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

from textual import events

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dynosim.cli import make_parser  # noqa: E402
from tui.app import DynosimApp  # noqa: E402
from tui.main_screen import ExportSettings  # noqa: E402
from tui.pacing import MAX_SPEED  # noqa: E402
from tui.status_bar import StatusBar  # noqa: E402


async def measure() -> dict[str, float]:
    from test_tui_app import make_app  # the tests' factory-built app

    app: DynosimApp = make_app(Path("/tmp"), trace=str(ROOT / "traces/synthetic_trace.jsonl"),
                               workers=4, paused=True, speed=MAX_SPEED)
    frames: list[float] = []
    answered: dict[str, float] = {}
    async with app.run_test(size=(100, 30)):
        screen = app.main_screen
        status = screen.query_one(StatusBar)
        real_show = status.show

        def show(st: Any) -> None:
            frames.append(time.perf_counter())
            real_show(st)

        status.show = show  # type: ignore[method-assign]

        def probe(name: str) -> Callable[[], None]:
            real = getattr(screen, f"action_{name}")

            def action() -> None:
                answered[name] = time.perf_counter()
                real()

            return action

        for name in ("real_time", "max_speed"):
            setattr(screen, f"action_{name}", probe(name))
        wall0 = app.driver.replay.engine_wall_ms
        t0 = time.perf_counter()
        app.post_message(events.Key("space", " "))
        await asyncio.sleep(0.1)
        latency: list[float] = []
        for key, name in (("r", "real_time"), ("m", "max_speed")):
            t = time.perf_counter()
            app.post_message(events.Key(key, key))
            while name not in answered and time.perf_counter() - t < 5.0:
                await asyncio.sleep(0.001)
            latency.append(answered.get(name, math.inf) - t)
        while not app.driver.finished:
            await asyncio.sleep(0.01)
        t1 = max(frames) if frames else time.perf_counter()
        total = time.perf_counter() - t0
        engine = (app.driver.replay.engine_wall_ms - wall0) / 1000.0
    gaps = [b - a for a, b in zip(frames, frames[1:]) if t0 <= a and b <= t1]
    return {"tui_s": total, "engine_s": engine, "overhead": total / engine - 1.0,
            "frames_per_s": len(gaps) / (t1 - t0), "max_frame_gap_s": max(gaps),
            "max_key_latency_ms": max(latency) * 1000.0}


if __name__ == "__main__":
    del make_parser, ExportSettings  # imported to fail early if the app's API moved
    print(json.dumps(asyncio.run(measure())))
