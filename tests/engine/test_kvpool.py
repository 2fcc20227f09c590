"""The KV pool and the workers cost what a replay uses, not what is configured: free capacity
is a counter, block objects are made on first use and recycled."""
from __future__ import annotations

import tracemalloc

from dynosim.inputs.trace import load_mooncake
from helpers import TINY, fixed_timing
from engine.config import EngineConfig
from engine.kvpool import KvPool
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

