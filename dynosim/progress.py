"""A progress bar on stderr for headless runs: silent for runs under a second or off a TTY."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None,
                 delay_s: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(total, 1)
        self.start = time.perf_counter()
        self.delay_s = delay_s
        self.last_draw = 0.0
        self.shown = False

    def update(self, done: int, sim_ms: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay_s or now - self.last_draw < 0.1:
            return
        self.last_draw = now
        frac = min(done / self.total, 1.0)
        width = 30
        fill = int(frac * width)
        elapsed = now - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        self.stream.write(
            f"\r[{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
            f"{done}/{self.total} requests  sim {sim_ms / 1000:,.1f}s  "
            f"elapsed {elapsed:.1f}s  eta {eta:.1f}s "
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
