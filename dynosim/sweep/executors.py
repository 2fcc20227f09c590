# Over 450 lines on purpose: one concept, three interchangeable executors behind one protocol.
"""Interchangeable executors of sweep points: submit tasks, take outcomes as they finish.

    SerialExecutor     in this process (tests, debugging)
    LocalPoolExecutor  a pool of spawned processes on this machine (the default)
    RayExecutor        Ray tasks, one CPU each, on a local Ray or a cluster (extra `[ray]`)

The interface is ask-and-tell friendly: a search can `submit` a few tasks, read the next
finished `PointOutcome` and decide what to submit next. `run_all` keeps `slots` tasks in
flight. Every executor runs the same `evaluate`, so the results do not depend on which ran.

While points run, their workers send `Note`s (started; simulated-time progress every
PROGRESS_EVERY_S) to the listener set with `set_listener`; the executor delivers them on the
thread that calls `poll_outcome`/`next_outcome` (a process queue for the pool, a Ray queue
actor for Ray, direct calls for serial). `cancel(index)` stops a running point: its outcome
comes back with status "cancelled"."""
from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import queue
import re
import signal
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Protocol

from dynosim.sweep.evaluate import PointOutcome, PointTask, ProgressFn, WorkloadCache, \
    evaluate, pack_workload, unpack_workload, worker_name, workload_key

POLL_S = 0.1  # how often a blocked next_outcome delivers the workers' notes


class Note(NamedTuple):
    """A worker's word about a running point: kind "started" or "progress"."""
    kind: str
    point: int  # the task's point index
    worker: str = ""
    sim_ms: float = 0.0
    done: int = 0
    total: int = 0


Listener = Callable[[Note], None]


class Executor(Protocol):
    slots: int  # how many tasks are worth keeping in flight

    def submit(self, task: PointTask) -> None: ...

    def pending(self) -> int: ...

    def next_outcome(self) -> PointOutcome:
        """Blocks until a submitted task finishes; outcomes come in completion order."""
        ...

    def poll_outcome(self, timeout_s: float) -> PointOutcome | None:
        """The next finished outcome, or None after timeout_s; notes are delivered meanwhile."""
        ...

    def set_listener(self, listener: Listener | None) -> None: ...

    def cancel(self, index: int) -> None:
        """Ask the running (or submitted) task of point `index` to stop."""
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


def _blocking(executor: Executor) -> PointOutcome:
    while True:
        out = executor.poll_outcome(POLL_S)
        if out is not None:
            return out


class SerialExecutor:
    slots = 1

    def __init__(self) -> None:
        self._queue: collections.deque[PointTask] = collections.deque()
        self.workloads = WorkloadCache()
        self._listener: Listener | None = None
        self._cancelled: set[int] = set()  # may be added to from another thread

    def submit(self, task: PointTask) -> None:
        self._queue.append(task)

    def pending(self) -> int:
        return len(self._queue)

    def set_listener(self, listener: Listener | None) -> None:
        self._listener = listener

    def cancel(self, index: int) -> None:
        self._cancelled.add(index)

    def next_outcome(self) -> PointOutcome:
        task = self._queue.popleft()
        listener = self._listener
        if task.index in self._cancelled:
            return PointOutcome(task.index, task.config_hash, "cancelled", error="cancelled")
        if listener is None:
            return evaluate(task, self.workloads)
        listener(Note("started", task.index, worker_name()))

        def report(sim_ms: float, done: int, total: int) -> bool:
            listener(Note("progress", task.index, "", sim_ms, done, total))
            return task.index not in self._cancelled

        return evaluate(task, self.workloads, report)

    def poll_outcome(self, timeout_s: float) -> PointOutcome | None:
        return self.next_outcome()  # runs the point here: never times out

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


# --- local process pool -----------------------------------------------------------------------

_WORKER_CACHE: WorkloadCache | None = None
_NOTES: Any = None  # the pool's note queue, in each worker process
_CANCELLED: Any = None  # shared ring of recently cancelled point indices
CANCEL_RING = 64


def _init_worker(notes: Any = None, cancelled: Any = None) -> None:
    # Ctrl-C and a scheduler's SIGTERM reach the whole process group: the driver alone decides
    # what happens. A worker that died on the signal by itself could do so mid-write to the
    # result queue, leaving its lock held and the driver's exit hanging on the pool's threads.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _WORKER_CACHE, _NOTES, _CANCELLED
    _WORKER_CACHE = WorkloadCache(freeze=True)
    _NOTES, _CANCELLED = notes, cancelled


def _pool_task(task: PointTask) -> PointOutcome:
    assert _WORKER_CACHE is not None
    notes, cancelled = _NOTES, _CANCELLED
    if notes is None:
        return evaluate(task, _WORKER_CACHE)  # the trace is parsed once per worker process
    index = task.index
    if index in cancelled[:]:
        return PointOutcome(index, task.config_hash, "cancelled", error="cancelled")
    notes.put(Note("started", index, worker_name()))

    def report(sim_ms: float, done: int, total: int) -> bool:
        notes.put(Note("progress", index, "", sim_ms, done, total))
        return index not in cancelled[:]

    return evaluate(task, _WORKER_CACHE, report)


