"""The disaggregated hand-off from a prefill worker to a decode worker: reserve the prompt's
blocks on the decode side, transfer the KV, activate the request there, free the source.

Events return events: the hand-off never touches the event heap. What it schedules (KV
transfers and their due times) and the workers it gave work to wait in its outbox (`due_ms`,
`due`, `woken`) for the loop to push and list.

The reference's rule (probed with per-request milestones under decode-side KV pressure and
transfer delays; README "Parity with the reference"):
- A worker's KV state changes only between its passes: hand-off operations aimed at a busy
  worker wait in its inbox until its pass ends.
- Reservations are FIFO per decode worker, one per wake-up (`wake`); one that does not fit
  blocks the later ones until a later wake finds room. Nothing is preempted for it.
- A reservation holds the whole prompt's blocks (cached prefix pinned, the rest fresh) during
  the transfer; they become cache-visible when the KV lands (`_activate`).
- Landed hand-offs join the decode queue in reservation order (`_activate`), whatever order
  their transfers finished in: that order decides who gets room first and who is preempted
  first (the last admitted).
- While hand-offs wait for room, the worker's preempted requests are passed over
  (Worker.start_pass, pending_reservations).
- The source is freed when the KV lands (at the prefill worker's next pass boundary).

SGLang decode pools differ (docs/backends.md, probed on the 1.6.1 replay): the destination is
reserved first, on arrival, and the prefill is submitted only once it holds (`arrived`,
`submit`); a failed reservation is retried only after capacity came back on that worker (its
capacity generation); landed KV is applied before reservations at a wake; a pass end allows
one reservation; a worker whose queue is blocked by pending hand-offs retries while they fit."""
from __future__ import annotations

from typing import Final, final

from engine.kvrouter import KvRouter
from engine.metrics import MetricColumns
from engine.pool import Pool
from engine.config import BACKEND_SGLANG
from engine.request import WAITING, Request
from engine.topology import TRANSFER_DESTINATION_MISSING, Topology
from engine.worker import Worker, ceil_div

# Hand-off operations queued on a worker (applied when it is between passes).
OP_RESERVE: Final = 0  # decode worker: reserve the prompt's blocks, start the transfer
OP_ACTIVATE: Final = 1  # decode worker: the KV arrived, queue the request
OP_RELEASE: Final = 2  # prefill worker: free the source blocks


