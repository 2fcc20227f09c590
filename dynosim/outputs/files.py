"""Writing a report's files: every planned output (`outputs.plan`) in one staged set that
appears together or not at all (an error, Ctrl-C or SIGTERM leaves nothing behind); the HTML
is rendered once per call (an export and the planner's page share it)."""
from __future__ import annotations

from typing import IO, Any, Callable, NamedTuple

from dynosim.outputs.html_report import render_html
from dynosim.outputs.plan import EXPORT_PLANNER_LOG, OutputPlan, Target
from dynosim.outputs.planner_log import dump_snapshot_log
from dynosim.outputs.report import Report
from dynosim.outputs.writers import StagedFiles, dump_json, dump_ndjson, dump_parquet, dump_text


class WrittenFiles(NamedTuple):
    paths: dict[str, str]  # Target.what -> the path written (a default name may have become -N)
    broken_pipes: list[str]  # stream targets whose reader had gone (`| head`)


def write_outputs(report: Report, plan: OutputPlan,
                  on_commit: Callable[[], None] | None = None) -> WrittenFiles:
    """Write every planned file; they appear together or not at all. `on_commit` runs once
    they are all in place (see StagedFiles.commit)."""
    obj = report.json_obj()
    page: str | None = None

    def html() -> str:
        nonlocal page
        if page is None:
            page = render_html(report)
        return page

    def planner_log(fh: IO[bytes]) -> None:
        assert report.planner_sla is not None
        dump_snapshot_log(fh, [x.as_row() for x in report.planner_snapshots],
                          *report.planner_sla)

    export: dict[str, Callable[[IO[bytes]], Any]] = {
        "report.json": lambda fh: dump_json(fh, obj),
        "requests.jsonl": lambda fh: dump_ndjson(fh, report.records_table()),
        "requests.parquet": lambda fh: dump_parquet(fh, report.frame()),
        "summary.txt": lambda fh: dump_text(fh, report.table() + "\n"),
        "worker_samples.parquet": lambda fh: dump_parquet(fh, report.samples_frame()),
        "report.html": lambda fh: dump_text(fh, html()),
        EXPORT_PLANNER_LOG: planner_log,
    }
    jobs: list[tuple[Target, Callable[[IO[bytes]], Any]]] = []
    if plan.report_json is not None:
        jobs.append((plan.report_json, lambda fh: dump_json(fh, obj)))
    if plan.report_jsonl is not None:
        jobs.append((plan.report_jsonl, lambda fh: dump_ndjson(fh, report.records_table())))
    jobs += [(t, export[name]) for name, t in plan.export.items()]
    if plan.planner_html is not None:
        jobs.append((plan.planner_html, lambda fh: dump_text(fh, html())))
    if plan.planner_log is not None:
        jobs.append((plan.planner_log, planner_log))
    with StagedFiles() as staged:
        for target, dump in jobs:
            with staged.open(target.real, shown=target.path, stream=target.stream,
                             fd=target.fd, exclusive=target.exclusive) as fh:
                dump(fh)
        for path in plan.stale:
            staged.remove_at_commit(path)
        final = staged.commit(on_commit)
        return WrittenFiles({t.what: p for (t, _), p in zip(jobs, final)}, staged.broken_pipes)
