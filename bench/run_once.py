"""One timed replay in a fresh process; prints a JSON line of timings (seconds) and peak RSS."""
from __future__ import annotations

import json
import os
import resource
import sys
import time

t0 = time.perf_counter()
from dynosim.cli import make_parser, options_from_args  # noqa: E402
from dynosim.replay import build_replay  # noqa: E402

args = make_parser().parse_args(sys.argv[1:])
t1 = time.perf_counter()
replay = build_replay(options_from_args(args))
t2 = time.perf_counter()
replay.run_to_end(1_000_000)
t3 = time.perf_counter()
report = replay.report()
if os.environ.get("BENCH_RECORDS"):  # what --export adds: per-request records and Parquet frame
    n_records = len(report.records())
    n_rows = report.frame().height
t4 = time.perf_counter()
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
}))
