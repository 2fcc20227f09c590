"""Search quality (issue 15): how much of the exhaustive grid's Pareto frontier a model-based
search finds with a quarter of the grid's runs, random search at the same budget beside it,
and what the optimizer costs per trial against the simulation it steers.

The space: 150 points = topology (6) x max_num_seqs (5) x the KV router's overlap weight (5),
on a 1-hour trace (bench/hour_trace.py's, every 3rd request kept: 4,171 requests over the same
hour, ~2 s of CPU per point; one worker with a small batch cannot keep up). The grid runs once into out/bench_search/grid (a rerun reuses
it: points are stored by config hash). Searches then replay the grid's stored outcomes
(simulation is deterministic, so a search sees exactly what running the point would give; its
optimizer runs for real, in batches of 2 as with --jobs 2).

Quality = the hypervolume of the feasible points a search found, on the frontier pair
(output tok/s per GPU, output tok/s per user, both maximised), over the grid's: reference point
= the grid's nadir over its feasible points (the worst value of each objective), so only
points better than the worst feasible one in both objectives add area."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from hour_trace import hour_trace

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "out" / "bench_search"
KEEP_EVERY = 3
SEEDS = (0, 1, 2)
BUDGET_SHARE = 0.25


def thin_trace(directory: Path) -> Path:
    out = directory / f"hour_trace_every{KEEP_EVERY}.jsonl"
    if not out.exists():
        lines = hour_trace(directory).read_text().splitlines()
        tmp = out.with_suffix(".tmp")
        tmp.write_text("\n".join(lines[::KEEP_EVERY]) + "\n")
        tmp.replace(out)
    return out


def space(trace: str, search: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "search-bench",
        "base": {"trace": trace, "router_mode": "kv_router",
                 "router_config": {"overlap_score_weight": 1.0},
                 "extra_engine_args": {"engine": {"max_num_seqs": 256}}},
        "axes": {
            "topology": ["agg:1", "agg:2", "agg:3", "disagg:1:1", "disagg:1:2", "disagg:2:1"],
            "max_num_seqs": {"path": "extra_engine_args.engine.max_num_seqs",
                             "values": [1, 2, 4, 8, 32]},
            "overlap": {"path": "router_config.overlap_score_weight",
                        "values": [0.0, 0.5, 1.0, 2.0, 4.0]},
        },
        "constraints": {"p90_ttft_ms": 1500},
        "objectives": {"rank": "output_tok_s_per_gpu",
                       "pareto": ["output_tok_s_per_gpu", "output_tok_s_per_user"]},
    }
    if search is not None:
        spec["search"] = search
    return spec


class StoredOutcomes:
    """An executor that answers each point from the grid's stored result (slots as --jobs)."""

    def __init__(self, grid_dir: Path, slots: int = 2) -> None:
        from dynosim.sweep.results import ResultStore

        self.store = ResultStore(str(grid_dir))
        self.slots = slots
        self._queue: list[Any] = []

    def submit(self, task: Any) -> None:
        self._queue.append(task)

    def pending(self) -> int:
        return len(self._queue)

    def next_outcome(self) -> Any:
        from dynosim.sweep.evaluate import PointOutcome

        task = self._queue.pop(0)
        report = self.store.load(task.config_hash)
        assert report is not None, "the grid has no result for this point"
        meta = report.pop("sweep")
        return PointOutcome(task.index, task.config_hash, "ok", report=report,
                            wall_s=meta["wall_s"])

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


def objectives(rows: list[dict[str, Any]], spec: Any) -> list[tuple[float, float]]:
    """The feasible points, in 'larger is better' form."""
    out = []
    for r in rows:
        if r["status"] == "ok" and r["feasible"]:
            vals = [r[o.metric] for o in spec.pareto]
            if all(v is not None for v in vals):
                out.append(tuple(v if o.goal == "max" else -v
                                 for v, o in zip(vals, spec.pareto)))
    return out  # type: ignore[return-value]


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by `points` (maximised) and bounded below by `ref`."""
    area, best_y = 0.0, ref[1]
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if x > ref[0] and y > best_y:
            area += (x - ref[0]) * (y - best_y)
            best_y = y
    return area


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=2, help="grid run's jobs, and the batch size")
    a = p.parse_args()
    from dynosim.sweep.executors import LocalPoolExecutor
    from dynosim.sweep.runner import run_sweep
    from dynosim.sweep.spec import spec_from_mapping

    CACHE.mkdir(parents=True, exist_ok=True)
    trace = str(thin_trace(CACHE))
    grid_spec = spec_from_mapping(space(trace), "search bench", "grid")
    grid = run_sweep(grid_spec, str(CACHE / "grid"), lambda: LocalPoolExecutor(a.jobs))
    assert all(r["status"] == "ok" for r in grid.rows), [r["error"] for r in grid.rows]
    n = len(grid.rows)
    grid_pts = objectives(grid.rows, grid_spec)
    ref = (min(x for x, _ in grid_pts), min(y for _, y in grid_pts))
    grid_hv = hypervolume(grid_pts, ref)
    sim_s = statistics.median(r["wall_s"] for r in grid.rows)
    budget = int(n * BUDGET_SHARE)
    print(f"search quality: {n}-point grid (6 topologies x 5 max_num_seqs x 5 overlap "
          f"weights; 1-hour {KEEP_EVERY}x-thinned trace; {len(grid_pts)} feasible at p90 TTFT "
          f"<= 1500 ms; grid reused {grid.skipped}, ran {grid.ran}); budget {budget} trials "
          f"({budget / n:.0%}); hypervolume of (tok/s/GPU, tok/s/user) from the grid's "
          f"feasible nadir ({ref[0]:.1f}, {ref[1]:.1f})")
    results: dict[str, list[float]] = {}
    opt: dict[str, list[float]] = {}
    for method in ("tpe", "nsga2", "random"):
        for seed in SEEDS:
            spec = spec_from_mapping(space(trace, {"method": method, "trials": budget,
                                                   "seed": seed}), "search bench", method)
            with tempfile.TemporaryDirectory() as out:
                res = run_sweep(spec, out, lambda: StoredOutcomes(CACHE / "grid", a.jobs))
            assert res.search is not None and res.search.evaluated == budget
            hv = hypervolume(objectives(res.rows, spec), ref)
            results.setdefault(method, []).append(hv / grid_hv)
            opt.setdefault(method, []).append(res.search.optimizer_s / budget)
    for method, ratios in results.items():
        per = statistics.median(opt[method])
        print(f"  {method:<6} median {statistics.median(ratios):6.1%} of the grid's "
              f"hypervolume (seeds {', '.join(f'{r:.1%}' for r in ratios)}; target >= 90% "
              f"for the model); optimizer {per * 1000:.1f} ms per trial = "
              f"{per / sim_s:.2%} of a trial's simulation ({sim_s:.2f} s median; target "
              f"<= 5%)")
    print(json.dumps({"grid_points": n, "budget": budget, "reference_point": ref,
                      "hv_ratio": {m: statistics.median(r) for m, r in results.items()},
                      "optimizer_s_per_trial": {m: statistics.median(v)
                                                for m, v in opt.items()},
                      "simulation_s_per_trial": sim_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
