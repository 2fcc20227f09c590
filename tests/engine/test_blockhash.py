"""Prompt block ids (engine/blockhash.py): a full engine block's id is equal for two prompts
exactly when their token prefixes up to that block's end are equal.

The aligned path reads ids off the workload's trie (`TracePrefixes`, built once per workload,
nodes numbered in trace order); the general path interns token runs per simulation, in arrival
order. Both must be a consistent renaming of the token-prefix oracle, and of each other."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynosim.inputs.trace import load_mooncake
from dynosim.sweep.evaluate import _with_speedup, pack_workload, unpack_workload
from engine.blockhash import BlockHasher, TracePrefixes
from engine.sim import Simulation
from engine.topology import Topology
from engine.workload import Workload
from helpers import MULTITURN, TINY, fixed_timing

PROPS = settings(max_examples=80, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


def oracle_keys(hash_ids: list[int], input_length: int, tbs: int, bs: int) -> list[tuple[int, ...]]:
    """The token prefix ending each full block (each hash id is tbs tokens of itself)."""
    tokens = [h for h in hash_ids for _ in range(tbs)][:input_length]
    return [tuple(tokens[:end]) for end in range(bs, len(tokens) + 1, bs)]


def assert_renaming(a: list[list[int]], b: list[list[object]]) -> None:
    """a and b agree up to a bijection between their values."""
    fwd: dict[int, object] = {}
    back: dict[object, int] = {}
    assert [len(x) for x in a] == [len(y) for y in b]
    for xs, ys in zip(a, b):
        for x, y in zip(xs, ys):
            assert fwd.setdefault(x, y) == y, "one id, two prefixes"
            assert back.setdefault(y, x) == x, "one prefix, two ids"


@st.composite
def traces(draw: st.DrawFn) -> tuple[Workload, int]:
    """Requests over a small id alphabet (prefixes collide; negative and huge trace ids too);
    later ones often extend or branch off an earlier request's hash ids, as the turns of a
    session do. Input lengths anywhere in their last trace block."""
    alphabet = st.sampled_from([0, 1, 2, 3, -5, 2**31 - 1, 2**31, 2**40])
    tbs = draw(st.sampled_from([1, 2, 4, 6, 8]))
    wl = Workload(tbs)
    rows: list[list[int]] = []
    for _ in range(draw(st.integers(1, 14))):
        ids: list[int]
        if rows and draw(st.booleans()):
            base = rows[draw(st.integers(0, len(rows) - 1))]
            keep = draw(st.integers(0, len(base)))
            ids = base[:keep] + draw(st.lists(alphabet, max_size=4))
        else:
            ids = draw(st.lists(alphabet, max_size=6))
        if not ids:
            ids = [draw(alphabet)]
        rows.append(ids)
        isl = draw(st.integers((len(ids) - 1) * tbs + 1, len(ids) * tbs))
        wl.add(0.0, 0.0, isl, 1, ids, -1, 0)
    return wl, draw(st.integers(1, 9))


def ids_in(wl: Workload, hasher: BlockHasher, order: list[int]) -> list[list[int]]:
    """Every request's ids, interned in the given arrival order, listed in request order."""
    out: list[list[int]] = [[] for _ in range(len(wl))]
    for i in order:
        out[i] = hasher.prompt_hashes(wl.hash_ids, wl.hash_start[i], wl.hash_start[i + 1],
                                      wl.input_length[i])
    return out


@PROPS
@given(traces(), st.randoms(use_true_random=False))
def test_ids_are_a_renaming_of_token_prefixes(case: tuple[Workload, int], rnd: random.Random) -> None:
    wl, bs = case
    tbs = wl.trace_block_size
    order = list(range(len(wl)))
    rnd.shuffle(order)  # arrival order need not be trace order
    hasher = BlockHasher(bs, tbs, wl.trace_prefixes())
    got = ids_in(wl, hasher, order)
    keys: list[list[object]] = [
        list(oracle_keys(wl.hash_ids[wl.hash_start[i]:wl.hash_start[i + 1]], wl.input_length[i],
                         tbs, bs)) for i in range(len(wl))]
    assert_renaming(got, keys)
    assert all(x >= 1 for xs in got for x in xs)  # 0 means "no hash"
    # Fresh ids (synthetic prompts) never collide with the trace's.
    fresh = hasher.fresh_ids(3)
    assert not set(fresh) & {x for xs in got for x in xs}


