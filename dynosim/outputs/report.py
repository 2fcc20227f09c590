"""The report value every output renders from: terminal table, JSON, JSONL, Parquet, HTML.

`build_report` makes it from explicit inputs (`ReportInputs`, gathered by `Replay.report()`);
the value holds no renderer: `outputs.files.write_outputs` renders the HTML once per call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from dynosim.outputs.planner_log import planner_report_section, stdout_lines
from dynosim.outputs.records import RecordLayout, flat_frame, records_table
from dynosim.outputs.summary import build_summary
from dynosim.outputs.table import format_report_table
from engine.metrics import MetricColumns
from engine.samples import WorkerSamples
from engine.pool import POOL_AGG, POOL_DECODE, POOL_PREFILL
from engine.workload import Workload
from planner.config import PlannerConfig, ResolvedGpus
from planner.types import ScalingEvent, TickSnapshot

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
        self.planner_snapshots: list[TickSnapshot] = []
        self.planner_sla: tuple[float, float] | None = None
        # fixed-interval per-worker samples (engine/samples.py), see samples_frame()
        self.worker_samples = WorkerSamples(0.0)
        self._records: pl.DataFrame | None = None

    def planner_lines(self, log_path: str | None = None) -> list[str]:
        """`Scaling events:` lines and `Planner ticks: N`, as the reference prints them."""
        if self.planner_sla is None:
            return []
        return stdout_lines(self.planner_events, self.planner_ticks, log_path)

    def json_obj(self) -> dict[str, Any]:
        """The reference's summary keys at top level (scripts keep working) plus our run info."""
        return {**self.summary, "dynosim": self.run}

    def table(self) -> str:
        return format_report_table(self.summary, int(self.run.get("rejected_requests") or 0))

    def records_table(self) -> pl.DataFrame:
        """Every request's record as a row, nested fields included (built once: JSONL, the
        Parquet frame and the HTML report all read it)."""
        if self._records is None:
            self._records = records_table(self._cols, self._workload, self._layout)
        return self._records

    def records(self) -> list[dict[str, Any]]:
        """The records as dicts (one Python object tree per request: for tests and small runs;
        the writers stream from records_table())."""
        return self.records_table().to_dicts()

    def frame(self) -> pl.DataFrame:
        """The flat scalar fields of the records (the Parquet file)."""
        return flat_frame(self.records_table())

    def samples_frame(self) -> pl.DataFrame:
        """Per-worker time series sampled every second of simulated time: time_s, worker,
        pool, kv_blocks_active, kv_blocks_total, kv_usage, waiting, running."""
        d = self.worker_samples
        kinds = {POOL_AGG: "agg", POOL_PREFILL: "prefill", POOL_DECODE: "decode"}
        frame = pl.DataFrame({
            "time_s": pl.Series(d.t_ms, dtype=pl.Float64) / 1000.0,
            "worker": pl.Series(d.worker, dtype=pl.Int64),
            "pool": pl.Series([kinds.get(k, str(k)) for k in d.kind], dtype=pl.Utf8),
            "kv_blocks_active": pl.Series(d.kv_blocks, dtype=pl.Int64),
            "kv_blocks_total": pl.Series(d.kv_capacity, dtype=pl.Int64),
            "waiting": pl.Series(d.waiting, dtype=pl.Int64),
            "running": pl.Series(d.running, dtype=pl.Int64),
        })
        return frame.with_columns(
            (pl.col("kv_blocks_active") / pl.col("kv_blocks_total")).alias("kv_usage"))


@dataclass(frozen=True)
class PlannerRecord:
    """What the planner in the loop leaves for the report."""

    config: PlannerConfig
    gpus: ResolvedGpus
    events: list[ScalingEvent]
    snapshots: list[TickSnapshot]
    total_ticks: int
    gpu_hours: float


@dataclass(frozen=True)
class ReportInputs:
    """Everything a report is made of, gathered from a replay by `Replay.report()`."""

    cols: MetricColumns  # one row per finished request, completion order
    workload: Workload
    options: dict[str, Any]  # the run's options, as given
    sla_ms: tuple[float | None, float | None, float | None]  # TTFT, ITL, E2E
    disaggregated: bool
    worker_counts: dict[str, int]  # {"aggregated": n} or {"prefill": p, "decode": d}
    worker_seconds: tuple[float, float]  # prefill, decode (agg workers count as decode)
    gpus_per_worker: tuple[int, int]  # prefill, decode
    engine_args: dict[str, Any]  # normalised: one section, or {"prefill": ..., "decode": ...}
    router_mode: str
    router_config: dict[str, Any] | None
    router_hit_rate: float | None
    seed: int
    sim_time_ms: float
    engine_wall_ms: float
    finished: bool  # every request reached a terminal state
    rejected: int
    unfinished: int
    stranded: int  # left waiting when no event remained (outgrew the whole KV cache)
    compiled_engine: bool
    layout: RecordLayout
    worker_samples: WorkerSamples  # per-worker samples every simulated second
    planner: PlannerRecord | None
    backend: str = "vllm"  # engine.backend (both pools' when they differ: "prefill/decode")
    kv_unit: str = "blocks of 64 tokens"  # what the workers' KV counts are in


def build_report(i: ReportInputs) -> Report:
    cols = i.cols
    prefill_s, decode_s = i.worker_seconds
    prefill_gpus, decode_gpus = i.gpus_per_worker
    summary = build_summary(
        cols,
        num_requests=len(i.workload),
        prefill_worker_seconds=prefill_s,
        decode_worker_seconds=decode_s,
        prefill_gpus_per_worker=prefill_gpus,
        decode_gpus_per_worker=decode_gpus,
        wall_time_ms=i.engine_wall_ms,
        sla_ttft_ms=i.sla_ms[0],
        sla_itl_ms=i.sla_ms[1],
        sla_e2e_ms=i.sla_ms[2],
    )
    run: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "version": VERSION,
        # True only when every request reached a terminal state (not cut by
        # --max-sim-time-seconds, not stranded).
        "finished": i.finished,
        "sim_time_ms": i.sim_time_ms,
        "options": i.options,
        "engine_args": i.engine_args,
        "topology": "disaggregated" if i.disaggregated else "aggregated",
        "backend": i.backend,
        "kv_unit": i.kv_unit,
        "num_workers": sum(i.worker_counts.values()),
        "workers": i.worker_counts,
        "router_mode": i.router_mode,
        "router_config": i.router_config,
        "router_overlap_hit_rate": i.router_hit_rate,
        "seed": i.seed,
        "preemptions": cols.preemptions,
        "rejected_requests": i.rejected,
        "unfinished_requests": i.unfinished,
        "stranded_requests": i.stranded,
        "compiled_engine": i.compiled_engine,
    }
    planner = i.planner
    if planner is not None:
        run["planner"] = planner_report_section(
            planner.config, planner.gpus, planner.events, planner.total_ticks,
            planner.gpu_hours, summary["gpu_hours"])
    report = Report(summary, run, cols, i.workload, i.layout)
    report.worker_samples = i.worker_samples
    if planner is not None:
        report.planner_events = list(planner.events)
        report.planner_ticks = planner.total_ticks
        report.planner_snapshots = list(planner.snapshots)
        report.planner_sla = (planner.config.ttft_ms, planner.config.itl_ms)
    return report
