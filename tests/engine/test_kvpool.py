"""The KV pool and the workers cost what a replay uses, not what is configured: free capacity
is a counter, block objects are made on first use and recycled."""
from __future__ import annotations

import gc
import random
import tracemalloc
from collections import OrderedDict

from dynosim.inputs.trace import load_mooncake
from helpers import TINY, fixed_timing
from engine.config import EngineConfig
from engine.kvpool import LRU_SLACK, Block, KvPool
from engine.sim import Simulation
from engine.topology import Topology


def test_huge_pool_is_a_counter() -> None:
    pool = KvPool(10**12)
    assert (pool.num_free(), pool.num_active(), pool.num_made()) == (10**12, 0, 0)
    blocks = [pool.take_fresh() for _ in range(3)]
    assert (pool.num_free(), pool.num_active(), pool.num_made()) == (10**12 - 3, 3, 3)
    assert pool.can_take(10**12 - 3, 0) and not pool.can_take(10**12 - 2, 0)
    pool.release(blocks)
    assert (pool.num_free(), pool.num_active(), pool.num_made()) == (10**12, 0, 3)
    again = [pool.take_fresh() for _ in range(3)]
    assert {id(b) for b in again} == {id(b) for b in blocks}  # recycled, none made
    assert pool.num_made() == 3


def test_full_pool_evicts_only_after_capacity_is_used() -> None:
    pool = KvPool(2)
    a, b = pool.take_fresh(), pool.take_fresh()
    pool.publish(a, 11)
    pool.publish(b, 12)
    pool.release([a, b])  # both cached, inactive: b (last) released first, so it is the LRU head
    assert (pool.num_free(), pool.n_inactive) == (0, 2)
    c = pool.take_fresh()
    assert c is b and 12 not in pool.hash_block and 11 in pool.hash_block
    assert pool.num_made() == 2


def test_match_prefix_keeps_the_matched_blocks_and_stops_when_an_admission_cannot_fit() -> None:
    pool = KvPool(8)
    held, parked = pool.take_fresh(), pool.take_fresh()
    pool.publish(held, 1)
    pool.publish(parked, 2)
    pool.release([parked])  # 2 is cached but unheld; 1 stays held
    assert pool.match_prefix([1, 2, 3], 3) == 2  # 3 was never cached
    assert pool.matched == [held, parked] and pool.matched_active == 1
    assert pool.count_inactive(0, 2) == 1
    assert pool.match_prefix([1, 2, 3], 3, min_active=1) == 2  # one held hit is enough
    assert pool.match_prefix([1, 2, 3], 3, min_active=2) == -1  # block 2 is not held
    assert pool.match_prefix([1, 2, 3], 1, min_active=2) == -1  # fewer hashes than needed
    assert pool.match_prefix([1, 2], 2) == 2
    assert pool.pin(pool.matched[1]) is parked and parked.refcnt == 1 and pool.n_inactive == 0


def _tiny_sim(workers: int, blocks: int) -> Simulation:
    cfg = fixed_timing()  # the polynomial decode time depends on the configured capacity
    cfg.num_gpu_blocks = blocks
    return Simulation(load_mooncake(TINY), Topology(workers, cfg))


def test_configured_capacity_costs_nothing_up_front() -> None:
    wl = load_mooncake(TINY)
    cfg = EngineConfig()
    cfg.num_gpu_blocks = 200_000
    tracemalloc.start()
    try:
        Simulation(wl, Topology(10, cfg))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak  # 2M blocks made up front would be ~150 MB


def test_replay_materialises_only_blocks_it_holds() -> None:
    small, huge = _tiny_sim(2, 10**7), _tiny_sim(2, 10**12)
    small.run()
    huge.run()
    ms, mh = small.collect(), huge.collect()
    assert list(ms.req) == list(mh.req) and list(ms.terminal_ms) == list(mh.terminal_ms)
    for w in huge.workers:
        assert w.pool.num_active() == 0
        # Never more objects than the blocks the worker's requests held at the same time.
        assert 0 < w.pool.num_made() <= sum(-(-(i + o) // 64) for i, o in zip(
            ms.input_length, ms.output_tokens))



def test_lru_evicts_in_release_order_as_a_linked_lru_would() -> None:
    """Random takes, publishes, prefix hits (pins) and releases against a plain model of the
    inactive LRU (an ordered dict: a release parks at the tail, a pin unparks, eviction takes
    the head): the same victims in the same order, and the LRU list stays bounded."""
    rng = random.Random(11)
    pool = KvPool(300)
    model: OrderedDict[int, None] = OrderedDict()  # parked keys, least recently released first
    held: list[list[Block]] = []
    next_key = 1
    evictions = 0
    for _ in range(20_000):
        op = rng.randrange(4)
        if op == 0 and pool.num_free() + pool.n_inactive >= 8:
            blocks = []
            for _ in range(rng.randrange(1, 8)):
                if pool.num_free() == 0:
                    victim = next(iter(model))
                    del model[victim]
                    evictions += 1
                    b = pool.take_fresh()
                    assert victim not in pool.hash_block and b.key is None
                else:
                    b = pool.take_fresh()
                if rng.random() < 0.8:
                    pool.publish(b, next_key)
                    next_key += 1
                blocks.append(b)
            held.append(blocks)
        elif op == 1 and model:
            keys = rng.sample(list(model), min(len(model), rng.randrange(1, 5)))
            blocks = [pool.pin(pool.hash_block[k]) for k in keys]
            for k in keys:
                del model[k]
            held.append(blocks)
        elif op >= 2 and held:
            blocks = held.pop(rng.randrange(len(held)))
            pool.release(blocks)
            for b in reversed(blocks):
                if b.key is not None and b.refcnt == 0:
                    model[b.key] = None
                    model.move_to_end(b.key)
        assert [b.key for b in pool.inactive_blocks()] == list(model)
        assert pool.n_inactive == len(model)
        if op >= 2:  # a release keeps the list within twice the parked blocks
            assert len(pool.lru) <= 2 * pool.n_inactive + LRU_SLACK + 8
        assert len(pool.lru) <= 2 * pool.capacity + LRU_SLACK + 8  # bounded by the pool
    assert evictions > 1000


def test_a_finished_replay_needs_no_cyclic_collection() -> None:
    """Its blocks and requests link in no cycles: dropping the replay frees them at once, and
    the collector finds (almost) nothing left (before, every KV block was a cycle)."""
    sim = _tiny_sim(2, 150)
    gc.collect()
    gc.disable()
    try:
        sim.run()
        made = sum(w.pool.num_made() for w in sim.workers)
        del sim
        left = gc.collect()
    finally:
        gc.enable()
    assert made > 100 and left < 20, (made, left)
