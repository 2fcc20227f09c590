"""`make bench`: wall time of this project vs the reference (Dynamo 1.6.1) side by side, the
gain of the compiled engine over the interpreted one, and peak memory on a large run.

Runs alternate (ours, reference, ours, ...) in one invocation so machine noise hits both.
The reference comes from ../shared/tools/reference-replay when present; otherwise its rows
are skipped."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any
from pathlib import Path

from engine_bench import engine_rows

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("REFERENCE_REPLAY", ROOT.parent / "shared/tools/reference-replay"))
TRACE = ROOT / "traces" / "synthetic_trace.jsonl"
# The planner guide's hardware timing set-up (roofline for vLLM / H200 / Llama-3.1-8B-FP8 / TP1).
AIC_ARGS = json.dumps({"aic_backend": "vllm", "aic_system": "h200_sxm",
                       "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1})


def ours(args: list[str], interpreted: bool = False, records: bool = False) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("DYNOSIM_INTERPRETED", None)
    if interpreted:
        env["DYNOSIM_INTERPRETED"] = "1"
    with tempfile.TemporaryDirectory(prefix="dynosim_bench_") as tmp:
        if records:  # also write what --export writes
            env["BENCH_EXPORT"] = os.path.join(tmp, "export")
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "run_once.py"), *args],
                             cwd=ROOT / "bench", env=env, capture_output=True, text=True,
                             check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def reference(args: list[str]) -> dict[str, Any] | None:
    if not REFERENCE.exists():
        return None
    env = dict(os.environ, DYN_LOG="warn", RUST_LOG="error")
    out = subprocess.run([str(REFERENCE), *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return None
    s = json.loads(out.stdout)
    return {"replay_s": s["call_wall_s"], "engine_s": s["wall_time_ms"] / 1000.0,
            "mean_ttft_ms": s["mean_ttft_ms"]}


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def aic_rows(rows: list[Any], runs: int) -> None:
    """The aic-args replay (roofline timing) next to the polynomial rows measured above."""
    for n, o, _, _ in rows:
        flags = [str(TRACE), "--num-workers", str(n), "--extra-engine-args", AIC_ARGS]
        x = [ours(flags) for _ in range(runs)]
        poly_s, poly_e = med([r["replay_s"] for r in o]), med([r["engine_s"] for r in o])
        aic_s, aic_e = med([r["replay_s"] for r in x]), med([r["engine_s"] for r in x])
        print(f"aic args, {n} worker(s): {aic_s:.3f} s (engine {aic_e:.3f} s) vs polynomial "
              f"{poly_s:.3f} s (engine {poly_e:.3f} s): {aic_s / poly_s:.2f}x the polynomial's "
              f"wall time; {x[0]['completed']} completed, mean TTFT "
              f"{x[0]['mean_ttft_ms']:.1f} ms (polynomial {o[0]['mean_ttft_ms']:.1f} ms)")
    print("aic args = roofline timing for vLLM / h200_sxm / Llama-3.1-8B-Instruct-FP8 / TP1 and "
          "its derived num_gpu_blocks, so the schedule (passes, batch sizes) differs too")


DISAGG_P = ('{"engine": {"worker_type": "prefill", "kv_transfer_bandwidth": 25, '
            '"kv_transfer_bytes_per_token": 131072}}')
DISAGG_D = '{"engine": {"worker_type": "decode"}}'
SCENARIOS = [
    ("kv_router, 4 workers", ["--num-workers", "4", "--router-mode", "kv_router"]),
    ("disagg 2P2D + transfer", ["--prefill-engine-args", DISAGG_P, "--decode-engine-args",
                                DISAGG_D, "--num-prefill-workers", "2",
                                "--num-decode-workers", "2"]),
]


def alternate(flags: list[str], runs: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`runs` replays of ours and of the reference, alternating so machine noise hits both."""
    o: list[dict[str, Any]] = []
    r: list[dict[str, Any]] = []
    for _ in range(runs):
        o.append(ours(flags))
        ref = reference(flags)
        if ref:
            r.append(ref)
    return o, r


