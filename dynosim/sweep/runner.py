"""Run a sweep: expand the grid, check every point, skip what is already done, hand the rest to
an executor, store each outcome as it arrives, then rank and write the tables.

Ctrl-C (or SIGTERM, which the CLI turns into the same) stops the executor; everything finished
so far is already on disk and the tables are written from it, so a rerun resumes."""
from __future__ import annotations

import collections
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
from dynosim.sweep.events import Assembled, LazyTable, Observer, PointFinished, \
    PointProgress, PointQueued, PointStarted, SweepControl, SweepEnded, SweepEvent, \
    SweepStarted
from dynosim.sweep.executors import Executor, Note
from dynosim.sweep.metrics import METRIC_NAMES, point_metrics
from dynosim.sweep.rank import pareto_set, penalty, rank_order, violations
from dynosim.sweep.results import LEAD_COLUMNS, TAIL_COLUMNS, ResultStore
from dynosim.sweep.spec import SweepSpec


def _describe(spec: SweepSpec, combo: tuple[Any, ...]) -> str:
    return ", ".join(f"{a.name}={display_value(v)}" for a, v in zip(spec.axes, combo))


def describe_point(spec: SweepSpec, point: Point) -> str:
    return _describe(spec, tuple(point.values.values()))


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
    cancelled: int = 0  # cancelled or skipped from the live view (not stored: a rerun runs them)
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
              observer: Observer | None = None, control: SweepControl | None = None,
              points: list[Point] | None = None,
              table_every_s: float = 5.0) -> SweepResult:
    """Run every point not already stored. `observer` sees the events of dynosim.sweep.events
    (on this thread); `control` lets another thread pause dispatching, skip, cancel or stop."""
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
    last_tables = time.monotonic()
    emit: Observer = observer if observer is not None else (lambda ev: None)

    def table() -> LazyTable:
        snapshot = dict(done)
        return LazyTable(lambda: Assembled(*assemble(spec, points, snapshot)))

    hash_of = {p.index: p.config_hash for p in todo}

    def each(task_index: int, make: Callable[[int], SweepEvent]) -> None:
        for p in by_hash[hash_of[task_index]]:
            emit(make(p.index))

    def on_skip(t: PointTask) -> None:
        result.cancelled += 1
        view = table()
        for p in by_hash[t.config_hash]:
            emit(PointFinished(p.index, "skipped", None, 0.0, view))

    def on_outcome(o: PointOutcome) -> None:
        nonlocal last_tables
        if o.status == "cancelled":
            result.cancelled += 1
        else:
            for p in by_hash[o.config_hash]:
                meta = _meta(p, o)
                store.save(o, meta)
                done[p.index] = Finished(o.report, o.error, meta)
            result.ran += 1
            if o.status != "ok":
                result.failed += 1
        view = table()
        for p in by_hash[o.config_hash]:
            emit(PointFinished(p.index, o.status, o.error, o.wall_s, view))
        if time.monotonic() - last_tables >= table_every_s:
            store.write_tables(assemble(spec, points, done)[0])
            last_tables = time.monotonic()

    emit(SweepStarted(points, sorted(done), [p.index for p in todo], table()))
    for t in tasks:
        each(t.index, PointQueued)
    if tasks:
        executor = make_executor()
        ctl = control if control is not None else SweepControl()

        def on_note(n: Note) -> None:
            if n.kind == "started":
                each(n.point, lambda i: PointStarted(i, n.worker))
            else:
                each(n.point, lambda i: PointProgress(i, n.sim_ms, n.done, n.total))
            dispatcher.forward_cancels()  # a serial point checks them from inside its run

        dispatcher = _Dispatcher(executor, tasks, ctl, hash_of, on_outcome, on_skip)
        if observer is not None or control is not None:
            executor.set_listener(on_note)
        try:
            dispatcher.run()
        except KeyboardInterrupt:
            result.interrupted = True
            executor.close(cancel=True)
        else:
            result.interrupted = ctl.stopped
            executor.close(cancel=ctl.stopped)
    rows, order, front, best = assemble(spec, points, done)
    result.rows, result.ranked, result.pareto, result.best = rows, order, front, best
    result.files = store.write_tables(rows)
    emit(SweepEnded(result))
    return result


class _Dispatcher:
    """Keeps `executor.slots` tasks in flight, honouring the control's pause, skip, cancel and
    stop requests (checked at least every POLL_S)."""
    POLL_S = 0.1

    def __init__(self, executor: Executor, tasks: list[PointTask], control: SweepControl,
                 hash_of: dict[int, str], on_outcome: Callable[[PointOutcome], None],
                 on_skip: Callable[[PointTask], None]) -> None:
        self.executor = executor
        self.queue = collections.deque(tasks)
        self.control = control
        self.task_of = {t.config_hash: t for t in tasks}
        self.hash_of = hash_of  # point index -> its task's config hash
        self.on_outcome = on_outcome
        self.on_skip = on_skip
        self.in_flight: set[str] = set()

    def _drop_queued(self, h: str) -> bool:
        task = self.task_of.get(h)
        if task is not None and task in self.queue:
            self.queue.remove(task)
            self.on_skip(task)
            return True
        return False

    def forward_cancels(self) -> None:
        for idx in self.control.take_requests():
            h = self.hash_of.get(idx)
            if h is None or self._drop_queued(h):
                continue
            if h in self.in_flight:
                self.executor.cancel(self.task_of[h].index)

    def run(self) -> None:
        ex, ctl = self.executor, self.control
        while True:
            if ctl.stopped:
                return
            self.forward_cancels()
            while self.queue and not ctl.paused and ex.pending() < ex.slots:
                task = self.queue.popleft()
                ex.submit(task)
                self.in_flight.add(task.config_hash)
            if not ex.pending():
                if not self.queue:
                    return
                ctl.wake.wait(self.POLL_S)  # paused with nothing running: wait for a request
                ctl.wake.clear()
                continue
            out = ex.poll_outcome(self.POLL_S)
            if out is not None:
                self.in_flight.discard(out.config_hash)
                self.on_outcome(out)
