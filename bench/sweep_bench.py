"""Sweep rows of `make bench` (issue 14): the cold-start preset over a 1-hour ~20k-request
trace, 2 jobs against 1, the per-point overhead, and Ray against the local pool.

The trace is the bundled synthetic one tiled 5x (each copy with its own block ids) and
compressed into one hour: 19,965 requests. Prints one line per row."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "traces" / "synthetic_trace.jsonl"


def hour_trace(path: Path, copies: int = 5) -> Path:
    rows = [json.loads(line) for line in SRC.read_text().splitlines() if line.strip()]
    ts = [r["timestamp"] for r in rows]
    span = max(ts) + (max(ts) - min(ts)) / len(ts)
    scale = 3_600_000.0 / (copies * span)
    stride = 1 + max(h for r in rows for h in r["hash_ids"])
    with open(path, "w") as f:
        for k in range(copies):
            for r in rows:
                out = dict(r, timestamp=round((r["timestamp"] + k * span) * scale, 3),
                           hash_ids=[h + k * stride for h in r["hash_ids"]])
                f.write(json.dumps(out) + "\n")
    return path


def timed_sweep(spec: Any, make_executor: Any) -> tuple[float, object]:
    from dynosim.sweep.runner import build_points, run_sweep

    points = build_points(spec)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = run_sweep(spec, out, make_executor, points=points)
        wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in res.rows), [r["error"] for r in res.rows]
    return wall, res


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=1, help="alternating repeats of the A/B rows")
    p.add_argument("--skip-full", action="store_true", help="skip the 31-point preset row")
    p.add_argument("--no-ray", action="store_true")
    a = p.parse_args()
    from dynosim.sweep.executors import LocalPoolExecutor, SerialExecutor
    from dynosim.sweep.presets import preset_spec
    from dynosim.sweep.spec import spec_from_mapping

    tmp = Path(tempfile.mkdtemp(prefix="dynosim_sweep_bench_"))
    trace = str(hour_trace(tmp / "hour.jsonl"))
    subset = ["startup_time=0,60,120,180,240,300"]

    if not a.skip_full:
        spec = preset_spec("cold-start", trace)
        wall, res = timed_sweep(spec, lambda: LocalPoolExecutor(2))
        rows = res.rows  # type: ignore[attr-defined]
        point_s = med([r["wall_s"] for r in rows])
        rss = max(r["worker_rss_mb"] for r in rows)
        # bounded: a worker's peak RSS after its first point against after its last one
        per_worker: dict[object, list[float]] = {}
        for r in sorted(rows, key=lambda r: r["point"]):
            per_worker.setdefault(r["worker"], []).append(r["worker_rss_mb"])
        growth = ", ".join(f"{v[0]:.0f} -> {v[-1]:.0f} MB over {len(v)} points"
                           for v in per_worker.values())
        print(f"sweep, cold-start preset (31 points, 1-hour 19,965-request trace, 2 jobs): "
              f"{wall:.1f} s (target <= 60 s); median point {point_s:.2f} s; peak worker RSS "
              f"{rss:.0f} MB (per worker, first -> last point: {growth})")

    spec6 = preset_spec("cold-start", trace, axis_overrides=subset)
    one, two = [], []
    for _ in range(a.runs):
        one.append(timed_sweep(spec6, lambda: LocalPoolExecutor(1))[0])
        two.append(timed_sweep(spec6, lambda: LocalPoolExecutor(2))[0])
    print(f"sweep, 6 cold-start points: 1 job {med(one):.1f} s vs 2 jobs {med(two):.1f} s = "
          f"{med(one) / med(two):.2f}x (target >= 1.8x on 2 free cores)")

    tiny = spec_from_mapping({"base": {"trace": str(ROOT / "traces" / "mooncake_tiny.jsonl")},
                              "axes": {"seed": {"range": {"start": 0, "stop": 39, "step": 1}}}},
                             "bench", "overhead")
    for name, make in (("serial", SerialExecutor), ("local pool, 1 job",
                                                    lambda: LocalPoolExecutor(1))):
        wall, res = timed_sweep(tiny, make)
        rows = res.rows  # type: ignore[attr-defined]
        engine = sum(r["wall_s"] for r in rows)
        print(f"sweep overhead ({name}, 40 points of a 16-request trace): "
              f"{(wall - engine) / len(rows) * 1000:.0f} ms per point beyond the point's own "
              f"build+run+report ({engine / len(rows) * 1000:.0f} ms), "
              f"{wall / len(rows) * 1000:.0f} ms per point in all (target <= 300 ms)")

    if not a.no_ray:
        try:
            import ray
        except ImportError:
            print("sweep on Ray: skipped (pip install 'dynosim-tui[ray]')")
            return 0
        from dynosim.sweep.executors import RayExecutor

        # started from an empty directory, as RayExecutor does: from the checkout (make bench)
        # the workers would import the interpreted source tree
        import os

        here = os.getcwd()
        os.chdir(tempfile.mkdtemp(prefix="dynosim_ray_cwd_"))
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        finally:
            os.chdir(here)
        timed_sweep(preset_spec("cold-start", trace, axis_overrides=["startup_time=0,10"]),
                    RayExecutor)  # warm the worker processes
        on_ray, local = [], []
        for _ in range(a.runs):
            on_ray.append(timed_sweep(spec6, RayExecutor)[0])
            local.append(timed_sweep(spec6, lambda: LocalPoolExecutor(2))[0])
        ray.shutdown()
        print(f"sweep on Ray (local, 2 CPUs, once started) {med(on_ray):.1f} s vs local pool "
              f"{med(local):.1f} s = {med(on_ray) / med(local):.2f}x (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
