# Over 450 lines on purpose: one concept, the dispatch loop (grid or search strategy, controls, resume, tables).
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
from dynosim.interrupts import Terminated
from dynosim.replay import RunOptions, ignored_settings
from dynosim.sweep.axes import Point, combo_at, config_hash, display_value, file_digest, \
    grid, point_config, space_size, to_options
from dynosim.sweep.capacity import CAPACITY_COLUMNS, Bisection, capacity_row, probe_options
from dynosim.sweep.command import command_line
from dynosim.sweep.evaluate import PointOutcome, PointTask, WorkloadCache, precheck, \
    workload_key
from dynosim.sweep.events import Assembled, LazyTable, Observer, PointFinished, \
    PointProgress, PointQueued, PointReused, PointStarted, SweepControl, SweepEnded, \
    SweepStarted
from dynosim.sweep.executors import Executor, Note
from dynosim.sweep.metrics import METRIC_NAMES, point_metrics
from dynosim.sweep.rank import pareto_set, penalty, rank_order, violations
from dynosim.sweep.search import Strategy, make_strategy
from dynosim.sweep.results import LEAD_COLUMNS, TAIL_COLUMNS, ResultStore
from dynosim.sweep.spec import MAPPING_SETTINGS, SweepSpec


def _describe(spec: SweepSpec, combo: tuple[Any, ...]) -> str:
    return ", ".join(f"{a.name}={display_value(v)}" for a, v in zip(spec.axes, combo))


def describe_point(spec: SweepSpec, point: Point) -> str:
    return _describe(spec, tuple(point.values.values()))


def describe_index(spec: SweepSpec, index: int) -> str:
    """The axis values of grid point `index` (without building the point)."""
    return _describe(spec, combo_at(spec, index))


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


def build_point(spec: SweepSpec, index: int, combo: tuple[Any, ...],
                digests: dict[str, str | None]) -> Point:
    """One grid point as RunOptions, checked by the factory's own validation."""
    config = point_config(spec, combo)
    try:
        options = to_options(config)
    except msgspec.ValidationError as e:
        text, _, at = str(e).rpartition(" - at `$.")
        key = at.rstrip("`").split(".")[0].split("[")[0]
        if text and key in config and key not in MAPPING_SETTINGS:
            text = f"{text} {config[key]!r}"  # which value: the line may hold a list of them
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
    return Point(index, values, options, config_hash(options, digest))


def build_points(spec: SweepSpec) -> list[Point]:
    """Every grid point, each checked before anything runs."""
    combos = grid(spec)
    if not combos:
        raise InputError("the sweep is empty (no grid points)", source=spec.source)
    digests: dict[str, str | None] = {}
    points = [build_point(spec, i, combo, digests) for i, combo in enumerate(combos)]
    check_unused(spec, points)
    return points


def check_unused(spec: SweepSpec, points: list[Point]) -> None:
    """Refuse a setting the spec gives (in base, or as an axis path) that no point uses, as the
    CLI refuses a flag its run would ignore (a `request_rate` next to a trace, say). A setting
    some points use is fine: a topology axis makes base `num_workers` matter to its agg points."""
    given = {k: ("base", k) for k in spec.base}
    for axis in spec.axes:
        if axis.kind == "path":
            given[axis.path[0]] = ("axes", axis.name)
    unused: dict[str, str] | None = None
    for p in points:
        ignored = ignored_settings(p.options)
        unused = {k: why for k, why in ignored.items() if k in given and
                  (unused is None or k in unused)}
        if not unused:
            return
    assert unused is not None
    key, why = next(iter(unused.items()))
    where = given[key]
    raise InputError(f"{key} {why}; no point of this sweep uses it", source=spec.source,
                     line=spec.error_line(where), field=".".join(where))


class PointSpace:
    """Grid points by index. A grid sweep builds (and checks) them all up front; a search
    builds the first to check the base, then each point as it is proposed (a search visits
    a few points of a space that may be too large to list)."""

    def __init__(self, spec: SweepSpec, points: list[Point] | None = None) -> None:
        self.spec = spec
        self.size = space_size(spec)
        self.digests: dict[str, str | None] = {}
        if points is None:
            points = build_points(spec) if spec.search.method == "grid" else [self.build(0)]
        self._points = {p.index: p for p in points}

    def build(self, index: int) -> Point:
        return build_point(self.spec, index, combo_at(self.spec, index), self.digests)

    def get(self, index: int) -> Point:
        p = self._points.get(index)
        if p is None:
            p = self._points[index] = self.build(index)
        return p

    def digest(self, options: RunOptions) -> str | None:
        return self.digests.get(options.trace) if options.trace is not None else None


