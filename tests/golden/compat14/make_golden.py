"""Builds compat14_disagg.json: small disaggregated traces (1 prefill + 1 decode worker, 29249
blocks of 64) replayed by Dynamo 1.4.2's own CLI, the engine the planner references ran on.
Needs a venv with ai-dynamo==1.4.2 and ai-dynamo-runtime==1.4.2 (plus kubernetes<33,
scikit-learn, plotly, prometheus_api_client, prophet for the planner path, and a stub
`transformers` module); not part of the product or its tests:

    DYN142=/path/to/venv/bin/python python tests/golden/compat14/make_golden.py

Per case it keeps the trace, each request's hand-off milestones and token times, and, from a
planner run with 1-second load ticks, what each tick saw of the two workers' last forward pass
(decode KV tokens, queued prefill tokens); and the summary of the whole synthetic trace."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYNTHETIC = HERE.parent.parent.parent / "traces" / "synthetic_trace.jsonl"
WALL_KEYS = {"wall_time_ms", "processed_tokens_per_s", "processed_output_tokens_per_s"}
ARGS = {"num_gpu_blocks": 29249, "block_size": 64}
PLANNER = {"mode": "disagg", "optimization_target": "sla", "ttft_ms": 1500, "itl_ms": 50,
           "enable_throughput_scaling": False, "enable_load_scaling": True,
           "load_adjustment_interval_seconds": 1, "prefill_engine_num_gpu": 1,
           "decode_engine_num_gpu": 1, "report_filename": "probe.html"}
PLANNER_10S = {**PLANNER, "enable_throughput_scaling": True,
               "throughput_adjustment_interval_seconds": 300,
               "load_adjustment_interval_seconds": 10, "report_filename": "synthetic_planner.html"}
PLANNER_AGG = {**PLANNER_10S, "mode": "agg", "report_filename": "agg_planner.html"}
# (arrival ms, input tokens, output tokens[, prefix group: requests of one group share all but
# their last prompt block])
CASES: dict[str, list[tuple[int, ...]]] = {
    "one": [(0, 1000, 5)],
    "two_close": [(0, 1000, 5), (10, 1000, 5)],
    "three_close": [(0, 3000, 50), (1, 3000, 50), (2, 3000, 50)],
    "stream": [(16 * i, 1000, 5) for i in range(6)] + [(1000, 1000, 5)],
    "decode_busy": [(0, 1000, 200), (100, 1000, 5), (130, 1000, 5)],
    "chunked_stream": [(0, 10000, 5), (50, 1000, 5), (300, 1000, 5)],
    "long_output": [(0, 1000, 500), (3500, 100, 2)],
    "single_token": [(0, 1000, 1), (1500, 100, 2)],
    "three_sizes": [(0, 1000, 5), (10, 2000, 5), (20, 3000, 5), (1500, 100, 2)],
    "busy_decode_batch": [(0, 1000, 300), (100, 1000, 50), (100, 1000, 50), (100, 1000, 50),
                          (400, 3000, 40), (410, 500, 40)],
    "idle_ticks": [(0, 1000, 5), (2500, 2000, 5), (4500, 100, 2)],
    "idle_930": [(0, 100, 2), (930, 1000, 5), (2500, 100, 2)],
    "idle_950": [(0, 100, 2), (950, 1000, 5), (2500, 100, 2)],
    "idle_970": [(0, 100, 2), (970, 1000, 5), (2500, 100, 2)],
    # Released by the prefill worker at one instant: no prefix sharing on the decode side.
    "shared_prefix_together": [(0, 2000, 3, 1), (0, 2000, 6, 1), (0, 1500, 9, 1)],
    # Reserved while the first is decoding: the prefix is shared there.
    "shared_prefix_later": [(0, 2000, 60, 1), (150, 2000, 5, 1), (160, 900, 5)],
    # Released together while the decode worker is busy: reserved at its pass ends.
    "shared_prefix_decode_busy": [(0, 1000, 300), (100, 2000, 5, 1), (100, 2000, 7, 1),
                                  (100, 1000, 9, 1)],
}
MILESTONES = ("source_held_ms", "destination_activated_ms", "first_token_ms", "last_token_ms")


def write_trace(path: Path, reqs: list[tuple[int, ...]] | list[list[int]], base: int) -> None:
    groups: dict[int, int] = {}
    with path.open("w") as f:
        for req in reqs:
            ts, isl, osl = req[0], req[1], req[2]
            n = (isl + 63) // 64
            ids = list(range(base, base + n))
            base += n
            if len(req) > 3:  # all but the last block from the group's shared prefix
                start = groups.setdefault(req[3], base + 100_000 * (req[3] + 1))
                ids[:-1] = list(range(start, start + n - 1))
            f.write(json.dumps({"timestamp": ts, "input_length": isl, "output_length": osl,
                                "hash_ids": ids}) + "\n")


def main() -> None:
    py = os.environ.get("DYN142", "")
    if not py:
        sys.exit("make_golden.py: set DYN142 to the python of a venv with ai-dynamo==1.4.2 "
                 "(see this file's docstring)")
    env = {**os.environ, "RUST_LOG": "error"}
    engine = ["--prefill-engine-args", json.dumps({**ARGS, "is_prefill": True}),
              "--decode-engine-args", json.dumps({**ARGS, "is_decode": True}),
              "--num-prefill-workers", "1", "--num-decode-workers", "1"]
    out: dict[str, object] = {"engine_args": ARGS, "planner_config": PLANNER,
                              "planner_config_10s": PLANNER_10S, "planner_config_agg": PLANNER_AGG,
                              "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "pc.json").write_text(json.dumps(PLANNER))
        for k, (name, reqs) in enumerate(CASES.items()):
            trace = d / f"{name}.jsonl"
            write_trace(trace, reqs, 1_000_000 * (k + 1))
            subprocess.run([py, "-m", "dynamo.replay", str(trace), *engine, "--report-jsonl",
                            str(d / "req.jsonl")], cwd=d, env=env, check=True,
                           capture_output=True)
            rows = sorted((json.loads(line) for line in (d / "req.jsonl").open()),
                          key=lambda r: (r["arrival_time_ms"], r["input_length"],
                                         r["requested_output_length"]))
            log = d / "planner_reports" / "probe.log.jsonl.gz"
            if log.exists():
                log.unlink()
            subprocess.run([py, "-m", "dynamo.replay", str(trace), *engine[:4],
                            "--planner-config", str(d / "pc.json")], cwd=d, env=env,
                           check=True, capture_output=True)
            snaps = []  # no tick before the trace ends: no log
            if log.exists():
                with gzip.open(log, "rt") as f:
                    snaps = [json.loads(line) for line in f][1:]
            out["cases"][name] = {  # type: ignore[index]
                "requests": reqs,
                "per_request": [{m: r[m] for m in MILESTONES} for r in rows],
                "ticks": [[s["timestamp_s"],
                           [[e["inflight_decode_kv_tokens"], e["queued_prefill_tokens"]]
                            for e in s["prefill_engines"]],
                           [[e["inflight_decode_kv_tokens"], e["queued_prefill_tokens"]]
                            for e in s["decode_engines"]]] for s in snaps],
            }
            print(name, file=sys.stderr)
        # The whole synthetic trace, 1 prefill + 1 decode worker: the summary's values.
        subprocess.run([py, "-m", "dynamo.replay", str(SYNTHETIC), *engine, "--report-json",
                        str(d / "synthetic.json")], cwd=d, env=env, check=True,
                       capture_output=True)
        summary = json.loads((d / "synthetic.json").read_text())
        out["synthetic_1p1d"] = {k: v for k, v in summary.items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and k not in WALL_KEYS}
        # ... and with its planner in the loop (10-s ticks, no AIC bootstrap: the perf models
        # learn from live forward passes only): the snapshot log, kept whole.
        (d / "pc10.json").write_text(json.dumps(PLANNER_10S))
        subprocess.run([py, "-m", "dynamo.replay", str(SYNTHETIC), *engine[:4],
                        "--planner-config", str(d / "pc10.json")], cwd=d, env=env, check=True,
                       capture_output=True)
        shutil.copy(d / "planner_reports" / "synthetic_planner.log.jsonl.gz",
                    HERE / "synthetic_planner.log.jsonl.gz")
        # The aggregated planner the same way (2 workers to start, scaling 2..8).
        (d / "pc_agg.json").write_text(json.dumps(PLANNER_AGG))
        subprocess.run([py, "-m", "dynamo.replay", str(SYNTHETIC), "--extra-engine-args",
                        json.dumps(ARGS), "--num-workers", "2", "--planner-config",
                        str(d / "pc_agg.json")], cwd=d, env=env, check=True,
                       capture_output=True)
        shutil.copy(d / "planner_reports" / "agg_planner.log.jsonl.gz",
                    HERE / "agg_planner.log.jsonl.gz")
    (HERE / "compat14_disagg.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
