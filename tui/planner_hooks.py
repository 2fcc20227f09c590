"""What the TUI needs from a planner, once the replay has one (none exists yet).

The views only look for `replay.planner`; while it is absent (every replay today) the planner
panel stays hidden, `d` says there is no planner, and the plots draw no SLA targets of a planner
and no scale markers. A planner that provides this protocol lights those parts up.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


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


def find_planner(replay: object) -> PlannerView | None:
    planner: PlannerView | None = getattr(replay, "planner", None)
    return planner
