"""What a running sweep tells its watchers, and the controls they may use.

`run_sweep(..., observer=f)` calls `f(event)` on the dispatch thread for every event below, in
order. The headless progress bar and the live sweep screen both consume these (through
`SweepState`, which folds them into per-point status, counts and an ETA): one path, not two.

    SweepStarted   the points, which were reused from an earlier run, which will run (a
                   search starts with none and announces each point as it proposes it)
    PointQueued    a point is waiting for a free worker
    PointReused    a search's point found in an earlier run
    PointStarted   a worker began it
    PointProgress  its simulated time and requests done so far (at a coarse cadence)
    PointFinished  ok / failed / cancelled, with the ranked rows of everything finished so far
    SweepEnded     the final result (written tables included)

`SweepControl` is how a watcher steers the dispatch loop from another thread: pause and resume
dispatching, skip a queued point, cancel a running one, stop the sweep."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:
    from dynosim.sweep.axes import Point


@dataclass(frozen=True)
class Assembled:
    rows: list[dict[str, Any]]  # one per point, grid order (see runner.assemble)
    ranked: list[int]
    pareto: set[int]
    best: int | None


@dataclass(frozen=True)
class SweepStarted:
    points: list[Point]
    reused: list[int]  # finished in an earlier run (their rows are already in `table`)
    todo: list[int]
    table: Callable[[], Assembled]
    to_run: int | None = None  # a search's budget (default: len(todo))


@dataclass(frozen=True)
class PointQueued:
    index: int


@dataclass(frozen=True)
class PointReused:
    index: int
    table: Callable[[], Assembled]


@dataclass(frozen=True)
class PointStarted:
    index: int
    worker: str


@dataclass(frozen=True)
class PointProgress:
    index: int
    sim_ms: float
    done: int  # requests completed or rejected
    total: int


@dataclass(frozen=True)
class PointFinished:
    index: int
    status: str  # "ok" | "failed" | "cancelled" | "skipped" (never dispatched)
    error: str | None
    wall_s: float
    table: Callable[[], Assembled]  # ranked rows of every point finished so far (computed on call)


@dataclass(frozen=True)
class SweepEnded:
    result: Any  # the runner's SweepResult (typed loosely: the runner imports this module)


SweepEvent = Union[SweepStarted, PointQueued, PointReused, PointStarted, PointProgress,
                   PointFinished, SweepEnded]
Observer = Callable[[SweepEvent], None]


class LazyTable:
    """`assemble` runs only when a watcher asks for the rows, once per state."""

    def __init__(self, build: Callable[[], Assembled]) -> None:
        self._build = build

    @cached_property
    def value(self) -> Assembled:
        return self._build()

    def __call__(self) -> Assembled:
        return self.value


class SweepControl:
    """Thread-safe requests from a watcher to the dispatch loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resume = threading.Event()
        self._resume.set()
        self.stopped = False
        self._requests: set[int] = set()
        self.wake = threading.Event()  # set on every request so a waiting loop looks again

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def pause(self) -> None:
        self._resume.clear()
        self.wake.set()

    def resume(self) -> None:
        self._resume.set()
        self.wake.set()

    def stop(self) -> None:
        self.stopped = True
        self._resume.set()
        self.wake.set()

    def skip(self, index: int) -> None:
        """Skip a queued point or cancel a running one. Neither is stored (a rerun runs it):
        a queued one ends as "skipped", a running one as "cancelled"."""
        with self._lock:
            self._requests.add(index)
        self.wake.set()

    def take_requests(self) -> set[int]:
        with self._lock:
            out, self._requests = self._requests, set()
        return out


# --- folding the events into what a person looks at -------------------------------------------

QUEUED, RUNNING, DONE, INFEASIBLE, FAILED, CANCELLED, SKIPPED, REUSED, NOT_RUN = (
    "queued", "running", "done", "infeasible", "failed", "cancelled", "skipped", "reused",
    "not run")


