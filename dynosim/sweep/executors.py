"""Interchangeable executors of sweep points: submit tasks, take outcomes as they finish.

    SerialExecutor     in this process (tests, debugging)
    LocalPoolExecutor  a pool of spawned processes on this machine (the default)
    RayExecutor        Ray tasks, one CPU each, on a local Ray or a cluster (extra `[ray]`)

The interface is ask-and-tell friendly: a search can `submit` a few tasks, read the next
finished `PointOutcome` and decide what to submit next. `run_all` keeps `slots` tasks in
flight. Every executor runs the same `evaluate`, so the results do not depend on which ran."""
from __future__ import annotations

import collections
import concurrent.futures as cf
import multiprocessing
import os
import re
import signal
from typing import Any, Callable, Iterable, Protocol

from dynosim.sweep.evaluate import PointOutcome, PointTask, WorkloadCache, evaluate, \
    pack_workload, unpack_workload, workload_key


class Executor(Protocol):
    slots: int  # how many tasks are worth keeping in flight

    def submit(self, task: PointTask) -> None: ...

    def pending(self) -> int: ...

    def next_outcome(self) -> PointOutcome:
        """Blocks until a submitted task finishes; outcomes come in completion order."""
        ...

    def close(self, cancel: bool = False) -> None: ...


def run_all(executor: Executor, tasks: Iterable[PointTask],
            on_outcome: Callable[[PointOutcome], None]) -> None:
    it = iter(tasks)
    for task in it:
        executor.submit(task)
        if executor.pending() >= executor.slots:
            break
    while executor.pending():
        on_outcome(executor.next_outcome())
        for task in it:
            executor.submit(task)
            break


class SerialExecutor:
    slots = 1

    def __init__(self) -> None:
        self._queue: collections.deque[PointTask] = collections.deque()
        self.workloads = WorkloadCache()

    def submit(self, task: PointTask) -> None:
        self._queue.append(task)

    def pending(self) -> int:
        return len(self._queue)

    def next_outcome(self) -> PointOutcome:
        return evaluate(self._queue.popleft(), self.workloads)

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


# --- local process pool -----------------------------------------------------------------------

_WORKER_CACHE: WorkloadCache | None = None


def _init_worker() -> None:
    # Ctrl-C and a scheduler's SIGTERM reach the whole process group: the driver alone decides
    # what happens. A worker that died on the signal by itself could do so mid-write to the
    # result queue, leaving its lock held and the driver's exit hanging on the pool's threads.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _WORKER_CACHE
    _WORKER_CACHE = WorkloadCache()