@final
class Handoff:
    workers: list[Worker]  # the simulation's workers, by global index (shared, not copied)
    back: Pool  # the decode pool
    kv: KvRouter | None  # prefill pool's router
    kv_decode: KvRouter | None
    metrics: MetricColumns
    cache_block_size: int  # the prompt hashes' block size (prefix hits need the same size)
    transfer_mode: int  # topology.TRANSFER_*
    transfer_bandwidth_gbps: float
    transfer_bytes_per_token: float
    # Outbox, drained by the loop after each call: transfers (due time, request), and
    # workers given work to start.
    due_ms: list[float]
    due: list[Request]
    woken: list[Worker]
    submit: list[Request]  # SGLang: destinations reserved, prefills to submit (in order)
    # SGLang decode pool: reserve the destination on arrival, before the prefill
    destination_first: bool
    arrival_reserves: list[Worker]  # decode workers sent a reservation at this instant

    def __init__(self, workers: list[Worker], back: Pool, kv: KvRouter | None,
                 kv_decode: KvRouter | None, metrics: MetricColumns, cache_block_size: int,
                 topo: Topology) -> None:
        self.workers = workers
        self.back = back
        self.kv = kv
        self.kv_decode = kv_decode
        self.metrics = metrics
        self.cache_block_size = cache_block_size
        self.transfer_mode = topo.transfer_mode
        self.transfer_bandwidth_gbps = topo.transfer_bandwidth_gbps
        self.transfer_bytes_per_token = topo.transfer_bytes_per_token
        self.due_ms = []
        self.due = []
        self.woken = []
        self.submit = []
        self.destination_first = back.cfg.backend == BACKEND_SGLANG
        self.arrival_reserves = []

    def prefill_done(self, r: Request, t: float) -> None:
        """A prefill finished on a prefill worker (KV held there): pick a decode worker and ask
        it to reserve the prompt's blocks."""
        kv = self.kv
        if kv is not None and r.route_prefill_open:
            src = self.workers[r.prefill_worker].local_idx
            kv.on_prefill_done(src, r.route_prefill_tokens)
            kv.on_finished(src, r.hashes)
            r.route_prefill_open = False
        sg = self.workers[r.prefill_worker].sg
        if sg is not None:
            sg.hold_source(r)
        r.src_blocks = r.blocks
        r.blocks = []
        if self.destination_first:  # reserved before the prefill: the KV moves now
            self._transfer(r, t, r.dest_missing)
            return
        self._route_decode(r)
        self._post(self.workers[r.decode_worker], OP_RESERVE, r, t)

    def arrived(self, r: Request) -> None:
        """SGLang decode pool: a new request first asks a decode worker for its destination
        (tried once the instant's passes started: Simulation._start_passes)."""
        self._route_decode(r)
        dw = self.workers[r.decode_worker]
        dw.inbox_ops.append(OP_RESERVE)
        dw.inbox_reqs.append(r)
        dw.pending_reservations += 1
        self.arrival_reserves.append(dw)

    def _route_decode(self, r: Request) -> None:
        back = self.back
        kvd = self.kv_decode
        if kvd is not None:
            d = kvd.route(r.hashes, r.prompt_len, back.eligible)
            r.decode_route_overlap = kvd.last_overlap
            kvd.on_routed(d, r.hashes, 0)
        else:
            d = back.route_round_robin()
        r.decode_worker = back.ids[d]

    def kv_landed(self, r: Request, t: float) -> None:
        """r's transfer completed at t."""
        self._post(self.workers[r.decode_worker], OP_ACTIVATE, r, t)

    def wake(self, w: Worker, t: float, allowance: int) -> None:
        """The worker is between passes: apply its queued hand-off operations, reserving at
        most `allowance` destinations (FIFO). The reference's milestones show one reservation
        attempt per event that reaches a worker between passes: its pass end (plus one per
        transfer that completed while it was mid-pass), a hand-off or an activation while idle."""
        ops = w.inbox_ops
        reqs = w.inbox_reqs
        w.inbox_ops = []
        w.inbox_reqs = []
        sg = w.sg
        if w.compat_1_4 or sg is not None:
            # 1.4.2 lands the KV it was waiting for before reserving for new hand-offs, so a
            # hand-off reserved here can share the prefix of one activated at the same wake.
            # So does SGLang (a landed prompt frees the pages it shares with the cache).
            first_ops: list[int] = []
            first_reqs: list[Request] = []
            for k in range(len(ops)):
                if ops[k] != OP_RESERVE:
                    self._apply(w, ops[k], reqs[k], t)
                else:
                    first_ops.append(ops[k])
                    first_reqs.append(reqs[k])
            ops = first_ops
            reqs = first_reqs
        if sg is not None and w.waiting and not w.running and not sg.landed:
            # An SGLang decode worker whose queue is blocked by pending hand-offs runs empty
            # passes at this instant, each retrying one reservation, while they succeed.
            allowance = len(ops)
        blocked = False
        for k in range(len(ops)):
            op = ops[k]
            r = reqs[k]
            if op == OP_RESERVE:
                if blocked or allowance == 0 or not self._reserve(r, t):
                    w.inbox_ops.append(op)  # waits for a later wake-up (or for room)
                    w.inbox_reqs.append(r)
                    blocked = True  # keep FIFO order among reservations
                    continue
                allowance -= 1
            else:
                self._apply(w, op, r, t)
        n = 0
        for op in w.inbox_ops:
            if op == OP_RESERVE:
                n += 1
        w.pending_reservations = n

    def wake_after_pass(self, w: Worker, t: float) -> None:
        """SGLang decode worker, its pass ended: one reservation try for the pass end, then the
        operations that waited for it, one try after each transfer that landed."""
        ops = w.inbox_ops
        reqs = w.inbox_reqs
        w.inbox_ops = []
        w.inbox_reqs = []
        res: list[Request] = []
        for k in range(len(ops)):
            if ops[k] == OP_RESERVE:
                res.append(reqs[k])
        nxt = self._try_reserve(res, 0, t)
        for k in range(len(ops)):
            if ops[k] != OP_RESERVE:
                self._apply(w, ops[k], reqs[k], t)
                if ops[k] == OP_ACTIVATE:
                    nxt = self._try_reserve(res, nxt, t)
        sg = w.sg
        assert sg is not None
        if w.waiting and not w.running and not sg.landed:
            while nxt < len(res):  # blocked queue: empty passes retry while they succeed
                k = self._try_reserve(res, nxt, t)
                if k == nxt:
                    break
                nxt = k
        for k in range(nxt, len(res)):
            w.inbox_ops.append(OP_RESERVE)
            w.inbox_reqs.append(res[k])
        w.pending_reservations = len(res) - nxt

    def _try_reserve(self, res: list[Request], nxt: int, t: float) -> int:
        """Try the front reservation; the index of the new front."""
        if nxt < len(res) and self._reserve(res[nxt], t):
            return nxt + 1
        return nxt

    def _post(self, w: Worker, op: int, r: Request, t: float) -> None:
        w.inbox_ops.append(op)
        w.inbox_reqs.append(r)
        if op == OP_RESERVE:
            w.pending_reservations += 1
        if w.busy:
            if op == OP_ACTIVATE:
                w.deferred_activations += 1
        else:
            self.wake(w, t, 1)

    def _apply(self, w: Worker, op: int, r: Request, t: float) -> None:
        if op == OP_ACTIVATE:
            self._activate(r, t)
        else:
            sg = w.sg
            if sg is not None:
                sg.release_source(r)
            else:
                w.pool.release(r.src_blocks)
            r.src_blocks = []
            r.source_released_ms = t
            if r.metrics_row >= 0:  # finished before its source was freed
                self.metrics.source_released_ms[r.metrics_row] = t

    def _reserve(self, r: Request, t: float) -> bool:
        dw = self.workers[r.decode_worker]
        sg = dw.sg
        if sg is not None:
            if r.reserve_failed_gen == sg.generation:
                return False  # no capacity came back since the last try
            fresh = sg.reserve(r)
            if fresh < 0:
                r.reserve_failed_gen = sg.generation
                return False
            r.dest_reserved_ms = t
            r.dest_missing = fresh * dw.bs
            self.submit.append(r)
            return True
        pool = dw.pool
        bs = dw.bs
        nfull = r.prompt_len // bs
        nblocks = ceil_div(r.prompt_len, bs)
        hashes = r.hashes
        hit = 0
        if dw.no_evict:
            # TRT-LLM: no prefix credit; the whole to-completion footprint must fit
            if dw.footprint(r) > dw._no_evict_available():
                return False
        elif dw.cfg.enable_prefix_caching and dw.bs == self.cache_block_size:
            hit = pool.match_prefix(hashes, nfull)
        pinned = pool.count_inactive(0, hit) if hit > 0 else 0
        fresh = nblocks - hit
        if not pool.can_take(fresh, pinned):
            return False
        matched = pool.matched
        blocks = [pool.pin(matched[k]) for k in range(hit)]
        for _ in range(fresh):
            blocks.append(pool.take_fresh())
        r.blocks = blocks
        r.n_final = hit
        r.dest_reserved_ms = t
        if dw.no_evict:
            dw.inbound.append(r)
        self._transfer(r, t, fresh * bs)
        return True

    def _transfer(self, r: Request, t: float, missing_tokens: int) -> None:
        """The destination holds r's prompt: move the KV (all of it, or only what the
        destination lacks)."""
        tokens = r.prompt_len
        if self.transfer_mode == TRANSFER_DESTINATION_MISSING:
            tokens = missing_tokens
        delay = 0.0
        if self.transfer_bandwidth_gbps > 0.0 and self.transfer_bytes_per_token > 0.0:
            # Not rounded to the nanosecond (the reference's hand-off times show the raw value).
            delay = (float(tokens) * self.transfer_bytes_per_token
                     / (self.transfer_bandwidth_gbps * 1e9) * 1000.0)
        self.due_ms.append(t + delay)
        self.due.append(r)  # the loop sets r.reserve_seq when it queues the transfer

    def _activate(self, r: Request, t: float) -> None:
        """The KV is in place: queue the request on its decode worker with the prompt
        materialised (its first visible token comes from a decode pass there)."""
        r.dest_activated_ms = t
        dw = self.workers[r.decode_worker]
        sg = dw.sg
        if sg is not None:
            r.decode_side = True
            r.status = WAITING
            r.worker = dw.idx
            sg.activate(r)  # it joins the running set at the next pass start
            self.woken.append(dw)
            self._post(self.workers[r.prefill_worker], OP_RELEASE, r, t)
            return
        if dw.cfg.enable_prefix_caching and dw.bs == self.cache_block_size:
            nfull = r.prompt_len // dw.bs
            for k in range(r.n_final, nfull):
                dw.pool.publish(r.blocks[k], r.block_key(k))
            r.n_final = nfull
        r.computed = r.prompt_len
        r.alloc_tokens = r.prompt_len
        r.decode_side = True
        r.status = WAITING
        # Hand-offs queue in reservation order: one whose transfer finished first still waits
        # behind an earlier-reserved hand-off that landed later but is not admitted yet (the
        # reference's admissions and preemption victims under 3P1D and 2P2D show it).
        waiting = dw.waiting
        k = len(waiting)
        while k > 0:
            q = waiting[k - 1]
            if not (q.decode_side and q.decode_admit_ms < 0.0 and q.reserve_seq > r.reserve_seq):
                break
            k -= 1
        r.worker = dw.idx
        waiting.insert(k, r)
        self.woken.append(dw)
        # The source is freed once the destination holds the KV (at the prefill worker's next
        # pass boundary if it is busy).
        self._post(self.workers[r.prefill_worker], OP_RELEASE, r, t)
