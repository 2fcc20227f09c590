"""KV-aware routing (spec engine.md §9): pick the worker with the lowest cost, where cost trades
the prefill work a worker still has queued against the prompt blocks it already caches.

The router sees each worker's cache only through KV events published at pass end (optionally
delayed), so blocks computed by a pass in flight are invisible, as in the reference."""
from __future__ import annotations

import math
from typing import cast, final

from engine.rng import SplitMix64


@final
class KvRouterConfig:
    overlap_credit: float  # overlap_score_weight / overlap_score_credit
    prefill_load_scale: float
    decode_active_request_weight: float
    credit_decay: float  # overlap_score_credit_decay
    temperature: float  # router_temperature
    track_active_blocks: bool  # router_track_active_blocks
    assume_kv_reuse: bool  # router_assume_kv_reuse
    track_prefill_tokens: bool  # router_track_prefill_tokens
    use_kv_events: bool

    def __init__(self) -> None:
        self.overlap_credit = 1.0
        self.prefill_load_scale = 1.0
        self.decode_active_request_weight = 0.0
        self.credit_decay = 0.0
        self.temperature = 0.0
        self.track_active_blocks = True
        self.assume_kv_reuse = True
        self.track_prefill_tokens = True
        self.use_kv_events = True

    def copy(self) -> KvRouterConfig:
        c = KvRouterConfig()
        c.overlap_credit = self.overlap_credit
        c.prefill_load_scale = self.prefill_load_scale
        c.decode_active_request_weight = self.decode_active_request_weight
        c.credit_decay = self.credit_decay
        c.temperature = self.temperature
        c.track_active_blocks = self.track_active_blocks
        c.assume_kv_reuse = self.assume_kv_reuse
        c.track_prefill_tokens = self.track_prefill_tokens
        c.use_kv_events = self.use_kv_events
        return c


@final
class WorkerLoad:
    """What the router believes about one worker."""

    # Keyed by the boxed ids themselves (list[int] items read as objects): an int read as int
    # is unboxed and boxed again for every lookup.
    cached: set[object]  # block hashes the worker announced as stored (and not yet removed)
    active_blocks: dict[object, int]  # prompt block hash -> number of active requests holding it
    active_block_total: int  # with multiplicity (for assume_kv_reuse = False)
    prefill_tokens: int  # effective prefill tokens of requests without a first token yet
    active_requests: int

    def __init__(self) -> None:
        self.cached = set()
        self.active_blocks = {}
        self.active_block_total = 0
        self.prefill_tokens = 0
        self.active_requests = 0


