"""Wall clock -> simulated clock, and how much engine work fits in one UI tick. Pure: no Textual,
no engine; wall times are passed in (seconds, e.g. `time.perf_counter()`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

MAX_SPEED: Final = math.inf
# `+`/`-` walk this ladder; the last rung is "as fast as the engine goes".
SPEEDS: Final[tuple[float, ...]] = (1.0, 10.0, 100.0, 1000.0, 10000.0, MAX_SPEED)


def speed_label(speed: float) -> str:
    return "max" if math.isinf(speed) else f"{speed:g}x"


def faster(speed: float) -> float:
    for s in SPEEDS:
        if s > speed:
            return s
    return SPEEDS[-1]


def slower(speed: float) -> float:
    for s in reversed(SPEEDS):
        if s < speed:
            return s
    return SPEEDS[0]


@dataclass
class PaceClock:
    """Target simulated time = anchor_sim + (wall - anchor_wall) x speed.

    The target is recomputed from the anchor on every tick, never accumulated tick by tick, so
    timer jitter and rounding cannot drift the simulated clock away from the wall clock. The
    anchor moves only on resume, speed change, stepping, or when the engine falls behind.
    """

    speed: float = 1.0
    paused: bool = True
    anchor_wall: float = 0.0
    anchor_sim_ms: float = 0.0

    @property
    def is_max(self) -> bool:
        return math.isinf(self.speed)

    def rebase(self, wall: float, sim_ms: float) -> None:
        self.anchor_wall = wall
        self.anchor_sim_ms = sim_ms

    def resume(self, wall: float, sim_ms: float) -> None:
        self.paused = False
        self.rebase(wall, sim_ms)

    def pause(self) -> None:
        self.paused = True

    def set_speed(self, speed: float, wall: float, sim_ms: float) -> None:
        # Re-anchor at the current position so the new speed applies from now on, not from the
        # last anchor (which would make the clock jump).
        self.rebase(wall, sim_ms)
        self.speed = speed

    def target_ms(self, wall: float) -> float:
        """Where the simulated clock should be at this wall time (ms); inf at max speed."""
        if self.paused:
            return self.anchor_sim_ms
        if self.is_max:
            return math.inf
        return self.anchor_sim_ms + (wall - self.anchor_wall) * self.speed * 1000.0


@dataclass
class ChunkSizer:
    """Adapts how many engine instants to run per chunk so that one chunk takes about
    `budget_s` of wall time, whatever the engine's current cost per instant."""

    budget_s: float = 0.004
    steps: int = 64
    min_steps: int = 1
    # A replay's first instants (nothing arrived yet) cost a fraction of a microsecond, so the
    # size keeps doubling; uncapped it reached 8k instants just as they became ~20 us each (a
    # 140 ms chunk: a frame and a key missed). 4096 instants is ~4 ms at busy-replay costs.
    max_steps: int = 4096

    def observe(self, steps_run: int, elapsed_s: float) -> None:
        if steps_run <= 0 or elapsed_s <= 0.0:
            # Too fast to measure: grow, so a nearly free chunk does not stall the sizing.
            self.steps = min(self.max_steps, self.steps * 2)
            return
        ideal = steps_run * self.budget_s / elapsed_s
        # Move halfway towards the ideal, but at most x2 per chunk: a few slow instants (a big
        # prefill) must not collapse the size, nor a quiet stretch blow it up.
        nxt = 0.5 * (self.steps + ideal)
        nxt = max(self.steps / 2.0, min(self.steps * 2.0, nxt))
        self.steps = int(max(self.min_steps, min(self.max_steps, nxt)))
