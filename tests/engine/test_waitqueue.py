"""A worker's waiting queue keeps the prompt tokens still to compute as a running sum (what the
planner's forward-pass metrics report every pass): it must equal a full recount at every
instant, through admissions, preemptions (retractions), rejections and hand-offs."""
from __future__ import annotations

import random

import pytest

from helpers import fixed_timing
from engine.config import BACKEND_SGLANG, BACKEND_TRTLLM, BACKEND_VLLM, EngineConfig
from engine.request import Request
from engine.sim import Simulation
from engine.topology import Topology
from engine.waitqueue import WaitQueue
from engine.workload import Workload


def recount(reqs: list[Request]) -> int:
    return sum(max(0, r.prompt_len - r.computed) for r in reqs)


def test_every_queue_operation_keeps_the_sum() -> None:
    rng = random.Random(7)
    q = WaitQueue()
    model: list[Request] = []
    for i in range(3000):
        op = rng.randrange(7)
        if op <= 2 or not model:
            r = Request(i, rng.randrange(0, 900), 4, [], 0.0)
            r.computed = rng.choice([0, 0, r.prompt_len, rng.randrange(0, 1000)])
            where = rng.randrange(3)
            if where == 0:
                q.append(r)
                model.append(r)
            elif where == 1:
                q.appendleft(r)
                model.insert(0, r)
            else:
                k = rng.randrange(len(model) + 1)
                q.insert(k, r)
                model.insert(k, r)
        elif op == 3:
            assert q.popleft() is model.pop(0)
        elif op == 4:
            k = rng.randrange(len(model))
            assert q.pop_at(k) is model.pop(k)
        elif op == 5:
            r = model.pop(rng.randrange(len(model)))
            q.remove(r)
        else:
            rng.shuffle(model)
            q.reorder(list(model))
        # a request leaving the queue may then change its computed: no effect on the sum
        assert q.prefill_tokens == recount(model) == q.recount()
        assert list(q) == model and len(q) == len(model) and bool(q) == bool(model)
    assert all(q[k] is model[k] for k in range(len(model)))


def overload(n: int = 120, seed: int = 3, max_out: int = 200) -> Workload:
    """Bursty arrivals of mixed prompts, some larger than a tight pool (rejections), others
    sharing prefixes (prefix hits)."""
    rng = random.Random(seed)
    wl = Workload(64)
    t = 0.0
    for _ in range(n):
        t += rng.expovariate(1 / 15.0)
        isl = rng.choice([40, 300, 700, 1500, 3000, 9000])
        shared = rng.randrange(3)
        ids = [1000 * shared + k for k in range(-(-isl // 64))]
        wl.add(t, 0.0, isl, rng.randrange(1, max_out), ids, -1, 0)
    return wl


def tight(backend: int, blocks: int = 120) -> EngineConfig:
    c = fixed_timing(30.0, 5.0)
    c.backend = backend
    c.block_size = 16
    c.num_gpu_blocks = blocks
    c.max_num_batched_tokens = 512
    return c


def agg(backend: int) -> Topology:
    return Topology(2, tight(backend))


def disagg(backend: int) -> Topology:
    topo = Topology(0)
    topo.disaggregated = True
    topo.prefill_cfg = tight(backend, 200)
    topo.decode_cfg = tight(backend, 300)
    topo.num_prefill = 1
    topo.num_decode = 2
    return topo


@pytest.mark.parametrize("topo, preempts", [
    (agg(BACKEND_VLLM), True), (agg(BACKEND_SGLANG), True),
    (agg(BACKEND_TRTLLM), False),  # guaranteed-no-evict admission never preempts
    (disagg(BACKEND_VLLM), True), (disagg(BACKEND_SGLANG), True),
], ids=["vllm", "sglang", "trtllm", "vllm-disagg", "sglang-disagg"])
def test_the_running_sum_equals_a_recount_after_every_step(topo: Topology, preempts: bool) -> None:
    sim = Simulation(overload(), topo)
    checks = 0
    nonzero = 0
    while sim.step():
        for w in sim.workers:
            assert w.waiting.prefill_tokens == w.waiting.recount()
            assert w.prefill_backlog() == recount(list(w.running)) + w.waiting.recount()
            checks += 1
            nonzero += w.waiting.prefill_tokens > 0
    assert sim.completed + sim.rejected == len(sim.wl)
    # the run went through what can change the queue: a waiting backlog, preemptions (or
    # SGLang retractions) and rejections of prompts that never fit
    assert nonzero > 0 and sim.rejected > 0
    assert (sum(w.preemptions for w in sim.workers) > 0) == preempts
    assert checks > 1000
