"""`e`: write the report of the run so far, as `--export DIR` does, to a fresh folder."""
from __future__ import annotations

import datetime as _dt
import os

from dynosim.outputs.report import Report, write_outputs


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
                  report_jsonl: str | None = None) -> list[str]:
    """Same files as a headless `--export DIR` run (plus --report-json/--report-jsonl when
    given), written atomically together."""
    return write_outputs(report, report_json=report_json, report_jsonl=report_jsonl,
                         export_dir=export_dir)