def check_traces(points: list[Point]) -> None:
    """Parse each distinct trace the points read, once, before anything runs: a broken trace
    fails the sweep with its file:line (exit 2, nothing written) instead of failing every
    point. (Synthetic workloads are built per point: a bad one fails that point alone.)"""
    cache = WorkloadCache()
    seen: set[tuple[Any, ...]] = set()
    for p in points:
        if p.options.trace is not None and workload_key(p.options) not in seen:
            seen.add(workload_key(p.options))
            cache.base(p.options)
            cache = WorkloadCache()  # one parsed trace held at a time


def point_at(spec: SweepSpec, index: int) -> Point:
    """Grid point `index`, built and checked on its own (a search's points are not listed)."""
    return build_point(spec, index, combo_at(spec, index), {})


def check_space(spec: SweepSpec) -> int:
    """Check a search's base before anything runs (its points are checked as they are
    proposed); the space's size."""
    if space_size(spec) == 0:
        raise InputError("the sweep is empty (no grid points)", source=spec.source)
    PointSpace(spec)
    return space_size(spec)


@dataclass
class Finished:
    report: dict[str, Any] | None
    error: str | None
    meta: dict[str, Any]


@dataclass
class SearchStats:
    method: str
    space: int  # grid points in the space
    trials: int | None  # the budget (None: grid, every point)
    evaluated: int = 0  # points simulated in this run
    repeats: int = 0  # model suggestions answered from memory
    optimizer_s: float = 0.0  # time spent choosing points


@dataclass
class SweepResult:
    spec: SweepSpec
    points: list[Point]
    rows: list[dict[str, Any]]  # one per grid point (a search: per visited point), grid order
    ranked: list[int]  # point indices, best first (finished points only)
    pareto: set[int]
    best: int | None  # best feasible point
    interrupted: bool = False
    terminated: bool = False  # stopped by SIGTERM (exit status 143, not 130)
    skipped: int = 0  # finished in an earlier run
    reused: set[int] = field(default_factory=set)  # those points (their results read from disk)
    ran: int = 0
    failed: int = 0
    cancelled: int = 0  # cancelled or skipped from the live view (not stored: a rerun runs them)
    files: list[str] = field(default_factory=list)
    search: SearchStats | None = None
    capacity: dict[int, Bisection] = field(default_factory=dict)  # per candidate point


def _meta(point: Point, outcome: PointOutcome) -> dict[str, Any]:
    return {"point": point.index, "axes": point.values, "config_hash": point.config_hash,
            "status": outcome.status, "wall_s": outcome.wall_s, "worker_rss_mb": outcome.rss_mb,
            "worker": outcome.worker}


