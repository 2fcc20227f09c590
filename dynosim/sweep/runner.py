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
from dynosim.sweep.axes import Point, combo_at, config_hash, display_value, file_digest, \
    grid, point_config, space_size, to_options
from dynosim.sweep.capacity import CAPACITY_COLUMNS, Bisection, capacity_row, probe_options
from dynosim.sweep.command import command_line
from dynosim.sweep.evaluate import PointOutcome, PointTask, precheck
from dynosim.sweep.executors import Executor
from dynosim.sweep.metrics import METRIC_NAMES, point_metrics
from dynosim.sweep.rank import pareto_set, penalty, rank_order, violations
from dynosim.sweep.search import Strategy, make_strategy
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


def build_point(spec: SweepSpec, index: int, combo: tuple[Any, ...],
                digests: dict[str, str | None]) -> Point:
    """One grid point as RunOptions, checked by the factory's own validation."""
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
    return Point(index, values, options, config_hash(options, digest))


def build_points(spec: SweepSpec) -> list[Point]:
    """Every grid point, each checked before anything runs."""
    combos = grid(spec)
    if not combos:
        raise InputError("the sweep is empty (no grid points)", source=spec.source)
    digests: dict[str, str | None] = {}
    return [build_point(spec, i, combo, digests) for i, combo in enumerate(combos)]


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
    skipped: int = 0  # finished in an earlier run
    ran: int = 0
    failed: int = 0
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

    def __init__(self, make_executor: Callable[[], Executor], store: ResultStore, *,
                 force: bool, keep_html: bool) -> None:
        self.make_executor = make_executor
        self.executor: Executor | None = None
        self.store = store
        self.force = force
        self.keep_html = keep_html
        self.waiting: dict[str, list[Point]] = {}  # hash in flight -> points it answers

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
        if self.executor is None:
            self.executor = self.make_executor()
        self.executor.submit(PointTask(p.index, p.config_hash, p.options, self.keep_html))
        self.waiting[p.config_hash] = [p]
        return True

    def next(self) -> tuple[PointOutcome, list[tuple[Point, Finished]]]:
        assert self.executor is not None
        o = self.executor.next_outcome()
        answered = []
        for p in self.waiting.pop(o.config_hash, []):
            meta = _meta(p, o)
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
              on_progress: Callable[[str], None] | None = None,
              points: list[Point] | None = None,
              table_every_s: float = 5.0) -> SweepResult:
    check_columns(spec)
    space = PointSpace(spec, points)
    store = ResultStore(out_dir)
    store.prepare()
    runs = _Runs(make_executor, store, force=force, keep_html=keep_html)
    strategy: Strategy = make_strategy(spec)
    done: dict[int, Finished] = {}
    visited: dict[int, Point] = {}
    search = spec.search
    result = SweepResult(spec, [], [], [], set(), None)
    grid_mode = search.method == "grid"
    total = space.size if grid_mode else search.trials
    last_tables = time.monotonic()

    def visited_points() -> list[Point]:
        return [visited[i] for i in sorted(visited)]

    def finish(p: Point, f: Finished, reused: bool) -> None:
        nonlocal last_tables
        done[p.index] = f
        strategy.tell(p.index, _metrics(f), reused)
        if on_progress is not None and not reused:
            state = "ok" if f.error is None else f"FAILED: {f.error}"
            count = len(done) if grid_mode else strategy.evaluated
            wall = f.meta.get("wall_s")
            on_progress(f"[{count}/{total}] {_describe(spec, tuple(p.values.values()))}: "
                        f"{state}" + (f" ({wall:.1f} s)" if wall is not None else ""))
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
            finish(p, Finished(None, str(e), _failed_meta(index, values)), False)
            return
        visited[index] = p
        stored = runs.stored(p)
        if stored is not None:
            result.skipped += 1
            finish(p, stored, True)
        else:
            runs.submit(p)

    if grid_mode:  # every point is a row, pending until it runs
        visited.update((p.index, p) for p in (space.get(i) for i in range(space.size)))
    try:
        while True:
            n = runs.free()
            asked = strategy.ask(n) if n > 0 else []
            for index in asked:
                propose(index)
            if asked:
                continue  # reused points leave slots free: ask again before waiting
            if not runs.pending():
                break
            outcome, answered = runs.next()
            result.ran += 1
            if outcome.status != "ok":
                result.failed += 1
            for k, (p, f) in enumerate(answered):
                finish(p, f, k > 0)  # the first ran; the others share its config hash
        if spec.capacity is not None:
            _capacity_search(spec, space, runs, done, visited_points(), result, on_progress)
    except KeyboardInterrupt:
        result.interrupted = True
        runs.close(cancel=True)
    else:
        runs.close()
    result.points = visited_points()
    result.search = SearchStats(search.method, space.size, search.trials, strategy.evaluated,
                                strategy.repeats, strategy.optimizer_seconds())
    rows, order, front, best = assemble(spec, result.points, done, result.capacity)
    result.rows, result.ranked, result.pareto, result.best = rows, order, front, best
    result.files = store.write_tables(rows)
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


def _capacity_search(spec: SweepSpec, space: PointSpace, runs: _Runs,
                     done: dict[int, Finished], points: list[Point], result: SweepResult,
                     on_progress: Callable[[str], None] | None) -> None:
    """Bisect each candidate's load, one probe in flight per candidate, candidates side by
    side on the executor; probes are ordinary points (stored by hash, so a rerun reuses
    them)."""
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
        if on_progress is not None and result.capacity[cand].done:
            b = result.capacity[cand]
            on_progress(f"capacity of #{cand} "
                        f"({_describe(spec, tuple(space.get(cand).values.values()))}): "
                        f"{b.describe(cap.load)}")

    while True:
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
        _, answered = runs.next()
        result.ran += 1
        if answered:
            f = answered[0][1]
            for cand, load in probing.pop(answered[0][0].config_hash, []):
                result.capacity[cand].in_flight = False
                told(cand, load, f)
