# Over 450 lines on purpose: one concept, the event loop and the phases of an instant.
"""The replay loop (spec engine.md §3, §8, §9): one clock, a heap of timed events (pass ends,
delayed KV events, KV transfers) and a heap of arrivals. `step()` processes one instant:
pass completions, KV events, transfer completions, then arrivals, then new passes."""
from __future__ import annotations

import math
from typing import Final, final

from librt.vecs import vec

from engine.blockhash import BlockHasher
from engine.eventq import EventQueue
from engine.handoff import Handoff
from engine.kvrouter import KvRouter
from engine.metrics import STATUS_COMPLETED, STATUS_REJECTED, MetricColumns
from engine.pool import (
    POOL_AGG,
    POOL_DECODE,
    POOL_PREFILL,
    STATE_ACTIVE,
    STATE_DRAINING,
    STATE_STARTING,
    STATE_STOPPED,
    Pool,
)
from engine.request import Request
from engine.rng import SplitMix64
from engine.routing import (
    decode_router_cfg,
    first_tokens,
    prefill_router_cfg,
    release_route,
    route_arrival,
)
from engine.samples import WorkerSamples
from engine.sglang import never_fits
from engine.snapshot import SimSnapshot, WorkerSnapshot
from engine.topology import ROUTER_KV, Topology
from engine.traffic import TrafficWindowAcc
from engine.worker import Worker
from engine.workload import Workload

INF: Final = math.inf

# Same-time order of timed events: pass completions, delayed KV events, workers becoming
# ready, then KV transfers (spec engine.md §3 phases 1-2).
EV_PASS: Final = 0
EV_KV: Final = 1
EV_READY: Final = 2
EV_TRANSFER: Final = 3


@final
class KvEventBatch:
    worker: int  # index within its pool's router
    removed: list[int]
    stored: list[int]

    def __init__(self, worker: int, removed: list[int], stored: list[int]) -> None:
        self.worker = worker
        self.removed = removed
        self.stored = stored


