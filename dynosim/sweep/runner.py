"""Run a sweep: expand the grid, check every point, skip what is already done, hand the rest to
an executor, store each outcome as it arrives, then rank and write the tables.

Ctrl-C (or SIGTERM, which the CLI turns into the same) stops the executor; everything finished
so far is already on disk and the tables are written from it, so a rerun resumes."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

from dynosim.inputs.errors import InputError
from dynosim.replay import RunOptions
from dynosim.sweep.axes import Point, config_hash, display_value, file_digest, grid, \
    point_config, to_options
from dynosim.sweep.command import command_line
from dynosim.sweep.evaluate import PointOutcome, PointTask, precheck
from dynosim.sweep.executors import Executor, run_all
from dynosim.sweep.metrics import METRIC_NAMES, point_metrics
from dynosim.sweep.rank import pareto_set, penalty, rank_order, violations
from dynosim.sweep.results import LEAD_COLUMNS, TAIL_COLUMNS, ResultStore
from dynosim.sweep.spec import SweepSpec


def _describe(spec: SweepSpec, combo: tuple[Any, ...]) -> str:
    return ", ".join(f"{a.name}={display_value(v)}" for a, v in zip(spec.axes, combo))


def _spec_error(spec: SweepSpec, exc: InputError, combo: tuple[Any, ...]) -> InputError:
    """Point a run-setting error at the axis or base entry that produced it."""
    src = exc.source or ""
    key = "trace" if src == "TRACE" else src.lstrip("-").replace("-", "_")
    if key.startswith("sla_") or key not in RunOptions.__struct_fields__:
        key = key if key in RunOptions.__struct_fields__ else ""
    inner = tuple(exc.field.split(".")) if exc.field else ()
    line = None
    field_path = ("base", key, *inner) if key else ("base",)
    for axis in spec.axes:
        touches = (axis.path[:1] == (key,)) if axis.kind == "path" else (
            key in ("extra_engine_args", "prefill_engine_args", "decode_engine_args",
                    "planner_config", "num_workers"))
        if touches:
            line = axis.line
            field_path = ("axes", axis.name)
    if line is None:
        line = spec.error_line(field_path)
    where = ".".join(field_path)
    detail = f"{exc.field}: " if exc.field and where.startswith("axes") else ""
    return InputError(f"{detail}{exc.message} (at point {_describe(spec, combo)})",
                      source=spec.source, line=line, field=where)


def build_points(spec: SweepSpec) -> list[Point]:
    """Every grid point as RunOptions, each checked by the factory's own validation."""
    combos = grid(spec)
    if not combos:
        raise InputError("the sweep is empty (no grid points)", source=spec.source)
    digests: dict[str, str | None] = {}
    points = []
    for i, combo in enumerate(combos):
        config = point_config(spec, combo)
        try:
            options = to_options(config)
        except msgspec.ValidationError as e:
            text, _, at = str(e).rpartition(" - at `$.")
            key = at.rstrip("`").split(".")[0].split("[")[0]
            raise _spec_error(spec, InputError(text or str(e), source="--" + key), combo) \
                from None
        if options.trace is not None and not os.path.isfile(options.trace):
            raise InputError("trace file not found", source=spec.source,
                             line=spec.error_line(("base", "trace")), field="base.trace")
        try:
            precheck(options)
        except InputError as e:
            raise _spec_error(spec, e, combo) from None
        if options.trace is not None and options.trace not in digests:
            digests[options.trace] = file_digest(options.trace)
        digest = digests.get(options.trace) if options.trace is not None else None
        values = {a.name: display_value(v) for a, v in zip(spec.axes, combo)}
        points.append(Point(i, values, options, config_hash(options, digest)))
    return points


@dataclass
class Finished:
    report: dict[str, Any] | None
    error: str | None
    meta: dict[str, Any]


@dataclass
class SweepResult:
    spec: SweepSpec
    points: list[Point]
    rows: list[dict[str, Any]]  # one per grid point, in grid order
    ranked: list[int]  # point indices, best first (finished points only)
    pareto: set[int]
    best: int | None  # best feasible point
    interrupted: bool = False
    skipped: int = 0  # finished in an earlier run
    ran: int = 0
    failed: int = 0
    files: list[str] = field(default_factory=list)


def _meta(point: Point, outcome: PointOutcome) -> dict[str, Any]:
    return {"point": point.index, "axes": point.values, "config_hash": point.config_hash,
            "status": outcome.status, "wall_s": outcome.wall_s, "worker_rss_mb": outcome.rss_mb,
            "worker": outcome.worker}