@dataclass
class PointState:
    status: str = NOT_RUN
    sim_ms: float = 0.0
    done: int = 0
    total: int = 0
    worker: str = ""
    error: str | None = None
    wall_s: float | None = None
    reused: bool = False  # its result came from an earlier run (status REUSED or INFEASIBLE)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class SweepState:
    """Per-point status and the sweep's counts, elapsed time and ETA, from the events alone.
    `clock` is injectable so tests (and snapshots) see fixed elapsed/ETA figures."""
    clock: Callable[[], float] = time.monotonic
    points: dict[int, PointState] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    table: Assembled | None = None
    started_at: float | None = None
    ended_at: float | None = None
    result: Any = None  # the SweepResult, once ended
    to_run: int = 0  # points this run will try (not reused)
    finished: int = 0  # of those, ended (ok, failed, cancelled)
    finished_wall_s: float = 0.0

    def apply(self, ev: SweepEvent) -> None:
        if isinstance(ev, SweepStarted):
            self.started_at = self.clock()
            self.order = [p.index for p in ev.points]
            self.points = {i: PointState() for i in self.order}
            for i in ev.reused:
                self.points[i].status, self.points[i].reused = REUSED, True
            self.to_run = len(ev.todo) if ev.to_run is None else ev.to_run
            self.table = ev.table()
            self._mark_feasibility()
        elif isinstance(ev, PointQueued):
            self._point(ev.index).status = QUEUED
        elif isinstance(ev, PointReused):
            p = self._point(ev.index)
            p.status, p.reused = REUSED, True
            self.table = ev.table()
            self._mark_feasibility()
        elif isinstance(ev, PointStarted):
            p = self.points[ev.index]
            if p.status == QUEUED:
                p.status, p.worker = RUNNING, ev.worker
        elif isinstance(ev, PointProgress):
            p = self.points[ev.index]
            if p.status in (QUEUED, RUNNING):
                p.status, p.sim_ms, p.done, p.total = RUNNING, ev.sim_ms, ev.done, ev.total
        elif isinstance(ev, PointFinished):
            p = self.points[ev.index]
            p.error, p.wall_s = ev.error, ev.wall_s
            p.status = {"ok": DONE, "failed": FAILED, "skipped": SKIPPED}.get(ev.status,
                                                                           CANCELLED)
            if p.status != SKIPPED:
                self.finished += 1
                self.finished_wall_s += ev.wall_s
            self.table = ev.table()
            self._mark_feasibility()
        elif isinstance(ev, SweepEnded):
            self.ended_at = self.clock()
            self.result = ev.result
            self.table = Assembled(ev.result.rows, ev.result.ranked, ev.result.pareto,
                                   ev.result.best)
            for p in self.points.values():
                if p.status in (QUEUED, RUNNING):
                    p.status = NOT_RUN
            self._mark_feasibility()

    def _point(self, index: int) -> PointState:
        """A point's state; a search's points appear as it proposes them."""
        p = self.points.get(index)
        if p is None:
            p = self.points[index] = PointState()
            self.order.append(index)
        return p

    def _mark_feasibility(self) -> None:
        if self.table is None:
            return
        for row in self.table.rows:
            p = self.points.get(row["point"])
            if p is not None and p.status in (DONE, INFEASIBLE, REUSED) and \
                    row["status"] == "ok":
                if row["feasible"] is False:
                    p.status = INFEASIBLE
                    p.error = row["violations"]
                elif p.status == INFEASIBLE:
                    p.status = REUSED if p.reused else DONE

    def count(self, *statuses: str) -> int:
        return sum(1 for p in self.points.values() if p.status in statuses)

    def reused_count(self) -> int:
        return sum(1 for p in self.points.values() if p.reused)

    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else self.clock()
        return max(0.0, end - self.started_at)

    def eta_s(self) -> float | None:
        """Seconds left: the work remaining (queued points plus the unfinished part of running
        ones) at the rate finished work has gone so far. None until something has progressed."""
        if self.ended_at is not None:
            return 0.0
        running = [p for p in self.points.values() if p.status == RUNNING]
        queued = self.count(QUEUED)
        progressed = self.finished + sum(p.fraction for p in running)
        if progressed <= 0:
            return None
        remaining = queued + sum(1.0 - p.fraction for p in running)
        return self.elapsed_s() * remaining / progressed


def status_label(status: str, reused: bool, error: str | None = None) -> str:
    """What a point's status reads as, on the sweep screen and in the terminal summary: a
    reused point says so whether it met the constraints ("reused") or not ("reused,
    infeasible: <violations>")."""
    label = status
    if status == INFEASIBLE and reused:
        label = f"{REUSED}, {INFEASIBLE}"
    if status in (INFEASIBLE, FAILED) and error:
        label += f": {error}"
    return label


def row_status(row: dict[str, Any], reused: bool) -> str:
    """A results row's status in the screen's words (done, infeasible, reused, failed, ...)."""
    if row["status"] == "failed":
        return FAILED
    if row["status"] != "ok":
        return NOT_RUN
    if row["feasible"] is False:
        return INFEASIBLE
    return REUSED if reused else DONE


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "--"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
