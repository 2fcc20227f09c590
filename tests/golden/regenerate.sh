#!/usr/bin/env bash
# Re-create the golden summaries listed in tests/golden/cases.json by running the reference
# (NVIDIA Dynamo 1.6.1's Rust trace replay).
#
# Needs ../shared/tools/reference-replay (relative to the repo root; override with
# REFERENCE_REPLAY=/path/to/reference-replay).
#
#   tests/golden/regenerate.sh                 # all cases
#   tests/golden/regenerate.sh tiny_w1 ...     # only the named cases
#
# Wall-clock dependent keys (wall_time_ms, call_wall_s, processed_tokens_per_s,
# processed_output_tokens_per_s) are dropped from the stored summaries.
# Set GOLDEN_DEBUG_DIR=/some/dir to also keep there, per case, the full reference summary
# (<name>.raw.json) and its per-request records (<name>.per_request.jsonl).
# A case with a "handoffs" path also stores there (gzipped JSON lines, in arrival order) each
# request's disaggregated hand-off milestones and token times (see HANDOFF_FIELDS).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
ref=${REFERENCE_REPLAY:-$root/../shared/tools/reference-replay}
if [[ ! -x $ref ]]; then
  echo "regenerate.sh: needs the reference tool ../shared/tools/reference-replay (not found: $ref)" >&2
  exit 1
fi
py=python3
[[ -x $root/.venv/bin/python ]] && py=$root/.venv/bin/python

exec "$py" - "$ref" "$@" <<'PY'
import gzip, json, os, subprocess, sys, tempfile

ref, wanted = sys.argv[1], set(sys.argv[2:])
HANDOFF_FIELDS = ("arrival_time_ms", "input_length", "requested_output_length", "output_length",
                  "prefill_worker_idx", "decode_worker_idx", "prefill_admit_ms", "source_held_ms",
                  "destination_reserved_ms", "destination_activated_ms", "decode_admit_ms",
                  "source_released_ms", "first_token_ms", "terminal_time_ms", "admission_count")
DROP = ("wall_time_ms", "call_wall_s", "processed_tokens_per_s", "processed_output_tokens_per_s")
debug = os.environ.get("GOLDEN_DEBUG_DIR")
if debug:
    os.makedirs(debug, exist_ok=True)
cases = json.load(open("tests/golden/cases.json"))
unknown = wanted - {c["name"] for c in cases}
if unknown:
    sys.exit("unknown case(s): " + ", ".join(sorted(unknown)))
failed = []
for c in cases:
    if wanted and c["name"] not in wanted:
        continue
    cmd = [ref, c["trace"], "--num-workers", str(c.get("num_workers", 1))]
    if c.get("router_mode"):
        cmd += ["--router-mode", c["router_mode"]]
    for key in ("prefill_engine_args", "decode_engine_args"):
        if c.get(key) is not None:
            cmd += ["--" + key.replace("_", "-"), json.dumps(c[key])]
    for key in ("num_prefill_workers", "num_decode_workers"):
        if c.get(key) is not None:
            cmd += ["--" + key.replace("_", "-"), str(c[key])]
    if c.get("extra_engine_args") is not None:
        cmd += ["--extra-engine-args", json.dumps(c["extra_engine_args"])]
    if c.get("arrival_speedup_ratio") is not None:
        cmd += ["--arrival-speedup-ratio", str(c["arrival_speedup_ratio"])]
    if c.get("replay_concurrency") is not None:
        cmd += ["--replay-concurrency", str(c["replay_concurrency"])]
    per_request = None
    if debug:
        per_request = os.path.join(debug, c["name"] + ".per_request.jsonl")
    elif c.get("handoffs"):
        per_request = os.path.join(tempfile.mkdtemp(), "per_request.jsonl")
    if per_request:
        cmd += ["--per-request", per_request]
    # Randomised cases (kv_router tie-break) keep several reference runs: {"runs": [...]}.
    runs = []
    for _ in range(c.get("runs", 1)):
        p = subprocess.run(cmd, capture_output=True, text=True,
                           env=dict(os.environ, DYN_LOG="warn"))
        if p.returncode != 0:
            break
        summary = json.loads(p.stdout)
        if debug:
            with open(os.path.join(debug, c["name"] + ".raw.json"), "w") as f:
                json.dump(summary, f, indent=1)
        for k in DROP:
            summary.pop(k, None)
        runs.append(summary)
    if p.returncode != 0:
        failed.append(c["name"])
        print("FAILED %s:\n%s" % (c["name"], p.stderr[-2000:]), file=sys.stderr)
        continue
    with open(c["summary"], "w") as f:
        json.dump({"runs": runs} if c.get("runs", 1) > 1 else summary, f, indent=1)
        f.write("\n")
    if c.get("handoffs"):
        recs = [json.loads(line) for line in open(per_request)]
        recs.sort(key=lambda r: (r["arrival_time_ms"], r["input_length"], r["requested_output_length"]))
        with gzip.open(c["handoffs"], "wt") as f:
            for r in recs:
                f.write(json.dumps({k: r[k] for k in HANDOFF_FIELDS}) + "\n")
    print("%-24s ok  (%d requests, duration %.3f ms)"
          % (c["name"], summary["num_requests"], summary["duration_ms"]))
if failed:
    sys.exit("failed: " + ", ".join(failed))
PY
