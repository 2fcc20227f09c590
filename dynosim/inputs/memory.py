"""Refuse, before anything big is allocated, a run that cannot fit in the machine's memory.

The engine's state grows with what a run uses: one record per request (the workload, the
engine's request, its metric row and, at the end, its report record), a small fixed part per
worker, and one object per KV block actually filled, which is at most what the workload's
tokens can fill and at most the configured `num_gpu_blocks` per worker. The estimate below
adds those up with per-item costs measured on the compiled engine (`make bench` tracks the
real figures) and compares the total with the memory this process may still take (the
kernel's MemAvailable, or the cgroup limit when lower). It is deliberately an underestimate:
a run refused here could never have finished; one accepted may still be tight.
"""
from __future__ import annotations

import os
from typing import NamedTuple

from dynosim.inputs.errors import InputError

# Measured with a 100k-request synthetic run exporting every file (peak RSS per request is
# ~2.5 KB then; building and running alone take ~1 KB): the lower figure is used.
BYTES_PER_REQUEST = 1000
BYTES_PER_WORKER = 2000  # a worker's queues, counters and empty KV pool
BYTES_PER_BLOCK = 80  # one materialised KV block (its hash, refcount, list slots)
BASE_BYTES = 100 * 2**20  # the interpreter, numpy, polars, msgspec and the engine modules


class Demand(NamedTuple):
    setting: str  # the flag or field to name in the refusal
    what: str  # "10000000000 requests"
    bytes: int


def available_bytes() -> int | None:
    """Memory this process can still allocate: MemAvailable, capped by the cgroup limit."""
    avail: int | None = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    limit = _cgroup_room()
    if limit is not None and (avail is None or limit < avail):
        avail = limit
    return avail


def _cgroup_room() -> int | None:
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), None)
    except (OSError, IndexError):
        return None
    if rel is None:
        return None
    base = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
    try:
        with open(os.path.join(base, "memory.max")) as f:
            raw = f.read().strip()
        if raw == "max":
            return None
        with open(os.path.join(base, "memory.current")) as f:
            used = int(f.read().strip())
        return max(int(raw) - used, 0)
    except (OSError, ValueError):
        return None


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def check_fits(demands: list[Demand], available: int | None = None) -> None:
    """Raise InputError naming the setting with the largest demand when the total exceeds
    what the machine has."""
    room = available_bytes() if available is None else available
    if room is None:
        return
    total = BASE_BYTES + sum(d.bytes for d in demands)
    if total <= room:
        return
    worst = max(demands, key=lambda d: d.bytes)
    raise InputError(
        f"{worst.what} need about {human(total)} of memory in all; this machine has "
        f"{human(room)} available", source=worst.setting)


def run_demands(*, requests: int, requests_setting: str, workers: int, workers_setting: str,
                kv_blocks_per_worker: int, blocks_setting: str, workload_blocks: int
                ) -> list[Demand]:
    """What a run of this size takes (module doc). `workload_blocks`: the KV blocks all
    requests' prompts and outputs would fill together (an upper bound of what is used)."""
    blocks = min(workers * kv_blocks_per_worker, workload_blocks)
    return [
        Demand(requests_setting, f"{requests} requests", requests * BYTES_PER_REQUEST),
        Demand(workers_setting, f"{workers} workers", workers * BYTES_PER_WORKER),
        Demand(blocks_setting, f"{blocks} KV blocks in use", blocks * BYTES_PER_BLOCK),
    ]