def assemble(spec: SweepSpec, points: list[Point], done: dict[int, Finished]
             ) -> tuple[list[dict[str, Any]], list[int], set[int], int | None]:
    """Rows with metrics, feasibility, rank and the Pareto mark."""
    scored: list[tuple[int, dict[str, float | None], float]] = []
    per: dict[int, tuple[dict[str, float | None], list[Any]]] = {}
    for p in points:
        f = done.get(p.index)
        if f is not None and f.report is not None:
            m = point_metrics(f.report)
            vs = violations(m, spec.constraints)
            per[p.index] = (m, vs)
            scored.append((p.index, m, penalty(vs)))
    order = rank_order(scored, spec.rank)
    front = pareto_set(scored, spec.pareto)
    rank_of = {idx: r + 1 for r, idx in enumerate(order)}
    rows = []
    for p in points:
        f = done.get(p.index)
        row: dict[str, Any] = {"point": p.index, **p.values}
        status = "pending" if f is None else ("ok" if f.report is not None else "failed")
        m, vs = per.get(p.index, ({k: None for k in METRIC_NAMES}, []))
        pen = penalty(vs) if status == "ok" else None
        row.update({
            "status": status,
            "feasible": (pen == 0) if pen is not None else None,
            "penalty": pen if pen is None or math.isfinite(pen) else None,
            "violations": "; ".join(v.describe() for v in vs) if status == "ok" else None,
            "rank": rank_of.get(p.index),
            "pareto": p.index in front,
        })
        row.update({k: m.get(k) for k in METRIC_NAMES})
        meta = f.meta if f is not None else {}
        row.update({
            "wall_s": meta.get("wall_s"), "worker_rss_mb": meta.get("worker_rss_mb"),
            "worker": meta.get("worker"), "error": f.error if f is not None else None,
            "config_hash": p.config_hash, "command": command_line(p.options),
        })
        rows.append(row)
    best = next((i for i in order if per[i][1] == []), None)
    return rows, order, front, best


def check_columns(spec: SweepSpec) -> None:
    taken = set(LEAD_COLUMNS) | set(TAIL_COLUMNS) | set(METRIC_NAMES)
    for a in spec.axes:
        if a.name in taken:
            raise InputError(f"axis name '{a.name}' clashes with a results column; rename "
                             "the axis and give its path", source=spec.source, line=a.line,
                             field=f"axes.{a.name}")


def run_sweep(spec: SweepSpec, out_dir: str, make_executor: Callable[[], Executor], *,
              force: bool = False, keep_html: bool = False,
              on_progress: Callable[[str], None] | None = None,
              points: list[Point] | None = None,
              table_every_s: float = 5.0) -> SweepResult:
    check_columns(spec)
    points = points if points is not None else build_points(spec)
    store = ResultStore(out_dir)
    store.prepare()
    done: dict[int, Finished] = {}
    todo: list[Point] = []
    for p in points:
        stored = None if force else store.load(p.config_hash)
        if stored is not None and (not keep_html or store.html_path(p.config_hash).exists()):
            stored = dict(stored)
            meta = stored.pop("sweep", {})
            done[p.index] = Finished(stored, None, meta)
        else:
            todo.append(p)
    skipped = len(done)
    by_hash: dict[str, list[Point]] = {}
    for p in todo:
        by_hash.setdefault(p.config_hash, []).append(p)
    tasks = [PointTask(ps[0].index, h, ps[0].options, keep_html) for h, ps in by_hash.items()]
    result = SweepResult(spec, points, [], [], set(), None, skipped=skipped)
    total = len(points)
    last_tables = time.monotonic()

    def on_outcome(o: PointOutcome) -> None:
        nonlocal last_tables
        for p in by_hash[o.config_hash]:
            meta = _meta(p, o)
            store.save(o, meta)
            done[p.index] = Finished(o.report, o.error, meta)
        result.ran += 1
        if o.status != "ok":
            result.failed += 1
        if on_progress is not None:
            p = by_hash[o.config_hash][0]
            state = "ok" if o.status == "ok" else f"FAILED: {o.error}"
            on_progress(f"[{len(done)}/{total}] {_describe(spec, tuple(p.values.values()))}: "
                        f"{state} ({o.wall_s:.1f} s)")
        if time.monotonic() - last_tables >= table_every_s:
            store.write_tables(assemble(spec, points, done)[0])
            last_tables = time.monotonic()

    if tasks:
        executor = make_executor()
        try:
            run_all(executor, tasks, on_outcome)
        except KeyboardInterrupt:
            result.interrupted = True
            executor.close(cancel=True)
        else:
            executor.close()
    rows, order, front, best = assemble(spec, points, done)
    result.rows, result.ranked, result.pareto, result.best = rows, order, front, best
    result.files = store.write_tables(rows)
    return result