@PROPS
@given(traces(), st.randoms(use_true_random=False))
def test_precomputed_ids_rename_per_simulation_interning(case: tuple[Workload, int],
                                                         rnd: random.Random) -> None:
    """When block_size divides trace_block_size, the workload's trie gives the same partition
    of blocks as interning the prompts one by one as they arrive (the general path)."""
    wl, _ = case
    tbs = wl.trace_block_size
    order = list(range(len(wl)))
    rnd.shuffle(order)
    for bs in [d for d in range(1, tbs + 1) if tbs % d == 0]:
        trie = ids_in(wl, BlockHasher(bs, tbs, wl.trace_prefixes()), order)
        interned = BlockHasher(bs, tbs)
        arrivals: list[list[int]] = [[] for _ in range(len(wl))]
        for i in order:
            arrivals[i] = interned._general(wl.hash_ids, wl.hash_start[i], wl.hash_start[i + 1],
                                            wl.input_length[i])
        assert_renaming(trie, [list(x) for x in arrivals])


def test_trie_nodes_are_numbered_in_trace_order() -> None:
    wl = Workload(4)
    for ids in ([7, 8], [7, 9], [7, 8, 5], [5]):
        wl.add(0.0, 0.0, 4 * len(ids), 1, ids, -1, 0)
    p = wl.trace_prefixes()
    # [7] [7,8] | [7] [7,9] | [7] [7,8] [7,8,5] | [5] (a root-level 5, not [7,8,5])
    assert list(p.node) == [0, 1, 0, 2, 0, 1, 3, 4] and p.count == 5
    assert list(BlockHasher(2, 4, p).prompt_hashes(wl.hash_ids, 4, 7, 10)) == [1, 2, 3, 4, 7]


def test_workload_keeps_its_trie_until_it_grows() -> None:
    wl = Workload(4)
    wl.add(0.0, 0.0, 8, 1, [1, 2], -1, 0)
    p = wl.trace_prefixes()
    assert wl.trace_prefixes() is p
    wl.add(0.0, 0.0, 8, 1, [1, 3], -1, 0)
    q = wl.trace_prefixes()
    assert q is not p and list(q.node) == [0, 1, 0, 2]
    wl.hash_ids = list(wl.hash_ids)  # replaced lists are not trusted either
    assert wl.trace_prefixes() is not q


def test_the_parse_builds_the_trie_once_and_every_replay_shares_it() -> None:
    wl = load_mooncake(MULTITURN)
    p = wl.prefixes
    assert isinstance(p, TracePrefixes) and len(p.node) == len(wl.hash_ids)
    topo = Topology(1, fixed_timing())
    for _ in range(2):
        sim = Simulation(wl, topo)
        assert sim.hasher.prefixes is p
        sim.run()
    assert wl.prefixes is p
    assert _with_speedup(wl, 2.0).trace_prefixes() is p  # the speedup copy shares it
    shipped = unpack_workload(pack_workload(wl))  # rebuilt where a Ray worker unpacks it
    assert shipped.prefixes is not None and list(shipped.prefixes.node) == list(p.node)


def test_unaligned_block_size_interns_per_simulation() -> None:
    wl = load_mooncake(TINY, trace_block_size=512)
    cfg = fixed_timing()
    cfg.block_size = 48  # does not divide 512
    sim = Simulation(wl, Topology(1, cfg))
    assert sim.hasher.prefixes is None and not sim.hasher.aligned
    sim.run()
    assert sim.completed == len(wl)
