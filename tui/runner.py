"""Runs a built replay in bounded slices of wall time, paced by a `PaceClock`. No Textual here:
the screen calls `tick()` from its loop and draws whatever state results."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

from dynosim.replay import Replay
from tui.pacing import ChunkSizer, PaceClock
from tui.planner_view import PlannerView, planner_view

# When a paced run is this many wall seconds behind its target, stop trying to catch up (which
# would burst through the backlog later) and re-anchor the clock where the engine is.
LAG_REBASE_S: Final = 0.5
# Paced stepping checks the wall clock every this many instants.
DEADLINE_CHECK_EVERY: Final = 16


class PacedRunner:
    def __init__(self, replay: Replay, clock: PaceClock | None = None,
                 sizer: ChunkSizer | None = None,
                 wall: Callable[[], float] = time.perf_counter) -> None:
        self.replay = replay
        self.sim = replay.sim
        self.clock = clock if clock is not None else PaceClock()
        self.sizer = sizer if sizer is not None else ChunkSizer()
        self.wall = wall
        self.clock_ms = 0.0  # the simulated time shown: >= the last event processed
        self.lagging = False  # the engine cannot keep up with the requested speed
        self.finished = replay.finished()
        self.planner: PlannerView | None = planner_view(replay)

    @property
    def running(self) -> bool:
        return not self.clock.paused and not self.finished

    # ---- controls -----------------------------------------------------------------------------
    def play(self) -> None:
        if not self.finished:
            self.clock.resume(self.wall(), self.clock_ms)

    def pause(self) -> None:
        self.clock.pause()
        self.lagging = False

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed, self.wall(), self.clock_ms)
        self.lagging = False

    def step(self) -> bool:
        """Pause, then run exactly one engine instant. False when nothing was left."""
        self.pause()
        if self.finished:
            return False
        self.replay.advance(1)
        self._after_progress(self.sim.now)
        return True

    def seek(self, t_ms: float) -> None:
        """Run every instant at or before t_ms (unbounded; for tests and planner ticks). The
        engine's own clock is left at its last event, as in a headless run."""
        sim = self.sim
        while sim.peek() <= t_ms:
            self.replay.advance(1)
        self._after_progress(t_ms)

    def next_decision(self) -> bool:
        """Run to the planner's next decision and pause there. False without a planner."""
        planner = self.planner
        if planner is None:
            return False
        self.pause()
        self.seek(planner.next_decision_ms())
        return True

    # ---- the paced loop -----------------------------------------------------------------------
    def tick(self, budget_s: float) -> int:
        """Advance towards the clock's target for at most about budget_s of wall time.
        Returns the number of engine instants run."""
        if not self.running:
            return 0
        start = self.wall()
        if self.clock.is_max:
            return self._run_flat_out(start + budget_s)
        return self._run_paced(start, start + budget_s)

    def _run_flat_out(self, deadline: float) -> int:
        # Several small chunks (sized to sizer.budget_s each) rather than one big one, so the
        # slice ends within one small chunk of its deadline whatever an instant costs.
        total = 0
        sizer = self.sizer
        while True:
            n = sizer.steps
            t0 = self.wall()
            more = self.replay.advance(n)
            t1 = self.wall()
            sizer.observe(n, t1 - t0)
            total += n
            if not more or t1 >= deadline:
                break
        self._after_progress(self.sim.now)
        return total

    def _run_paced(self, start: float, deadline: float) -> int:
        target = self.clock.target_ms(start)
        sim = self.sim
        steps = 0
        while sim.peek() <= target:
            self.replay.advance(1)
            steps += 1
            if steps % DEADLINE_CHECK_EVERY == 0 and self.wall() >= deadline:
                break
        behind = sim.peek() <= target
        self.lagging = behind
        if behind and target - sim.now > self.clock.speed * 1000.0 * LAG_REBASE_S:
            self.clock.rebase(self.wall(), sim.now)
        self._after_progress(sim.now if behind else target)
        return steps

    def _after_progress(self, shown_ms: float) -> None:
        if self.replay.finished():
            self.finished = True
            self.pause()
            # The replay ended at its last event; show that, not the pacing target past it.
            shown_ms = self.sim.now
        if math.isfinite(shown_ms) and shown_ms > self.clock_ms:
            self.clock_ms = shown_ms
        if not self.clock.paused:
            return
        # While paused, keep the anchor on the shown time so play resumes from here.
        self.clock.rebase(self.wall(), self.clock_ms)
