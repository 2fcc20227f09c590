"""The headless sweep's progress: one line per finished point and, on a terminal, a bar with
the points done, the running points' simulated-time progress, elapsed time and ETA. Built
from the sweep's events (dynosim.sweep.events), as the live sweep screen is."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from dynosim.sweep.events import CANCELLED, FAILED, INFEASIBLE, RUNNING, SKIPPED, \
    PointFinished, PointProgress, PointStarted, SweepEnded, SweepEvent, SweepStarted, \
    SweepState, fmt_seconds

BAR_WIDTH = 24
REDRAW_S = 0.1


class HeadlessProgress:
    """An observer for run_sweep. `lines`: print a line per finished point; `bar`: draw the
    bar (default: when the stream is a terminal)."""

    def __init__(self, describe: Callable[[int], str], *, stream: TextIO | None = None,
                 lines: bool = True, bar: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, banner: str | None = None
                 ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.describe = describe
        self.banner = banner  # the first line, written when the sweep starts
        self.lines = lines
        self.bar = self.stream.isatty() if bar is None else bar
        self.state = SweepState(clock=clock)
        self._clock = clock
        self._last_draw = -1e9
        self._bar_shown = False

    def __call__(self, ev: SweepEvent) -> None:
        self.state.apply(ev)
        if isinstance(ev, SweepStarted) and self.banner is not None:
            self.stream.write(self.banner + "\n")
            self.stream.flush()
        if isinstance(ev, SweepStarted) and ev.reused and self.lines:
            infeasible = self.state.count(INFEASIBLE)
            self.stream.write(f"{len(ev.reused)} of {len(ev.points)} points reused from an "
                              "earlier run" + (f" ({infeasible} infeasible)" if infeasible
                                               else "") + "\n")
        if isinstance(ev, PointFinished) and self.lines:
            self._line(ev)
        if isinstance(ev, SweepEnded):
            self._clear_bar()
            return
        if isinstance(ev, (SweepStarted, PointStarted, PointProgress, PointFinished)):
            self._draw(force=isinstance(ev, PointFinished))

    def _line(self, ev: PointFinished) -> None:
        st = self.state.points[ev.index].status
        if st == SKIPPED:
            text = "skipped"
        elif st in (FAILED, CANCELLED):
            text = f"{st.upper()}: {ev.error}" if st == FAILED else "cancelled"
        elif st == INFEASIBLE:
            text = f"infeasible: {self.state.points[ev.index].error}"
        else:
            text = "ok"
        s = self.state
        done = s.count("done", "infeasible", "failed", "reused")
        self._clear_bar()
        self.stream.write(f"[{done}/{len(s.points)}] {self.describe(ev.index)}: {text} "
                          f"({ev.wall_s:.1f} s)\n")
        self.stream.flush()

    def render(self) -> str:
        s = self.state
        total = max(s.to_run, 1)
        running = [p for p in s.points.values() if p.status == RUNNING]
        progressed = min(s.finished + sum(p.fraction for p in running), total)
        fill = int(BAR_WIDTH * progressed / total)
        run_text = ", ".join(f"{p.sim_ms / 1000:,.0f}s sim {p.fraction:.0%}" for p in running[:4])
        return (f"[{'#' * fill}{'.' * (BAR_WIDTH - fill)}] {s.finished}/{s.to_run} points"
                + (f"  running: {run_text}" if run_text else "")
                + f"  elapsed {fmt_seconds(s.elapsed_s())}  eta {fmt_seconds(s.eta_s())}")

    def _draw(self, force: bool) -> None:
        if not self.bar:
            return
        now = self._clock()
        if not force and now - self._last_draw < REDRAW_S:
            return
        self._last_draw = now
        self.stream.write("\r\x1b[K" + self.render())
        self.stream.flush()
        self._bar_shown = True

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._bar_shown = False
