"""Capacity search: the highest load a candidate sustains within the sweep's constraints.

The load is `arrival_speedup_ratio` (a trace replayed faster) or the synthetic `request_rate`.
Per candidate, a bisection over [low, high]: probe `low` (if it already misses the SLA, the
capacity is below the range), then `high` (if it holds, the capacity is at least `high`), then
midpoints, keeping the highest load that held and the lowest that did not, until they are
within `tolerance` of each other or `steps` runs were spent. It assumes what capacity planners
assume: a candidate that meets the SLA at some load meets it at every lower one."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import msgspec

from dynosim.replay import RunOptions

CAPACITY_COLUMNS = ("capacity", "capacity_rps", "capacity_probes", "capacity_note")


@dataclass
class Probe:
    load: float
    feasible: bool
    request_rps: float | None  # request_throughput_rps at that load
    error: str | None = None


@dataclass
class Bisection:
    low: float
    high: float
    tolerance: float
    steps: int
    probes: list[Probe] = field(default_factory=list)
    ok: float | None = None  # the highest load that held
    bad: float | None = None  # the lowest load that did not
    done: bool = False
    in_flight: bool = False  # a probe is running (the driver's bookkeeping)

    def next_load(self) -> float:
        assert not self.done
        if not self.probes:
            return self.low
        if len(self.probes) == 1:
            return self.high
        assert self.ok is not None and self.bad is not None
        return (self.ok + self.bad) / 2.0

    def tell(self, load: float, feasible: bool, metrics: Mapping[str, float | None] | None,
             error: str | None = None) -> None:
        rps = metrics.get("request_throughput_rps") if metrics is not None else None
        self.probes.append(Probe(load, feasible, rps, error))
        if feasible:
            self.ok = load if self.ok is None else max(self.ok, load)
        else:
            self.bad = load if self.bad is None else min(self.bad, load)
        if len(self.probes) == 1 and not feasible:
            self.done = True  # misses the SLA at the lowest load of the range
        elif len(self.probes) == 2 and feasible:
            self.done = True  # holds at the top of the range
        elif (self.ok is not None and self.bad is not None
              and (self.bad - self.ok <= self.tolerance or len(self.probes) >= self.steps)):
            self.done = True
        elif len(self.probes) >= self.steps:
            self.done = True

    @property
    def capacity(self) -> float | None:
        return self.ok

    @property
    def capacity_rps(self) -> float | None:
        for p in self.probes:
            if p.feasible and p.load == self.ok:
                return p.request_rps
        return None

    def note(self) -> str:
        if not self.probes:
            return "not run"
        if self.ok is None:
            return f"misses the constraints at the lowest load ({self.low:g})"
        if self.bad is None:
            return f"holds at the highest load ({self.high:g}): capacity >= {self.high:g}"
        if self.bad - self.ok <= self.tolerance:
            return f"in [{self.ok:.4g}, {self.bad:.4g}) (tolerance {self.tolerance:g})"
        return (f"in [{self.ok:.4g}, {self.bad:.4g}): step budget ({self.steps}) spent "
                f"before the tolerance {self.tolerance:g}")

    def describe(self, load: str) -> str:
        cap = "-" if self.ok is None else f"{self.ok:.4g}"
        return f"{load} {cap}, {self.note()}, {len(self.probes)} runs"


def capacity_row(b: Bisection | None) -> dict[str, Any]:
    """The results columns of one point (None: not a capacity candidate)."""
    if b is None:
        return dict.fromkeys(CAPACITY_COLUMNS)
    return {"capacity": b.capacity, "capacity_rps": b.capacity_rps,
            "capacity_probes": "; ".join(f"{p.load:.4g}:{'ok' if p.feasible else 'miss'}"
                                         for p in b.probes),
            "capacity_note": b.note()}


def probe_options(options: RunOptions, load: str, value: float) -> RunOptions:
    """The candidate's run at another load."""
    if load == "arrival_speedup_ratio":
        return msgspec.structs.replace(options, arrival_speedup_ratio=value)
    return msgspec.structs.replace(options, request_rate=value)