@final
class Simulation:
    wl: Workload
    topo: Topology
    workers: list[Worker]  # every worker ever created, by global index
    front: Pool  # where requests arrive: the aggregated pool, or the prefill pool
    back: Pool | None  # the decode pool when disaggregated
    kv: KvRouter | None  # front pool's KV router
    kv_decode: KvRouter | None
    handoff: Handoff | None  # disaggregated: prefill -> decode (engine/handoff.py)
    hasher: BlockHasher
    metrics: MetricColumns
    traffic: TrafficWindowAcc  # since the last planner tick
    now: float
    max_time_ms: float  # INF = no limit
    events: EventQueue  # (time, kind, serial, payload), in (time, kind, serial) order
    kv_batches: dict[int, KvEventBatch]
    transfers: dict[int, Request]
    arrivals: EventQueue  # (ready time, 0, workload index, workload index): by time, then index
    serial: int
    concurrency: int  # 0 = open loop (timestamps); N = closed loop with N sessions in flight
    session_queue: list[int]  # closed loop: first turns not yet released
    session_head: int
    arrived: int
    completed: int
    rejected: int
    done_buf: list[Request]
    # Workers that may start a pass (or stop draining) at the next _start_passes: every worker
    # that is idle with work, or draining and idle, is listed, so an instant costs what its
    # busy workers cost, not the number of workers configured. The first n_startable entries
    # of a reused buffer (two buffers swapped per instant: nothing allocated per instant).
    startable: list[Worker]
    n_startable: int
    startable_sorted: bool  # listed in index order (the usual case: no sort needed)
    startable_spare: list[Worker]
    # Planner ticks: every tick_ms (0 = no planner). At a tick, step() stops after the
    # arrivals phase with at_tick set; the caller applies decisions and calls finish_tick().
    tick_ms: float
    next_tick_ms: float
    at_tick: bool
    startup_ms: float  # start-up delay of workers added by scaling
    free_prefill_decode: bool  # 1.4 compatibility: prefill workers decode, free of charge
    rng: SplitMix64
    samples: WorkerSamples  # every simulated second, for the report

    def __init__(self, wl: Workload, topo: Topology, replay_concurrency: int = 0,
                 max_time_ms: float = -1.0) -> None:
        """A replay of wl on topo's workers: open loop (arrival timestamps), or closed loop
        with replay_concurrency sessions in flight; max_time_ms < 0 = no time limit."""
        self.wl = wl
        self.topo = topo
        self.workers = []
        self.rng = SplitMix64(topo.seed)
        self.kv = None
        self.kv_decode = None
        self.back = None
        if topo.disaggregated:
            self.front = Pool(POOL_PREFILL, topo.prefill_cfg)
            self.back = Pool(POOL_DECODE, topo.decode_cfg)
            if topo.router_mode == ROUTER_KV:
                # The prefill router does not track decode blocks; the decode router balances
                # decode blocks only (overlap-blind, no prefill tokens, no reuse assumed).
                self.kv = KvRouter(prefill_router_cfg(topo), 0, topo.prefill_cfg.block_size,
                                   self.rng)
                self.kv_decode = KvRouter(decode_router_cfg(topo), 0,
                                          topo.decode_cfg.block_size, self.rng)
                self.back.kv = self.kv_decode
            n_front = topo.num_prefill
            self.free_prefill_decode = topo.prefill_cfg.compat_1_4
        else:
            self.free_prefill_decode = False
            cfg = topo.agg_cfg
            self.front = Pool(POOL_AGG, cfg)
            if topo.router_mode == ROUTER_KV:
                self.kv = KvRouter(topo.router_cfg, 0, cfg.block_size, self.rng)
            n_front = topo.num_workers
        self.front.kv = self.kv
        self.tick_ms = 0.0
        self.next_tick_ms = INF
        self.at_tick = False
        self.startup_ms = 0.0
        self.samples = WorkerSamples(1000.0)
        self.traffic = TrafficWindowAcc()
        self.events = EventQueue()  # before the workers: one that starts later queues its ready event
        self.serial = 0
        self.hasher = BlockHasher(self.front.cfg.block_size, wl.trace_block_size)
        for _ in range(n_front):
            self._add_worker(self.front, 0.0, True)
        if self.back is not None:
            for _ in range(topo.num_decode):
                self._add_worker(self.back, 0.0, True)
        self.metrics = MetricColumns()
        self.handoff = None
        if self.back is not None:
            self.handoff = Handoff(self.workers, self.back, self.kv, self.kv_decode,
                                   self.metrics, self.hasher.block_size, topo)
        self.now = 0.0
        self.max_time_ms = max_time_ms if max_time_ms >= 0.0 else INF
        self.kv_batches = {}
        self.transfers = {}
        self.concurrency = replay_concurrency
        self.arrived = 0
        self.completed = 0
        self.rejected = 0
        self.done_buf = []
        self.startable = []
        self.n_startable = 0
        self.startable_sorted = True
        self.startable_spare = []
        self.arrivals = EventQueue()
        firsts = wl.first_turns()
        order = sorted([(wl.arrival_ms[i], i) for i in firsts])
        if replay_concurrency > 0:
            self.session_queue = [p[1] for p in order]
            n0 = min(replay_concurrency, len(order))
            for k in range(n0):
                self._push_arrival(0.0, self.session_queue[k])
            self.session_head = n0
        else:
            self.session_queue = []
            self.session_head = 0
            for p in order:
                self._push_arrival(p[0], p[1])  # in order: each push stays a leaf

    # ---- public stepping API ------------------------------------------------------------------
    def next_event_time(self) -> float:
        """Time of the next pending event ignoring the time limit (INF if none)."""
        t = self.events.peek_time()
        ta = self.arrivals.peek_time()
        return ta if ta < t else t

    def peek(self) -> float:
        """Time of the next instant with work, INF if the replay is over."""
        t = self.next_event_time()
        if t == INF:
            return INF  # planner ticks continue only while work remains
        if self.next_tick_ms < t:
            t = self.next_tick_ms
        if t > self.max_time_ms:
            return INF
        return t

    def step(self) -> bool:
        """Process every event of the next instant. False when nothing is left to do."""
        if self.at_tick:
            self.finish_tick()
            return True
        t = self.peek()
        if t == INF:
            return False
        self.now = t
        self._drain_events(t)
        arrivals = self.arrivals
        while arrivals.n > 0 and arrivals.peek_time() <= t:
            self._arrive(arrivals.pop()[3], t)
        samples = self.samples
        if t >= samples.next_ms and samples.every_ms > 0.0:
            samples.take(t, self.workers)
        if t >= self.next_tick_ms:
            self.at_tick = True  # the planner decides before this instant's passes start
            return True
        self._start_passes(t)
        return True

    def finish_tick(self) -> None:
        """Resume after a planner tick: schedule the next tick and start this instant's passes."""
        self.at_tick = False
        self.next_tick_ms += self.tick_ms
        self.traffic.reset(self.now)
        self._start_passes(self.now)

    def _drain_events(self, t: float) -> None:
        """Process every queued event at or before t (including ones pushed meanwhile)."""
        done = self.done_buf
        events = self.events
        workers = self.workers
        while events.n > 0 and events.peek_time() <= t:
            _, kind, _, payload = events.pop()
            if kind == EV_PASS:
                self._pass_end(workers[payload], t, done)
            elif kind == EV_KV:
                b = self.kv_batches.pop(payload)
                kv = self.kv
                if kv is not None:
                    kv.apply_events(b.worker, b.removed, b.stored)
            elif kind == EV_READY:
                self._worker_ready(workers[payload])
            else:
                h = self.handoff
                assert h is not None
                h.kv_landed(self.transfers.pop(payload), t)
                self._queue_handoff_events(h)
        if done:
            for r in done:
                self._terminal(r, t, STATUS_COMPLETED)
            done.clear()

    def _begin_pass(self, w: Worker, t: float) -> bool:
        """Start w's next pass at t and schedule its end. True when it is a free pass (1.4
        compatibility: a prefill worker's decode-only pass, zero time) left for the caller to
        complete at this instant."""
        end = w.start_pass(t)
        if w.rejected:
            for r in w.rejected:
                self._terminal(r, t, STATUS_REJECTED)
            w.rejected.clear()
        if end < 0.0:
            return False
        if end <= t and self.free_prefill_decode and w.kind == POOL_PREFILL:
            return True
        self._push(end, EV_PASS, w.idx)
        return False

    def _run_free_passes(self, t: float, pending: list[Worker]) -> None:
        """1.4 compatibility, disaggregated: complete the prefill workers' decode-only passes,
        which cost nothing (engine/worker.py), and keep each of those workers going while its
        passes stay free, then deliver the zero-delay transfers of the hand-offs they caused.
        The 1.4.2 probes order it so: workers start their passes at an instant first (an idle
        decode worker takes what the prefill worker's real pass released), then the free passes
        run, and everything they release reaches the decode worker together."""
        while pending:
            for w in pending:
                self._pass_end(w, t, self.done_buf)
            nxt: list[Worker] = []
            for w in pending:
                if not w.busy and w.has_work() and self._begin_pass(w, t):
                    nxt.append(w)
            pending = nxt
        # Only now do the zero-delay transfers land: every hand-off of the instant reserves its
        # decode blocks before any of them is activated (and cache-visible), so two requests
        # released together never share prefix blocks there (1.4.2's decode times show it).
        self._drain_events(t)

    def _list_startable(self, w: Worker) -> None:
        if w.listed:
            return
        w.listed = True
        buf = self.startable
        n = self.n_startable
        if n > 0 and buf[n - 1].idx > w.idx:
            self.startable_sorted = False
        if n < len(buf):
            buf[n] = w
        else:
            buf.append(w)
        self.n_startable = n + 1

    def _start_passes(self, t: float) -> None:
        self._start_listed(t)
        h = self.handoff
        while h is not None and h.arrival_reserves:
            # SGLang destinations: an arrival's reservation reaches its decode worker after the
            # instant's passes started (a follow-up turn released by a decode pass end waits
            # for that worker's next pass end); an idle worker tries it now, and the prefills
            # it lets through start at this instant.
            ws = h.arrival_reserves
            h.arrival_reserves = []
            for w in ws:
                if not w.busy:
                    h.wake(w, t, 1)
            self._queue_handoff_events(h)
            self._start_listed(t)

    def _start_listed(self, t: float) -> None:
        n = self.n_startable
        if n == 0:
            return
        listed = self.startable
        if not self.startable_sorted:
            order = [listed[k].idx for k in range(n)]
            order.sort()  # passes start in worker index order
            workers = self.workers
            for k in range(n):
                listed[k] = workers[order[k]]
        self.startable = self.startable_spare
        self.n_startable = 0
        self.startable_sorted = True
        free: list[Worker] | None = None  # allocated only in 1.4 disaggregated runs
        for k in range(n):
            w = listed[k]
            w.listed = False  # starting a pass touches no other worker, so one loop will do
            if not w.busy and w.has_work():
                if self._begin_pass(w, t):
                    if free is None:
                        free = []
                    free.append(w)
                elif not w.busy:
                    self._list_startable(w)  # nothing could run: try again at the next instant
            elif w.state == STATE_DRAINING and not w.busy:
                self._stop(w, t)
        self.startable_spare = listed
        if free is not None:
            self._run_free_passes(t, free)
            self._start_passes(t)  # whoever the free passes gave work to

    def run_until(self, t: float) -> None:
        """Process every instant at or before simulated time t (ms)."""
        while True:
            p = self.peek()
            if p == INF or p > t:
                break
            self.step()
        if t > self.now and t != INF:
            self.now = t if t < self.max_time_ms else self.max_time_ms

    def run(self) -> None:
        while self.step():
            pass

    def run_steps(self, max_steps: int) -> bool:
        """Process at most max_steps instants (a bounded chunk for UIs and progress bars).
        Returns True while work remains; stops early at a planner tick (see at_tick)."""
        for _ in range(max_steps):
            if not self.step():
                return False
            if self.at_tick:
                return True
        return self.at_tick or self.peek() != INF

    # ---- planner hooks ------------------------------------------------------------------------
    def enable_ticks(self, tick_ms: float, startup_ms: float) -> None:
        """Stop at every tick_ms of simulated time for a planner; scale-ups take startup_ms."""
        self.tick_ms = tick_ms
        self.next_tick_ms = tick_ms
        self.startup_ms = startup_ms
        for w in self.workers:
            w.track_fpm = True

    def pool_of(self, kind: int) -> Pool:
        if kind == POOL_DECODE and self.back is not None:
            return self.back
        return self.front

    def scale(self, kind: int, target: int) -> None:
        """Bring a pool to `target` non-draining workers: new ones start now and become
        routable after the start-up delay; surplus ones (newest first) stop taking requests
        and drain."""
        pool = self.pool_of(kind)
        live: list[int] = []
        for g in pool.ids:
            st = self.workers[g].state
            if st == STATE_ACTIVE or st == STATE_STARTING:
                live.append(g)
        t = self.now
        n = len(live)
        while n < target:
            self._add_worker(pool, t, False)
            n += 1
        k = len(live) - 1
        while n > target and k >= 0:
            w = self.workers[live[k]]
            pool.set_active(w.local_idx, False)
            w.state = STATE_DRAINING
            if not w.busy and not w.has_work() and not w.inbox_ops:
                self._stop(w, t)
            else:
                self._list_startable(w)
            n -= 1
            k -= 1

    def _add_worker(self, pool: Pool, t: float, ready: bool) -> Worker:
        w = Worker(len(self.workers), pool.cfg)
        w.set_kind(pool.kind)
        w.local_idx = pool.size()
        w.created_ms = t
        w.track_fpm = self.tick_ms > 0.0
        self.workers.append(w)
        pool.ids.append(w.idx)
        pool.eligible.append(False)
        if pool.kv is not None:
            pool.kv.add_worker()
            w.pool.track_events = pool.kind != POOL_DECODE and self.topo.router_cfg.use_kv_events
        if ready or self.startup_ms <= 0.0:
            self._worker_ready(w)
        else:
            w.state = STATE_STARTING
            w.ready_ms = t + self.startup_ms
            self._push(w.ready_ms, EV_READY, w.idx)
        return w

    def _worker_ready(self, w: Worker) -> None:
        if w.state == STATE_DRAINING or w.state == STATE_STOPPED:
            return  # scaled away before it became ready
        w.state = STATE_ACTIVE
        self.pool_of(w.kind).set_active(w.local_idx, True)

    def _stop(self, w: Worker, t: float) -> None:
        w.state = STATE_STOPPED
        w.stopped_ms = t

    def worker_seconds(self, kind: int, end_ms: float = -1.0) -> float:
        """Lifetimes (creation, start-up included, to stop, drain included) of a pool's workers,
        up to end_ms (default: now)."""
        end = self.now if end_ms < 0.0 else end_ms
        total = 0.0
        for g in self.pool_of(kind).ids:
            w = self.workers[g]
            stop = w.stopped_ms if 0.0 <= w.stopped_ms < end else end
            if stop > w.created_ms:
                total += stop - w.created_ms
        return total / 1000.0

    def is_finished(self) -> bool:
        return self.peek() == INF

    def snapshot(self) -> SimSnapshot:
        ws: list[WorkerSnapshot] = []
        passes = 0
        for w in self.workers:
            passes += w.passes
            ws.append(WorkerSnapshot(
                w.idx, w.kind, w.state, w.busy, len(w.waiting), len(w.running),
                w.kv_active(), w.kv_cached(), w.kv_free(), w.capacity, w.prefill_backlog(),
                w.preemptions))
        kv = self.kv
        hit = kv.hit_rate() if kv is not None else -1.0
        pending = 0
        for w in self.workers:
            pending += len(w.inbox_ops)
        return SimSnapshot(self.now, len(self.wl), self.arrived, self.completed, self.rejected,
                           passes, ws, hit, len(self.transfers) + pending)

    def collect(self) -> MetricColumns:
        """Metric columns with the engine-wide totals folded in (call after the run)."""
        m = self.metrics
        m.committed_prefill_tokens = 0
        m.preemptions = 0
        for w in self.workers:
            m.committed_prefill_tokens += w.committed_prefill
            m.preemptions += w.preemptions
        return m

    # ---- internals ----------------------------------------------------------------------------
    def _push(self, t: float, kind: int, payload: int) -> int:
        """Queue an event; returns its serial (the key of its payload, when it has one)."""
        self.serial += 1
        self.events.push(t, kind, self.serial, payload)
        return self.serial

    def _push_arrival(self, t: float, i: int) -> None:
        self.arrivals.push(t, 0, i, i)  # same-time arrivals in workload order

    def _pass_end(self, w: Worker, t: float, done: list[Request]) -> None:
        w.finish_pass(t, done)
        self._list_startable(w)
        if w.firsts:
            kv = self.kv
            if kv is not None and self.back is None:
                first_tokens(w, kv)
            w.firsts.clear()
        if w.pool.track_events:
            self._publish_kv_events(w, t)
        h = self.handoff
        if h is not None:
            if w.handoffs:
                for r in w.handoffs:
                    h.prefill_done(r, t)
                w.handoffs.clear()
            if w.inbox_ops:
                # one reservation per pass end, plus one per transfer that landed mid-pass
                allowance = 1 + w.deferred_activations
                w.deferred_activations = 0
                if w.sg is not None:
                    h.wake_after_pass(w, t)
                else:
                    h.wake(w, t, allowance)
            self._queue_handoff_events(h)
        if w.state == STATE_DRAINING and not w.has_work() and not w.inbox_ops:
            self._stop(w, t)

    def _publish_kv_events(self, w: Worker, t: float) -> None:
        kv = self.kv
        pool = w.pool
        if kv is None or (not pool.evicted and not pool.stored):
            return
        lag = self.topo.kv_event_lag_ms
        if lag <= 0.0:
            kv.apply_events(w.local_idx, pool.evicted, pool.stored)
            pool.evicted.clear()
            pool.stored.clear()
            return
        key = self.serial + 1  # the event carries its own serial as payload
        self.kv_batches[self._push(t + lag, EV_KV, key)] = KvEventBatch(
            w.local_idx, pool.evicted, pool.stored)
        pool.evicted = []
        pool.stored = []

    def _arrive(self, i: int, t: float) -> None:
        wl = self.wl
        n_in = wl.input_length[i]
        bs = self.hasher.block_size
        if wl.unique_prompts:
            hashes = self.hasher.fresh_ids(n_in // bs)
        else:
            hashes = self.hasher.prompt_hashes(wl.hash_ids, wl.hash_start[i], wl.hash_start[i + 1], n_in)
        r = Request(i, n_in, wl.output_length[i], hashes, t)
        self.arrived += 1
        self.traffic.arrivals += 1
        h = self.handoff
        if h is not None and h.destination_first:
            back = self.back
            assert back is not None
            if never_fits(back.cfg, r.prompt_len, r.max_out):
                # no SGLang decode worker could ever run it (the reference spins on it)
                self._terminal(r, t, STATUS_REJECTED)
                return
            h.arrived(r)  # the prefill is submitted once its destination holds
            return
        self._submit_front(r, t)

    def _submit_front(self, r: Request, t: float) -> None:
        """Route r to an aggregated or prefill worker and queue it there."""
        front = self.front
        w = front.ids[route_arrival(r, front, self.kv, self.hasher.block_size)]
        if self.back is not None:
            r.prefill_worker = w
        wk = self.workers[w]
        wk.enqueue(r)
        if wk.rejected:
            for x in wk.rejected:
                self._terminal(x, t, STATUS_REJECTED)
            wk.rejected.clear()
        self._list_startable(wk)

    def _queue_handoff_events(self, h: Handoff) -> None:
        """Push the transfers the hand-off scheduled and list the workers it gave work to."""
        due = h.due
        if due:
            due_ms = h.due_ms
            for k in range(len(due)):
                r = due[k]
                key = self.serial + 1  # the event carries its own serial as payload
                r.reserve_seq = key  # reservation order: hand-offs queue in it (handoff.py)
                self.transfers[self._push(due_ms[k], EV_TRANSFER, key)] = r
            due.clear()
            due_ms.clear()
        woken = h.woken
        if woken:
            for w in woken:
                self._list_startable(w)
            woken.clear()
        submit = h.submit
        if submit:
            h.submit = []
            for r in submit:
                self._submit_front(r, self.now)

    # ---- terminal states ----------------------------------------------------------------------
    def _terminal(self, r: Request, t: float, status: int) -> None:
        if status == STATUS_COMPLETED:
            self.completed += 1
            self.traffic.add_completed(r, self.kv is not None)
        else:
            self.rejected += 1
        release_route(r, self.workers, self.kv, self.kv_decode, self.back is not None)
        workers = self.workers
        # worker: the one that served or rejected it; disaggregated, its decode worker, so -1
        # when it was rejected before one was chosen (by its prefill worker, which
        # prefill_worker records, or on arrival). Tested on `served`, not r.worker: a
        # prefill-side rejection has r.worker set and decode_worker -1, and workers[-1] is
        # the last worker.
        served = r.decode_worker if self.back is not None else r.worker
        self.metrics.record(r, t, status, workers[served].local_idx if served >= 0 else -1,
                            workers[r.prefill_worker].local_idx if r.prefill_worker >= 0 else -1)
        # Free what the report does not need.
        r.gaps = vec[float]()
        if r.src_sg_pages == 0:  # an SGLang source still held caches the prompt when freed
            r.hashes = []
        # Follow-ups: the session's next turn, or (closed loop) the next session.
        nxt = self.wl.next_turn[r.idx]
        if nxt >= 0:
            self._push_arrival(t + self.wl.delay_ms[nxt], nxt)
        elif self.concurrency > 0 and self.session_head < len(self.session_queue):
            self._push_arrival(t, self.session_queue[self.session_head])
            self.session_head += 1
