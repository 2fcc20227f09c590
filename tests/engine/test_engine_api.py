"""The steppable engine API (engine/sim.py) as the TUI and the CLI drive it: peek/step/run_until/
run_steps/snapshot, determinism across stepping styles, and the engine's purity (no I/O, no
clock, no randomness, no heavy imports)."""
from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import engine
from helpers import MULTITURN as _MULTITURN, ROOT, SYNTH, TINY as _TINY
from dynosim.inputs.trace import load_mooncake
from engine.config import EngineConfig
from engine.sim import Simulation
from engine.snapshot import SimSnapshot
from engine.topology import Topology
from engine.workload import Workload

TINY = Path(_TINY)
MULTITURN = Path(_MULTITURN)
SYNTHETIC = Path(SYNTH)

_WL_CACHE: dict[str, Workload] = {}


def workload(path: Path) -> Workload:
    # The engine never mutates the workload, so one parse per file is shared.
    key = str(path)
    if key not in _WL_CACHE:
        _WL_CACHE[key] = load_mooncake(key)
    return _WL_CACHE[key]


def config(**kw: Any) -> EngineConfig:
    c = EngineConfig()
    for k, v in kw.items():
        assert hasattr(c, k), k
        setattr(c, k, v)
    return c


def make_sim(path: Path = TINY, workers: int = 1, max_time_ms: float = -1.0,
             concurrency: int = 0, **cfg: Any) -> Simulation:
    return Simulation(workload(path), Topology(workers, config(**cfg)), concurrency, max_time_ms)


# tiny trace, 150 blocks per worker: some prompts exceed the pool (rejections) and one running
# request is preempted, so every request state shows up.
TIGHT = {"num_gpu_blocks": 150}


def metric_state(sim: Simulation) -> dict[str, Any]:
    m = sim.collect()
    cols = {name: list(getattr(m, name)) for name in (
        "req", "worker", "status", "arrival_ms", "first_admit_ms", "first_token_ms",
        "second_token_ms", "last_token_ms", "terminal_ms", "input_length", "requested_output",
        "output_tokens", "reused_tokens", "first_reused_tokens", "admissions")}
    for name in ("itl", "user_tput"):
        s = getattr(m, name)
        cols[name] = (s.count, s.total, s.mean, s.m2, s.min, s.max, dict(s.buckets))
    cols["committed_prefill_tokens"] = m.committed_prefill_tokens
    cols["preemptions"] = m.preemptions
    return cols


def snap_key(s: SimSnapshot) -> tuple[Any, ...]:
    return (s.now_ms, s.arrived, s.completed, s.rejected, s.in_flight, s.passes,
            tuple((w.busy, w.waiting, w.running, w.active_blocks, w.inactive_blocks,
                   w.free_blocks, w.prefill_tokens, w.preemptions) for w in s.workers))


# ---- peek / step ------------------------------------------------------------------------------

@pytest.mark.parametrize("path,workers,cfg", [(TINY, 1, {}), (TINY, 2, TIGHT), (MULTITURN, 2, {})],
                         ids=["tiny_w1", "tiny_tight_w2", "multiturn_w2"])
def test_peek_is_next_instant_and_never_decreases(path: Path, workers: int, cfg: dict) -> None:
    sim = make_sim(path, workers, **cfg)
    assert sim.now == 0.0
    assert sim.peek() == 0.0  # every trace starts at t=0 after normalisation
    assert not sim.is_finished()
    last = -math.inf
    steps = 0
    while True:
        t = sim.peek()
        assert t >= last, f"peek went back from {last} to {t} after {steps} steps"
        assert t >= sim.now
        more = sim.step()
        if not more:
            assert t == math.inf
            break
        assert sim.now == t  # step() processes exactly the instant peek() announced
        last = t
        steps += 1
    assert steps > 0
    assert sim.peek() == math.inf
    assert sim.is_finished()
    # Stepping past the end is harmless and changes nothing.
    now, completed = sim.now, sim.completed
    assert sim.step() is False
    assert sim.run_steps(10) is False
    assert (sim.now, sim.completed) == (now, completed)


