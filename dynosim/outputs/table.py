"""AIPerf-style terminal table of a replay summary (spec §10.3)."""
from __future__ import annotations

from typing import Any

TITLE = "NVIDIA AIPerf | LLM Metrics"
HEADER: tuple[str, ...] = ("Metric", "avg", "min", "max", "p99", "p90", "p75", "std")
# Summary key prefix for each numeric column after "Metric".
_STAT_PREFIX: tuple[str, ...] = ("mean", "min", "max", "p99", "p90", "p75", "std")

# Distribution rows: shown only when the summary has a mean_<metric> key.
_DIST_ROWS: tuple[tuple[str, str], ...] = (
    ("Time to First Token (ms)", "ttft_ms"),
    ("Time to Second Token (ms)", "ttst_ms"),
    ("Request Latency (ms)", "e2e_latency_ms"),
    ("Inter Token Latency (ms)", "itl_ms"),
    ("Output Token Throughput Per User (tokens/sec/user)", "output_token_throughput_per_user"),
)
# Scalar rows: always shown, value in the avg column, N/A elsewhere.
_SCALAR_ROWS: tuple[tuple[str, str], ...] = (
    ("Output Token Throughput (tokens/sec)", "output_throughput_tok_s"),
    ("Request Throughput (requests/sec)", "request_throughput_rps"),
    ("Request Count (requests)", "completed_requests"),
)
# Lines after the table, each printed only when its value is present and not None.
_TRAILER: tuple[tuple[str, str], ...] = (
    ("Wall Time (ms)", "wall_time_ms"),
    ("Prefix Cache Reused Ratio", "prefix_cache_reused_ratio"),
    ("First Admission Prefix Cache Reused Ratio", "first_admission_prefix_cache_reused_ratio"),
)

NA = "N/A"


def fmt(v: Any) -> str:
    if v is None:
        return NA
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:,.2f}"
    return str(v)


def _rule(left: str, mid: str, right: str, widths: list[int]) -> str:
    return left + mid.join("━" * (w + 2) for w in widths) + right


def _row(cells: list[str], widths: list[int]) -> str:
    parts = []
    for i, (c, w) in enumerate(zip(cells, widths)):
        parts.append(" " + (c.ljust(w) if i == 0 else c.rjust(w)) + " ")
    return "┃" + "┃".join(parts) + "┃"


def table_rows(summary: dict[str, Any], rejected: int = 0) -> list[list[str]]:
    """Body cells (strings) of the table, in display order. `rejected` > 0 adds a row after
    the request count (the reference's table has none: its count is of completed requests)."""
    rows: list[list[str]] = []
    for label, metric in _DIST_ROWS:
        if f"mean_{metric}" not in summary:
            continue
        rows.append([label] + [fmt(summary.get(f"{p}_{metric}")) for p in _STAT_PREFIX])
    for label, key in _SCALAR_ROWS:
        rows.append([label, fmt(summary.get(key))] + [NA] * (len(HEADER) - 2))
        if key == "completed_requests" and rejected > 0:
            rows.append(["Rejected Count (requests)", fmt(rejected)] + [NA] * (len(HEADER) - 2))
    return rows


def format_report_table(summary: dict[str, Any], rejected: int = 0) -> str:
    rows = table_rows(summary, rejected)
    widths = [len(h) for h in HEADER]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    lines = [
        TITLE,
        _rule("┏", "┳", "┓", widths),
        _row(list(HEADER), widths),
        _rule("┡", "╇", "┩", widths),
    ]
    lines.extend(_row(r, widths) for r in rows)
    lines.append(_rule("└", "┴", "┘", widths))
    for label, key in _TRAILER:
        v = summary.get(key)
        if v is not None:
            lines.append(f"{label}: {fmt(v)}")
    return "\n".join(lines)