def _pool_task(task: PointTask) -> PointOutcome:
    assert _WORKER_CACHE is not None
    return evaluate(task, _WORKER_CACHE)  # the trace is parsed once per worker process


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class LocalPoolExecutor:
    """Spawned worker processes (no fork of a driver holding threads and big objects)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs or default_jobs()
        self.slots = self.jobs
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future[PointOutcome], PointTask] = {}

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                self.jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker)
        return self._pool

    def submit(self, task: PointTask) -> None:
        self._futures[self._get_pool().submit(_pool_task, task)] = task

    def pending(self) -> int:
        return len(self._futures)

    def next_outcome(self) -> PointOutcome:
        done, _ = cf.wait(self._futures, return_when=cf.FIRST_COMPLETED)
        fut = next(iter(done))
        task = self._futures.pop(fut)
        try:
            return fut.result()
        except cf.process.BrokenProcessPool:
            # a worker died (killed, out of memory): this point fails, a new pool takes over
            self._kill_pool()
            return PointOutcome(task.index, task.config_hash, "failed",
                                error="the worker process running this point died "
                                "(killed or out of memory)")
        except Exception as exc:  # pickling and the like: evaluate itself catches run errors
            return PointOutcome(task.index, task.config_hash, "failed",
                                error=f"{type(exc).__name__}: {exc}")

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        procs = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()  # SIGTERM is ignored by the workers (_init_worker)
        for p in procs:
            p.join(timeout=5)
        # the tasks that were in flight in the dead pool go to the new one
        lost = [(f, t) for f, t in self._futures.items() if not f.done() or f.cancelled()]
        for f, t in lost:
            del self._futures[f]
            self.submit(t)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            self._futures.clear()
            self._kill_pool()
        elif self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


# --- Ray ---------------------------------------------------------------------------------------

_RAY_WORKLOADS: dict[str, Any] = {}  # object id -> parsed workload, per Ray worker process


def _ray_task(task: PointTask, wrapped_ref: list[Any]) -> PointOutcome:
    import ray

    ref = wrapped_ref[0]  # wrapped in a list so Ray passes the reference, not a copy per task
    key = ref.hex()
    wl = _RAY_WORKLOADS.get(key)
    if wl is None:
        wl = _RAY_WORKLOADS[key] = unpack_workload(ray.get(ref))
    return evaluate(task, WorkloadCache({workload_key(task.options): wl}))


def _ship_code_env() -> dict[str, Any]:
    """Our packages, as installed here (compiled engine and mypyc's helper modules included),
    for cluster nodes that do not have them: a working_dir Ray uploads and puts on sys.path.
    The nodes need the same Python version and platform; otherwise install the package on
    them and pass --no-ray-ship-code."""
    import glob
    import shutil
    import tempfile

    import dynosim
    import engine
    import planner
    import tui  # shipped too: dynosim checks at import that its sibling packages are ours

    site = os.path.dirname(os.path.dirname(os.path.abspath(engine.__file__ or "")))
    stage = tempfile.mkdtemp(prefix="dynosim_ray_code_")
    for mod in (dynosim, engine, planner, tui):
        src = os.path.dirname(os.path.abspath(mod.__file__ or ""))
        shutil.copytree(src, os.path.join(stage, os.path.basename(src)),
                        ignore=shutil.ignore_patterns("__pycache__"))
    for helper in glob.glob(os.path.join(site, "*__mypyc*")):
        shutil.copy2(helper, stage)
    return {"working_dir": stage}


def _check_reachable(address: str) -> None:
    """Ray keeps retrying a head that does not answer for many minutes; a plain TCP connect
    to a HOST:PORT address (not ray:// or "auto") tells in seconds."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=10).close()
    except OSError as exc:
        raise RuntimeError(f"nothing answers at {address} ({exc.strerror or exc}); is "
                           "`ray start --head` running there, and is that its port?") from None


def _join_error(address: str, exc: BaseException) -> str:
    """Ray's connection failures are multi-line tracebacks: keep the outer first line, and say
    what to do when the cause is the token authentication newer Rays enable by default."""
    full = []
    e: BaseException | None = exc
    while e is not None:
        full.append(str(e))
        e = e.__cause__ or e.__context__
    text = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    hint = ""
    if "InvalidAuthToken" in " ".join(full) or "AuthenticationError" in " ".join(full):
        hint = (" (token authentication failed: set RAY_AUTH_MODE=token here, with the "
                "cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN)")
    return f"--ray-address {address}: cannot join the Ray cluster: {text[:300]}{hint}"


class RayExecutor:
    """Ray tasks with one CPU each. The parsed trace is `ray.put` once and each worker process
    keeps its copy; outcomes are gathered with `ray.wait` in completion order."""

    def __init__(self, address: str | None = None, jobs: int | None = None,
                 ship_code: bool | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install 'dynosim-tui[ray]'") \
                from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address:
                if ship_code is None or ship_code:
                    kwargs["runtime_env"] = _ship_code_env()
                try:
                    _check_reachable(address)
                    ray.init(address=address, **kwargs)
                except Exception as exc:  # unreachable head, wrong port, auth: one line, exit 2
                    raise RuntimeError(_join_error(address, exc)) from None
                finally:  # uploaded by init: the staged copy is no longer needed
                    if "runtime_env" in kwargs:
                        import shutil

                        shutil.rmtree(kwargs["runtime_env"]["working_dir"], ignore_errors=True)
            else:
                try:
                    ray.init(num_cpus=jobs, **kwargs)
                except ValueError as exc:  # e.g. a `ray start` cluster on this machine
                    raise RuntimeError(f"--executor ray: cannot start a local Ray: "
                                       f"{' '.join(str(exc).split())} (to use a running "
                                       "cluster, pass --ray-address)") from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call, unused-ignore]
        self.slots = max(1, 2 * cpus)  # a little queue per CPU, not every task at once
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        self._refs: dict[Any, PointTask] = {}
        self._workload_refs: dict[tuple[Any, ...], Any] = {}
        self._driver_cache = WorkloadCache()
        self.puts = 0  # workloads put in the object store (one per distinct trace)

    def _workload_ref(self, task: PointTask) -> Any:
        key = workload_key(task.options)
        ref = self._workload_refs.get(key)
        if ref is None:
            packed = pack_workload(self._driver_cache.base(task.options))
            ref = self._workload_refs[key] = self._ray.put(packed)
            self.puts += 1
        return ref

    def submit(self, task: PointTask) -> None:
        try:
            wl_ref = self._workload_ref(task)
        except Exception as exc:  # an unreadable trace fails the point, as in other executors
            self._refs[self._ray.put(PointOutcome(task.index, task.config_hash, "failed",
                                                  error=" ".join(str(exc).split())))] = task
            return
        self._refs[self._remote.remote(task, [wl_ref])] = task

    def pending(self) -> int:
        return len(self._refs)

    def next_outcome(self) -> PointOutcome:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        ref = ready[0]
        task = self._refs.pop(ref)
        try:
            outcome: PointOutcome = self._ray.get(ref)
            return outcome
        except Exception as exc:  # the task crashed outside evaluate (Ray or the worker)
            text = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(exc).__name__}: {exc}")
            return PointOutcome(task.index, task.config_hash, "failed",
                                error=" ".join(text.split())[:500])

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:
                    pass
        self._refs.clear()
        self._workload_refs.clear()
        if self._started:
            self._ray.shutdown()


def make_executor(kind: str, jobs: int | None, ray_address: str | None,
                  ray_ship_code: bool = True) -> Executor:
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        return LocalPoolExecutor(jobs)
    if kind == "ray":
        return RayExecutor(ray_address, jobs, ray_ship_code)
    raise ValueError(kind)