def scenario_rows(runs: int) -> None:
    """Routing and topology variants, ours vs the reference, alternating runs."""
    print(f"{'scenario':<24} {'ours':>8} {'ref':>8} {'ratio':>6} | {'ours eng':>8} "
          f"{'ref eng':>8} {'ratio':>6}")
    for name, extra in SCENARIOS:
        o, r = alternate([str(TRACE), *extra], runs)
        ours_s, ours_e = med([x["replay_s"] for x in o]), med([x["engine_s"] for x in o])
        if not r:
            print(f"{name:<24} {ours_s:8.3f}   (reference not available)")
            continue
        ref_s, ref_e = med([x["replay_s"] for x in r]), med([x["engine_s"] for x in r])
        print(f"{name:<24} {ours_s:8.3f} {ref_s:8.3f} {ours_s / ref_s:6.2f} | {ours_e:8.3f} "
              f"{ref_e:8.3f} {ours_e / ref_e:6.2f}")


PLANNER_ENGINE = ('{"engine": {"aic_backend": "vllm", "aic_system": "h200_sxm", '
                  '"aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1, '
                  '"timing_model": {"type": "polynomial"}, "num_gpu_blocks": 29249, '
                  '"block_size": 64, "timing_compat": "1.4"}}')
PLANNER_CONFIG = ('{"mode": "agg", "optimization_target": "sla", "ttft_ms": 1500, '
                  '"itl_ms": 50, "throughput_adjustment_interval_seconds": 300, '
                  '"load_adjustment_interval_seconds": 10, "report_output_dir": '
                  '"/tmp/dynosim_bench_planner"}')


def planner_rows(runs: int) -> None:
    """The planner in the loop (the reference's run_agg_syn set-up) vs the same replay without
    it: what the ticks cost (issue 5's target: at most 1.5x)."""
    base = [str(TRACE), "--num-workers", "2", "--extra-engine-args", PLANNER_ENGINE]
    with_p, without = [], []
    for _ in range(runs):
        without.append(ours(base))
        with_p.append(ours([*base, "--planner-config", PLANNER_CONFIG]))
    a, b = med([x["replay_s"] for x in with_p]), med([x["replay_s"] for x in without])
    print(f"planner in the loop (agg, 102 ticks, scales 2..8 workers): {a:.3f} s vs "
          f"{b:.3f} s without a planner = {a / b:.2f}x (target <= 1.5x; the planned run "
          f"also simulates more workers)")


def report_and_planner_rows(runs: int) -> None:
    """Reports linear in their size, --export against headless, and a 1-hour planner run
    against the same replay without one (issue 13; bench/report_bench.py, planner_bench.py)."""
    for script in ("report_bench.py", "planner_bench.py"):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / script), str(max(3, runs))],
                             cwd=ROOT / "bench", capture_output=True, text=True)
        print(out.stdout.strip() if out.returncode == 0
              else f"{script} failed: {out.stderr.strip()[-300:]}")