def test_max_time_cuts_the_replay() -> None:
    full = make_sim()
    full.run()
    limit = full.now / 3
    sim = make_sim(max_time_ms=limit)
    while sim.step():
        assert sim.now <= limit
    assert sim.peek() == math.inf and sim.is_finished()
    assert 0 < sim.completed < len(sim.wl)
    snap = sim.snapshot()
    assert snap.in_flight == len(sim.wl) - sim.completed - sim.rejected > 0


# ---- run_until --------------------------------------------------------------------------------

def instants(path: Path = TINY, workers: int = 1, **cfg: Any) -> list[float]:
    sim = make_sim(path, workers, **cfg)
    out: list[float] = []
    while sim.peek() != math.inf:
        out.append(sim.peek())
        sim.step()
    return out


def test_run_until_processes_exactly_the_instants_up_to_t() -> None:
    times = instants(TINY, 2, **TIGHT)
    assert len(times) > 100
    picks = sorted({len(times) // 7, len(times) // 3, len(times) // 2, len(times) - 2})
    for k in picks:
        t = times[k]
        gap_t = (times[k] + times[k + 1]) / 2  # strictly between two instants
        assert times[k] < gap_t < times[k + 1]
        for target, n_done in ((t, k + 1), (gap_t, k + 1)):
            ref = make_sim(TINY, 2, **TIGHT)
            for _ in range(n_done):
                ref.step()
            sim = make_sim(TINY, 2, **TIGHT)
            sim.run_until(target)
            assert sim.peek() > target
            assert sim.peek() == ref.peek() == times[k + 1]
            assert sim.now == target  # the clock moves to t even between instants
            assert snap_key(sim.snapshot())[1:] == snap_key(ref.snapshot())[1:]


def test_run_until_in_increments_then_past_the_end() -> None:
    sim = make_sim(TINY, 2, **TIGHT)
    t = 0.0
    while sim.peek() != math.inf:
        sim.run_until(t)
        assert sim.now == t
        assert sim.peek() > t
        t += 250.0
    end = sim.now
    sim.run_until(end + 1e6)  # past the last instant: nothing to do, clock follows t
    assert sim.is_finished()
    assert sim.now == end + 1e6
    sim.run_until(10.0)  # going back is a no-op
    assert sim.now == end + 1e6


def test_run_until_clamps_the_clock_to_the_time_limit() -> None:
    sim = make_sim(max_time_ms=1500.0)
    sim.run_until(1e9)
    assert sim.is_finished()
    assert sim.now == 1500.0


def test_run_until_infinity_runs_to_the_end() -> None:
    # In a child with a timeout: the bug this guards against (`while peek() <= t` with
    # peek() == t == inf once finished) hangs instead of failing.
    code = (
        "import math\n"
        "from dynosim.inputs.trace import load_mooncake\n"
        "from engine.config import EngineConfig\n"
        "from engine.sim import Simulation\n"
        "from engine.topology import Topology\n"
        f"wl = load_mooncake({str(TINY)!r})\n"
        "s = Simulation(wl, Topology(1, EngineConfig()))\n"
        "s.run_until(math.inf)\n"
        "assert s.completed == 16 and s.is_finished() and s.now < math.inf, s.now\n"
    )
    try:
        subprocess.run([sys.executable, "-c", code], env=subprocess_env(), timeout=2.5,
                       check=True, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail("run_until(math.inf) did not return")
    sim = make_sim(max_time_ms=2000.0)
    sim.run_until(math.inf)  # safe in-process now: also with a time limit
    assert sim.is_finished() and sim.now <= 2000.0


# ---- determinism across stepping styles -------------------------------------------------------

@pytest.mark.parametrize("path,workers,cfg", [(TINY, 2, TIGHT), (MULTITURN, 2, {})],
                         ids=["tiny_tight_w2", "multiturn_w2"])
def test_stepping_style_does_not_change_results(path: Path, workers: int, cfg: dict) -> None:
    a = make_sim(path, workers, **cfg)
    a.run()
    expected = metric_state(a)
    assert len(expected["req"]) == len(a.wl)

    b = make_sim(path, workers, **cfg)
    while b.step():
        b.snapshot()  # observing must not perturb
    assert metric_state(b) == expected

    c = make_sim(path, workers, **cfg)
    while c.run_steps(37):
        pass
    assert metric_state(c) == expected

    d = make_sim(path, workers, **cfg)
    t = 0.0
    while not d.is_finished():
        t += 333.3
        d.run_until(t)
    assert metric_state(d) == expected
    assert a.now == b.now == c.now


def test_a_fresh_simulation_repeats_itself() -> None:
    a = make_sim(TINY, 3, **TIGHT)
    b = make_sim(TINY, 3, **TIGHT)
    a.run()
    b.run()
    assert metric_state(a) == metric_state(b)
    assert snap_key(a.snapshot()) == snap_key(b.snapshot())


# ---- run_steps --------------------------------------------------------------------------------

def test_run_steps_reports_remaining_work() -> None:
    total = len(instants())
    sim = make_sim()
    assert sim.run_steps(0) is True  # nothing processed, work remains
    assert sim.snapshot().passes == 0
    ref = make_sim()
    done = 0
    while True:
        more = sim.run_steps(100)
        n = min(100, total - done)
        for _ in range(n):
            ref.step()
        done += n
        assert snap_key(sim.snapshot()) == snap_key(ref.snapshot())
        assert more == (done < total)
        assert more == (not sim.is_finished())
        if not more:
            break
    assert done == total
    # Exactly the number of remaining instants: the chunk empties the queue and says so.
    exact = make_sim()
    assert exact.run_steps(total) is False
    assert exact.completed == len(exact.wl)
    almost = make_sim()
    assert almost.run_steps(total - 1) is True


# ---- snapshot ---------------------------------------------------------------------------------

def lru_length(pool: Any) -> int:
    """Parked blocks found by walking the LRU list itself (not the pool's counter)."""
    parked = pool.inactive_blocks()
    assert all(b.refcnt == 0 and b.key is not None for b in parked)
    assert len({id(b) for b in parked}) == len(parked)
    return len(parked)


def check_snapshot(sim: Simulation) -> SimSnapshot:
    s = sim.snapshot()
    assert s.now_ms == sim.now
    assert s.total_requests == len(sim.wl)
    assert (s.arrived, s.completed, s.rejected) == (sim.arrived, sim.completed, sim.rejected)
    assert s.in_flight >= 0
    assert s.completed + s.rejected + s.in_flight == s.arrived <= s.total_requests
    assert len(sim.metrics.req) == s.completed + s.rejected
    assert len(s.workers) == len(sim.workers)
    assert sum(w.waiting + w.running for w in s.workers) == s.in_flight
    assert s.passes == sum(w.passes for w in sim.workers)
    for ws, w in zip(s.workers, sim.workers):
        assert ws.idx == w.idx
        assert ws.total_blocks == w.pool.capacity == sim.front.cfg.num_gpu_blocks
        assert min(ws.active_blocks, ws.inactive_blocks, ws.free_blocks) >= 0
        assert ws.active_blocks + ws.inactive_blocks + ws.free_blocks == ws.total_blocks
        assert (ws.waiting, ws.running, ws.busy) == (len(w.waiting), len(w.running), w.busy)
        # Independent counts: blocks held by requests, and the inactive LRU list itself.
        held = {id(b) for r in list(w.running) + list(w.waiting) for b in r.blocks}
        assert ws.active_blocks == len(held)
        assert ws.inactive_blocks == lru_length(w.pool)
        assert ws.running == 0 or ws.active_blocks > 0
        assert ws.prefill_tokens >= 0
        assert ws.preemptions == w.preemptions
    return s


@pytest.mark.parametrize("workers", [1, 2])
def test_snapshot_is_consistent_at_every_instant(workers: int) -> None:
    sim = make_sim(TINY, workers, **TIGHT)
    first = check_snapshot(sim)
    assert (first.arrived, first.in_flight, first.passes) == (0, 0, 0)
    assert all(w.free_blocks == w.total_blocks for w in first.workers)
    seen_running = seen_rejected = False
    prev_preempt = 0
    while sim.step():
        s = check_snapshot(sim)
        seen_running |= any(w.running for w in s.workers)
        seen_rejected |= s.rejected > 0
        pre = sum(w.preemptions for w in s.workers)
        assert pre >= prev_preempt
        prev_preempt = pre
    assert seen_running and seen_rejected and prev_preempt > 0  # the setup covers every state
    end = check_snapshot(sim)
    assert end.in_flight == 0
    assert end.arrived == end.total_requests == end.completed + end.rejected
    for w in end.workers:
        assert (w.active_blocks, w.waiting, w.running, w.busy) == (0, 0, 0, False)
        assert w.prefill_tokens == 0
        assert w.inactive_blocks + w.free_blocks == w.total_blocks
    assert sum(w.preemptions for w in end.workers) == sim.collect().preemptions


def test_snapshot_is_a_copy() -> None:
    sim = make_sim(TINY, 2)
    sim.run_steps(50)
    before = snap_key(sim.snapshot())
    s = sim.snapshot()
    sim.run_steps(50)
    assert snap_key(s) == before  # a snapshot does not follow the engine afterwards


def test_snapshot_is_cheap() -> None:
    sim = make_sim(SYNTHETIC, 4)
    assert sim.run_steps(20_000)
    s = sim.snapshot()
    assert s.in_flight > 0 and s.completed > 0  # mid-run
    t0 = time.perf_counter()
    for _ in range(1000):
        sim.snapshot()
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.25, f"1000 snapshots took {elapsed:.3f}s"


# ---- purity -----------------------------------------------------------------------------------

def subprocess_env() -> dict[str, str]:
    """Environment that makes a child import the same `engine` (source tree or installed)."""
    env = dict(os.environ)
    pkg_parent = str(Path(engine.__file__).resolve().parent.parent)
    dyn_parent = str(Path(sys.modules["dynosim"].__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([pkg_parent, dyn_parent]))
    return env


def test_engine_import_pulls_in_no_heavy_modules() -> None:
    heavy = ["textual", "polars", "msgspec", "numpy", "plotext", "dynosim", "rich"]
    code = (
        "import sys, json\n"
        "import engine.sim, engine.snapshot, engine.workload, engine.config\n"
        "import engine.metrics\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
        "print(engine.sim.__file__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), check=True,
                         capture_output=True, text=True, timeout=30)
    loaded, sim_file = out.stdout.splitlines()
    assert loaded == "[]", f"engine import pulled in {loaded}"
    # The child imported the engine the tests use (compiled or source).
    assert Path(sim_file).resolve() == Path(sys.modules["engine.sim"].__file__).resolve()


ENGINE_DIR = ROOT / "engine"
FORBIDDEN_MODULES = {"time", "random", "os", "datetime", "sys", "importlib", "secrets", "uuid",
                     "threading", "subprocess", "socket", "io", "pathlib", "tempfile"}
# engine/__init__.py holds the interpreted-mode switch (DYNOSIM_INTERPRETED) and its finder.
INIT_ALLOWED = {"os", "sys", "importlib"}


def engine_sources() -> list[Path]:
    files = sorted(ENGINE_DIR.glob("*.py"))
    assert len(files) >= 10 and ENGINE_DIR / "sim.py" in files
    return files


@pytest.mark.parametrize("path", engine_sources(), ids=lambda p: p.name)
def test_engine_module_is_pure(path: Path) -> None:
    src = path.read_text()
    tree = ast.parse(src, filename=str(path))
    allowed = INIT_ALLOWED if path.name == "__init__.py" else set()
    for node in ast.walk(tree):
        mods: list[str] = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module]
        for m in mods:
            top = m.split(".")[0]
            assert top not in FORBIDDEN_MODULES or top in allowed, (
                f"{path.name}:{node.lineno} imports {m}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("open", "print", "input", "exec", "eval", "__import__"), (
                f"{path.name}:{node.lineno} calls {node.func.id}()")
    # Grep-level backstop (catches e.g. `builtins.open(` or an import inside a string exec).
    for needle in ("open(", "import time", "import random", "import datetime", "from time ",
                   "from random ", "from datetime "):
        assert needle not in src, f"{path.name} contains {needle!r}"
    if path.name != "__init__.py":
        for needle in ("import os", "from os ", "os.environ", "os.path"):
            assert needle not in src, f"{path.name} contains {needle!r}"
