"""Regenerate the planner fixtures from the reference runs (shared/reference/planner/).

    python tests/data/planner/extract_reference.py [REFERENCE_DIR]

For each run: the planner config, the scaling-event lines of the stdout summary, the log's
metadata and every snapshot (all fields, engines included), as one gzip'd JSON file.
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_REF = HERE.parents[3] / "shared" / "reference" / "planner"


def extract(run_dir: Path) -> dict[str, object]:
    cfg = json.loads((run_dir / "run_config.json").read_text())
    events = [line.rstrip("\n") for line in (run_dir / "stdout_summary.txt").read_text()
              .splitlines() if line.startswith("  t=")]
    (log,) = sorted(run_dir.glob("*.log.jsonl.gz"))
    with gzip.open(log, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    report = json.loads((run_dir / "report.json").read_text())
    return {
        "run": run_dir.name,
        "planner_config": cfg["planner_config"],
        "engine_args": cfg.get("aic_engine_args", {}),
        "event_lines": events,
        "report_gpu_hours": report.get("gpu_hours"),
        "metadata": rows[0],
        "snapshots": rows[1:],
    }


def main() -> None:
    ref = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REF
    for run_dir in sorted(p for p in ref.iterdir() if p.is_dir()):
        out = HERE / f"{run_dir.name}.json.gz"
        body = json.dumps(extract(run_dir), sort_keys=True, separators=(",", ":")).encode()
        with gzip.GzipFile(out, "wb", mtime=0) as f:
            f.write(body)
        print(out)


if __name__ == "__main__":
    main()
