"""Search quality (issue 15): how much of the exhaustive grid's Pareto frontier a model-based
search finds with a quarter of the grid's runs, random search at the same budget beside it,
and what the optimizer costs per trial against the simulation it steers.

The space: 150 points = topology (6) x max_num_seqs (5) x the KV router's overlap weight (5),
on a 1-hour trace (bench/hour_trace.py's, every 3rd request kept: 4,171 requests over the same
hour, ~2 s of CPU per point; one worker with a small batch cannot keep up). The grid runs once into out/bench_search/grid (a rerun reuses
it: points are stored by config hash). Searches then replay the grid's stored outcomes
(simulation is deterministic, so a search sees exactly what running the point would give; its
optimizer runs for real, in batches of 2 as with --jobs 2).

Quality = the hypervolume of the feasible points a search found, on a frontier pair (see
PAIRS), over the grid's: reference point
= the grid's nadir over its feasible points (the worst value of each objective), so only
points better than the worst feasible one in both objectives add area. Also: how many of the
grid's distinct frontier points (objective vectors) a search found."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hour_trace import hour_trace

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "out" / "bench_search"
KEEP_EVERY = 3
SEEDS = (0, 1, 2)
BUDGET_SHARES = (0.25, 0.10)  # the target's budget, and a tighter one where methods part ways


def thin_trace(directory: Path) -> Path:
    out = directory / f"hour_trace_every{KEEP_EVERY}.jsonl"
    if not out.exists():
        lines = hour_trace(directory).read_text().splitlines()
        tmp = out.with_suffix(".tmp")
        tmp.write_text("\n".join(lines[::KEEP_EVERY]) + "\n")
        tmp.replace(out)
    return out


# The frontier pairs: the InferenceX axes (the sweep's default; GPU counts make tok/s/GPU
# take three levels here, so its frontier has few points) and the latency trade-off (TTFT
# against ITL, set by batch size and topology: a frontier of a dozen points).
PAIRS = (("output_tok_s_per_gpu", "output_tok_s_per_user"), ("mean_ttft_ms", "mean_itl_ms"))


def space(trace: str, search: dict[str, Any] | None = None,
          pair: tuple[str, str] = PAIRS[0]) -> dict[str, Any]:
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
                       "pareto": list(pair)},
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

    def poll_outcome(self, timeout_s: float) -> Any:
        return self.next_outcome()

    def set_listener(self, listener: Any) -> None:
        pass  # nothing runs: no progress to report

    def cancel(self, index: int) -> None:
        pass

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
    return out


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
    t0 = time.perf_counter()
    grid = run_sweep(spec_from_mapping(space(trace), "search bench", "grid"),
                     str(CACHE / "grid"), lambda: LocalPoolExecutor(a.jobs))
    grid_wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in grid.rows), [r["error"] for r in grid.rows]
    n = len(grid.rows)
    sim_s = statistics.median(r["wall_s"] for r in grid.rows)
    feasible = sum(1 for r in grid.rows if r["feasible"])
    print(f"search quality: {n}-point grid (6 topologies x 5 max_num_seqs x 5 KV-router overlap "
          f"weights; 1-hour {KEEP_EVERY}x-thinned trace; {feasible} feasible at p90 TTFT <= "
          f"1500 ms; grid reused {grid.skipped}, ran {grid.ran} in {grid_wall:.0f} s, median "
          f"point {sim_s:.2f} s wall); medians over seeds {', '.join(map(str, SEEDS))}; "
          f"searches replay the grid's stored outcomes in batches of {a.jobs}")
    summary: dict[str, Any] = {"grid_points": n, "simulation_s_per_trial": sim_s}
    for pair in PAIRS:
        grid_spec = spec_from_mapping(space(trace, None, pair), "search bench", "grid")
        rows = run_sweep(grid_spec, str(CACHE / "grid"), lambda: StoredOutcomes(CACHE / "grid")).rows
        grid_pts = objectives(rows, grid_spec)
        ref = (min(x for x, _ in grid_pts), min(y for _, y in grid_pts))
        grid_hv = hypervolume(grid_pts, ref)
        front = set(objectives([r for r in rows if r["pareto"]], grid_spec))
        print(f" frontier {pair[0]} ({grid_spec.pareto[0].goal}) vs {pair[1]} "
              f"({grid_spec.pareto[1].goal}): {len(front)} distinct frontier points; "
              f"hypervolume from the grid's feasible nadir ({abs(ref[0]):.1f}, "
              f"{abs(ref[1]):.1f})")
        for share in BUDGET_SHARES:
            budget = int(n * share)
            for method in ("tpe", "nsga2", "random"):
                ratios, found, per_trial = [], [], []
                for seed in SEEDS:
                    spec = spec_from_mapping(space(trace, {"method": method, "trials": budget,
                                                           "seed": seed}, pair),
                                             "search bench", method)
                    with tempfile.TemporaryDirectory() as out:
                        res = run_sweep(spec, out,
                                        lambda: StoredOutcomes(CACHE / "grid", a.jobs))
                    assert res.search is not None
                    pts = objectives(res.rows, spec)
                    ratios.append(hypervolume(pts, ref) / grid_hv)
                    found.append(len(front & set(pts)))
                    per_trial.append(res.search.optimizer_s / max(1, res.search.evaluated))
                per = statistics.median(per_trial)
                target = "; target >= 90%" if share == 0.25 and method != "random" else ""
                print(f"  {budget:>3} trials ({share:.0%}) {method:<6} hypervolume "
                      f"{statistics.median(ratios):6.1%} of the grid's (seeds "
                      f"{', '.join(f'{r:.1%}' for r in ratios)}{target}); frontier points "
                      f"found {statistics.median(found):.0f}/{len(front)}; optimizer "
                      f"{per * 1000:.1f} ms per trial = {per / sim_s:.2%} of a trial's "
                      "simulation (target <= 5%)")
                summary[f"{pair[1]}:{method}@{budget}"] = {
                    "hv_ratio": statistics.median(ratios), "optimizer_s_per_trial": per}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
