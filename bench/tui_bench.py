"""The live view at max speed against the headless replay of the same run (issue 13 item 4:
at most +10% median, >= 10 frames/s, keys answered within 100 ms).

One process, ROUNDS rounds alternating a headless replay (`Replay.run_to_end`, what the headless
CLI runs) with a live one of the same options: the app opened paused and left to settle (its
first layout, footer and plots are start-up, not replay), then played at max speed to the end
with no key pressed. Replay time runs from the play key to the engine's last event; each live
run is compared with the mean of the headless runs either side of it (this machine's speed
drifts by tens of percent within seconds), in wall time and in process CPU time; and, within
the live run itself, the CPU spent outside the engine's calls against the CPU inside them
(ui_cpu_share, the steadiest of the three when other processes share the cores; the UI's CPU
per wall second is ui_cpu_ms_per_s). A frame is a repaint of the header (the status bar's lines
rendered by the compositor). Then KEY_ROUNDS live runs press `m` every 150 ms (a no-op at max
speed that goes through the whole key path: bindings, action, header redraw) and time each key
from its post to its action and to the next header repaint. Prints one JSON line of medians.

    python bench/tui_bench.py [ROUNDS] [--trace PATH] [--workers N]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from textual import events

ROOT = Path(__file__).resolve().parent.parent
TRACE = str(ROOT / "traces" / "synthetic_trace.jsonl")
WORKERS = 4
KEY_EVERY_S = 0.15
ROUNDS = 5
KEY_ROUNDS = 2
SIZE = (100, 30)

from dynosim.replay import RunOptions, build_replay  # noqa: E402
from tui.app import DynosimApp  # noqa: E402
from tui.main_screen import ExportSettings  # noqa: E402
from tui.pacing import MAX_SPEED  # noqa: E402


def headless(opts: RunOptions) -> dict[str, float]:
    replay = build_replay(opts)
    t0, c0 = time.perf_counter(), time.process_time()
    replay.run_to_end()
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


async def live(opts: RunOptions, press_keys: bool) -> dict[str, float]:
    replay = build_replay(opts)
    app = DynosimApp(replay, export=ExportSettings(base_dir="/tmp"), paused=True, speed=MAX_SPEED)
    paints: list[float] = []
    answered: list[float] = []
    latency: list[float] = []
    to_paint: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await asyncio.sleep(0.5)  # settle: first layout, footer, plots
        screen = app.main_screen
        status = screen.status
        real_lines, real_max = status.render_lines, screen.action_max_speed

        def render_lines(crop: Any) -> Any:
            paints.append(time.perf_counter())
            return real_lines(crop)

        def max_speed() -> None:
            answered.append(time.perf_counter())
            real_max()

        status.render_lines = render_lines  # type: ignore[method-assign]
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
        real_advance = replay.advance
        engine_cpu = [0.0]

        def advance(n: int) -> bool:
            c = time.thread_time()
            try:
                return real_advance(n)
            finally:
                engine_cpu[0] += time.thread_time() - c

        replay.advance = advance  # type: ignore[method-assign,assignment]
        t0, c0 = time.perf_counter(), time.process_time()
        app.post_message(events.Key("space", " "))
        while not driver.finished:
            await asyncio.sleep(KEY_EVERY_S if press_keys else 0.05)
            if not press_keys or driver.finished:
                continue
            sent, n_ans, n_paint = time.perf_counter(), len(answered), len(paints)
            app.post_message(events.Key("m", "m"))
            while len(answered) == n_ans and time.perf_counter() - sent < 5.0:
                await asyncio.sleep(0.001)
            latency.append(answered[-1] - sent if len(answered) > n_ans else math.inf)
            while len(paints) == n_paint and time.perf_counter() - sent < 5.0:
                await asyncio.sleep(0.001)
            to_paint.append(paints[-1] - sent if len(paints) > n_paint else math.inf)
        cpu = time.process_time() - c0
        total = end[0] - t0
    run = [f for f in paints if t0 <= f <= end[0]]
    gaps = [b - a for a, b in zip(run, run[1:])]
    out = {"wall_s": total, "cpu_s": cpu, "ui_cpu_share": cpu / engine_cpu[0] - 1.0,
           "ui_cpu_ms_per_s": (cpu - engine_cpu[0]) / total * 1000.0, "frames_per_s": len(gaps) / (run[-1] - run[0]),
           "max_frame_gap_s": max(gaps)}
    if press_keys:
        out["max_key_ms"] = max(latency) * 1000.0
        out["max_key_to_paint_ms"] = max(to_paint) * 1000.0
        out["keys"] = len(latency)
    return out


def main(rounds_n: int, opts: RunOptions) -> dict[str, Any]:
    before = headless(opts)
    rounds: list[dict[str, float]] = []
    for _ in range(rounds_n):
        res = asyncio.run(live(opts, press_keys=False))
        after = headless(opts)
        for k in ("wall_s", "cpu_s"):
            res["headless_" + k] = (before[k] + after[k]) / 2
        res["overhead"] = res["wall_s"] / res["headless_wall_s"] - 1.0
        res["cpu_overhead"] = res["cpu_s"] / res["headless_cpu_s"] - 1.0
        rounds.append(res)
        before = after
    keyed = [asyncio.run(live(opts, press_keys=True)) for _ in range(KEY_ROUNDS)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    return {
        "tui_s": med["wall_s"], "headless_s": med["headless_wall_s"],
        "overhead": med["overhead"], "cpu_overhead": med["cpu_overhead"],
        "ui_cpu_share": med["ui_cpu_share"], "ui_cpu_ms_per_s": med["ui_cpu_ms_per_s"],
        "overheads": [round(r["overhead"], 3) for r in rounds],
        "cpu_overheads": [round(r["cpu_overhead"], 3) for r in rounds],
        "frames_per_s": med["frames_per_s"],
        "min_frames_per_s": min(r["frames_per_s"] for r in rounds + keyed),
        "max_frame_gap_s": max(r["max_frame_gap_s"] for r in rounds + keyed),
        "max_key_latency_ms": max(r["max_key_ms"] for r in keyed),
        "max_key_to_paint_ms": max(r["max_key_to_paint_ms"] for r in keyed),
        "keys": sum(int(r["keys"]) for r in keyed),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rounds", nargs="?", type=int, default=ROUNDS)
    p.add_argument("--trace", default=TRACE)
    p.add_argument("--workers", type=int, default=WORKERS)
    a = p.parse_args()
    print(json.dumps(main(a.rounds, RunOptions(trace=a.trace, num_workers=a.workers))))