def assemble(spec: SweepSpec, points: list[Point], done: dict[int, Finished],
             capacity: dict[int, Bisection] | None = None
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
        if spec.capacity is not None:
            row.update(capacity_row(capacity.get(p.index) if capacity else None))
        meta = f.meta if f is not None else {}
        row.update({
            "wall_s": meta.get("wall_s"), "worker_rss_mb": meta.get("worker_rss_mb"),
            "worker": meta.get("worker"), "error": f.error if f is not None else None,
            "config_hash": p.config_hash or None,
            "command": command_line(p.options) if p.config_hash else None,
        })
        rows.append(row)
    best = next((i for i in order if per[i][1] == []), None)
    return rows, order, front, best


def check_columns(spec: SweepSpec) -> None:
    taken = set(LEAD_COLUMNS) | set(TAIL_COLUMNS) | set(METRIC_NAMES)
    if spec.capacity is not None:
        taken |= set(CAPACITY_COLUMNS)
    for a in spec.axes:
        if a.name in taken:
            raise InputError(f"axis name '{a.name}' clashes with a results column; rename "
                             "the axis and give its path", source=spec.source, line=a.line,
                             field=f"axes.{a.name}")


def _failed_meta(index: int, values: dict[str, Any]) -> dict[str, Any]:
    return {"point": index, "axes": values, "config_hash": None, "status": "failed",
            "wall_s": None, "worker_rss_mb": None, "worker": None}


class _Runs:
    """Points in flight on one executor (made on first use, so a finished sweep starts
    none), deduplicated by config hash, with their outcomes stored as they arrive."""

    POLL_S = 0.1  # how often a wait for an outcome looks at the sweep's controls

    def __init__(self, make_executor: Callable[[], Executor], store: ResultStore, *,
                 force: bool, keep_html: bool, listener: Callable[[Note], None] | None,
                 timeout_s: float | None = None) -> None:
        self.make_executor = make_executor
        self.executor: Executor | None = None
        self.store = store
        self.force = force
        self.keep_html = keep_html
        self.listener = listener
        # --point-timeout: a point running longer is cancelled and recorded as failed (the
        # cancel needs the workers' progress notes, so a timeout turns them on)
        self.timeout_s = timeout_s
        self.started: dict[int, float] = {}  # running point index -> monotonic start
        self.timed_out: set[int] = set()
        if timeout_s is not None:
            outer = listener

            def on_note(n: Note) -> None:
                if n.kind == "started" and n.point >= 0:  # capacity probes share index -1:
                    self.started[n.point] = time.monotonic()  # a cancel would hit them all
                if outer is not None:
                    outer(n)
                self.check_timeouts()  # a serial point is only interruptible from here

            self.listener = on_note
        self.waiting: dict[str, list[Point]] = {}  # hash in flight -> points it answers
        self.task_hash: dict[int, str] = {}  # a running task's point index -> its hash

    def start(self) -> Executor:
        """The executor, made now if it is not yet (a Ray head that does not answer fails
        here, before anything is written)."""
        if self.executor is None:
            self.executor = self.make_executor()
            if self.listener is not None:
                self.executor.set_listener(self.listener)
        return self.executor

    def free(self) -> int:
        ex = self.executor
        return 1 if ex is None else ex.slots - ex.pending()

    def pending(self) -> int:
        return 0 if self.executor is None else self.executor.pending()

    def stored(self, p: Point) -> Finished | None:
        stored = None if self.force else self.store.load(p.config_hash)
        if stored is None or (self.keep_html and not self.store.html_path(p.config_hash).exists()):
            return None
        stored = dict(stored)
        meta = stored.pop("sweep", {})
        return Finished(stored, None, meta)

    def submit(self, p: Point) -> bool:
        """Run `p` (False: a point with its hash is already running and will answer it)."""
        if p.config_hash in self.waiting:
            self.waiting[p.config_hash].append(p)
            return False
        executor = self.start()
        executor.submit(PointTask(p.index, p.config_hash, p.options, self.keep_html))
        self.waiting[p.config_hash] = [p]
        if p.index >= 0:
            self.task_hash[p.index] = p.config_hash
        return True

    def sharing(self, task_index: int) -> list[Point]:
        """The points a running task answers (none for a capacity probe)."""
        return self.waiting.get(self.task_hash.get(task_index, ""), [])

    def cancel(self, index: int) -> None:
        h = self.task_hash.get(index)
        if h is not None and h in self.waiting and self.executor is not None:
            self.executor.cancel(self.waiting[h][0].index)

    def check_timeouts(self) -> None:
        if self.timeout_s is None or self.executor is None:
            return
        now = time.monotonic()
        for index, t0 in list(self.started.items()):
            if now - t0 > self.timeout_s and index not in self.timed_out:
                self.timed_out.add(index)
                self.executor.cancel(index)

    def poll(self) -> tuple[PointOutcome, list[tuple[Point, Finished]]] | None:
        """The next outcome (stored unless cancelled), or None after POLL_S."""
        assert self.executor is not None
        self.check_timeouts()
        o = self.executor.poll_outcome(self.POLL_S)
        if o is None:
            return None
        self.started.pop(o.index, None)
        if o.status == "cancelled" and o.index in self.timed_out:  # ours, not the user's
            self.timed_out.discard(o.index)
            o = msgspec.structs.replace(
                o, status="failed", error=f"timed out after {self.timeout_s:g} s "
                f"(--point-timeout)")
        points = self.waiting.pop(o.config_hash, [])
        self.task_hash.pop(o.index, None)
        answered = []
        for p in points:
            meta = _meta(p, o)
            if o.status != "cancelled":  # not stored: a rerun runs it
                self.store.save(o, meta)
            answered.append((p, Finished(o.report, o.error, meta)))
        return o, answered

    def close(self, cancel: bool = False) -> None:
        if self.executor is not None:
            self.executor.close(cancel=cancel)
            self.executor = None


def _metrics(f: Finished) -> dict[str, float | None] | None:
    return point_metrics(f.report) if f.report is not None else None


def run_sweep(spec: SweepSpec, out_dir: str, make_executor: Callable[[], Executor], *,
              force: bool = False, keep_html: bool = False,
              observer: Observer | None = None, control: SweepControl | None = None,
              points: list[Point] | None = None,
              table_every_s: float = 5.0,
              point_timeout_s: float | None = None) -> SweepResult:
    """Run the points the spec's search picks (a grid: every point not already stored).
    `observer` sees the events of dynosim.sweep.events (on this thread); `control` lets
    another thread pause dispatching, skip or cancel a point, or stop."""
    check_columns(spec)
    space = PointSpace(spec, points)
    store = ResultStore(out_dir)  # its directories appear with its first file
    ctl = control if control is not None else SweepControl()
    emit: Observer = observer if observer is not None else (lambda ev: None)
    strategy: Strategy = make_strategy(spec)
    done: dict[int, Finished] = {}
    visited: dict[int, Point] = {}
    known: dict[int, Finished] = {}  # a grid's points found on disk before it starts
    skip: set[int] = set()  # grid points skipped before they were dispatched
    search = spec.search
    result = SweepResult(spec, [], [], [], set(), None)
    grid_mode = search.method == "grid"
    last_tables = time.monotonic()

    def visited_points() -> list[Point]:
        return [visited[i] for i in sorted(visited)]

    def table() -> LazyTable:
        snapshot, pts = dict(done), visited_points()
        return LazyTable(lambda: Assembled(*assemble(spec, pts, snapshot)))

    def on_note(n: Note) -> None:
        for p in runs.sharing(n.point):
            emit(PointStarted(p.index, n.worker) if n.kind == "started"
                 else PointProgress(p.index, n.sim_ms, n.done, n.total))
        forward_cancels()  # a serial point checks them from inside its run

    runs = _Runs(make_executor, store, force=force, keep_html=keep_html,
                 listener=on_note if observer is not None or control is not None else None,
                 timeout_s=point_timeout_s)

    def forward_cancels() -> None:
        for index in ctl.take_requests():
            if index in runs.task_hash:
                runs.cancel(index)
            elif grid_mode and index in visited and index not in done and index not in skip:
                skip.add(index)  # still queued: not run when its turn comes
                result.cancelled += 1
                emit(PointFinished(index, "skipped", None, 0.0, table()))

    def finish(p: Point, f: Finished, status: str, reused: bool,
               from_disk: bool = False) -> None:
        """One point's result: told to the strategy (`reused`: it cost no simulation), kept
        unless cancelled, announced (a search's point found on disk as reused)."""
        nonlocal last_tables
        if status == "cancelled":
            result.cancelled += 1
            strategy.tell(p.index, None, True)  # costs no budget; not stored
            emit(PointFinished(p.index, status, None, f.meta.get("wall_s") or 0.0, table()))
            return
        done[p.index] = f
        strategy.tell(p.index, _metrics(f), reused)
        if from_disk:
            if not grid_mode:  # a grid announces its reused points when it starts
                emit(PointReused(p.index, table()))
            return
        emit(PointFinished(p.index, status, f.error, f.meta.get("wall_s") or 0.0, table()))
        if time.monotonic() - last_tables >= table_every_s:
            store.write_tables(assemble(spec, visited_points(), done)[0])
            last_tables = time.monotonic()

    def propose(index: int) -> None:
        """One proposed grid index: reuse its stored result, or run it."""
        try:
            p = space.get(index)
        except InputError as e:  # a search's point the factory rejects: a failed point
            combo = combo_at(spec, index)
            values = {a.name: display_value(v) for a, v in zip(spec.axes, combo)}
            p = Point(index, values, RunOptions(), "")
            visited[index] = p
            result.failed += 1
            emit(PointQueued(index))
            finish(p, Finished(None, str(e), _failed_meta(index, values)), "failed", False)
            return
        if grid_mode and index in skip:
            strategy.tell(index, None, True)
            return
        visited[index] = p
        stored = known.pop(index, None) if grid_mode else runs.stored(p)
        if stored is not None:
            result.skipped += 1
            result.reused.add(index)
            finish(p, stored, "ok", True, from_disk=True)
            return
        if not grid_mode:
            emit(PointQueued(index))
        runs.submit(p)

    if grid_mode:  # every point is a row from the start; those on disk are reused
        for p in (space.get(i) for i in range(space.size)):
            visited[p.index] = p
            stored = runs.stored(p)
            if stored is not None:
                known[p.index] = done[p.index] = stored
        if len(known) < len(visited):
            runs.start()  # something to run: up before the sweep is announced
        emit(SweepStarted(visited_points(), sorted(known),
                          [i for i in visited if i not in known], table()))
        for i in visited:
            if i not in known:
                emit(PointQueued(i))
    else:
        runs.start()
        emit(SweepStarted([], [], [], table(), to_run=search.trials))
    try:
        while not ctl.stopped:
            forward_cancels()
            n = runs.free() if not ctl.paused else 0
            asked = strategy.ask(n) if n > 0 else []
            for index in asked:
                propose(index)
            if asked:
                continue  # reused points leave slots free: ask again before waiting
            if not runs.pending():
                if not ctl.paused:
                    break
                ctl.wake.wait(_Runs.POLL_S)  # paused with nothing running: wait for a request
                ctl.wake.clear()
                continue
            polled = runs.poll()
            if polled is None:
                continue
            outcome, answered = polled
            if outcome.status != "cancelled":
                result.ran += 1
                if outcome.status != "ok":
                    result.failed += 1
            for k, (p, f) in enumerate(answered):
                finish(p, f, outcome.status, k > 0)  # the first ran; others share its hash
        if spec.capacity is not None and not ctl.stopped:
            _capacity_search(spec, space, runs, ctl, done, visited_points(), result)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM where the caller made it Terminated
        result.interrupted = True
        result.terminated = isinstance(exc, Terminated)
        runs.close(cancel=True)
    else:
        result.interrupted = ctl.stopped
        runs.close(cancel=ctl.stopped)
    result.points = visited_points()
    result.search = SearchStats(search.method, space.size, search.trials, strategy.evaluated,
                                strategy.repeats, strategy.optimizer_seconds())
    rows, order, front, best = assemble(spec, result.points, done, result.capacity)
    result.rows, result.ranked, result.pareto, result.best = rows, order, front, best
    result.files = store.write_tables(rows)
    emit(SweepEnded(result))
    return result


def _capacity_candidates(spec: SweepSpec, points: list[Point], done: dict[int, Finished]
                         ) -> list[Point]:
    assert spec.capacity is not None
    ok = [p for p in points if p.index in done and done[p.index].report is not None]
    if spec.capacity.candidates == "all":
        return ok
    _, order, front, _ = assemble(spec, ok, done)
    if spec.capacity.candidates == "pareto":
        return [p for p in ok if p.index in front]
    feasible = {p.index for p in ok
                if not violations(point_metrics(done[p.index].report or {}), spec.constraints)}
    return [p for p in ok if p.index in feasible]


def _capacity_search(spec: SweepSpec, space: PointSpace, runs: _Runs, ctl: SweepControl,
                     done: dict[int, Finished], points: list[Point],
                     result: SweepResult) -> None:
    """Bisect each candidate's load, one probe in flight per candidate, candidates side by
    side on the executor; probes are ordinary runs (stored by hash, so a rerun reuses them)."""
    cap = spec.capacity
    assert cap is not None
    todo = [p.index for p in _capacity_candidates(spec, points, done)]
    for cand in todo:
        result.capacity[cand] = Bisection(cap.low, cap.high, cap.tolerance, cap.steps)
    probing: dict[str, list[tuple[int, float]]] = {}  # probe hash -> (candidate, load)

    def told(cand: int, load: float, f: Finished) -> None:
        m = _metrics(f)
        ok = m is not None and not violations(m, spec.constraints)
        result.capacity[cand].tell(load, ok, m, f.error)

    while not ctl.stopped:
        for cand in todo:
            b = result.capacity[cand]
            while not b.done and not b.in_flight and runs.free() > 0:
                load = b.next_load()
                base = space.get(cand)
                options = probe_options(base.options, cap.load, load)
                probe = Point(-1, base.values, options,
                              config_hash(options, space.digest(options)))
                stored = runs.stored(probe)
                if stored is not None:
                    told(cand, load, stored)
                    continue
                b.in_flight = True
                probing.setdefault(probe.config_hash, []).append((cand, load))
                runs.submit(probe)
        if not runs.pending():
            break
        polled = runs.poll()
        if polled is None:
            continue
        outcome, answered = polled
        result.ran += 1
        for cand, load in probing.pop(outcome.config_hash, []):
            result.capacity[cand].in_flight = False
            told(cand, load, answered[0][1] if answered else Finished(None, outcome.error, {}))
