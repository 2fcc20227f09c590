"""SGLang's radix prefix cache at page granularity (spec backends.md §3.7).

Every cached page is a node keyed by the chained hash of its tokens (the same ids the vLLM pool
uses), so the tree is a dict plus parent links. A request locks the nodes of its path; unlocked
leaves are evicted oldest touch first (ties: deeper first), a parent becoming a candidate when
its last child goes. Pages are counted, never identified: `free` + pages in the tree + pages
private to requests = capacity.
"""
from __future__ import annotations

import heapq
from typing import final

from engine.kvpool import KvPool


@final
class RadixNode:
    h: int
    parent: RadixNode | None
    depth: int
    children: int
    lock: int
    touched: int  # LRU time (a global counter)
    alive: bool

    def __init__(self, h: int, parent: RadixNode | None, depth: int) -> None:
        self.h = h
        self.parent = parent
        self.depth = depth
        self.children = 0
        self.lock = 0
        self.touched = 0
        self.alive = True


@final
class RadixCache:
    capacity: int  # pages
    free: int  # unallocated pages
    nodes: dict[int, RadixNode]
    unlocked: int  # nodes with lock 0 (evictable, leaf or not)
    clock: int
    serial: int
    # eviction candidates (touched, -depth, serial, node), validated when popped
    leaves: list[tuple[int, int, int, RadixNode]]
    events: KvPool  # the worker's pool, whose stored/evicted lists feed a KV router

    def __init__(self, capacity: int, events: KvPool) -> None:
        self.capacity = capacity
        self.free = capacity
        self.nodes = {}
        self.unlocked = 0
        self.clock = 0
        self.serial = 0
        self.leaves = []
        self.events = events

    def num_cached(self) -> int:
        return len(self.nodes)

    def match(self, hashes: list[int], limit: int) -> list[RadixNode]:
        """Nodes of the longest cached prefix of hashes[:limit] (read only)."""
        out: list[RadixNode] = []
        nodes = self.nodes
        for k in range(limit):
            n = nodes.get(hashes[k])
            if n is None:
                break
            out.append(n)
        return out

    def lock_path(self, path: list[RadixNode]) -> None:
        for n in path:
            if n.lock == 0:
                self.unlocked -= 1
            n.lock += 1

    def unlock_path(self, path: list[RadixNode]) -> None:
        for n in path:
            n.lock -= 1
            if n.lock == 0:
                self.unlocked += 1
                if n.children == 0:
                    self._candidate(n)

    def touch(self, path: list[RadixNode]) -> None:
        self.clock += 1
        t = self.clock
        for n in path:
            n.touched = t

    def insert(self, path: list[RadixNode], h: int) -> bool:
        """Append page h to a request's locked path (a private page of the request becomes the
        node). False when the page was already cached: the caller frees its duplicate."""
        existing = self.nodes.get(h)
        if existing is not None:
            if existing.lock == 0:
                self.unlocked -= 1
            existing.lock += 1
            path.append(existing)
            return False
        parent = path[-1] if path else None
        n = RadixNode(h, parent, len(path))
        n.lock = 1
        if parent is not None:
            parent.children += 1
        self.nodes[h] = n
        path.append(n)
        ev = self.events
        if ev.track_events:
            ev.stored.append(h)
        return True

    def take(self, n: int) -> None:
        """Allocate n pages, evicting unlocked LRU leaves when free pages are short. The caller
        checked that free + evictable pages suffice."""
        if n > self.free:
            self.evict(n - self.free)
        self.free -= n

    def evict(self, n: int) -> None:
        leaves = self.leaves
        while n > 0 and leaves:
            e = heapq.heappop(leaves)
            node = e[3]
            if (not node.alive or node.lock != 0 or node.children != 0
                    or node.touched != e[0]):
                continue
            node.alive = False
            del self.nodes[node.h]
            self.unlocked -= 1
            self.free += 1
            n -= 1
            ev = self.events
            if ev.track_events:
                ev.evicted.append(node.h)
            p = node.parent
            if p is not None:
                p.children -= 1
                if p.children == 0 and p.lock == 0:
                    self._candidate(p)

    def _candidate(self, n: RadixNode) -> None:
        self.serial += 1
        heapq.heappush(self.leaves, (n.touched, -n.depth, self.serial, n))
