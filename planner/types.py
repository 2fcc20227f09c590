"""The planner's contract with the simulator: an observation in, a decision out.

Plain frozen dataclasses and one msgspec Struct (interpreted code, never compiled). The simulator builds an
`Observation` at every planner tick; `Planner.tick(obs)` returns a `Decision`; the simulator
applies the targets (start-up delay, draining). Component names: "prefill", "decode"
(an aggregated deployment reports its workers as "decode", as the reference does).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import msgspec


@dataclass(frozen=True)
class ForwardPassMetrics:
    """The last forward pass a worker ran (spec planner.md §2.1)."""

    worker_id: int
    dp_rank: int
    wall_time_s: float  # duration of that pass
    # scheduled in that pass
    num_prefill_requests: int
    sum_prefill_tokens: int  # new prompt tokens computed
    sum_prefill_kv_tokens: int  # prompt tokens incl. cached prefix of those requests
    var_prefill_length: float
    num_decode_requests: int
    sum_decode_kv_tokens: int  # context of the decode requests
    var_decode_kv_tokens: float
    # still queued (waiting) after scheduling that pass
    queued_prefill_requests: int
    queued_prefill_tokens: int
    queued_decode_requests: int
    queued_decode_kv_tokens: int


@dataclass(frozen=True)
class TrafficWindow:
    """Traffic since the previous tick (spec planner.md §2.1)."""

    duration_s: float
    num_req: int  # arrivals in the window (offered load)
    avg_isl: float  # over requests that completed in the window
    avg_osl: float
    shape_count: int
    avg_ttft_ms: float
    ttft_count: int
    avg_itl_ms: float
    itl_count: int
    avg_kv_hit_rate: float
    kv_hit_count: int


@dataclass(frozen=True)
class Capabilities:
    """Per-component engine capabilities derived from the engine args (spec planner.md §1)."""

    num_gpu: int  # GPUs per replica
    max_num_batched_tokens: int
    max_num_seqs: int
    max_kv_tokens: int  # num_gpu_blocks * block_size * dp
    context_length: int | None  # max_model_len


@dataclass(frozen=True)
class Observation:
    t_s: float  # simulated seconds since trace start
    active: dict[str, list[int]]  # component -> routable worker ids
    starting: dict[str, list[int]]
    draining: dict[str, list[int]]
    # component -> FPMs of the workers that ran a pass since the previous tick
    fpms: dict[str, list[ForwardPassMetrics]]
    traffic: TrafficWindow  # since the previous tick (the planner merges unconsumed windows)


@dataclass(frozen=True)
class ScalingEvent:
    t_s: float
    component: str  # "agg" | "prefill" | "decode"
    from_replicas: int
    to_replicas: int
    reason: str  # "scale_up" | "scale_down"


class TickSnapshot(msgspec.Struct, kw_only=True, frozen=True):
    """One recorded tick's diagnostics (spec planner.md §9): the fields, names and order of
    the reference's snapshot log rows. `as_row()` is that row."""

    kind: str
    schema: str
    timestamp_s: float
    timestamp_utc: str
    num_prefill_replicas: int | None  # None in agg mode
    num_decode_replicas: int
    observed_request_duration_seconds: float | None
    estimated_ttft_ms: float | None
    estimated_itl_ms: float | None
    engine_rps_prefill: float | None
    engine_rps_decode: float | None
    throughput_lower_bound_prefill: int
    throughput_lower_bound_decode: int
    load_decision_reason: str | None
    load_decision_reason_prefill: str | None
    load_decision_reason_decode: str | None
    throughput_decision_reason: str | None
    throughput_decision_reason_prefill: str | None
    throughput_decision_reason_decode: str | None
    scale_to_prefill: int | None
    scale_to_decode: int | None
    gpu_hours: float
    prefill_engines: list[dict[str, object]]  # the FPM cache, one row per worker
    decode_engines: list[dict[str, object]]
    observed_requests_per_second: float | None
    observed_input_sequence_tokens: float | None
    observed_output_sequence_tokens: float | None
    observed_ttft_ms: float | None
    observed_itl_ms: float | None
    observed_kv_hit_rate: float | None
    predicted_requests_per_second: float | None
    predicted_input_sequence_tokens: float | None
    predicted_output_sequence_tokens: float | None
    predicted_kv_hit_rate: float | None

    def as_row(self) -> dict[str, object]:
        row: dict[str, object] = msgspec.structs.asdict(self)
        return row


@dataclass
class Decision:
    """Absolute replica targets (None = leave as is) and what the planner recorded."""

    target: dict[str, int] = field(default_factory=dict)
    events: list[ScalingEvent] = field(default_factory=list)
    # the per-tick diagnostics row (spec planner.md §9 snapshot fields) when this tick is
    # recorded, else None
    snapshot: TickSnapshot | None = None
