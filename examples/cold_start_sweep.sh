#!/usr/bin/env bash
# Cold-start sweep: how does the planner-in-the-loop deployment respond to a slower engine
# start-up? Replays a trace once per startup_time (default 0..300 s in 10 s steps), in
# parallel, each run writing its own JSON report; then summarises TTFT/ITL (avg, p90),
# GPU-hours and the number of scaling events against start-up time.
#
#   examples/cold_start_sweep.sh [TRACE] [OUT_DIR] [STARTUP_TIMES...]
#   JOBS=2 examples/cold_start_sweep.sh traces/synthetic_trace.jsonl out/sweep 0 60 120
#
# Agg deployment, TTFT SLA 1500 ms, ITL SLA 50 ms, H200 / Llama-3.1-8B-FP8 / TP1 (the
# reference planner guide's setting). Every figure is read from the per-run JSON reports
# (the reference's summary keys plus "dynosim.planner"), no HTML parsing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
trace=${1:-$here/../traces/synthetic_trace.jsonl}
out=${2:-out/cold_start_sweep}
shift $(( $# > 2 ? 2 : $# ))
points=("$@")
[[ ${#points[@]} -gt 0 ]] || points=($(seq 0 10 300))
bin=${DYNOSIM:-dynosim-tui}
mkdir -p "$out"

run_point() {  # one replay per start-up time
  local st=$1
  local planner='{"mode": "agg", "optimization_target": "sla", "ttft_ms": 1500,
    "itl_ms": 50, "throughput_adjustment_interval_seconds": 300,
    "load_adjustment_interval_seconds": 10, "enable_throughput_scaling": true,
    "enable_load_scaling": true, "report_output_dir": "'"$out"'",
    "report_filename": "startup_'"$st"'.html"}'
  local args='{"engine": {"aic_backend": "vllm", "aic_system": "h200_sxm",
    "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1},
    "startup_time": '"$st"'}'
  "$bin" "$trace" --headless --num-workers 2 --planner-config "$planner" \
    --extra-engine-args "$args" --report-json "$out/startup_${st}.json" > "$out/startup_${st}.log" 2>&1
}
export -f run_point
export bin trace out
printf '%s\n' "${points[@]}" | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c 'run_point {}'
"${PYTHON:-python3}" "$here/sweep_summary.py" "$out"
