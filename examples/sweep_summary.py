"""Summarise a cold-start sweep: one row per start-up time from the runs' JSON reports, written
to <dir>/summary.csv (for any plotting tool) and printed as a table."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

COLUMNS = ("startup_s", "mean_ttft_ms", "p90_ttft_ms", "mean_itl_ms", "p90_itl_ms", "gpu_hours",
           "gpu_hours_planner", "scaling_events")


def rows(out: Path) -> list[dict[str, float]]:
    result = []
    for path in sorted(out.glob("startup_*.json"), key=lambda p: float(p.stem.split("_")[1])):
        r = json.loads(path.read_text())
        planner = r["dynosim"]["planner"]
        result.append({
            "startup_s": float(path.stem.split("_")[1]),
            "mean_ttft_ms": r["mean_ttft_ms"], "p90_ttft_ms": r["p90_ttft_ms"],
            "mean_itl_ms": r["mean_itl_ms"], "p90_itl_ms": r["p90_itl_ms"],
            "gpu_hours": r["gpu_hours"], "gpu_hours_planner": planner["gpu_hours_planner"],
            "scaling_events": planner["num_scaling_events"],
        })
    return result


def main() -> int:
    out = Path(sys.argv[1])
    table = rows(out)
    if not table:
        print(f"no startup_*.json reports in {out}", file=sys.stderr)
        return 1
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(table)
    print(" ".join(f"{c:>17}" for c in COLUMNS))
    for row in table:
        print(" ".join(f"{row[c]:>17,.2f}" for c in COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
