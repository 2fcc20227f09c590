#!/usr/bin/env bash
# Cold-start sweep (the Dynamo planner guide's): agg, 2 workers, H200 / Llama-3.1-8B-FP8 / TP1,
# planner SLA TTFT 1500 ms / ITL 50 ms, startup_time 0..300 s in 10 s steps (31 runs in
# parallel). Writes OUT/results.csv|parquet, OUT/points/*.json, OUT/sweep.html (the figure).
#   examples/cold_start_sweep.sh [TRACE] [OUT_DIR] [extra sweep flags, e.g. --axis startup_time=0,60,120]
set -euo pipefail
exec "${DYNOSIM:-dynosim-tui}" sweep --preset cold-start "${1:-$(dirname "$0")/../traces/synthetic_trace.jsonl}" --out "${2:-out/cold_start_sweep}" "${@:3}"