@final
class KvRouter:
    cfg: KvRouterConfig
    block_size: int
    loads: list[WorkerLoad]
    rng: SplitMix64
    # results of the last route() call, for the request's routing record
    last_overlap: int
    last_best_overlap: int
    # overlap hit rate so far
    routed_blocks: int
    overlap_blocks: int
    # scratch
    costs: list[float]
    overlaps: list[int]

    def __init__(self, cfg: KvRouterConfig, n_workers: int, block_size: int,
                 rng: SplitMix64) -> None:
        self.cfg = cfg
        self.block_size = block_size
        self.loads = [WorkerLoad() for _ in range(n_workers)]
        self.rng = rng
        self.last_overlap = 0
        self.last_best_overlap = 0
        self.routed_blocks = 0
        self.overlap_blocks = 0
        self.costs = [0.0] * n_workers
        self.overlaps = [0] * n_workers

    def add_worker(self) -> None:
        self.loads.append(WorkerLoad())
        self.costs.append(0.0)
        self.overlaps.append(0)

    # ---- KV events ----------------------------------------------------------------------------
    def apply_events(self, w: int, removed: list[int], stored: list[int]) -> None:
        # Within one pass removals precede stores: only inactive blocks are evicted, and a block
        # stored in the pass is held by its request, so this order is the chronological one.
        cached = self.loads[w].cached
        for h in cast(list[object], removed):
            cached.discard(h)
        for h in cast(list[object], stored):
            cached.add(h)

    # ---- routing ------------------------------------------------------------------------------
    def route(self, hashes: list[int], isl: int, eligible: list[bool]) -> int:
        """Choose a worker for a request with these full prompt-block hashes and isl tokens."""
        cfg = self.cfg
        bs = float(self.block_size)
        n = len(self.loads)
        req_blocks = len(hashes)
        min_prefill = -1
        if cfg.credit_decay > 0.0:
            for w in range(n):
                if eligible[w]:
                    p = self.loads[w].prefill_tokens
                    if min_prefill < 0 or p < min_prefill:
                        min_prefill = p
        best = math.inf
        worst = -math.inf
        best_overlap = 0
        # The ids as the list's own objects: membership tests then box nothing (an int read
        # from a list[int] is unboxed and boxed again for each lookup).
        keys = cast(list[object], hashes)
        for w in range(n):
            if not eligible[w]:
                continue
            load = self.loads[w]
            overlap = 0
            if cfg.overlap_credit != 0.0:
                cached = load.cached
                while overlap < req_blocks and keys[overlap] in cached:
                    overlap += 1
            self.overlaps[w] = overlap
            if overlap > best_overlap:
                best_overlap = overlap
            credit = cfg.overlap_credit
            if cfg.credit_decay > 0.0 and req_blocks > 0:
                excess = float(load.prefill_tokens - min_prefill) / bs
                credit = credit / (1.0 + cfg.credit_decay * excess / float(req_blocks))
            prefill = 0.0
            if cfg.track_prefill_tokens:
                prefill = float(load.prefill_tokens + isl) / bs - credit * float(overlap)
                if prefill < 0.0:
                    prefill = 0.0
            decode = 0.0
            if cfg.track_active_blocks:
                if cfg.assume_kv_reuse:
                    active = load.active_blocks
                    new_blocks = 0
                    for k in keys:
                        if k not in active:
                            new_blocks += 1
                    decode = float(len(active) + new_blocks)
                else:
                    decode = float(load.active_block_total + req_blocks)
            cost = (cfg.prefill_load_scale * prefill + decode
                    + cfg.decode_active_request_weight * float(load.active_requests))
            self.costs[w] = cost
            if cost < best:
                best = cost
            if cost > worst:
                worst = cost
        chosen = self._select(best, worst, eligible)
        self.last_overlap = self.overlaps[chosen]
        self.last_best_overlap = best_overlap
        self.routed_blocks += req_blocks
        self.overlap_blocks += self.last_overlap
        return chosen

    def _select(self, best: float, worst: float, eligible: list[bool]) -> int:
        n = len(self.loads)
        t = self.cfg.temperature
        if t <= 0.0 or worst == best:
            # argmin, ties broken uniformly at random (even at temperature 0, as the reference)
            ties: list[int] = []
            for w in range(n):
                if eligible[w] and self.costs[w] == best:
                    ties.append(w)
            if len(ties) == 1:
                return ties[0]
            return ties[self.rng.below(len(ties))]
        span = (worst - best) * t
        total = 0.0
        weights: list[float] = []
        for w in range(n):
            x = math.exp(-(self.costs[w] - best) / span) if eligible[w] else 0.0
            weights.append(x)
            total += x
        u = self.rng.uniform() * total
        last = 0
        for w in range(n):
            if weights[w] > 0.0:
                last = w
                u -= weights[w]
                if u < 0.0:
                    return w
        return last

    # ---- load bookkeeping ---------------------------------------------------------------------
    def on_routed(self, w: int, hashes: list[int], prefill_tokens: int) -> None:
        load = self.loads[w]
        load.active_requests += 1
        if self.cfg.track_prefill_tokens:
            load.prefill_tokens += prefill_tokens
        if self.cfg.track_active_blocks:
            active = load.active_blocks
            for h in cast(list[object], hashes):
                active[h] = active.get(h, 0) + 1
            load.active_block_total += len(hashes)

    def on_prefill_done(self, w: int, prefill_tokens: int) -> None:
        if self.cfg.track_prefill_tokens:
            self.loads[w].prefill_tokens -= prefill_tokens

    def on_finished(self, w: int, hashes: list[int]) -> None:
        load = self.loads[w]
        load.active_requests -= 1
        if self.cfg.track_active_blocks:
            active = load.active_blocks
            for h in cast(list[object], hashes):
                c = active[h] - 1
                if c == 0:
                    del active[h]
                else:
                    active[h] = c
            load.active_block_total -= len(hashes)

    def hit_rate(self) -> float:
        return float(self.overlap_blocks) / float(self.routed_blocks) if self.routed_blocks else 0.0
