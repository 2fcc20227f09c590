"""One timed replay in a fresh process; prints a JSON line of timings (seconds) and peak RSS.

BENCH_EXPORT=DIR also writes what `--export DIR` writes (timed as report_s). With a planner,
the time of its ticks is split into observe_s (the driver reading the engine), decide_s (the
planner's tick: predictors, regression, decision) and apply_s (the engine scaling)."""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

t0 = time.perf_counter()
from dynosim.cli import make_parser, options_from_args  # noqa: E402
from dynosim.replay import build_replay  # noqa: E402

args = make_parser().parse_args(sys.argv[1:])
t1 = time.perf_counter()
replay = build_replay(options_from_args(args))
t2 = time.perf_counter()
spent = {"observe_s": 0.0, "decide_s": 0.0, "tick_s": 0.0}
driver = replay.planner_driver
if driver is not None:
    def timed(key: str, fn: Any) -> Any:
        def call(*a: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a)
            finally:
                spent[key] += time.perf_counter() - t
        return call

    driver.observe = timed("observe_s", driver.observe)  # type: ignore[method-assign]
    driver.planner.tick = timed("decide_s", driver.planner.tick)  # type: ignore[method-assign]
    driver.on_tick = timed("tick_s", driver.on_tick)  # type: ignore[method-assign]
replay.run_to_end(1_000_000)
t3 = time.perf_counter()
report = replay.report()
if os.environ.get("BENCH_EXPORT"):
    from tui.export import export_report

    export_report(report, os.environ["BENCH_EXPORT"])
t4 = time.perf_counter()
events = [ev for d in replay.decisions for ev in d.events]
import engine  # noqa: E402

print(json.dumps({
    "load_s": t2 - t1,
    "engine_s": t3 - t2,
    "report_s": t4 - t3,
    "replay_s": t4 - t1,  # comparable to the reference's run_trace_replay call
    "completed": report.summary["completed_requests"],
    "mean_ttft_ms": report.summary["mean_ttft_ms"],
    "compiled": engine.is_compiled(),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "observe_s": spent["observe_s"],
    "decide_s": spent["decide_s"],
    "apply_s": spent["tick_s"] - spent["observe_s"] - spent["decide_s"],
    "scaling_events": len(events),
    "peak_workers": max([args.num_workers, *(e.to_replicas for e in events)]),
}))
