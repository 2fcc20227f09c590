"""Paged KV block pool of one worker (spec engine.md §5): vLLM's G1 pool with prefix caching.

Physical blocks are slots 0..C-1. A slot is free, private (held by one request, no hash), or
cached (has a block hash; held by refcnt requests, or parked in the inactive LRU when refcnt is
0). Identity of slots never matters for the numbers, only the counts and the LRU order.
"""
from __future__ import annotations

from typing import final


@final
class KvPool:
    capacity: int
    free_slots: list[int]
    slot_hash: list[int]  # 0 = private/free; nonzero = cached under that hash
    refcnt: list[int]
    hash_slot: dict[int, int]  # every cached block, active or inactive
    # Inactive LRU as an intrusive doubly linked list; index `capacity` is the sentinel.
    lru_prev: list[int]
    lru_next: list[int]
    n_inactive: int
    # Hashes evicted since the last drain (for a KV-aware router's index).
    evicted: list[int]
    track_evictions: bool

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free_slots = list(range(capacity - 1, -1, -1))
        self.slot_hash = [0] * capacity
        self.refcnt = [0] * capacity
        self.hash_slot = {}
        self.lru_prev = [capacity] * (capacity + 1)
        self.lru_next = [capacity] * (capacity + 1)
        self.n_inactive = 0
        self.evicted = []
        self.track_evictions = False

    # ---- counts -------------------------------------------------------------------------------
    def num_free(self) -> int:
        return len(self.free_slots)

    def num_active(self) -> int:
        return self.capacity - len(self.free_slots) - self.n_inactive

    # ---- LRU ----------------------------------------------------------------------------------
    def _lru_append(self, slot: int) -> None:
        s = self.capacity
        last = self.lru_prev[s]
        self.lru_next[last] = slot
        self.lru_prev[slot] = last
        self.lru_next[slot] = s
        self.lru_prev[s] = slot
        self.n_inactive += 1

    def _lru_remove(self, slot: int) -> None:
        p = self.lru_prev[slot]
        n = self.lru_next[slot]
        self.lru_next[p] = n
        self.lru_prev[n] = p
        self.n_inactive -= 1

    # ---- prefix lookup ------------------------------------------------------------------------
    def match_prefix(self, hashes: list[int], limit: int) -> int:
        """Number of leading hashes present in the pool (active or inactive), at most `limit`."""
        hs = self.hash_slot
        n = 0
        while n < limit and hashes[n] in hs:
            n += 1
        return n

    def count_active(self, hashes: list[int], n: int) -> int:
        """How many of the first n (present) hashes are held by at least one request."""
        hs = self.hash_slot
        rc = self.refcnt
        a = 0
        for i in range(n):
            if rc[hs[hashes[i]]] > 0:
                a += 1
        return a

    def count_inactive(self, hashes: list[int], start: int, stop: int) -> int:
        hs = self.hash_slot
        rc = self.refcnt
        a = 0
        for i in range(start, stop):
            if rc[hs[hashes[i]]] == 0:
                a += 1
        return a

    # ---- allocation ---------------------------------------------------------------------------
    def can_take(self, fresh: int, pinned_inactive: int) -> bool:
        short = fresh - len(self.free_slots)
        return short <= 0 or short <= self.n_inactive - pinned_inactive

    def pin(self, h: int) -> int:
        """Take a reference on the cached block with hash h; returns its slot."""
        slot = self.hash_slot[h]
        if self.refcnt[slot] == 0:
            self._lru_remove(slot)
        self.refcnt[slot] += 1
        return slot

    def take_fresh(self) -> int:
        """A private slot: from free capacity, else by evicting the LRU head."""
        if self.free_slots:
            slot = self.free_slots.pop()
        else:
            slot = self.lru_next[self.capacity]
            self._lru_remove(slot)
            h = self.slot_hash[slot]
            del self.hash_slot[h]
            self.slot_hash[slot] = 0
            if self.track_evictions:
                self.evicted.append(h)
        self.refcnt[slot] = 1
        return slot

    def publish(self, slot: int, h: int) -> bool:
        """Make a computed private block cache-visible under h. A second physical copy of an
        already cached hash stays private (freed on release), as in the reference check."""
        if self.slot_hash[slot] != 0 or h in self.hash_slot:
            return False
        self.hash_slot[h] = slot
        self.slot_hash[slot] = h
        return True

    def release(self, blocks: list[int]) -> None:
        """Release a request's blocks, last block first (deepest blocks are evicted first)."""
        i = len(blocks) - 1
        while i >= 0:
            slot = blocks[i]
            if self.slot_hash[slot] != 0:
                self.refcnt[slot] -= 1
                if self.refcnt[slot] == 0:
                    self._lru_append(slot)
            else:
                self.refcnt[slot] = 0
                self.free_slots.append(slot)
            i -= 1
