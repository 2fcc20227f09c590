"""`e`: write the report of the run so far, as `--export DIR` does, to a fresh folder.

The output locations are planned (checked) by the same step as a headless run's: once at
start-up, before the screen opens (`plan_live_outputs`, called by the CLI), and again at each
export."""
from __future__ import annotations

import datetime as _dt
import os
from typing import Sequence

from dynosim.outputs.files import WrittenFiles, write_outputs
from dynosim.outputs.plan import plan_run_outputs
from dynosim.outputs.report import Report
from planner.config import PlannerConfig


def default_export_dir(base: str = ".", now: _dt.datetime | None = None) -> str:
    """./dynosim_export_<YYYYmmdd_HHMMSS>/, with a -2, -3... suffix if that folder exists
    (two exports within one second must not overwrite each other)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d_%H%M%S")
    path = os.path.join(base, f"dynosim_export_{stamp}")
    n = 2
    while os.path.exists(path):
        path = os.path.join(base, f"dynosim_export_{stamp}-{n}")
        n += 1
    return path


def export_report(report: Report, export_dir: str, report_json: str | None = None,
                  report_jsonl: str | None = None,
                  inputs: Sequence[tuple[str, str | None]] = (),
                  planner: PlannerConfig | None = None) -> WrittenFiles:
    """Same files as a headless `--export DIR` run (plus --report-json/--report-jsonl when
    given, and with a planner its page and log in its report_output_dir), planned and then
    written together."""
    plan = plan_run_outputs(report_json=report_json, report_jsonl=report_jsonl,
                            export_dir=export_dir, planner=planner, inputs=inputs)
    return write_outputs(report, plan)
