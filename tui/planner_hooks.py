"""What the TUI needs from a planner: `PlannerView`. Without a planner the planner panel stays
hidden, `d` says there is no planner, and the plots draw no planner SLA lines or scale markers.
`find_planner` presents a replay's real planner (planner.planner.Planner) through this view.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol


class ScaleEventView(Protocol):
    t_ms: float
    component: str  # e.g. "prefill", "decode", "agg"
    from_count: int
    to_count: int
    reason: str


class PlannerView(Protocol):
    sla_ttft_ms: float | None
    sla_itl_ms: float | None

    @property
    def scale_events(self) -> Sequence[ScaleEventView]: ...

    def next_decision_ms(self) -> float:
        """Simulated time of the next planner tick (inf when none is left)."""
        ...

    def explain(self, index: int) -> str:
        """Why decision `index` was taken: observed/predicted load, estimated TTFT/ITL vs SLA,
        capacity, lower bound (free text for the panel)."""
        ...


class _Event:
    __slots__ = ("t_ms", "component", "from_count", "to_count", "reason")

    def __init__(self, t_ms: float, component: str, from_count: int, to_count: int,
                 reason: str) -> None:
        self.t_ms, self.component, self.reason = t_ms, component, reason
        self.from_count, self.to_count = from_count, to_count


class PlannerAdapter:
    """The replay's planner seen through `PlannerView` (events in ms, reasons from the
    snapshot the planner recorded at the decision's tick)."""

    def __init__(self, replay: Any) -> None:
        self.replay = replay
        self.planner = replay.planner
        cfg = replay.planner_config
        self.sla_ttft_ms: float | None = float(cfg.ttft_ms)
        self.sla_itl_ms: float | None = float(cfg.itl_ms)
        self._events: list[_Event] = []

    @property
    def scale_events(self) -> Sequence[ScaleEventView]:
        evs = self.planner.events
        for ev in evs[len(self._events):]:
            self._events.append(_Event(ev.t_s * 1000.0, ev.component, ev.from_replicas,
                                       ev.to_replicas, ev.reason))
        return self._events

    def next_decision_ms(self) -> float:
        sim = self.replay.sim
        return float(sim.next_tick_ms) if not sim.is_finished() else math.inf

    def explain(self, index: int) -> str:
        ev = self.scale_events[index]
        snap = next((s for s in reversed(self.planner.snapshots)
                     if abs(float(s.get("timestamp_s", -1.0)) * 1000.0 - ev.t_ms) < 1e-6), None)
        if snap is None:
            return "no diagnostics recorded for this tick"

        def f(key: str, unit: str = "") -> str:
            v = snap.get(key)
            return "-" if v is None else (f"{v:,.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")

        comp = "prefill" if ev.component == "prefill" else "decode"
        return "\n".join([
            f"t={ev.t_ms / 1000:.0f}s {ev.component}: {ev.from_count} -> {ev.to_count} ({ev.reason})",
            f"load reason: {f('load_decision_reason')}  throughput: {f('throughput_decision_reason')}",
            f"observed rps {f('observed_requests_per_second')}  predicted {f('predicted_requests_per_second')}",
            f"est. TTFT {f('estimated_ttft_ms', ' ms')} vs SLA {self.sla_ttft_ms:,.0f} ms",
            f"est. ITL {f('estimated_itl_ms', ' ms')} vs SLA {self.sla_itl_ms:,.0f} ms",
            f"engine capacity {f('engine_rps_' + comp, ' req/s')}  lower bound "
            f"{f('throughput_lower_bound_' + comp)}",
        ])


def find_planner(replay: object) -> PlannerView | None:
    planner = getattr(replay, "planner", None)
    if planner is None or hasattr(planner, "scale_events"):
        return planner  # None, or something that already speaks PlannerView
    cached: PlannerView | None = getattr(replay, "_planner_view", None)
    if cached is None:
        cached = PlannerAdapter(replay)
        setattr(replay, "_planner_view", cached)
    return cached
