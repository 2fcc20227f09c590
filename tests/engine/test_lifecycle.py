"""Scaling a pool at run time (what the planner's decisions turn into): start-up delay,
routing only to active workers, draining, worker lifetimes, planner ticks."""
from __future__ import annotations

import pytest

from helpers import fixed_timing
from engine.sim import Simulation
from engine.topology import Topology
from engine.pool import POOL_AGG, STATE_ACTIVE, STATE_DRAINING, STATE_STARTING, STATE_STOPPED
from engine.workload import Workload


def steady(n: int, every_ms: float, osl: int = 20) -> Workload:
    wl = Workload(512)
    for i in range(n):
        wl.add(i * every_ms, 0.0, 500, osl, [i], -1, 0)
    return wl


def run_with_ticks(sim: Simulation, on_tick) -> list[float]:  # type: ignore[no-untyped-def]
    ticks: list[float] = []
    while sim.step():
        if sim.at_tick:
            ticks.append(sim.now)
            on_tick(sim)
    return ticks


def test_ticks_stop_the_step_before_passes_and_end_with_the_work() -> None:
    sim = Simulation(steady(10, 100.0), Topology(1, fixed_timing()))
    sim.enable_ticks(250.0, 0.0)
    ticks = run_with_ticks(sim, lambda s: None)
    assert ticks[:3] == [250.0, 500.0, 750.0]
    last_work = max(sim.metrics.terminal_ms)
    assert ticks[-1] <= last_work  # no ticks after the replay drained
    assert sim.completed == 10


def test_scale_up_waits_for_startup_then_routes_round_robin_over_active() -> None:
    sim = Simulation(steady(40, 50.0), Topology(1, fixed_timing()))
    sim.enable_ticks(500.0, 300.0)
    seen: dict[float, list[int]] = {}

    def tick(s: Simulation) -> None:
        if s.now == 500.0:
            s.scale(POOL_AGG, 2)
        seen[s.now] = [w.state for w in s.workers]

    run_with_ticks(sim, tick)
    assert seen[500.0] == [STATE_ACTIVE, STATE_STARTING]
    assert seen[1000.0] == [STATE_ACTIVE, STATE_ACTIVE]  # ready at 800
    m = sim.metrics
    before = {m.worker[k] for k in range(len(m)) if m.arrival_ms[k] < 800.0}
    after = [m.worker[k] for k in range(len(m)) if m.arrival_ms[k] >= 800.0]
    assert before == {0}
    assert set(after) == {0, 1} and abs(after.count(0) - after.count(1)) <= 1
    # lifetimes: worker 0 from 0, worker 1 from its creation at 500 (start-up included)
    end = sim.now
    assert sim.worker_seconds(POOL_AGG) == pytest.approx((end + (end - 500.0)) / 1000.0)


def test_scale_down_drains_the_newest_worker_then_stops_it() -> None:
    sim = Simulation(steady(60, 20.0, osl=40), Topology(3, fixed_timing()))
    sim.enable_ticks(300.0, 0.0)
    states: list[list[int]] = []

    def tick(s: Simulation) -> None:
        if s.now == 300.0:
            s.scale(POOL_AGG, 2)
        states.append([w.state for w in s.workers])

    run_with_ticks(sim, tick)
    assert states[0][2] in (STATE_DRAINING, STATE_STOPPED)
    assert sim.workers[2].state == STATE_STOPPED
    assert 300.0 <= sim.workers[2].stopped_ms < sim.now
    m = sim.metrics
    # nothing new is routed to the drained worker, but what it held finished there
    assert all(m.worker[k] != 2 for k in range(len(m)) if m.arrival_ms[k] > 300.0)
    assert any(m.worker[k] == 2 and m.terminal_ms[k] > 300.0 for k in range(len(m)))
    assert sim.completed == 60


def test_scaling_away_a_starting_worker_never_routes_to_it() -> None:
    sim = Simulation(steady(30, 50.0), Topology(1, fixed_timing()))
    sim.enable_ticks(200.0, 1000.0)

    def tick(s: Simulation) -> None:
        if s.now == 200.0:
            s.scale(POOL_AGG, 2)
        elif s.now == 400.0:
            s.scale(POOL_AGG, 1)

    run_with_ticks(sim, tick)
    assert sim.workers[1].state == STATE_STOPPED
    assert sim.workers[1].stopped_ms == pytest.approx(400.0)
    assert set(sim.metrics.worker) == {0}
