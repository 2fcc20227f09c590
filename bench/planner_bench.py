"""A planner run that costs what its engine work costs (issue 13 item 2).

The 1-hour, 12.5k-request trace (bench/hour_trace.py), starting at 2 workers, vLLM / H200 /
Llama-3.1-8B-FP8 roofline timing, agg planner optimising latency with 10-s load ticks (360
ticks; the run scales between 1 and 6 workers with ~180 scaling events), against the same
replay without a planner at the planner run's peak worker count; alternating processes
(bench/run_once.py), medians. Also the planner run's own split: the ticks (the driver's
observation and the planner's decision) against the engine's work (everything else in the
replay loop, scaling included). Targets: ratio <= 1.3x, ticks <= 20% of the engine's work."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hour_trace import hour_trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENGINE = json.dumps({"engine": {"aic_backend": "vllm", "aic_system": "h200_sxm",
                                "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8",
                                "aic_tp_size": 1}})
PLANNER = {"mode": "agg", "optimization_target": "latency",
           "load_adjustment_interval_seconds": 10}


def _once(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "run_once.py"), *args],
                         cwd=ROOT / "bench", capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(runs: int = 3) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        trace = str(hour_trace(tmp))
        planned = [trace, "--num-workers", "2", "--extra-engine-args", ENGINE,
                   "--planner-config", json.dumps(dict(PLANNER, report_output_dir=tmp))]
        first = _once(planned)
        flat = [trace, "--num-workers", str(first["peak_workers"]), "--extra-engine-args",
                ENGINE]
        with_p, without = [first], []
        for i in range(runs):
            without.append(_once(flat))
            if i:
                with_p.append(_once(planned))
    med = statistics.median
    a, b = med(x["replay_s"] for x in with_p), med(x["replay_s"] for x in without)
    ticks = [x["observe_s"] + x["decide_s"] for x in with_p]
    work = [x["engine_s"] - t for x, t in zip(with_p, ticks)]
    share = med(t / w for t, w in zip(ticks, work))
    return (f"planner in the loop, 1-hour {first['completed']}-request trace, agg latency "
            f"planner: {first['scaling_events']} scaling events, 2 -> up to "
            f"{first['peak_workers']} workers: {a:.2f} s vs {b:.2f} s without a planner at "
            f"{first['peak_workers']} workers = {a / b:.2f}x (target <= 1.3); its ticks "
            f"(observe {med(x['observe_s'] for x in with_p):.2f} s + decide "
            f"{med(x['decide_s'] for x in with_p):.2f} s) = {share:.0%} of the engine's work "
            f"(target <= 20%; scaling inside the engine "
            f"{med(x['apply_s'] for x in with_p):.2f} s); {runs} alternating runs, medians")


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
