"""Writing a report's files: every requested output in one staged set that appears together or
not at all, the HTML rendered once per call (an export and the planner's page share it)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

from dynosim.outputs.html_report import render_html
from dynosim.outputs.planner_log import snapshot_log_path, write_snapshot_log
from dynosim.outputs.report import Report
from dynosim.outputs.writers import (
    StagedFiles,
    write_json_atomic,
    write_ndjson_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from planner.config import PlannerConfig


@dataclass(frozen=True)
class PlannerFiles:
    """Where a planner run's diagnostics go, as the reference puts them."""

    html: str  # <report_output_dir>/<basename>.html
    log: str  # <report_output_dir>/<basename>.log.jsonl.gz


def planner_files(config: PlannerConfig, now: datetime | None = None) -> PlannerFiles:
    base = config.report_filename or (now or datetime.now(timezone.utc)).strftime(
        "planner_report_%Y%m%d_%H%M%S")
    html = os.path.join(config.report_output_dir,
                        base if base.endswith(".html") else f"{base}.html")
    return PlannerFiles(html=html, log=snapshot_log_path(config.report_output_dir, base))


def write_outputs(report: Report, *, report_json: str | None, report_jsonl: str | None,
                  export_dir: str | None, planner: PlannerFiles | None = None) -> list[str]:
    """Write every requested file; they appear together or (on any error or Ctrl-C) not at all.
    Returns the paths written."""
    obj = report.json_obj()
    page: str | None = None
    with StagedFiles() as staged:
        if report_json:
            write_json_atomic(staged.path_for(report_json), obj)
        if report_jsonl:
            write_ndjson_atomic(staged.path_for(report_jsonl), report.records_table())
        if export_dir:
            os.makedirs(export_dir, exist_ok=True)
            join = os.path.join
            write_json_atomic(staged.path_for(join(export_dir, "report.json")), obj)
            write_ndjson_atomic(staged.path_for(join(export_dir, "requests.jsonl")),
                                report.records_table())
            write_parquet_atomic(staged.path_for(join(export_dir, "requests.parquet")),
                                 report.frame())
            write_text_atomic(staged.path_for(join(export_dir, "summary.txt")),
                              report.table() + "\n")
            write_parquet_atomic(staged.path_for(join(export_dir, "worker_samples.parquet")),
                                 report.samples_frame())
            page = render_html(report)
            write_text_atomic(staged.path_for(join(export_dir, "report.html")), page)
            if report.planner_sla is not None:
                write_snapshot_log(str(staged.path_for(join(export_dir, "planner.log.jsonl.gz"))),
                                   report.planner_snapshots, *report.planner_sla)
        if planner is not None and report.planner_sla is not None:
            write_snapshot_log(str(staged.path_for(planner.log)), report.planner_snapshots,
                               *report.planner_sla)
            write_text_atomic(staged.path_for(planner.html),
                              page if page is not None else render_html(report))
        return staged.commit()