def tui_rows(runs: int) -> None:
    """The live view at max speed against headless (issue 13 item 4): one process alternating
    headless and live replays `runs` times, then two keyed live runs (see bench/tui_bench.py)."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "tui_bench.py"), str(runs)],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        print("tui: bench failed:", out.stderr.strip().splitlines()[-1:])
        return
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"tui at max speed (synthetic, 4 workers, {runs} live runs between headless ones): "
          f"replay {r['tui_s']:.3f} s vs headless {r['headless_s']:.3f} s: "
          f"{r['overhead']:+.0%} median wall (target <= +10%; rounds "
          f"{', '.join(f'{o:+.0%}' for o in r['overheads'])}), {r['cpu_overhead']:+.0%} CPU; "
          f"inside the live run the UI takes {r['ui_cpu_ms_per_s']:.0f} ms of CPU per second "
          f"({r['ui_cpu_share']:+.0%} over the engine's CPU); {r['frames_per_s']:.1f} frames/s "
          f"(slowest run {r['min_frames_per_s']:.1f}, target >= 10), longest gap "
          f"{r['max_frame_gap_s'] * 1000:.0f} ms; {r['keys']} keys: worst "
          f"{r['max_key_latency_ms']:.0f} ms to the action, {r['max_key_to_paint_ms']:.0f} ms "
          f"to the repaint (target <= 100)")


def sweep_rows(runs: int) -> None:
    """Sweeps (issue 14): see bench/sweep_bench.py."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "sweep_bench.py"), "--runs",
                          str(max(1, runs // 3))], cwd=ROOT / "bench", capture_output=True,
                         text=True)
    print(out.stdout.strip() or f"sweep bench failed: {out.stderr.strip()[-300:]}")
    live = subprocess.run([sys.executable, str(ROOT / "bench" / "sweep_live_bench.py"),
                           "--runs", str(max(1, runs // 2))], cwd=ROOT / "bench",
                          capture_output=True, text=True)
    print(live.stdout.strip() or f"sweep live bench failed: {live.stderr.strip()[-300:]}")


def search_rows() -> None:
    """Search quality against the exhaustive grid (issue 15): see bench/search_bench.py."""
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "search_bench.py")],
                         cwd=ROOT / "bench", capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    print("\n".join(lines[:-1]) if out.returncode == 0 and lines
          else f"search bench failed: {out.stderr.strip()[-300:]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--memory-requests", type=int, default=200_000)
    p.add_argument("--skip-memory", action="store_true")
    a = p.parse_args()
    print(f"trace: {TRACE.name}; {a.runs} runs each, alternating; medians in seconds")
    rows = []
    for n in (1, 4):
        flags = [str(TRACE), "--num-workers", str(n)]
        o, r = [], []
        for _ in range(a.runs):
            o.append(ours(flags))
            ref = reference(flags)
            if ref:
                r.append(ref)
        interp = [ours(flags, interpreted=True) for _ in range(max(1, a.runs // 2))]
        assert all(x["compiled"] for x in o) and not any(x["compiled"] for x in interp)
        if r:
            assert abs(o[0]["mean_ttft_ms"] - r[0]["mean_ttft_ms"]) <= 1e-6 * r[0]["mean_ttft_ms"]
        rows.append((n, o, r, interp))
    hdr = (f"{'workers':>7} {'ours':>8} {'ref':>8} {'ratio':>6} | {'ours eng':>8} {'ref eng':>8}"
           f" {'ratio':>6} | {'interp':>7} {'gain':>5}")
    print(hdr)
    print("-" * len(hdr))
    for n, o, r, interp in rows:
        ours_s = med([x["replay_s"] for x in o])
        ours_e = med([x["engine_s"] for x in o])
        ref_s = med([x["replay_s"] for x in r])
        ref_e = med([x["engine_s"] for x in r])
        int_s = med([x["replay_s"] for x in interp])
        print(f"{n:>7} {ours_s:8.3f} {ref_s:8.3f} {ours_s / ref_s:6.2f} | {ours_e:8.3f} "
              f"{ref_e:8.3f} {ours_e / ref_e:6.2f} | {int_s:7.3f} {int_s / ours_s:5.2f}x")
    print("ours/ref = whole replay call (parse + engine + summary); eng = engine only "
          "(reference: its Rust wall_time_ms); gain = interpreted / compiled")
    scenario_rows(a.runs)
    engine_rows(a.runs, alternate)
    planner_rows(a.runs)
    tui_rows(max(5, a.runs))
    html = subprocess.run([sys.executable, str(ROOT / "bench" / "html_bench.py")], cwd=ROOT,
                          capture_output=True, text=True)
    print(html.stdout.strip() or f"html bench failed: {html.stderr.strip()[-300:]}")
    report_and_planner_rows(a.runs)
    aic_rows(rows, a.runs)
    sweep_rows(a.runs)
    search_rows()
    if not a.skip_memory:
        n_req = a.memory_requests
        m = ours(["--input-tokens", "1024", "--output-tokens", "64", "--request-count",
                  str(n_req), "--request-rate", "100", "--num-workers", "4"], records=True)
        print(f"memory: {n_req} synthetic requests (ISL 1024, OSL 64, 4 workers): peak RSS "
              f"{m['peak_rss_mb']:.0f} MB including the export (target <= 500), "
              f"{m['replay_s']:.1f} s, {m['completed']} completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
