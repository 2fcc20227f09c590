"""The live view at max speed against the headless replay (issue 7's targets: >= 10 frames/s,
keys answered within 100 ms, the replay at most 30% slower than headless).

One process, synthetic_trace with 4 workers, ROUNDS rounds alternating a headless replay (the
engine stepped to the end, as `--export` does before writing) with a live one: the app opened
paused and left to settle (its first layout and footer are start-up, not replay), then played at
max speed to the end while `m` is pressed every 150 ms (a no-op at max speed that goes through
the whole key path). Replay time runs from the play key to the engine's last event. Each live
run is compared with the mean of the headless runs either side of it (this machine's speed
drifts by tens of percent within seconds); prints one JSON line of medians over the rounds."""
from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from textual import events

ROOT = Path(__file__).resolve().parent.parent
TRACE = str(ROOT / "traces" / "synthetic_trace.jsonl")
WORKERS = 4
KEY_EVERY_S = 0.15
ROUNDS = 5

from dynosim.replay import RunOptions, build_replay  # noqa: E402
from tui.app import DynosimApp  # noqa: E402
from tui.main_screen import ExportSettings  # noqa: E402
from tui.pacing import MAX_SPEED  # noqa: E402
from tui.status_bar import StatusBar  # noqa: E402


def headless_s() -> float:
    replay = build_replay(RunOptions(trace=TRACE, num_workers=WORKERS))
    t0 = time.perf_counter()
    while replay.advance(4096):
        pass
    return time.perf_counter() - t0


async def live() -> dict[str, float]:
    replay = build_replay(RunOptions(trace=TRACE, num_workers=WORKERS))
    app = DynosimApp(replay, export=ExportSettings(base_dir="/tmp"), paused=True, speed=MAX_SPEED)
    frames: list[float] = []
    answered: list[float] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await asyncio.sleep(0.5)  # settle: first layout, footer, plots
        screen = app.main_screen
        status = screen.query_one(StatusBar)
        real_show, real_max = status.show, screen.action_max_speed

        def show(st: Any) -> None:
            frames.append(time.perf_counter())
            real_show(st)

        def max_speed() -> None:
            answered.append(time.perf_counter())
            real_max()

        status.show = show  # type: ignore[method-assign]
        screen.action_max_speed = max_speed  # type: ignore[method-assign]
        driver = app.driver
        real_tick = driver.tick
        end = [math.inf]

        def tick(budget_s: float) -> int:
            n = real_tick(budget_s)
            if driver.finished and end[0] == math.inf:
                end[0] = time.perf_counter()
            return n

        driver.tick = tick  # type: ignore[method-assign]
        wall0 = replay.engine_wall_ms
        t0 = time.perf_counter()
        app.post_message(events.Key("space", " "))
        latency: list[float] = []
        while not driver.finished:
            await asyncio.sleep(KEY_EVERY_S)
            if driver.finished:
                break
            sent, before = time.perf_counter(), len(answered)
            app.post_message(events.Key("m", "m"))
            while len(answered) == before and time.perf_counter() - sent < 5.0:
                await asyncio.sleep(0.001)
            latency.append(answered[-1] - sent if len(answered) > before else math.inf)
        total = end[0] - t0
        engine = (replay.engine_wall_ms - wall0) / 1000.0
    run = [f for f in frames if t0 <= f <= end[0]]
    gaps = [b - a for a, b in zip(run, run[1:])]
    return {"tui_s": total, "engine_s": engine, "frames_per_s": len(gaps) / (run[-1] - run[0]),
            "max_frame_gap_s": max(gaps), "max_key_latency_ms": max(latency) * 1000.0,
            "keys": len(latency)}


def main(rounds_n: int = ROUNDS) -> dict[str, float]:
    headless = [headless_s()]
    rounds: list[dict[str, float]] = []
    for _ in range(rounds_n):
        res = asyncio.run(live())
        headless.append(headless_s())
        res["headless_s"] = (headless[-2] + headless[-1]) / 2
        res["overhead"] = res["tui_s"] / res["headless_s"] - 1.0
        res["ui_share"] = res["tui_s"] / res["engine_s"] - 1.0
        rounds.append(res)
    out = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    out["max_key_latency_ms"] = max(r["max_key_latency_ms"] for r in rounds)
    out["min_frames_per_s"] = min(r["frames_per_s"] for r in rounds)
    out["overheads"] = [round(r["overhead"], 3) for r in rounds]  # type: ignore[assignment]
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS)))
