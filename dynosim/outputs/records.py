"""Per-request records (spec §10.2), as dicts (JSONL) or a flat frame (Parquet).

`RecordLayout` says which run made the columns: in aggregated runs the disaggregation-only
fields are None; in disaggregated runs they carry the prefill worker, the hand-off and the
transfer. Under kv_router the routing_history overlap-block fields are the router's counts
(None under round robin, as the reference).

What we can and cannot reproduce from MetricColumns:
- uuids are deterministic (derived from the workload index), so ties in arrival time sort by file
  order; the reference uses random uuids.
- admission_history: the first admission carries its time and cached tokens; readmissions after
  preemption are listed (ordinal, is_readmission=True) with ``at_ms`` and ``reused_input_tokens``
  None, because the engine only keeps the admission count and the max cached tokens.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import polars as pl

from dynosim.gc_pause import paused_gc
from engine.metrics import STATUS_COMPLETED, STATUS_REJECTED, MetricColumns
from engine.workload import Workload

_STATUS_NAMES = {STATUS_COMPLETED: "completed", STATUS_REJECTED: "rejected"}

# Flat scalar fields in record order, with their Parquet dtype.
FLAT_SCHEMA: dict[str, Any] = {
    "session_id": pl.Utf8,
    "turn_index": pl.Int64,
    "uuid": pl.Utf8,
    "arrival_time_ms": pl.Float64,
    "dispatched_at_ms": pl.Float64,
    "first_admit_ms": pl.Float64,
    "terminal_time_ms": pl.Float64,
    "first_token_ms": pl.Float64,
    "last_token_ms": pl.Float64,
    "ttft_ms": pl.Float64,
    "ttst_ms": pl.Float64,
    "e2e_latency_ms": pl.Float64,
    "itl_ms": pl.Float64,
    "input_length": pl.Int64,
    "requested_output_length": pl.Int64,
    "output_length": pl.Int64,
    "reused_input_tokens": pl.Int64,
    "prefill_worker_idx": pl.Int64,
    "decode_worker_idx": pl.Int64,
    "prefill_admit_ms": pl.Float64,
    "source_held_ms": pl.Float64,
    "destination_reserved_ms": pl.Float64,
    "destination_activated_ms": pl.Float64,
    "decode_admit_ms": pl.Float64,
    "source_released_ms": pl.Float64,
    "decode_reused_input_tokens": pl.Int64,
    "prefill_route_overlap_tokens": pl.Int64,
    "decode_route_overlap_tokens": pl.Int64,
    # (routing_history, admission_history: nested, JSONL only)
    "admission_count": pl.Int64,
    "readmission_count": pl.Int64,
    # (pressure_record_ordinals: nested, JSONL only)
    "terminal_status": pl.Utf8,
}

_DISAGG_NONE = (
    "prefill_worker_idx",
    "prefill_admit_ms",
    "source_held_ms",
    "destination_reserved_ms",
    "destination_activated_ms",
    "decode_admit_ms",
    "source_released_ms",
    "decode_reused_input_tokens",
    "prefill_route_overlap_tokens",
    "decode_route_overlap_tokens",
)


class RecordLayout:
    """What the run was, for the fields that depend on it."""

    __slots__ = ("disaggregated", "kv_router", "num_prefill", "block_size")

    def __init__(self, disaggregated: bool = False, kv_router: bool = False,
                 num_prefill: int = 0, block_size: int = 64) -> None:
        self.disaggregated = disaggregated
        self.kv_router = kv_router
        self.num_prefill = num_prefill
        self.block_size = block_size


AGG = RecordLayout()


def request_uuid(idx: int) -> str:
    """Deterministic, sortable-by-index UUID (version 4 / variant 1 layout) for workload index idx."""
    return f"00000000-0000-4000-8000-{idx:012x}"


def _opt(values: np.ndarray, present: np.ndarray) -> list[float | None]:
    out: list[Any] = values.tolist()
    for i in np.flatnonzero(~present).tolist():
        out[i] = None
    return out


def _flat_columns(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                  ) -> tuple[dict[str, list[Any]], list[int], list[int]]:
    """Flat columns in (arrival, uuid) order, plus the sorted admissions and first-reused lists."""
    n = len(cols)
    req = np.asarray(cols.req, dtype=np.int64)
    arrival = np.asarray(cols.arrival_ms, dtype=np.float64)
    order = np.lexsort((req, arrival)) if n else np.zeros(0, dtype=np.int64)

    def f64(xs: list[float]) -> np.ndarray:
        return np.asarray(xs, dtype=np.float64)[order]

    def i64(xs: list[int]) -> np.ndarray:
        return np.asarray(xs, dtype=np.int64)[order]

    req = req[order]
    arrival = arrival[order]
    first_admit = f64(cols.first_admit_ms)
    first = f64(cols.first_token_ms)
    second = f64(cols.second_token_ms)
    last = f64(cols.last_token_ms)
    terminal = f64(cols.terminal_ms)
    out_tok = i64(cols.output_tokens)
    admissions = i64(cols.admissions)

    has1 = (out_tok >= 1) & (first >= 0.0)
    has_last = (out_tok >= 1) & (last >= 0.0)
    has2 = (out_tok >= 2) & (second >= 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        itl = (last - first) / (out_tok - 1).astype(np.float64)

    req_l: list[int] = req.tolist()
    any_sessions = len(wl.session_names) > 0
    session_id: list[str | None] = []
    turn_index: list[int | None] = []
    for idx in req_l:
        s = wl.session[idx]
        if s >= 0:
            session_id.append(wl.session_names[s])
            turn_index.append(wl.turn[idx])
        elif any_sessions:
            # Rows without a session in a multi-turn trace are one-turn sessions named by 1-based line.
            session_id.append(f"request_{idx + 1}")
            turn_index.append(0)
        else:
            session_id.append(None)
            turn_index.append(None)

    none_col: list[Any] = [None] * n
    c: dict[str, list[Any]] = {
        "session_id": session_id,
        "turn_index": turn_index,
        "uuid": [request_uuid(i) for i in req_l],
        "arrival_time_ms": arrival.tolist(),
        "dispatched_at_ms": none_col,
        "first_admit_ms": _opt(first_admit, first_admit >= 0.0),
        "terminal_time_ms": terminal.tolist(),
        "first_token_ms": _opt(first, has1),
        "last_token_ms": _opt(last, has_last),
        "ttft_ms": _opt(first - arrival, has1),
        "ttst_ms": _opt(second - first, has2),
        "e2e_latency_ms": _opt(last - arrival, has_last),
        "itl_ms": _opt(itl, has2 & (last >= 0.0)),
        "input_length": i64(cols.input_length).tolist(),
        "requested_output_length": i64(cols.requested_output).tolist(),
        "output_length": out_tok.tolist(),
        "reused_input_tokens": i64(cols.reused_tokens).tolist(),
        "decode_worker_idx": i64(cols.worker).tolist(),  # index within its pool
        "admission_count": admissions.tolist(),
        "readmission_count": np.maximum(admissions - 1, 0).tolist(),
        "terminal_status": [_STATUS_NAMES.get(s, "failed") for s in i64(cols.status).tolist()],
    }
    for k in _DISAGG_NONE:
        c[k] = none_col
    bs = layout.block_size
    zeros = [0] * n
    # Columns filled only by routing/disagg runs may be absent in hand-built columns.
    overlap = i64(cols.route_overlap_blocks if len(cols.route_overlap_blocks) == n else zeros)
    best = i64(cols.route_best_overlap_blocks if len(cols.route_best_overlap_blocks) == n
               else zeros)
    c["_overlap"] = overlap.tolist()
    c["_best"] = best.tolist()
    if layout.disaggregated:
        def ms(xs: list[float]) -> list[float | None]:
            a = f64(xs)
            return _opt(a, a >= 0.0)

        decode_adm = f64(cols.decode_admit_ms)
        reached_decode = decode_adm >= 0.0
        c["prefill_worker_idx"] = i64(cols.prefill_worker).tolist()
        c["prefill_admit_ms"] = ms(cols.prefill_admit_ms)
        c["source_held_ms"] = ms(cols.source_held_ms)
        c["destination_reserved_ms"] = ms(cols.dest_reserved_ms)
        c["destination_activated_ms"] = ms(cols.dest_activated_ms)
        c["decode_admit_ms"] = _opt(decode_adm, reached_decode)
        c["source_released_ms"] = ms(cols.source_released_ms)
        c["decode_reused_input_tokens"] = i64(cols.decode_reused_tokens).tolist()
        c["prefill_route_overlap_tokens"] = (overlap * bs).tolist()
        c["decode_route_overlap_tokens"] = [0] * n
        # one admission on each side is not a readmission
        c["readmission_count"] = np.maximum(
            admissions - np.where(reached_decode, 2, 1), 0).tolist()
    ordered = {k: c[k] for k in FLAT_SCHEMA}
    ordered["_overlap"] = c["_overlap"]
    ordered["_best"] = c["_best"]
    return ordered, admissions.tolist(), i64(cols.first_reused_tokens).tolist()


def _route(pool: str, worker: int, overlap: int | None, best: int | None,
           bs: int) -> dict[str, Any]:
    return {
        "pool": pool,
        "outcome": "immediate",
        "queue_entered_at_ms": None,
        "released_at_ms": None,
        "queue_wait_ms": 0.0,
        "logical_worker_id": worker,
        "scheduler_id": worker,
        "dp_rank": 0,
        "reported_overlap_tokens": (overlap or 0) * bs,
        "selected_overlap_blocks": overlap,
        "best_available_overlap_blocks": best,
        "overlap_regret_blocks": None if overlap is None or best is None else best - overlap,
        "placement_replica_id": None,
    }


def _routing(layout: RecordLayout, row: dict[str, Any], overlap: int, best: int
             ) -> list[dict[str, Any]]:
    bs = layout.block_size
    ov: int | None = overlap if layout.kv_router else None
    bst: int | None = best if layout.kv_router else None
    if not layout.disaggregated:
        return [_route("agg", row["decode_worker_idx"], ov, bst, bs)]
    out = [_route("prefill", row["prefill_worker_idx"], ov, bst, bs)]
    if row["decode_admit_ms"] is not None or row["destination_reserved_ms"] is not None:
        out.append(_route("decode", row["decode_worker_idx"], 0 if layout.kv_router else None,
                          0 if layout.kv_router else None, bs))
    return out


def _admissions(count: int, first_at: float | None, first_reused: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in range(count):
        first_one = k == 0
        out.append(
            {
                "admission_ordinal": k,
                "pool_admission_ordinal": k,
                "pool": "agg",
                "at_ms": first_at if first_one else None,
                "reused_input_tokens": first_reused if first_one else None,
                "is_readmission": not first_one,
            }
        )
    return out


def iter_request_records(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                         ) -> Iterator[dict[str, Any]]:
    """Like per_request_records, but yields the dicts one at a time (for streaming to JSONL)."""
    flat, admissions, first_reused = _flat_columns(cols, wl, layout)
    overlaps = flat.pop("_overlap")
    bests = flat.pop("_best")
    names = list(flat)
    split = names.index("decode_route_overlap_tokens") + 1
    head = names[:split]
    tail = [k for k in names[split:] if k != "terminal_status"]
    first_at = flat["first_admit_ms"]
    status = flat["terminal_status"]
    tail_cols = [flat[k] for k in tail]
    for i, values in enumerate(zip(*(flat[k] for k in head))):
        row = dict(zip(head, values))
        row["routing_history"] = _routing(layout, row, overlaps[i], bests[i])
        row["admission_history"] = _admissions(admissions[i], first_at[i], first_reused[i])
        for k, col in zip(tail, tail_cols):
            row[k] = col[i]
        row["pressure_record_ordinals"] = []
        row["terminal_status"] = status[i]
        yield row


def per_request_records(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                        ) -> list[dict[str, Any]]:
    """One dict per terminal request, fields in the reference's order, sorted by (arrival, uuid)."""
    with paused_gc():
        return list(iter_request_records(cols, wl, layout))


def records_frame(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                  ) -> pl.DataFrame:
    """The flat scalar fields of every record (no nested lists), same order as the records."""
    flat, _, _ = _flat_columns(cols, wl, layout)
    flat.pop("_overlap")
    flat.pop("_best")
    return pl.DataFrame(flat, schema=FLAT_SCHEMA)