# numpy's OpenBLAS (the planner's ARIMA fits) starts a thread per core and keeps it spinning
# after each call: in a pool of one process per core those threads take the other points' cores.
# One thread gives the same figures (tests/sweep/test_executors.py compares them).
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _worker_env() -> Iterator[None]:
    """WORKER_ENV (where the user has not set those variables) while pool workers are spawned:
    numpy reads them when it is imported, which a spawned worker does while unpickling its
    initializer, so setting them in the worker would be too late."""
    added = [k for k in WORKER_ENV if k not in os.environ]
    for k in added:
        os.environ[k] = WORKER_ENV[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


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
        self._ctx = multiprocessing.get_context("spawn")
        self._listener: Listener | None = None
        self._notes: Any = None
        self._cancelled: Any = None
        self._next_cancel = 0
        self._user_cancelled: set[int] = set()

    def set_listener(self, listener: Listener | None) -> None:
        """Set before the first submit: the workers get the note queue when they start."""
        self._listener = listener
        if listener is not None and self._notes is None:
            self._notes = self._ctx.Queue()
            self._cancelled = self._ctx.RawArray("q", [-1] * CANCEL_RING)

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                self.jobs, mp_context=self._ctx, initializer=_init_worker,
                initargs=(self._notes, self._cancelled))
        return self._pool

    def submit(self, task: PointTask) -> None:
        with _worker_env():  # the pool spawns its workers in submit, as they are needed
            self._futures[self._get_pool().submit(_pool_task, task)] = task

    def pending(self) -> int:
        return len(self._futures)

    def cancel(self, index: int) -> None:
        self._user_cancelled.add(index)
        for fut, task in self._futures.items():
            if task.index == index and fut.cancel():  # not started yet
                return
        if self._cancelled is not None:
            self._cancelled[self._next_cancel % CANCEL_RING] = index
            self._next_cancel += 1

    def _deliver_notes(self) -> None:
        notes, listener = self._notes, self._listener
        if notes is None or listener is None:
            return
        while True:
            try:
                note = notes.get_nowait()
            except queue.Empty:
                return
            listener(note)

    def next_outcome(self) -> PointOutcome:
        return _blocking(self)

    def poll_outcome(self, timeout_s: float) -> PointOutcome | None:
        self._deliver_notes()
        done, _ = cf.wait(self._futures, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        self._deliver_notes()
        if not done:
            return None
        fut = next(iter(done))
        task = self._futures.pop(fut)
        if fut.cancelled():
            return PointOutcome(task.index, task.config_hash, "cancelled", error="cancelled")
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
        if self._notes is not None:  # a killed worker may hold the old queue's write lock
            self._deliver_notes()
            self._notes = self._ctx.Queue()
        # the tasks that were in flight in the dead pool go to the new one (not those the
        # user cancelled before they started)
        lost = [(f, t) for f, t in self._futures.items()
                if not f.done() or (f.cancelled() and t.index not in self._user_cancelled)]
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


def _ray_task(task: PointTask, wrapped_ref: list[Any], notes: Any = None) -> PointOutcome:
    import ray

    ref = wrapped_ref[0]  # wrapped in a list so Ray passes the reference, not a copy per task
    key = ref.hex()
    wl = _RAY_WORKLOADS.get(key)
    fresh = wl is None
    if wl is None:
        wl = _RAY_WORKLOADS[key] = unpack_workload(ray.get(ref))
    cache = WorkloadCache({workload_key(task.options): wl}, freeze=fresh)
    if notes is None:
        return evaluate(task, cache)
    # the queue actor takes notes without waiting for an answer (a cancel arrives as
    # ray.cancel, which interrupts the task)
    index = task.index
    notes.actor.put_nowait_batch.remote([Note("started", index, worker_name())])

    def report(sim_ms: float, done: int, total: int) -> bool:
        notes.actor.put_nowait_batch.remote([Note("progress", index, "", sim_ms, done, total)])
        return True

    return evaluate(task, cache, report)


SHIPPED_PACKAGES = ("dynosim", "engine", "planner", "tui")
# a compiled module's shim names the mypyc group module holding its code: "<20 hex>__mypyc"
_MYPYC_GROUP = re.compile(rb"(?<![0-9a-f])([0-9a-f]{20}__mypyc)(?![0-9a-zA-Z_])")


def code_manifest(site: str, record: Iterable[str] | None) -> list[str]:
    """The files (relative to `site`) a cluster node needs to import our packages: the
    packages' files of this installation (`record`: the distribution's RECORD; None, from a
    source tree: whatever the package folders hold), and of the mypyc group modules only
    those the compiled modules' shims import. Site-packages keeps group modules of older
    builds (different hashes; one was 36 MB here): they are not shipped."""
    if record is None:
        record = [os.path.relpath(os.path.join(root, f), site)
                  for pkg in SHIPPED_PACKAGES
                  for root, _, names in os.walk(os.path.join(site, pkg)) for f in names]
    files = sorted({r for r in record
                    if r.split("/")[0] in SHIPPED_PACKAGES and "__pycache__" not in r
                    and os.path.isfile(os.path.join(site, r))})
    groups: set[str] = set()
    for r in files:
        if r.endswith((".so", ".pyd")):
            with open(os.path.join(site, r), "rb") as f:
                groups.update(m.decode() for m in _MYPYC_GROUP.findall(f.read()))
    helpers = [name for name in sorted(os.listdir(site))
               if name.split(".")[0] in groups and name.endswith((".so", ".pyd"))]
    return files + helpers


def _installed_record(site: str) -> list[str] | None:
    """Our distribution's RECORD when the packages imported are that installation's."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("dynosim-tui")
    except importlib.metadata.PackageNotFoundError:
        return None
    if os.path.abspath(str(dist.locate_file(""))) != site or dist.files is None:
        return None  # running from a source tree beside an installed copy
    return [str(f) for f in dist.files]


def _ship_code_env() -> dict[str, Any]:
    """Our packages, as installed here (compiled engine and the mypyc group module it uses),
    for cluster nodes that do not have them: a working_dir Ray uploads and puts on sys.path.
    The nodes need the same Python version and platform; otherwise install the package on
    them and pass --no-ray-ship-code."""
    import shutil
    import tempfile

    import engine

    # tui is shipped too (dynosim checks at import that its sibling packages are ours)
    site = os.path.dirname(os.path.dirname(os.path.abspath(engine.__file__ or "")))
    stage = tempfile.mkdtemp(prefix="dynosim_ray_code_")
    for rel in code_manifest(site, _installed_record(site)):
        dest = os.path.join(stage, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(site, rel), dest)
    return {"working_dir": stage}


def _neutral_cwd() -> str:
    """An empty directory, made once per process, for local Ray workers to start in."""
    global _NEUTRAL_CWD
    if _NEUTRAL_CWD is None:
        import tempfile

        _NEUTRAL_CWD = tempfile.mkdtemp(prefix="dynosim_ray_cwd_")
    return _NEUTRAL_CWD


_NEUTRAL_CWD: str | None = None


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
                # A local Ray's workers start in, and import first from, the driver's working
                # directory at init: run from a source checkout they picked up the interpreted
                # engine/ and dynosim/ there (4.5x slower than the pool). Init from an empty one.
                here = os.getcwd()
                os.chdir(_neutral_cwd())
                try:
                    ray.init(num_cpus=jobs, **kwargs)
                except ValueError as exc:  # e.g. a `ray start` cluster on this machine
                    raise RuntimeError(f"--executor ray: cannot start a local Ray: "
                                       f"{' '.join(str(exc).split())} (to use a running "
                                       "cluster, pass --ray-address)") from None
                finally:
                    os.chdir(here)
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call, unused-ignore]
        self.slots = max(1, 2 * cpus)  # a little queue per CPU, not every task at once
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        self._refs: dict[Any, PointTask] = {}
        self._workload_refs: dict[tuple[Any, ...], Any] = {}
        self._driver_cache = WorkloadCache()
        self.puts = 0  # workloads put in the object store (one per distinct trace)
        self._listener: Listener | None = None
        self._notes: Any = None  # a ray.util.queue.Queue (an actor) while someone listens

    def set_listener(self, listener: Listener | None) -> None:
        self._listener = listener
        if listener is not None and self._notes is None:
            from ray.util.queue import Queue

            self._notes = Queue(actor_options={"num_cpus": 0})

    def _deliver_notes(self) -> None:
        notes, listener = self._notes, self._listener
        if notes is None or listener is None:
            return
        n = notes.qsize()
        if n:
            for note in notes.get_nowait_batch(n):
                listener(note)

    def cancel(self, index: int) -> None:
        for ref, task in self._refs.items():
            if task.index == index:
                try:  # interrupts the running task (or drops it if not started)
                    self._ray.cancel(ref, force=False)
                except Exception:
                    pass

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
        self._refs[self._remote.remote(task, [wl_ref], self._notes)] = task

    def pending(self) -> int:
        return len(self._refs)

    def next_outcome(self) -> PointOutcome:
        return _blocking(self)

    def poll_outcome(self, timeout_s: float) -> PointOutcome | None:
        self._deliver_notes()
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        self._deliver_notes()
        if not ready:
            return None
        ref = ready[0]
        task = self._refs.pop(ref)
        try:
            outcome: PointOutcome = self._ray.get(ref)
            return outcome
        except self._ray.exceptions.TaskCancelledError:
            return PointOutcome(task.index, task.config_hash, "cancelled", error="cancelled")
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
        if self._notes is not None:
            try:
                self._notes.shutdown()
            except Exception:
                pass
            self._notes = None
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(kind: str, jobs: int | None, ray_address: str | None,
                  ray_ship_code: bool = True) -> Executor:
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        return LocalPoolExecutor(jobs)
    if kind == "ray":
        return RayExecutor(ray_address, jobs, ray_ship_code)
    raise ValueError(kind)
