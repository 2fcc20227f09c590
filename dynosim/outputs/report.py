"""The report value every output renders from: terminal table, JSON, JSONL, Parquet."""
from __future__ import annotations

import datetime as _dt
import os
from typing import TYPE_CHECKING, Any

import polars as pl

from dynosim.outputs.html_report import render_html
from dynosim.outputs.records import RecordLayout, per_request_records, records_frame
from dynosim.outputs.summary import build_summary
from dynosim.outputs.table import format_report_table
from dynosim.outputs.writers import (
    StagedFiles,
    write_json_atomic,
    write_jsonl_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from engine.metrics import MetricColumns
from engine.topology import ROUTER_KV
from dynosim.outputs.planner_log import planner_report_section, stdout_lines, write_snapshot_log
from planner.types import ScalingEvent
from engine.worker import POOL_AGG, POOL_DECODE, POOL_PREFILL
from engine.workload import Workload

if TYPE_CHECKING:
    from dynosim.replay import Replay

SCHEMA_VERSION = 1
VERSION = "0.1.0"


class Report:
    def __init__(self, summary: dict[str, Any], run: dict[str, Any], cols: MetricColumns,
                 workload: Workload, layout: RecordLayout | None = None) -> None:
        self.summary = summary
        self.run = run
        self._cols = cols
        self._workload = workload
        self._layout = layout if layout is not None else RecordLayout()
        # planner in the loop (empty without one)
        self.planner_events: list[ScalingEvent] = []
        self.planner_ticks = 0
        self.planner_snapshots: list[dict[str, object]] = []
        self.planner_sla: tuple[float, float] | None = None
        # fixed-interval per-worker samples (engine/sim.py `_sample`), see samples_frame()
        self.worker_samples: dict[str, list[Any]] = {}
        self._html: str | None = None

    def html(self) -> str:
        """The HTML report, rendered once (a planner run with --export writes it twice)."""
        if self._html is None:
            self._html = render_html(self)
        return self._html

    def planner_lines(self, log_path: str | None = None) -> list[str]:
        """`Scaling events:` lines and `Planner ticks: N`, as the reference prints them."""
        if self.planner_sla is None:
            return []
        return stdout_lines(self.planner_events, self.planner_ticks, log_path)

    def write_planner_log(self, path: str) -> None:
        """The per-tick diagnostics snapshots (`*.log.jsonl.gz`, spec planner.md §9)."""
        assert self.planner_sla is not None
        write_snapshot_log(path, self.planner_snapshots, *self.planner_sla)

    def json_obj(self) -> dict[str, Any]:
        """The reference's summary keys at top level (scripts keep working) plus our run info."""
        return {**self.summary, "dynosim": self.run}

    def table(self) -> str:
        return format_report_table(self.summary)

    def records(self) -> list[dict[str, Any]]:
        return per_request_records(self._cols, self._workload, self._layout)

    def frame(self) -> pl.DataFrame:
        return records_frame(self._cols, self._workload, self._layout)

    def samples_frame(self) -> pl.DataFrame:
        """Per-worker time series sampled every second of simulated time: time_s, worker,
        pool, kv_blocks_active, kv_blocks_total, kv_usage, waiting, running."""
        d = self.worker_samples
        t = d.get("t_ms", [])
        kinds = {POOL_AGG: "agg", POOL_PREFILL: "prefill", POOL_DECODE: "decode"}
        frame = pl.DataFrame({
            "time_s": pl.Series(t, dtype=pl.Float64) / 1000.0,
            "worker": pl.Series(d.get("worker", []), dtype=pl.Int64),
            "pool": pl.Series([kinds.get(k, str(k)) for k in d.get("kind", [])], dtype=pl.Utf8),
            "kv_blocks_active": pl.Series(d.get("kv_blocks", []), dtype=pl.Int64),
            "kv_blocks_total": pl.Series(d.get("kv_capacity", []), dtype=pl.Int64),
            "waiting": pl.Series(d.get("waiting", []), dtype=pl.Int64),
            "running": pl.Series(d.get("running", []), dtype=pl.Int64),
        })
        return frame.with_columns(
            (pl.col("kv_blocks_active") / pl.col("kv_blocks_total")).alias("kv_usage"))


def build_report(replay: Replay) -> Report:
    sim = replay.sim
    cols = sim.collect()
    o = replay.options
    topo = sim.topo
    # Workers exist until the replay's last event (a late rejection can outlast every
    # completion), which is what the reference bills worker-seconds for.
    end_ms = max(cols.terminal_ms) if len(cols) else 0.0
    duration_s = end_ms / 1000.0
    if topo.disaggregated:
        pre, dec = replay.pools
        worker_counts = {"prefill": topo.num_prefill, "decode": topo.num_decode}
        prefill_s = sim.worker_seconds(POOL_PREFILL, end_ms)
        decode_s = sim.worker_seconds(POOL_DECODE, end_ms)
        prefill_gpus = pre.config.tensor_parallel_size
        decode_gpus = dec.config.tensor_parallel_size
        engine_args: dict[str, Any] = {"prefill": pre.normalized, "decode": dec.normalized}
    else:
        worker_counts = {"aggregated": o.num_workers}
        prefill_s = 0.0
        decode_s = sim.worker_seconds(POOL_AGG, end_ms)
        prefill_gpus = 0
        decode_gpus = replay.pools[0].config.tensor_parallel_size
        engine_args = replay.pools[0].normalized
    summary = build_summary(
        cols,
        num_requests=len(replay.workload),
        prefill_worker_seconds=prefill_s,
        decode_worker_seconds=decode_s,
        prefill_gpus_per_worker=prefill_gpus,
        decode_gpus_per_worker=decode_gpus,
        wall_time_ms=replay.engine_wall_ms,
        sla_ttft_ms=o.sla_ttft_ms,
        sla_itl_ms=o.sla_itl_ms,
        sla_e2e_ms=o.sla_e2e_ms,
    )
    snap = sim.snapshot()
    unfinished = snap.total_requests - snap.completed - snap.rejected
    run = {
        "schema_version": SCHEMA_VERSION,
        "version": VERSION,
        # True only when every request reached a terminal state (not cut by
        # --max-sim-time-seconds, not stranded).
        "finished": sim.is_finished() and unfinished == 0,
        "sim_time_ms": sim.now,
        "options": {k: getattr(o, k) for k in o.__struct_fields__},
        "engine_args": engine_args,
        "topology": "disaggregated" if topo.disaggregated else "aggregated",
        "backend": replay.backend(),
        "kv_unit": replay.kv_unit(),
        "num_workers": sum(worker_counts.values()),
        "workers": worker_counts,
        "router_mode": o.router_mode,
        "router_config": replay.router_config or None,
        "router_overlap_hit_rate": snap.router_hit_rate if snap.router_hit_rate >= 0 else None,
        "seed": o.seed,
        "preemptions": cols.preemptions,
        "rejected_requests": snap.rejected,
        "unfinished_requests": unfinished,
        # Requests left waiting when no event remained: a preempted request that grew beyond
        # the whole KV cache blocks its worker's queue for good.
        "stranded_requests": unfinished if sim.is_finished() and not replay.time_limited() else 0,
        "compiled_engine": _compiled(),
    }
    planner = replay.planner
    if planner is not None and replay.planner_config is not None:
        run["planner"] = planner_report_section(
            replay.planner_config, planner.gpus, planner.events, planner.total_ticks,
            planner.gpu_hours, summary["gpu_hours"])
    report = Report(summary, run, cols, replay.workload, RecordLayout(
        topo.disaggregated, topo.router_mode == ROUTER_KV, topo.num_prefill,
        replay.pools[0].config.block_size))
    report.worker_samples = {
        "t_ms": list(sim.sample_t_ms), "worker": list(sim.sample_worker),
        "kind": list(sim.sample_kind), "kv_blocks": list(sim.sample_kv_blocks),
        "kv_capacity": list(sim.sample_kv_capacity), "waiting": list(sim.sample_waiting),
        "running": list(sim.sample_running)}
    if planner is not None and replay.planner_config is not None:
        report.planner_events = list(planner.events)
        report.planner_ticks = planner.total_ticks
        report.planner_snapshots = list(planner.snapshots)
        report.planner_sla = (replay.planner_config.ttft_ms, replay.planner_config.itl_ms)
    return report


def _compiled() -> bool:
    from engine import is_compiled

    return is_compiled()


def default_report_path() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    return f"dynosim_replay_report_{stamp}.json"


def write_outputs(report: Report, *, report_json: str | None, report_jsonl: str | None,
                  export_dir: str | None) -> list[str]:
    """Write every requested file; they appear together or (on any error or Ctrl-C) not at all.
    Returns the paths written."""
    obj = report.json_obj()
    with StagedFiles() as staged:
        if report_json:
            write_json_atomic(staged.path_for(report_json), obj)
        records: list[dict[str, Any]] | None = None
        if report_jsonl:
            records = report.records()
            write_jsonl_atomic(staged.path_for(report_jsonl), records)
        if export_dir:
            os.makedirs(export_dir, exist_ok=True)
            join = os.path.join
            write_json_atomic(staged.path_for(join(export_dir, "report.json")), obj)
            write_jsonl_atomic(staged.path_for(join(export_dir, "requests.jsonl")),
                               records if records is not None else report.records())
            write_parquet_atomic(staged.path_for(join(export_dir, "requests.parquet")),
                                 report.frame())
            write_text_atomic(staged.path_for(join(export_dir, "summary.txt")),
                              report.table() + "\n")
            write_parquet_atomic(staged.path_for(join(export_dir, "worker_samples.parquet")),
                                 report.samples_frame())
            write_text_atomic(staged.path_for(join(export_dir, "report.html")), report.html())
            if report.planner_sla is not None:
                report.write_planner_log(
                    str(staged.path_for(join(export_dir, "planner.log.jsonl.gz"))))
        return staged.commit()
