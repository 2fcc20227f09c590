"""What a planner run leaves behind (spec planner.md §9).

* stdout lines: `Scaling events:` then `  t=110.0s [agg]: 2 -> 3 (scale_up)` per event (the
  form of the reference summaries), and `Planner ticks: N`;
* `<basename>.log.jsonl.gz`: a metadata line, then one snapshot per recorded tick, keys
  sorted, written atomically (temporary file in the same directory, then rename);
* `planner_report_section(...)`: the planner part of the JSON report.
"""
from __future__ import annotations

import gzip
import json
import os
from datetime import datetime, timezone
from typing import IO, Sequence

import msgspec

from dynosim.outputs.writers import write_one
from planner.config import PlannerConfig, ResolvedGpus
from planner.planner import SCHEMA
from planner.types import ScalingEvent


def event_line(ev: ScalingEvent) -> str:
    return (f"  t={ev.t_s:.1f}s [{ev.component}]: {ev.from_replicas} -> {ev.to_replicas} "
            f"({ev.reason})")


def stdout_lines(events: Sequence[ScalingEvent], total_ticks: int,
                 snapshot_log_path: str | None = None) -> list[str]:
    lines = ["Scaling events:" if events else "Scaling events: none"]
    lines += [event_line(ev) for ev in events]
    lines.append(f"Planner ticks: {total_ticks}")
    if snapshot_log_path is not None:
        lines.append(f"Planner diagnostics log: {snapshot_log_path}")
    return lines


def metadata_record(ttft_ms: float, itl_ms: float, num_snapshots: int,
                    html_report_path: str | None = None,
                    generated_at: datetime | None = None) -> dict[str, object]:
    when = generated_at or datetime.now(timezone.utc)
    return {
        "kind": "metadata",
        "schema": SCHEMA,
        "ttft_ms": float(ttft_ms),
        "itl_ms": float(itl_ms),
        "num_snapshots": num_snapshots,
        "html_report_path": html_report_path,
        "generated_at_utc": when.isoformat(),
    }


def snapshot_log_path(report_output_dir: str, basename: str) -> str:
    """`<dir>/<basename>.log.jsonl.gz` (basename without .html)."""
    if basename.endswith(".html"):
        basename = basename[: -len(".html")]
    return os.path.join(report_output_dir, f"{basename}.log.jsonl.gz")


def dump_snapshot_log(fh: IO[bytes], snapshots: Sequence[dict[str, object]], ttft_ms: float,
                      itl_ms: float, html_report_path: str | None = None,
                      generated_at: datetime | None = None) -> None:
    """The gzip JSONL log into an open binary file."""
    meta = metadata_record(ttft_ms, itl_ms, len(snapshots), html_report_path, generated_at)
    with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write((json.dumps(meta, sort_keys=True) + "\n").encode())
        for snap in snapshots:
            gz.write((json.dumps(snap, sort_keys=True) + "\n").encode())


def write_snapshot_log(path: str, snapshots: Sequence[dict[str, object]], ttft_ms: float,
                       itl_ms: float, html_report_path: str | None = None,
                       generated_at: datetime | None = None) -> None:
    """Write the gzip JSONL log atomically (the final name appears complete or not at all)."""
    write_one(path, lambda fh: dump_snapshot_log(fh, snapshots, ttft_ms, itl_ms,
                                                 html_report_path, generated_at))


def read_snapshot_log(path: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    """(metadata, snapshots) of a log written by us or by the reference."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows or rows[0].get("kind") != "metadata":
        raise ValueError(f"{path}: first line is not the metadata record")
    return rows[0], rows[1:]


def config_used(config: PlannerConfig, gpus: ResolvedGpus) -> dict[str, object]:
    """The effective config (after easy-mode overrides) with the resolved GPU counts."""
    out: dict[str, object] = msgspec.to_builtins(config)
    out["scale_interval_seconds"] = config.scale_interval_s
    out.update(gpus.as_dict())
    return out


def planner_report_section(config: PlannerConfig, gpus: ResolvedGpus,
                           events: Sequence[ScalingEvent], total_ticks: int,
                           planner_gpu_hours: float, lifetime_gpu_hours: float | None,
                           snapshot_log: str | None = None) -> dict[str, object]:
    """The `planner` object of the JSON report.

    `planner_gpu_hours` is the planner's own active-replica figure (the reference HTML's
    "GPU hours"); `lifetime_gpu_hours` is the simulator's worker-lifetime figure (the
    reference JSON report's `gpu_hours`, starting and draining time included).
    """
    return {
        "config": config_used(config, gpus),
        "scaling_events": [
            {"time_s": ev.t_s, "component": ev.component, "from": ev.from_replicas,
             "to": ev.to_replicas, "reason": ev.reason}
            for ev in events
        ],
        "num_scaling_events": len(events),
        "total_ticks": total_ticks,
        "gpu_hours_planner": planner_gpu_hours,
        "gpu_hours_lifetime": lifetime_gpu_hours,
        "snapshot_log": snapshot_log,
    }
