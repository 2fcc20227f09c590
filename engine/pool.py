"""A pool of workers with one role (aggregated, prefill or decode) and its routing state.

Workers are numbered globally in the simulation and locally within their pool; routers see
local indices. Only active workers are routable: starting ones wait out their start-up time,
draining ones finish their in-flight work and stop."""
from __future__ import annotations

from bisect import bisect_left, insort
from typing import Final, final

from engine.config import EngineConfig
from engine.kvrouter import KvRouter

# A pool's role (Pool.kind, Worker.kind).
POOL_AGG: Final = 0
POOL_PREFILL: Final = 1
POOL_DECODE: Final = 2

# A worker's lifecycle (Worker.state): starting (not routable yet), active, draining (not
# routable, finishing its work), stopped.
STATE_STARTING: Final = 0
STATE_ACTIVE: Final = 1
STATE_DRAINING: Final = 2
STATE_STOPPED: Final = 3


@final
class Pool:
    kind: int  # POOL_*
    cfg: EngineConfig
    ids: list[int]  # global worker index by local index
    eligible: list[bool]  # by local index: routable now
    active: list[int]  # local indices of active workers, in creation order
    rr_last: int  # round robin: position (in `active`) of the last worker chosen
    kv: KvRouter | None

    def __init__(self, kind: int, cfg: EngineConfig) -> None:
        self.kind = kind
        self.cfg = cfg
        self.ids = []
        self.eligible = []
        self.active = []
        self.rr_last = -1
        self.kv = None

    def size(self) -> int:
        return len(self.ids)

    def route_round_robin(self) -> int:
        """The next position in the list of active workers (index order), wrapping. For a
        fixed set this is the k-th request to worker k mod N; a worker that joins mid-run takes
        its turn where its index falls, and after the newest workers leave, the cursor keeps
        its position modulo the smaller count (the reference's planner runs show both: a
        scale-down from 6 to 5 right after worker 5's turn sends the next request to worker 1).
        """
        n = len(self.active)
        if n == 0:
            raise RuntimeError("no routable worker")
        p = self.rr_last + 1
        if p >= n:
            p %= n
        self.rr_last = p
        return self.active[p]

    def set_active(self, local: int, on: bool) -> None:
        # `active` stays sorted; a new worker (the highest index) is appended in O(1), so
        # creating N workers costs O(N), not O(N**2).
        if self.eligible[local] == on:
            return
        self.eligible[local] = on
        active = self.active
        if on:
            if not active or active[-1] < local:
                active.append(local)
            else:
                insort(active, local)
        else:
            del active[bisect_left(active, local)]
