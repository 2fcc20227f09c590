"""Request placement. Round robin: the k-th routed request goes to worker k mod N."""
from __future__ import annotations

from typing import final


@final
class RoundRobinRouter:
    n_workers: int
    next_slot: int

    def __init__(self, n_workers: int) -> None:
        self.n_workers = n_workers
        self.next_slot = 0

    def route(self) -> int:
        w = self.next_slot % self.n_workers
        self.next_slot += 1
        return w
