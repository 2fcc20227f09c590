"""Why requests were rejected, for the warning a run prints (nothing is dropped silently).

The engine rejects a request at admission when it can never be served: its prompt reaches
`max_model_len`, or it needs more KV blocks than a worker's whole cache holds. Rejected
requests stay in the report (`terminal_status: "rejected"`, the table's "Rejected Count");
this module groups them by reason and names the first trace lines affected.
"""
from __future__ import annotations

from typing import Callable, Sequence

from engine.config import EngineConfig
from engine.metrics import STATUS_REJECTED, MetricColumns
from engine.workload import Workload

MAX_LINES_SHOWN = 5


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def rejection_reason(prompt_len: int, pools: Sequence[EngineConfig]) -> str:
    """The first reason any pool's workers cannot take a prompt of this length."""
    for cfg in pools:
        if cfg.max_model_len > 0 and prompt_len >= cfg.max_model_len:
            return (f"the prompt is not shorter than max_model_len ({cfg.max_model_len} "
                    "tokens)")
    for cfg in pools:
        # A decode worker holds the prompt plus the first token when the hand-off lands.
        if _ceil_div(prompt_len + 1, cfg.block_size) > cfg.num_gpu_blocks:
            return (f"the prompt needs more KV cache than a worker has (num_gpu_blocks "
                    f"{cfg.num_gpu_blocks} x block_size {cfg.block_size} = "
                    f"{cfg.num_gpu_blocks * cfg.block_size} tokens)")
    return "the engine could not admit it"


def rejected_indices(cols: MetricColumns) -> list[int]:
    """Workload indices of the rejected requests, in workload (file) order."""
    return sorted(r for r, s in zip(cols.req, cols.status) if s == STATUS_REJECTED)


def rejection_warnings(cols: MetricColumns, workload: Workload, pools: Sequence[EngineConfig],
                       where: Callable[[list[int]], str]) -> list[str]:
    """One line per reason: count, reason, the first places affected (`where` names workload
    indices: "trace.jsonl lines 3, 7")."""
    groups: dict[str, list[int]] = {}
    for idx in rejected_indices(cols):
        groups.setdefault(rejection_reason(workload.input_length[idx], pools), []).append(idx)
    out: list[str] = []
    for reason, idxs in groups.items():
        first = idxs[:MAX_LINES_SHOWN]
        more = f" and {len(idxs) - len(first)} more" if len(idxs) > len(first) else ""
        out.append(f"{len(idxs)} request(s) rejected: {reason} ({where(first)}{more}); the "
                   "report counts them as rejected")
    return out
