"""Per-request records (spec §10.2): one polars table built column by column from the engine's
MetricColumns (no Python object per request), written as JSONL (nested fields included) and as a
flat frame (Parquet); dicts only when a caller asks for them.

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
- decode_worker_idx is None for a disaggregated request rejected before it had a decode worker
  (its prefill worker, in prefill_worker_idx, rejected it), as the reference exports it.
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


def _uuids(req: np.ndarray) -> pl.Series:
    """request_uuid() of every index, built as one byte buffer (36 ASCII bytes per row)."""
    prefix = np.frombuffer(b"00000000-0000-4000-8000-", dtype=np.uint8)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(44, -4, -4, dtype=np.int64)  # 12 hex digits, most significant first
    digits = hexdigits[(req[:, None] >> shifts) & 0xF]
    rows = np.concatenate([np.broadcast_to(prefix, (len(req), len(prefix))), digits], axis=1)
    raw = np.ascontiguousarray(rows).view("S36").ravel()
    return pl.Series("uuid", raw, dtype=pl.Binary).cast(pl.Utf8)


def _opt(name: str, values: np.ndarray, present: np.ndarray) -> pl.Series:
    """A Float64 column, null where `present` is false."""
    return pl.Series(name, np.where(present, values, np.nan), nan_to_null=True)


def _int_or_null(values: np.ndarray, present: np.ndarray | bool) -> pl.Series:
    s = pl.Series(values, dtype=pl.Int64)
    if present is True:
        return s
    return pl.select(pl.when(pl.lit(pl.Series(np.broadcast_to(present, len(values)))))
                     .then(pl.lit(s))).to_series()


def _worker_idx(idx: np.ndarray) -> pl.Series:
    """Pool-local worker indices, null where none (-1)."""
    present = idx >= 0
    return _int_or_null(idx, True if present.all() else present)


def _lists(counts: np.ndarray, items: pl.DataFrame) -> pl.Series:
    """A list-of-structs column: row i holds the next counts[i] rows of `items` (which has
    counts.sum() rows, in row order). Built by one group-by: polars' row-wise list ops
    (concat_list of structs, when/then on lists) take seconds per 100k rows."""
    n = len(counts)
    row = np.repeat(np.arange(n, dtype=np.int64), counts)
    grouped = (pl.DataFrame({"row": row, "item": items.to_struct()})
               .group_by("row", maintain_order=True).agg("item"))
    if grouped.height < n:  # rows without items: an empty list
        grouped = (pl.DataFrame({"row": np.arange(n, dtype=np.int64)})
                   .join(grouped, on="row", how="left", maintain_order="left")
                   .with_columns(pl.col("item").fill_null(
                       pl.lit([], dtype=grouped.schema["item"]))))
    return grouped["item"]


def _routes(pool: pl.Series, worker: np.ndarray, overlap: np.ndarray | None,
            best: np.ndarray | None, bs: int) -> pl.DataFrame:
    """routing_history entries (immediate routing: no queue, no placement replica); overlap
    and best are None when the router does not measure them."""
    m = len(worker)
    null_f = pl.Series([], dtype=pl.Float64).extend_constant(None, m)
    null_i = pl.Series([], dtype=pl.Int64).extend_constant(None, m)
    have = overlap is not None and best is not None
    return pl.DataFrame({
        "pool": pool,
        "outcome": pl.Series([], dtype=pl.Utf8).extend_constant("immediate", m),
        "queue_entered_at_ms": null_f,
        "released_at_ms": null_f,
        "queue_wait_ms": np.zeros(m, dtype=np.float64),
        "logical_worker_id": worker,
        "scheduler_id": worker,
        "dp_rank": np.zeros(m, dtype=np.int64),
        "reported_overlap_tokens": overlap * bs if overlap is not None else np.zeros(m, np.int64),
        "selected_overlap_blocks": overlap if overlap is not None else null_i,
        "best_available_overlap_blocks": best if best is not None else null_i,
        "overlap_regret_blocks": best - overlap if have else null_i,  # type: ignore[operator]
        "placement_replica_id": null_i,
    })


def _admission_history(count: np.ndarray, first_at: np.ndarray, first_at_known: np.ndarray,
                       first_reused: np.ndarray) -> pl.Series:
    """admission_history: the first admission with its time and cached tokens; readmissions
    after preemption with both unknown (the engine keeps only the count)."""
    total = int(count.sum())
    row = np.repeat(np.arange(len(count), dtype=np.int64), count)
    k = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    first = k == 0
    items = pl.DataFrame({
        "admission_ordinal": k,
        "pool_admission_ordinal": k,
        "pool": pl.Series([], dtype=pl.Utf8).extend_constant("agg", total),
        "at_ms": _opt("at_ms", first_at[row], first & first_at_known[row]),
        "reused_input_tokens": _int_or_null(first_reused[row], first),
        "is_readmission": ~first,
    })
    return _lists(count, items)


def records_table(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                  ) -> pl.DataFrame:
    """Every terminal request's record as one row, columns in the reference's field order
    (routing_history and admission_history as lists of structs), sorted by (arrival, uuid).

    What the reference fills and we cannot is explained in the module docstring.
    """
    n = len(cols)
    req = np.asarray(cols.req, dtype=np.int64)
    arrival = np.asarray(cols.arrival_ms, dtype=np.float64)
    order = np.lexsort((req, arrival)) if n else np.zeros(0, dtype=np.int64)

    def f64(xs: list[float]) -> np.ndarray:
        return np.asarray(xs, dtype=np.float64)[order]

    def i64(xs: list[int]) -> np.ndarray:
        return np.asarray(xs, dtype=np.int64)[order]

    req = req[order]
    dec_worker = i64(cols.worker)
    arrival = arrival[order]
    first_admit = f64(cols.first_admit_ms)
    first = f64(cols.first_token_ms)
    second = f64(cols.second_token_ms)
    last = f64(cols.last_token_ms)
    out_tok = i64(cols.output_tokens)
    admissions = i64(cols.admissions)
    has1 = (out_tok >= 1) & (first >= 0.0)
    has_last = (out_tok >= 1) & (last >= 0.0)
    has2 = (out_tok >= 2) & (second >= 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        itl = (last - first) / (out_tok - 1).astype(np.float64)

    # Sessions: a named session's turn; in a multi-turn trace, a row without a session is a
    # one-turn session named by its 1-based line; traces without sessions leave both null.
    session = np.asarray(wl.session, dtype=np.int64)[req] if n else np.zeros(0, np.int64)
    named = session >= 0
    if wl.session_names:
        names = pl.Series(wl.session_names, dtype=pl.Utf8).gather(np.where(named, session, 0))
        line_names = pl.Series(req + 1).cast(pl.Utf8)
        session_id = pl.select(pl.when(pl.lit(pl.Series(named))).then(pl.lit(names))
                               .otherwise(pl.lit("request_") + pl.lit(line_names))).to_series()
        turn = np.where(named, np.asarray(wl.turn, dtype=np.int64)[req], 0)
        turn_index = pl.Series(turn, dtype=pl.Int64)
    else:
        session_id = pl.Series([None] * 0, dtype=pl.Utf8).extend_constant(None, n)
        turn_index = pl.Series([], dtype=pl.Int64).extend_constant(None, n)

    status = pl.Series(i64(cols.status)).replace_strict(
        _STATUS_NAMES, default="failed", return_dtype=pl.Utf8)
    bs = layout.block_size
    # Columns filled only by routing/disagg runs may be absent in hand-built columns.
    zeros = np.zeros(n, dtype=np.int64)
    overlap = i64(cols.route_overlap_blocks) if len(cols.route_overlap_blocks) == n else zeros
    best = (i64(cols.route_best_overlap_blocks) if len(cols.route_best_overlap_blocks) == n
            else zeros)
    data: dict[str, Any] = {
        "session_id": session_id.alias("session_id"),
        "turn_index": turn_index.alias("turn_index"),
        "uuid": _uuids(req),
        "arrival_time_ms": arrival,
        "first_admit_ms": _opt("first_admit_ms", first_admit, first_admit >= 0.0),
        "terminal_time_ms": f64(cols.terminal_ms),
        "first_token_ms": _opt("first_token_ms", first, has1),
        "last_token_ms": _opt("last_token_ms", last, has_last),
        "ttft_ms": _opt("ttft_ms", first - arrival, has1),
        "ttst_ms": _opt("ttst_ms", second - first, has2),
        "e2e_latency_ms": _opt("e2e_latency_ms", last - arrival, has_last),
        "itl_ms": _opt("itl_ms", itl, has2 & (last >= 0.0)),
        "input_length": i64(cols.input_length),
        "requested_output_length": i64(cols.requested_output),
        "output_length": out_tok,
        "reused_input_tokens": i64(cols.reused_tokens),
        # index within its pool; None when no (decode) worker served it: a disaggregated
        # request rejected on the prefill side, as the reference exports it
        "decode_worker_idx": _worker_idx(dec_worker),
        "admission_count": admissions,
        "readmission_count": np.maximum(admissions - 1, 0),
        "terminal_status": status,
    }
    if layout.disaggregated:
        def ms(name: str, xs: list[float]) -> pl.Series:
            a = f64(xs)
            return _opt(name, a, a >= 0.0)

        decode_adm = f64(cols.decode_admit_ms)
        reached_decode = decode_adm >= 0.0
        pre_worker = i64(cols.prefill_worker)
        data["prefill_worker_idx"] = _worker_idx(pre_worker)
        data["prefill_admit_ms"] = ms("prefill_admit_ms", cols.prefill_admit_ms)
        data["source_held_ms"] = ms("source_held_ms", cols.source_held_ms)
        data["destination_reserved_ms"] = ms("destination_reserved_ms", cols.dest_reserved_ms)
        data["destination_activated_ms"] = ms("destination_activated_ms",
                                              cols.dest_activated_ms)
        data["decode_admit_ms"] = _opt("decode_admit_ms", decode_adm, reached_decode)
        data["source_released_ms"] = ms("source_released_ms", cols.source_released_ms)
        data["decode_reused_input_tokens"] = i64(cols.decode_reused_tokens)
        data["prefill_route_overlap_tokens"] = overlap * bs
        data["decode_route_overlap_tokens"] = zeros
        # one admission on each side is not a readmission
        data["readmission_count"] = np.maximum(admissions - np.where(reached_decode, 2, 1), 0)
    frame = pl.DataFrame(data)
    missing = [pl.lit(None, FLAT_SCHEMA[k]).alias(k) for k in FLAT_SCHEMA if k not in data]
    if missing:
        frame = frame.with_columns(missing)

    kv = layout.kv_router
    worker = dec_worker
    if not layout.disaggregated:
        pools = pl.Series([], dtype=pl.Utf8).extend_constant("agg", n)
        routes = _routes(pools, worker, overlap if kv else None, best if kv else None, bs)
        per_row = np.ones(n, dtype=np.int64)
    else:
        # the prefill hop, then the decode hop once the request got that far
        reached = reached_decode | (f64(cols.dest_reserved_ms) >= 0.0)
        per_row = 1 + reached.astype(np.int64)
        at = np.repeat(np.arange(n, dtype=np.int64), per_row)
        second_hop = np.zeros(len(at), dtype=bool)
        second_hop[np.cumsum(per_row)[reached] - 1] = True
        routes = _routes(
            pl.select(pl.when(pl.lit(pl.Series(second_hop))).then(pl.lit("decode"))
                      .otherwise(pl.lit("prefill"))).to_series(),
            np.where(second_hop, worker[at], pre_worker[at]),
            np.where(second_hop, 0, overlap[at]) if kv else None,
            np.where(second_hop, 0, best[at]) if kv else None, bs)
    routing = _lists(per_row, routes)
    history = _admission_history(admissions, first_admit, first_admit >= 0.0,
                                 i64(cols.first_reused_tokens))
    flat = list(FLAT_SCHEMA)
    split = flat.index("decode_route_overlap_tokens") + 1
    return frame.select(
        *flat[:split],
        pl.lit(routing).alias("routing_history"),
        pl.lit(history).alias("admission_history"),
        "admission_count",
        "readmission_count",
        pl.lit([], pl.List(pl.Int64)).alias("pressure_record_ordinals"),
        "terminal_status",
    )


def flat_frame(table: pl.DataFrame) -> pl.DataFrame:
    """The flat scalar fields of a records table (no nested lists), same row order."""
    return table.select(list(FLAT_SCHEMA))


def iter_request_records(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                         ) -> Iterator[dict[str, Any]]:
    """Like per_request_records, but yields the dicts one at a time."""
    yield from records_table(cols, wl, layout).iter_rows(named=True)


def per_request_records(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                        ) -> list[dict[str, Any]]:
    """One dict per terminal request, fields in the reference's order, sorted by (arrival, uuid)."""
    with paused_gc():  # millions of small containers and no cycles
        return records_table(cols, wl, layout).to_dicts()


def records_frame(cols: MetricColumns, wl: Workload, layout: RecordLayout = AGG
                  ) -> pl.DataFrame:
    """The flat scalar fields of every record (no nested lists), same order as the records."""
    return flat_frame(records_table(cols, wl, layout))
