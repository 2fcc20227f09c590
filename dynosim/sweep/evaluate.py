"""One sweep point = one ordinary run: `evaluate(task, workloads) -> PointOutcome`.

Pure apart from reading the trace: the replay is built by the CLI's own factory
(`build_replay`), run flat out and reported as the CLI's JSON report. Nothing is written here;
the driver stores outcomes (so Ray workers on other machines need no shared disk)."""
from __future__ import annotations

import gc
import os
import resource
import socket
import time
from typing import Any, Callable, Final

import msgspec

from dynosim.gc_pause import paused_gc
from dynosim.inputs.errors import InputError
from dynosim.replay import RunOptions, build_replay, build_topology, load_workload, \
    validate_options
from dynosim.outputs.html_report import render_html
from dynosim.planner_setup import load_planner_config
from engine.workload import Workload


class PointTask(msgspec.Struct, frozen=True):
    index: int
    config_hash: str
    options: RunOptions
    keep_html: bool = False


class PointOutcome(msgspec.Struct):
    index: int
    config_hash: str
    status: str  # "ok" | "failed" | "cancelled" (asked to stop; not stored)
    error: str | None = None
    report: dict[str, Any] | None = None  # the run's JSON report, as --report-json writes it
    html: str | None = None  # the run's HTML report (only with keep_html)
    wall_s: float = 0.0  # whole point: build, engine, report
    rss_mb: float = 0.0  # peak RSS of the process that ran it
    worker: str = ""  # host:pid
    trace_parses: int = 0  # traces this process has parsed so far (once each, not per point)


def workload_key(o: RunOptions) -> tuple[Any, ...]:
    """What the parsed workload depends on (arrival_speedup_ratio is applied on a copy)."""
    closed = o.replay_concurrency is not None
    if o.trace is not None:
        return ("trace", o.trace, o.trace_format, o.trace_block_size, closed)
    return ("synthetic", o.input_tokens, o.output_tokens, o.request_count, o.request_rate,
            o.arrival_interval_ms, o.arrival_seed, o.turns_per_session, o.inter_turn_delay_ms,
            closed)


_LISTS = ("arrival_ms", "delay_ms", "input_length", "output_length", "hash_start", "hash_ids",
          "session", "turn", "next_turn", "session_names")


def pack_workload(wl: Workload) -> dict[str, Any]:
    """Plain lists for shipping a parsed trace (the compiled class does not pickle)."""
    return {"trace_block_size": wl.trace_block_size, "unique_prompts": wl.unique_prompts,
            **{name: getattr(wl, name) for name in _LISTS}}


def unpack_workload(d: dict[str, Any]) -> Workload:
    wl = Workload(d["trace_block_size"])
    wl.unique_prompts = d["unique_prompts"]
    for name in _LISTS:
        setattr(wl, name, d[name])
    if not wl.unique_prompts:
        wl.trace_prefixes()  # not shipped (unboxed, unpicklable): rebuilt once where it lands
    return wl


def _with_speedup(wl: Workload, ratio: float) -> Workload:
    """The trace as load_mooncake(..., arrival_speedup_ratio=ratio) builds it, from its 1.0
    parse: first-turn arrivals and think times divided by the ratio (same floats bit for bit;
    the engine only reads a workload, so the other lists are shared)."""
    out = Workload(wl.trace_block_size)
    for name in ("input_length", "output_length", "hash_start", "hash_ids", "session", "turn",
                 "next_turn", "session_names", "unique_prompts", "prefixes"):
        setattr(out, name, getattr(wl, name))
    out.arrival_ms = [a / ratio for a in wl.arrival_ms]
    out.delay_ms = [d / ratio for d in wl.delay_ms]
    return out


