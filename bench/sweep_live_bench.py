"""Sweep rows of `make bench` for the live view (issue 15 item 4): what watching a sweep costs.
With an observer attached (the headless bar and the sweep screen both attach one), pool
workers run each point in chunks and report simulated-time progress through a queue. Measured
A/B, alternating, medians: per-point overhead on 40 points of a 16-request trace (target
<= 0.3 s, and no more than without the observer) and 6 cold-start points of the 1-hour trace
on 2 jobs (the sweep no slower). Prints one line per row."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def timed(spec: Any, make: Callable[[], Any], watched: bool) -> tuple[float, float]:
    """(wall s, sum of the points' own wall s)."""
    from dynosim.sweep.events import SweepEvent
    from dynosim.sweep.runner import build_points, run_sweep

    seen: list[SweepEvent] = []
    points = build_points(spec)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = run_sweep(spec, out, make, points=points,
                        observer=seen.append if watched else None)
        wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in res.rows)
    return wall, sum(r["wall_s"] for r in res.rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="alternating repeats per row")
    a = p.parse_args()
    from sweep_bench import hour_trace

    from dynosim.sweep.executors import LocalPoolExecutor
    from dynosim.sweep.presets import preset_spec
    from dynosim.sweep.spec import spec_from_mapping

    tiny = spec_from_mapping({"base": {"trace": str(ROOT / "traces" / "mooncake_tiny.jsonl")},
                              "axes": {"seed": {"range": {"start": 0, "stop": 39, "step": 1}}}},
                             "bench", "overhead")
    per: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(a.runs):
        for watched in (False, True):
            wall, own = timed(tiny, lambda: LocalPoolExecutor(1), watched)
            per[watched].append((wall - own) / 40)
    off, on = statistics.median(per[False]), statistics.median(per[True])
    print(f"sweep overhead watched (local pool, 1 job, 40 points of a 16-request trace): "
          f"{on * 1000:.0f} ms per point with progress reporting vs {off * 1000:.0f} ms "
          f"without (target <= 300 ms)")

    tmp = Path(tempfile.mkdtemp(prefix="dynosim_sweep_live_bench_"))
    spec6 = preset_spec("cold-start", str(hour_trace(tmp / "hour.jsonl")),
                        axis_overrides=["startup_time=0,60,120,180,240,300"])
    walls: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(a.runs):
        for watched in (False, True):
            walls[watched].append(timed(spec6, lambda: LocalPoolExecutor(2), watched)[0])
    off, on = statistics.median(walls[False]), statistics.median(walls[True])
    print(f"sweep watched, 6 cold-start points of the 1-hour trace on 2 jobs: {on:.1f} s with "
          f"progress reporting vs {off:.1f} s without = {on / off:.2f}x (target <= 1.0x "
          f"within noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
