"""Chained block ids for prompts (spec engine.md §2.2).

A prompt is `input_length` tokens: each trace hash id contributes up to trace_block_size copies
of itself. The prompt is cut into engine blocks of `block_size` tokens; each *full* block gets an
id that is equal for two prompts exactly when their whole token prefix up to that block's end is
equal. Ids are interned per simulation (a trie over token runs), so no hashing collisions exist.
"""
from __future__ import annotations

from typing import Final, final

HID_BITS: Final = 32  # canonical trace ids stay below 2**32


@final
class BlockHasher:
    block_size: int
    trace_block_size: int
    aligned: bool  # block_size divides trace_block_size: one run per block
    canon: dict[int, int]  # raw trace hash id -> small canonical id
    edges: dict[int, int]  # aligned: parent << HID_BITS | hid -> first id of that trace block
    edges_general: dict[tuple[int, int, int], int]  # (state, hid, run length) -> state
    next_id: int

    def __init__(self, block_size: int, trace_block_size: int) -> None:
        self.block_size = block_size
        self.trace_block_size = trace_block_size
        self.aligned = trace_block_size % block_size == 0
        self.canon = {}
        self.edges = {}
        self.edges_general = {}
        self.next_id = 1  # 0 is reserved for "no hash"

    def fresh_ids(self, n: int) -> list[int]:
        """n never-seen ids (synthetic prompts that share nothing)."""
        out = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        return out

    def _canon(self, raw: int) -> int:
        c = self.canon.get(raw, -1)
        if c < 0:
            c = len(self.canon)
            self.canon[raw] = c
        return c

    def prompt_hashes(self, hash_ids: list[int], start: int, stop: int, input_length: int) -> list[int]:
        """Ids of the full blocks of the prompt given by hash_ids[start:stop]."""
        if self.aligned:
            return self._aligned(hash_ids, start, stop, input_length)
        return self._general(hash_ids, start, stop, input_length)

    def _aligned(self, hash_ids: list[int], start: int, stop: int, input_length: int) -> list[int]:
        # Each trace block holds per_tb engine blocks whose tokens are all its hash id, so the
        # ids are interned once per trace block: a node gets per_tb consecutive ids, and the
        # node's first id is the parent key of the next trace block.
        bs = self.block_size
        per_tb = self.trace_block_size // bs
        n_blocks = input_length // bs
        out: list[int] = []
        parent = 0
        edges = self.edges
        j = start
        while n_blocks > 0 and j < stop:
            h = self._canon(hash_ids[j])
            key = (parent << HID_BITS) | h  # a shift stays on mypyc's unboxed fast path
            base = edges.get(key, 0)
            if base == 0:
                base = self.next_id
                self.next_id += per_tb
                edges[key] = base
            take = per_tb if per_tb < n_blocks else n_blocks
            for k in range(take):
                out.append(base + k)
            n_blocks -= take
            parent = base
            j += 1
        return out

    def _general(self, hash_ids: list[int], start: int, stop: int, input_length: int) -> list[int]:
        bs = self.block_size
        tbs = self.trace_block_size
        n_blocks = input_length // bs
        limit = n_blocks * bs
        out: list[int] = []
        state = 0
        pos = 0
        j = start
        while pos < limit and j < stop:
            h = self._canon(hash_ids[j])
            tb_end = pos + tbs
            if tb_end > limit:
                tb_end = limit
            while pos < tb_end:
                to_boundary = bs - pos % bs
                piece = tb_end - pos
                if piece > to_boundary:
                    piece = to_boundary
                key = (state, h, piece)
                node = self.edges_general.get(key, 0)
                if node == 0:
                    node = self.next_id
                    self.next_id += 1
                    self.edges_general[key] = node
                state = node
                pos += piece
                if pos % bs == 0:
                    out.append(state)
            j += 1
        return out
