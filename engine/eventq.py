"""The engine's event heap (spec engine.md §3): a binary min-heap of (time, kind, serial,
payload) entries ordered by (time, kind, serial), as tuples of them compare, held in unboxed
parallel arrays: a push allocates nothing (bar growing the arrays), a comparison is one or two
machine compares, and a pop returns an unboxed tuple. Serials are unique, so the order never
reaches the payload (a worker index or a dict key riding along)."""
from __future__ import annotations

import math
from typing import Final, final

from librt.vecs import append, vec
from mypy_extensions import i64

# kind and serial share one i64, the kind in the top bits, so that one integer compare orders
# by (kind, serial).
SERIAL_BITS: Final = 56
SERIAL_MASK: Final[i64] = (1 << SERIAL_BITS) - 1
KIND_LIMIT: Final[i64] = 1 << (63 - SERIAL_BITS)


@final
class EventQueue:
    times: vec[float]
    ranks: vec[i64]  # kind << SERIAL_BITS | serial
    payloads: vec[i64]
    n: i64  # entries in the heap: the first n of each array (the arrays never shrink)

    def __init__(self) -> None:
        self.times = vec[float]()
        self.ranks = vec[i64]()
        self.payloads = vec[i64]()
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def peek_time(self) -> float:
        """Time of the first entry, INF when empty."""
        if self.n == 0:
            return math.inf
        return self.times[0]

    def push(self, t: float, kind: i64, serial: i64, payload: i64) -> None:
        if not (0 <= kind < KIND_LIMIT and 0 <= serial <= SERIAL_MASK):
            raise ValueError(f"event kind {kind} or serial {serial} out of range")
        rank = (kind << SERIAL_BITS) | serial
        n = self.n
        if n == len(self.times):  # grow by one slot: the hole the entry sifts up from
            self.times = append(self.times, t)
            self.ranks = append(self.ranks, rank)
            self.payloads = append(self.payloads, payload)
        self.n = n + 1
        times = self.times
        ranks = self.ranks
        payloads = self.payloads
        pos = n
        while pos > 0:
            parent = (pos - 1) >> 1
            pt = times[parent]
            if t < pt or (t == pt and rank < ranks[parent]):
                times[pos] = pt
                ranks[pos] = ranks[parent]
                payloads[pos] = payloads[parent]
                pos = parent
            else:
                break
        times[pos] = t
        ranks[pos] = rank
        payloads[pos] = payload

    def pop(self) -> tuple[float, i64, i64, i64]:
        """Remove and return the first entry as (time, kind, serial, payload)."""
        if self.n == 0:
            raise IndexError("pop from an empty event queue")
        times = self.times
        ranks = self.ranks
        payloads = self.payloads
        top_t = times[0]
        top_rank = ranks[0]
        top_payload = payloads[0]
        n = self.n - 1
        self.n = n
        if n > 0:
            # As heapq does: the last entry leaves a hole at the root that descends along the
            # smaller children to a leaf, then the entry sifts up from there (it belongs near
            # the bottom, so this takes fewer compares than stopping on the way down).
            lt = times[n]
            lrank = ranks[n]
            lpayload = payloads[n]
            pos: i64 = 0
            child: i64 = 1
            while child < n:
                right = child + 1
                if right < n:
                    ct = times[child]
                    rt = times[right]
                    if not (ct < rt or (ct == rt and ranks[child] < ranks[right])):
                        child = right  # (heapq's choice on a tie; ranks are unique anyway)
                times[pos] = times[child]
                ranks[pos] = ranks[child]
                payloads[pos] = payloads[child]
                pos = child
                child = 2 * pos + 1
            while pos > 0:
                parent = (pos - 1) >> 1
                pt = times[parent]
                if lt < pt or (lt == pt and lrank < ranks[parent]):
                    times[pos] = pt
                    ranks[pos] = ranks[parent]
                    payloads[pos] = payloads[parent]
                    pos = parent
                else:
                    break
            times[pos] = lt
            ranks[pos] = lrank
            payloads[pos] = lpayload
        return top_t, top_rank >> SERIAL_BITS, top_rank & SERIAL_MASK, top_payload
