"""What the KV routers are told over a request's life: routed at arrival (overlap and
prefill tokens recorded on the request), prefill done at its first token or hand-off,
finished at its terminal state. Round robin when there is no KV router."""
from __future__ import annotations

from engine.kvrouter import KvRouter, KvRouterConfig
from engine.pool import Pool
from engine.request import Request
from engine.topology import Topology
from engine.worker import Worker


def prefill_router_cfg(topo: Topology) -> KvRouterConfig:
    """The prefill pool's router does not track decode blocks."""
    c = topo.router_cfg.copy()
    c.track_active_blocks = False
    return c


def decode_router_cfg(topo: Topology) -> KvRouterConfig:
    """The decode pool's router balances decode blocks only (overlap-blind, no prefill
    tokens, no reuse assumed)."""
    c = topo.router_cfg.copy()
    c.overlap_credit = 0.0
    c.credit_decay = 0.0
    c.track_active_blocks = True
    c.assume_kv_reuse = False
    c.track_prefill_tokens = False
    c.use_kv_events = False
    return c


def route_arrival(r: Request, front: Pool, kv: KvRouter | None, block_size: int) -> int:
    """The front pool's local index of the worker that takes the new request r."""
    if kv is None:
        return front.route_round_robin()
    n_in = r.prompt_len
    local = kv.route(r.hashes, n_in, front.eligible)
    r.route_overlap = kv.last_overlap
    r.route_best_overlap = kv.last_best_overlap
    r.route_prefill_tokens = n_in - kv.last_overlap * block_size
    if r.route_prefill_tokens < 0:
        r.route_prefill_tokens = 0
    r.route_prefill_open = True
    kv.on_routed(local, r.hashes, r.route_prefill_tokens)
    return local


def first_tokens(w: Worker, kv: KvRouter) -> None:
    """Aggregated: w's requests in w.firsts finished their prefill."""
    for r in w.firsts:
        if r.route_prefill_open:
            kv.on_prefill_done(w.local_idx, r.route_prefill_tokens)
            r.route_prefill_open = False


def release_route(r: Request, workers: list[Worker], kv: KvRouter | None,
                  kv_decode: KvRouter | None, disaggregated: bool) -> None:
    """r reached a terminal state: the routers forget it."""
    if not disaggregated:
        if kv is not None:
            local = workers[r.worker].local_idx
            if r.route_prefill_open:
                kv.on_prefill_done(local, r.route_prefill_tokens)
                r.route_prefill_open = False
            kv.on_finished(local, r.hashes)
        return
    if kv is not None and r.route_prefill_open:  # rejected on the prefill side
        local = workers[r.prefill_worker].local_idx
        kv.on_prefill_done(local, r.route_prefill_tokens)
        kv.on_finished(local, r.hashes)
        r.route_prefill_open = False
    if kv_decode is not None and r.decode_worker >= 0:
        kv_decode.on_finished(workers[r.decode_worker].local_idx, r.hashes)
