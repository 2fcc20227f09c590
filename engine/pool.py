"""A pool of workers with one role (aggregated, prefill or decode) and its routing state.

Workers are numbered globally in the simulation and locally within their pool; routers see
local indices. Only active workers are routable: starting ones wait out their start-up time,
draining ones finish their in-flight work and stop."""
from __future__ import annotations

from typing import final

from engine.config import EngineConfig
from engine.kvrouter import KvRouter


@final
class Pool:
    kind: int  # worker.POOL_*
    cfg: EngineConfig
    ids: list[int]  # global worker index by local index
    eligible: list[bool]  # by local index: routable now
    active: list[int]  # local indices of active workers, in creation order
    rr_next: int  # round robin: the k-th routed request goes to active[k mod len(active)]
    kv: KvRouter | None

    def __init__(self, kind: int, cfg: EngineConfig) -> None:
        self.kind = kind
        self.cfg = cfg
        self.ids = []
        self.eligible = []
        self.active = []
        self.rr_next = 0
        self.kv = None

    def size(self) -> int:
        return len(self.ids)

    def route_round_robin(self) -> int:
        local = self.active[self.rr_next % len(self.active)]
        self.rr_next += 1
        return local

    def set_active(self, local: int, on: bool) -> None:
        self.eligible[local] = on
        self.active = [k for k in range(len(self.eligible)) if self.eligible[k]]
