#!/usr/bin/env bash
# Cold-start sweep (the Dynamo planner guide's): agg, 2 workers, H200 / Llama-3.1-8B-FP8 / TP1,
# planner SLA TTFT 1500 ms / ITL 50 ms, startup_time 0..300 s in 10 s steps (31 runs in
# parallel). Writes OUT/results.csv|parquet, OUT/points/*.json, OUT/sweep.html (the figure).
#   examples/cold_start_sweep.sh [TRACE] [OUT_DIR] [extra sweep flags, e.g. --axis startup_time=0,60,120]
# The command: $DYNOSIM, else dynosim-tui on PATH, else this checkout's .venv (made by `make run`).
set -euo pipefail
here="$(dirname "$0")"
exe="${DYNOSIM:-}"
if [ -z "$exe" ]; then
  if command -v dynosim-tui >/dev/null; then exe=dynosim-tui; else exe="$here/../.venv/bin/dynosim-tui"; fi
fi
exec "$exe" sweep --preset cold-start "${1:-$here/../traces/synthetic_trace.jsonl}" --out "${2:-out/cold_start_sweep}" "${@:3}"
