"""Paged KV block pool of one worker (spec engine.md §5): vLLM's G1 pool with prefix caching.

A physical block is free, private (held by one request, no hash), or cached (has a block hash;
held by `refcnt` requests, or parked in the inactive LRU when refcnt is 0). Identity of blocks
never matters for the numbers, only the counts and the LRU order. Blocks are native objects so
the hot paths store unboxed fields instead of boxing ints into lists.

Memory follows use, not configuration: free capacity is a counter, a block object is made the
first time a block is taken and recycled through `free` after that, so a pool of 10**12
configured blocks costs what the blocks a replay actually holds at its peak cost.
"""
from __future__ import annotations

from typing import Final, cast, final

LRU_SLACK: Final = 1024  # stale LRU entries tolerated beyond the parked blocks' count


@final
class Block:
    key: object  # None = private; else cached under this id: the very object keying hash_block
    refcnt: int
    lru_refs: int  # entries of this block in its pool's LRU list (the newest one counts)

    def __init__(self) -> None:
        self.key = None
        self.refcnt = 0
        self.lru_refs = 0


@final
class KvPool:
    capacity: int
    unmade: int  # free blocks never materialised (capacity - blocks made so far)
    free: list[Block]  # materialised free blocks, reused before new ones are made
    hash_block: dict[object, Block]  # every cached block by its id (int), active or inactive
    # The inactive LRU, lazily: every release of a cached block appends it; only its newest
    # entry counts, and only while it is unheld. lru[lru_head] is the oldest entry not yet
    # consumed; eviction skips stale entries. No links between blocks: pinning a parked block
    # touches no neighbour, and a finished replay's blocks are freed by reference counting.
    lru: list[Block]
    lru_head: int
    n_inactive: int
    matched: list[Block]  # the last match_prefix's blocks (scratch, reused)
    matched_active: int  # how many of them are held by a request
    # KV events since the last drain (for a KV-aware router's index), when tracked.
    evicted: list[int]
    stored: list[int]
    track_events: bool

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.unmade = capacity
        self.free = []
        self.hash_block = {}
        self.lru = []
        self.lru_head = 0
        self.n_inactive = 0
        self.matched = []
        self.matched_active = 0
        self.evicted = []
        self.stored = []
        self.track_events = False

    # ---- counts -------------------------------------------------------------------------------
    def num_free(self) -> int:
        return self.unmade + len(self.free)

    def num_made(self) -> int:
        """Block objects materialised so far: the most this pool ever held at once."""
        return self.capacity - self.unmade

    def num_active(self) -> int:
        return self.capacity - self.unmade - len(self.free) - self.n_inactive

    # ---- LRU ----------------------------------------------------------------------------------
    def _lru_compact(self) -> None:
        """Keep only the live entries, in order and in place: the list stays within a constant
        factor of the parked blocks, and a compaction is paid for by the appends before it."""
        lru = self.lru
        m = 0
        for i in range(self.lru_head, len(lru)):
            b = lru[i]
            b.lru_refs -= 1
            if b.lru_refs == 0 and b.refcnt == 0:
                lru[m] = b
                m += 1
        del lru[m:]
        for i in range(m):
            lru[i].lru_refs = 1
        self.lru_head = 0

    def inactive_blocks(self) -> list[Block]:
        """The parked blocks, least recently released first (the eviction order); O(list)."""
        seen: dict[Block, int] = {}
        out: list[Block] = []
        lru = self.lru
        for i in range(self.lru_head, len(lru)):
            b = lru[i]
            n = seen.get(b, 0) + 1
            seen[b] = n
            if n == b.lru_refs and b.refcnt == 0:
                out.append(b)
        return out

    # ---- prefix lookup ------------------------------------------------------------------------
    def match_prefix(self, hashes: list[int], limit: int, min_active: int = 0) -> int:
        """Number of leading hashes present in the pool (active or inactive), at most `limit`.
        Leaves their blocks in `matched` and how many of them are held in `matched_active`
        (one dictionary lookup per hash; valid until the pool next evicts). -1 as soon as fewer
        than `min_active` of them can be held (an admission that cannot fit: a long blocked
        queue head is re-tried every pass, and this stops its lookup early)."""
        if limit < min_active:
            return -1
        hb = self.hash_block
        keys = cast(list[object], hashes)  # looked up as the list's own objects: no boxing
        matched = self.matched
        matched.clear()
        active = 0
        n = 0
        while n < limit:
            b = hb.get(keys[n])
            if b is None:
                break
            if b.refcnt > 0:
                active += 1
            elif active + (limit - n - 1) < min_active:
                return -1
            matched.append(b)
            n += 1
        if active < min_active:
            return -1
        self.matched_active = active
        return n

    def count_inactive(self, start: int, stop: int) -> int:
        """Unheld blocks among matched[start:stop]."""
        matched = self.matched
        a = 0
        for i in range(start, stop):
            if matched[i].refcnt == 0:
                a += 1
        return a

    # ---- allocation ---------------------------------------------------------------------------
    def can_take(self, fresh: int, pinned_inactive: int) -> bool:
        short = fresh - self.unmade - len(self.free)
        return short <= 0 or short <= self.n_inactive - pinned_inactive

    def pin(self, b: Block) -> Block:
        """Take a reference on a cached block (one of `matched`)."""
        if b.refcnt == 0:
            self.n_inactive -= 1  # its LRU entry goes stale
        b.refcnt += 1
        return b

    def take_fresh(self) -> Block:
        """A private block: from free capacity, else by evicting the LRU head."""
        if self.free:
            b = self.free.pop()
        elif self.unmade > 0:
            self.unmade -= 1
            b = Block()
        else:
            # Evict the least recently released parked block: the first live LRU entry.
            lru = self.lru
            h = self.lru_head
            b = lru[h]
            h += 1
            b.lru_refs -= 1
            while b.lru_refs > 0 or b.refcnt > 0:
                b = lru[h]
                h += 1
                b.lru_refs -= 1
            self.lru_head = h
            self.n_inactive -= 1
            key = b.key
            del self.hash_block[key]
            if self.track_events:
                self.evicted.append(cast(int, key))
            b.key = None
        b.refcnt = 1
        return b

    def publish(self, b: Block, key: object) -> None:
        """Make a computed private block cache-visible under the id `key` (an int: the
        request's own boxed hash object, so neither boxing nor a second object). A second
        physical copy of an already cached hash stays private (freed on release), as in the
        reference check."""
        if b.key is None:
            # Kept on the block: evicting deletes by the identical key object (no compare).
            if self.hash_block.setdefault(key, b) is b:  # one lookup
                b.key = key
            if self.track_events:
                self.stored.append(cast(int, key))

    def release(self, blocks: list[Block]) -> None:
        """Release a request's blocks, last block first (deepest blocks are evicted first)."""
        lru = self.lru
        parked = 0
        i = len(blocks) - 1
        while i >= 0:
            b = blocks[i]
            if b.key is not None:
                b.refcnt -= 1
                if b.refcnt == 0:
                    lru.append(b)
                    b.lru_refs += 1
                    parked += 1
            else:
                b.refcnt = 0
                self.free.append(b)
            i -= 1
        if parked > 0:
            self.n_inactive += parked
            # the consumed head counts too: the list follows the parked blocks, not the run
            if len(lru) > 2 * self.n_inactive + LRU_SLACK:
                self._lru_compact()
