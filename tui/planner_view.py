"""The planner as the TUI sees it: its SLA, when it decides next, and the decisions it took.

Read from the replay: `Replay.decisions` holds each tick's scale events beside the snapshot
that explains them, so a row of the planner panel and its explanation come from one decision.
Without a planner (`planner_view` returns None) the planner panel stays hidden, `d` says there
is no planner, and the plots draw no planner SLA lines or scale markers.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dynosim.replay import Replay
from planner.types import TickSnapshot


@dataclass(frozen=True)
class ScaleRow:
    """One scale event of a decision, in the panel's units (ms)."""

    t_ms: float
    component: str  # "prefill", "decode" or "agg"
    from_count: int
    to_count: int
    reason: str
    snapshot: TickSnapshot | None  # the decision's diagnostics


class PlannerView:
    def __init__(self, replay: Replay) -> None:
        cfg = replay.planner_config
        assert cfg is not None
        self.replay = replay
        self.sla_ttft_ms = float(cfg.ttft_ms)
        self.sla_itl_ms = float(cfg.itl_ms)
        self._rows: list[ScaleRow] = []
        self._seen = 0  # decisions already turned into rows

    @property
    def scale_events(self) -> Sequence[ScaleRow]:
        decisions = self.replay.decisions
        for d in decisions[self._seen:]:
            for ev in d.events:
                self._rows.append(ScaleRow(ev.t_s * 1000.0, ev.component, ev.from_replicas,
                                           ev.to_replicas, ev.reason, d.snapshot))
        self._seen = len(decisions)
        return self._rows

    def next_decision_ms(self) -> float:
        """Simulated time of the next planner tick (inf when none is left)."""
        sim = self.replay.sim
        return float(sim.next_tick_ms) if not sim.is_finished() else math.inf

    def explain(self, index: int) -> str:
        """Why decision `index` was taken: observed/predicted load, estimated TTFT/ITL vs SLA,
        capacity, lower bound."""
        ev = self.scale_events[index]
        snap = ev.snapshot
        if snap is None:
            return "no diagnostics recorded for this tick"

        def f(v: object, unit: str = "") -> str:
            return "-" if v is None else (f"{v:,.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")

        prefill = ev.component == "prefill"
        rps = snap.engine_rps_prefill if prefill else snap.engine_rps_decode
        bound = (snap.throughput_lower_bound_prefill if prefill
                 else snap.throughput_lower_bound_decode)
        return "\n".join([
            f"t={ev.t_ms / 1000:.0f}s {ev.component}: {ev.from_count} -> {ev.to_count} ({ev.reason})",
            f"load reason: {f(snap.load_decision_reason)}  "
            f"throughput: {f(snap.throughput_decision_reason)}",
            f"observed rps {f(snap.observed_requests_per_second)}  "
            f"predicted {f(snap.predicted_requests_per_second)}",
            f"est. TTFT {f(snap.estimated_ttft_ms, ' ms')} vs SLA {self.sla_ttft_ms:,.0f} ms",
            f"est. ITL {f(snap.estimated_itl_ms, ' ms')} vs SLA {self.sla_itl_ms:,.0f} ms",
            f"engine capacity {f(rps, ' req/s')}  lower bound {f(bound)}",
        ])


def planner_view(replay: Replay) -> PlannerView | None:
    if replay.planner is None or replay.planner_config is None:
        return None
    return PlannerView(replay)