class WorkloadCache:
    """Parses each trace once per process; later points reuse it.

    `freeze`: for a worker process that keeps its parsed traces for good: after each parse
    (and once for preloaded ones), everything alive goes to the collector's permanent
    generation (gc.freeze), so the full collection before each point scans that point's
    predecessor's garbage only, not the trace's millions of list items (0.10-0.15 s a point
    on the 1-hour trace)."""

    def __init__(self, preloaded: dict[tuple[Any, ...], Workload] | None = None, *,
                 freeze: bool = False) -> None:
        self._loaded: dict[tuple[Any, ...], Workload] = dict(preloaded or {})
        self.parses = 0
        self._freeze = freeze
        if freeze and self._loaded:
            _freeze_alive()

    def base(self, o: RunOptions) -> Workload:
        key = workload_key(o)
        wl = self._loaded.get(key)
        if wl is None:
            unit = msgspec.structs.replace(o, arrival_speedup_ratio=1.0)
            wl = self._loaded[key] = load_workload(unit)
            self.parses += 1
            if self._freeze:
                _freeze_alive()
        return wl

    def get(self, o: RunOptions) -> Workload:
        wl = self.base(o)
        if o.trace is not None and o.arrival_speedup_ratio != 1.0:
            return _with_speedup(wl, o.arrival_speedup_ratio)
        return wl


def _freeze_alive() -> None:
    gc.collect()  # the parse's own garbage is not kept forever
    gc.freeze()


# Progress of a running point: `report(sim_ms, done, total) -> keep_going`, called about every
# PROGRESS_EVERY_S of wall time from the point's run loop, which runs chunks of CHUNK_STEPS
# instants (ms each: the clock check per chunk costs nothing measurable, and a cancel lands
# within a chunk). Returning False cancels the point.
ProgressFn = Callable[[float, int, int], bool]
PROGRESS_EVERY_S: Final = 0.25
CHUNK_STEPS: Final = 1_000


class PointCancelled(Exception):
    pass


def precheck(o: RunOptions) -> None:
    """Every check the factory makes before loading the trace (engine args, router, planner),
    so a bad point fails the sweep before anything runs."""
    validate_options(o)
    build_topology(o)
    if o.planner_config is not None:
        load_planner_config(o.planner_config)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _run(task: PointTask, workloads: WorkloadCache,
         progress: ProgressFn | None) -> tuple[dict[str, Any], str | None]:
    """Build, run and report one point: its JSON report and HTML (with keep_html). The replay
    is freed, by reference counting, when this returns."""
    # parsed (and in a worker frozen) before the point has built anything of its own
    workloads.base(task.options)
    replay = build_replay(task.options, load=workloads.get)
    if progress is None:
        while replay.advance(1_000_000):
            pass
    else:
        sim, total = replay.sim, len(replay.workload)
        last = time.perf_counter()
        while replay.advance(CHUNK_STEPS):
            now = time.perf_counter()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                if not progress(sim.now, sim.completed + sim.rejected, total):
                    raise PointCancelled
    report = replay.report()
    return report.json_obj(), render_html(report) if task.keep_html else None


def evaluate(task: PointTask, workloads: WorkloadCache,
             progress: ProgressFn | None = None) -> PointOutcome:
    t0 = time.perf_counter()
    worker = worker_name()
    # The engine's objects link in no cycles (KV blocks included), so the previous point's
    # replay was freed when its run returned; this collection only sweeps what else may be
    # cyclic (a few objects of the planner, an SGLang radix tree), so a pool worker's memory
    # stays at one point's worth: 1-4 ms where the engine's cyclic blocks cost 0.12-0.35 s.
    gc.collect()
    try:
        # One pause over the whole point (build, run, report): between engine chunks the
        # cyclic GC would still rescan the replay's objects. The replay is gone before the
        # pause ends: everything it allocated is in the youngest generation, and the first
        # collection after the pause would otherwise scan all of it.
        with paused_gc():
            obj, html = _run(task, workloads, progress)
    except PointCancelled:
        return PointOutcome(task.index, task.config_hash, "cancelled", error="cancelled",
                            wall_s=time.perf_counter() - t0, rss_mb=_peak_rss_mb(),
                            worker=worker, trace_parses=workloads.parses)
    except Exception as exc:  # a failing point is recorded, the sweep goes on
        return PointOutcome(task.index, task.config_hash, "failed", error=_one_line(exc),
                            wall_s=time.perf_counter() - t0, rss_mb=_peak_rss_mb(),
                            worker=worker, trace_parses=workloads.parses)
    return PointOutcome(task.index, task.config_hash, "ok", report=obj, html=html,
                        wall_s=time.perf_counter() - t0, rss_mb=_peak_rss_mb(), worker=worker,
                        trace_parses=workloads.parses)
