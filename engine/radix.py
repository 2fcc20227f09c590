"""SGLang's radix prefix cache at page granularity (spec backends.md §3.7).

Every cached page is a node keyed by the chained hash of its tokens (the same ids the vLLM pool
uses), so the tree is a dict plus parent links. A request locks the nodes of its path; unlocked
leaves are evicted oldest touch first (ties: deeper first), a parent becoming a candidate when
its last child goes. Pages are counted, never identified: `free` + pages in the tree + pages
private to requests = capacity.

The reference's tree is compressed: an edge holds a run of pages with one access time. That
shows in two places, so each page knows whether it starts an edge (`head`) and which page
continues its edge (`next`): a match or insert that ends inside an edge splits it there and
leaves the partly walked edge's time alone (only whole edges are touched); and an insert below
a leaf edge only this request holds extends that edge rather than starting a new one.
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
    head: bool  # first page of its edge
    next: RadixNode | None  # the page continuing this page's edge


    def __init__(self, h: int, parent: RadixNode | None, depth: int) -> None:
        self.h = h
        self.parent = parent
        self.depth = depth
        self.children = 0
        self.lock = 0
        self.touched = 0
        self.alive = True
        self.head = True
        self.next = None


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

    def acquire(self, path: list[RadixNode]) -> None:
        """Lock a matched path as the reference's match-and-lock does: a match ending inside an
        edge splits it there, and only the edges walked whole are touched."""
        k = len(path)
        if k > 0:
            last = path[k - 1]
            nxt = last.next
            if nxt is not None:
                nxt.head = True
                last.next = None
                k -= 1
                while not path[k].head:
                    k -= 1
        self.clock += 1
        t = self.clock
        for i in range(k):
            path[i].touched = t
        self.lock_path(path)

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

    def insert_run(self, path: list[RadixNode], hashes: list[int], k: int, stop: int) -> int:
        """Append pages hashes[k:stop] to a request's locked path (its private pages become the
        nodes), touching the path first. Pages already cached (computed meanwhile by another
        request) are walked instead: the number of those, whose copies the caller frees.
        New pages extend the path's last edge when it is a leaf only this request holds;
        an existing edge left part-way is split and keeps its time."""
        self.clock += 1
        t = self.clock
        for n in path:
            n.touched = t
        start = path[-1] if path else None
        cur = start
        walked: list[RadixNode] = []  # pages of the existing edge being walked, untouched yet
        dup = 0
        fresh_run = False
        nodes = self.nodes
        ev = self.events
        while k < stop:
            h = hashes[k]
            k += 1
            existing = nodes.get(h)
            if existing is not None:
                if existing.head and walked:
                    for n in walked:
                        n.touched = t
                    walked.clear()
                walked.append(existing)
                if existing.lock == 0:
                    self.unlocked -= 1
                existing.lock += 1
                path.append(existing)
                cur = existing
                dup += 1
                continue
            head = True
            if cur is not None:
                if walked:
                    self._end_walk(walked, cur, t)
                    walked.clear()
                if fresh_run:
                    head = False
                elif cur.next is None and cur.children == 0 and cur.lock == 1:
                    head = False  # extend the leaf edge in place
            n = RadixNode(h, cur, len(path))
            n.lock = 1
            n.touched = t
            n.head = head
            if cur is not None:
                cur.children += 1
                if not head:
                    cur.next = n
            nodes[h] = n
            path.append(n)
            if ev.track_events:
                ev.stored.append(h)
            cur = n
            fresh_run = True
        if walked and cur is not None:
            self._end_walk(walked, cur, t)
        return dup

    def _end_walk(self, walked: list[RadixNode], last: RadixNode, t: int) -> None:
        nxt = last.next
        if nxt is not None:  # left part-way: split, the walked part keeps its time
            nxt.head = True
            last.next = None
            return
        for n in walked:
            n.touched = t

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
                if p.next is node:
                    p.next = None
                p.children -= 1
                if p.children == 0 and p.lock == 0:
                    self._candidate(p)

    def _candidate(self, n: RadixNode) -> None:
        self.serial += 1
        heapq.heappush(self.leaves, (n.touched, -n.depth, self.serial, n))
