"""Chained block ids for prompts (spec engine.md §2.2).

A prompt is `input_length` tokens: each trace hash id contributes up to trace_block_size copies
of itself. The prompt is cut into engine blocks of `block_size` tokens; each *full* block gets an
id that is equal for two prompts exactly when their whole token prefix up to that block's end is
equal. Ids are interned (a trie over token runs), so no hashing collisions exist.

When block_size divides trace_block_size (the usual case), the trie is that of the trace's hash-id
prefixes, a property of the trace alone: `TracePrefixes` numbers its nodes once per workload,
and a simulation only turns a node into its block size's ids (node -> first id, then consecutive
ids). Otherwise ids are interned per simulation over token runs (`BlockHasher._general`).
Only equality of ids matters (no output depends on their values or order).
"""
from __future__ import annotations

from typing import Final, final

from librt.vecs import append, vec
from mypy_extensions import i64

HID_BITS: Final = 32  # canonical trace ids stay below 2**32
RAW_ID_LIMIT: Final = 1 << 31  # trace ids below this are canonical as they are


@final
class TracePrefixes:
    """The trie node of every trace block of a workload: equal for two trace blocks exactly
    when their requests' hash-id sequences agree up to and including them. Nodes are numbered
    0, 1, ... in trace (file) order; one unboxed entry per trace block, no per-node objects."""

    node: vec[i64]  # per trace block (index into hash_ids)
    count: int  # nodes
    # what it was computed from: the very lists, and their lengths then (a workload only grows)
    hash_ids: list[int]
    hash_start: list[int]
    n_blocks: int
    n_requests: int

    def __init__(self, hash_ids: list[int], hash_start: list[int]) -> None:
        self.hash_ids = hash_ids
        self.hash_start = hash_start
        self.n_blocks = len(hash_ids)
        self.n_requests = len(hash_start) - 1
        # Trace ids in [0, 2**31) (Mooncake's are small and dense) are their own key part;
        # others get a small id from 2**31 on. The key is boxed once, for both dict calls.
        canon: dict[int, int] = {}
        edges: dict[object, int] = {}  # (parent node + 1) << HID_BITS | hid -> node
        node = vec[i64](capacity=len(hash_ids))
        count = 0
        for i in range(self.n_requests):
            parent = 0  # the root; below node n, parent is n + 1
            for j in range(hash_start[i], hash_start[i + 1]):
                h = hash_ids[j]
                if h < 0 or h >= RAW_ID_LIMIT:
                    raw = h
                    h = canon.get(raw, -1)
                    if h < 0:
                        h = RAW_ID_LIMIT + len(canon)
                        canon[raw] = h
                key: object = (parent << HID_BITS) | h
                n = edges.get(key, -1)
                if n < 0:
                    n = count
                    count += 1
                    edges[key] = n
                node = append(node, n)
                parent = n + 1
        self.node = node
        self.count = count

    def describes(self, hash_ids: list[int], hash_start: list[int]) -> bool:
        """Computed from these lists as they are now."""
        return (hash_ids is self.hash_ids and hash_start is self.hash_start
                and len(hash_ids) == self.n_blocks and len(hash_start) == self.n_requests + 1)


@final
class BlockHasher:
    block_size: int
    trace_block_size: int
    aligned: bool  # block_size divides trace_block_size: one run per block
    per_tb: int  # aligned: engine blocks per trace block
    prefixes: TracePrefixes | None  # aligned: the workload's trie (None: no trace prompts)
    canon: dict[int, int]  # raw trace hash id -> small canonical id
    edges_general: dict[tuple[int, int, int], int]  # (state, hid, run length) -> state
    next_id: int

    def __init__(self, block_size: int, trace_block_size: int,
                 prefixes: TracePrefixes | None = None) -> None:
        """prefixes: the workload's TracePrefixes, needed for trace prompts when aligned."""
        self.block_size = block_size
        self.trace_block_size = trace_block_size
        self.aligned = trace_block_size % block_size == 0
        self.per_tb = trace_block_size // block_size
        self.canon = {}
        self.edges_general = {}
        self.next_id = 1  # 0 is reserved for "no hash"
        self.prefixes = None
        if self.aligned and prefixes is not None:
            self.prefixes = prefixes
            self.next_id += prefixes.count * self.per_tb  # trace ids: 1 .. count * per_tb

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
        # Each trace block holds per_tb engine blocks whose tokens are all its hash id: trie
        # node n owns the per_tb consecutive ids from 1 + n * per_tb.
        p = self.prefixes
        assert p is not None, "aligned trace prompts need the workload's TracePrefixes"
        node = p.node
        per_tb = self.per_tb
        n = input_length // self.block_size
        if n > (stop - start) * per_tb:
            n = (stop - start) * per_tb
        out = [0] * n  # filled in place: no list growth
        i = 0
        j = start
        while i < n:
            x: i64 = 1 + node[j] * per_tb
            end = i + per_tb
            if end > n:
                end = n
            while i < end:
                out[i] = x
                x += 1
                i += 1
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
