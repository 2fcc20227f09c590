"""Rolling latency and worker-count series for the plots. Pure: fed from the engine's
append-only metric columns and snapshots, never per event.

Latencies are sampled on a grid of *simulated* time (not on UI refreshes), so the series only
depend on the replay, not on how fast or how often the screen redraws: a paused 1x run and a
max-speed run show the same curve at the same simulated time.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.metrics import STATUS_COMPLETED


class MetricRows(Protocol):
    """The slice of engine.metrics.MetricColumns the series read (one row per finished request,
    rows in order of terminal time)."""

    status: list[int]
    arrival_ms: list[float]
    first_token_ms: list[float]
    last_token_ms: list[float]
    terminal_ms: list[float]
    output_tokens: list[int]


def nearest_rank(sorted_vals: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sorted sequence."""
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


@dataclass
class Quantiles:
    """p50/p90 of one metric at each sample time; None where the window was empty."""

    t_ms: list[float] = field(default_factory=list)
    p50: list[float | None] = field(default_factory=list)
    p90: list[float | None] = field(default_factory=list)

    def keep(self, mask: list[bool]) -> None:
        self.t_ms = [v for v, k in zip(self.t_ms, mask) if k]
        self.p50 = [v for v, k in zip(self.p50, mask) if k]
        self.p90 = [v for v, k in zip(self.p90, mask) if k]


class _Samples:
    """(time, value) pairs in time order, for windowed percentiles."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.v: list[float] = []

    def window(self, lo_ms: float, hi_ms: float) -> list[float]:
        """Values with lo < t <= hi, sorted."""
        i0 = bisect_right(self.t, lo_ms)
        i1 = bisect_right(self.t, hi_ms)
        return sorted(self.v[i0:i1])

    def forget_before(self, t_ms: float) -> None:
        """Drop samples no future window can reach (only once they are the bulk of the list,
        so the O(n) delete stays amortised)."""
        i = bisect_right(self.t, t_ms)
        if i > 1024 and i * 2 > len(self.t):
            del self.t[:i]
            del self.v[:i]


class LatencySeries:
    """TTFT and mean ITL of finished requests, p50/p90 over a sliding window of simulated time.

    TTFT = first token - arrival; ITL = (last token - first token) / (output tokens - 1), one
    value per completed request with at least two tokens, bucketed by the request's terminal
    time. Samples sit on a grid of `period` ms; when the run outgrows `max_points` samples the
    period doubles and every other sample is dropped (bounded memory and redraw cost).
    """

    def __init__(self, window_ms: float = 10_000.0, base_period_ms: float = 250.0,
                 max_points: int = 256) -> None:
        self.window_ms = window_ms
        self.base_period_ms = base_period_ms
        self.max_points = max_points
        self.stride = 1  # sample every `stride` base periods
        self.ttft = Quantiles()
        self.itl = Quantiles()
        self._ttft = _Samples()
        self._itl = _Samples()
        self._rows_seen = 0
        self._last_k = 0  # grid index of the last sample taken (k x base period)

    @property
    def period_ms(self) -> float:
        return self.base_period_ms * self.stride

    @property
    def effective_window_ms(self) -> float:
        # Never narrower than the sampling period, or samples would skip requests.
        return max(self.window_ms, self.period_ms)

    def ingest(self, rows: MetricRows, upto_ms: float) -> bool:
        """Read the rows added since the last call, then sample every grid time <= upto_ms.
        Every request with a terminal time <= upto_ms must already be in `rows`. Returns True
        when a sample was added."""
        self._read_rows(rows)
        k_end = int(upto_ms // self.base_period_ms) if math.isfinite(upto_ms) else self._last_k
        if k_end <= self._last_k:
            return False
        while k_end // self.stride > self.max_points:
            self._decimate()
        k = (self._last_k // self.stride + 1) * self.stride
        added = False
        while k <= k_end:
            t = k * self.base_period_ms
            self._sample(t)
            added = True
            k += self.stride
        self._last_k = k_end
        # Windows only move forward, and can only widen by decimation (to period x 2).
        horizon = k_end * self.base_period_ms - 2.0 * self.effective_window_ms
        self._ttft.forget_before(horizon)
        self._itl.forget_before(horizon)
        return added

    def _read_rows(self, rows: MetricRows) -> None:
        n = len(rows.terminal_ms)
        status = rows.status
        arrival = rows.arrival_ms
        first = rows.first_token_ms
        last = rows.last_token_ms
        out = rows.output_tokens
        term = rows.terminal_ms
        for i in range(self._rows_seen, n):
            if status[i] != STATUS_COMPLETED or first[i] < 0.0:
                continue
            t = term[i]
            self._ttft.t.append(t)
            self._ttft.v.append(first[i] - arrival[i])
            if out[i] >= 2:
                self._itl.t.append(t)
                self._itl.v.append((last[i] - first[i]) / (out[i] - 1))
        self._rows_seen = n

    def _sample(self, t: float) -> None:
        lo = t - self.effective_window_ms
        for samples, q in ((self._ttft, self.ttft), (self._itl, self.itl)):
            vals = samples.window(lo, t)
            q.t_ms.append(t)
            q.p50.append(nearest_rank(vals, 50.0) if vals else None)
            q.p90.append(nearest_rank(vals, 90.0) if vals else None)

    def _decimate(self) -> None:
        self.stride *= 2
        for q in (self.ttft, self.itl):
            q.keep([round(t / self.base_period_ms) % self.stride == 0 for t in q.t_ms])


@dataclass
class WorkerCounts:
    """Workers by state over simulated time, as steps: a point only when a count changes."""

    max_points: int = 2000
    t_ms: list[float] = field(default_factory=list)
    starting: list[int] = field(default_factory=list)
    active: list[int] = field(default_factory=list)
    draining: list[int] = field(default_factory=list)

    def record(self, t_ms: float, starting: int, active: int, draining: int) -> bool:
        if self.t_ms and (self.starting[-1], self.active[-1], self.draining[-1]) == (
                starting, active, draining):
            return False
        if len(self.t_ms) >= self.max_points:  # keep the most recent history
            for col in (self.t_ms, self.starting, self.active, self.draining):
                del col[: self.max_points // 2]
        self.t_ms.append(t_ms)
        self.starting.append(starting)
        self.active.append(active)
        self.draining.append(draining)
        return True

    def steps(self, counts: list[int], until_ms: float) -> tuple[list[float], list[float]]:
        """The step curve of one count up to until_ms, as points a line plot can draw."""
        xs: list[float] = []
        ys: list[float] = []
        for i, (t, c) in enumerate(zip(self.t_ms, counts)):
            if i:
                xs.append(t)
                ys.append(float(counts[i - 1]))
            xs.append(t)
            ys.append(float(c))
        if xs and until_ms > xs[-1]:
            xs.append(until_ms)
            ys.append(ys[-1])
        return xs, ys
