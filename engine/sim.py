"""The replay loop (spec engine.md §3): one clock, a heap of pass completions and a heap of
arrivals. `step()` processes one instant: completions, then arrivals, then new passes."""
from __future__ import annotations

import heapq
import math
from typing import Final, final

from engine.blockhash import BlockHasher
from engine.config import EngineConfig
from engine.metrics import STATUS_COMPLETED, STATUS_REJECTED, MetricColumns
from engine.request import Request
from engine.router import RoundRobinRouter
from engine.snapshot import SimSnapshot, WorkerSnapshot
from engine.worker import Worker
from engine.workload import Workload

INF: Final = math.inf


@final
class Simulation:
    wl: Workload
    cfg: EngineConfig
    workers: list[Worker]
    router: RoundRobinRouter
    hasher: BlockHasher
    metrics: MetricColumns
    now: float
    max_time_ms: float  # INF = no limit
    events: list[tuple[float, int, int]]  # (pass end, serial, worker)
    arrivals: list[tuple[float, int]]  # (ready time, workload index)
    serial: int
    concurrency: int  # 0 = open loop (timestamps); N = closed loop with N sessions in flight
    session_queue: list[int]  # closed loop: first turns not yet released
    session_head: int
    arrived: int
    completed: int
    rejected: int
    done_buf: list[Request]
    finished_flag: bool

    def __init__(self, wl: Workload, cfg: EngineConfig, num_workers: int,
                 replay_concurrency: int, max_time_ms: float) -> None:
        self.wl = wl
        self.cfg = cfg
        self.workers = [Worker(i, cfg) for i in range(num_workers)]
        self.router = RoundRobinRouter(num_workers)
        self.hasher = BlockHasher(cfg.block_size, wl.trace_block_size)
        self.metrics = MetricColumns()
        self.now = 0.0
        self.max_time_ms = max_time_ms if max_time_ms >= 0.0 else INF
        self.events = []
        self.serial = 0
        self.concurrency = replay_concurrency
        self.arrived = 0
        self.completed = 0
        self.rejected = 0
        self.done_buf = []
        self.finished_flag = False
        firsts = wl.first_turns()
        order = sorted([(wl.arrival_ms[i], i) for i in firsts])
        if replay_concurrency > 0:
            self.session_queue = [p[1] for p in order]
            n0 = min(replay_concurrency, len(order))
            self.arrivals = [(0.0, self.session_queue[k]) for k in range(n0)]
            self.session_head = n0
        else:
            self.session_queue = []
            self.session_head = 0
            self.arrivals = order  # sorted, hence already a heap

    # ---- public stepping API ------------------------------------------------------------------
    def peek(self) -> float:
        """Time of the next instant with work, INF if the replay is over."""
        t = INF
        if self.events:
            t = self.events[0][0]
        if self.arrivals and self.arrivals[0][0] < t:
            t = self.arrivals[0][0]
        if t > self.max_time_ms:
            return INF
        return t

    def next_event_time(self) -> float:
        """Time of the next pending event ignoring the time limit (INF if none)."""
        t = INF
        if self.events:
            t = self.events[0][0]
        if self.arrivals and self.arrivals[0][0] < t:
            t = self.arrivals[0][0]
        return t

    def step(self) -> bool:
        """Process every event of the next instant. False when nothing is left to do."""
        t = self.peek()
        if t == INF:
            self.finished_flag = True
            return False
        self.now = t
        done = self.done_buf
        events = self.events
        workers = self.workers
        while events and events[0][0] <= t:
            ev = heapq.heappop(events)
            workers[ev[2]].finish_pass(t, done)
        if done:
            for r in done:
                self._terminal(r, t, STATUS_COMPLETED)
            done.clear()
        arrivals = self.arrivals
        while arrivals and arrivals[0][0] <= t:
            a = heapq.heappop(arrivals)
            self._arrive(a[1], t)
        for w in workers:
            if not w.busy and (w.running or w.waiting):
                end = w.start_pass(t)
                if w.rejected:
                    for r in w.rejected:
                        self._terminal(r, t, STATUS_REJECTED)
                    w.rejected.clear()
                if end >= 0.0:
                    self.serial += 1
                    heapq.heappush(events, (end, self.serial, w.idx))
        return True

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
        Returns True while work remains."""
        for _ in range(max_steps):
            if not self.step():
                return False
        return self.peek() != INF

    def is_finished(self) -> bool:
        return self.peek() == INF

    def snapshot(self) -> SimSnapshot:
        ws: list[WorkerSnapshot] = []
        passes = 0
        for w in self.workers:
            p = w.pool
            passes += w.passes
            ws.append(WorkerSnapshot(
                w.idx, w.kind, w.state, w.busy, len(w.waiting), len(w.running),
                p.num_active(), p.n_inactive, p.num_free(), p.capacity, w.prefill_backlog(),
                w.preemptions))
        return SimSnapshot(self.now, len(self.wl), self.arrived, self.completed, self.rejected,
                           passes, ws)

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
    def _arrive(self, i: int, t: float) -> None:
        wl = self.wl
        n_in = wl.input_length[i]
        if wl.unique_prompts:
            hashes = self.hasher.fresh_ids(n_in // self.cfg.block_size)
        else:
            hashes = self.hasher.prompt_hashes(wl.hash_ids, wl.hash_start[i], wl.hash_start[i + 1], n_in)
        r = Request(i, n_in, wl.output_length[i], hashes, t)
        self.arrived += 1
        self.workers[self.router.route()].enqueue(r)

    def _terminal(self, r: Request, t: float, status: int) -> None:
        m = self.metrics
        if status == STATUS_COMPLETED:
            self.completed += 1
            itl = m.itl
            tput = m.user_tput
            for g in r.gaps:
                itl.add(g)
                if g > 0.0:
                    tput.add(1000.0 / g)
        else:
            self.rejected += 1
        m.req.append(r.idx)
        m.worker.append(r.worker)
        m.status.append(status)
        m.arrival_ms.append(r.arrival_ms)
        m.first_admit_ms.append(r.first_admit_ms)
        m.first_token_ms.append(r.first_token_ms)
        m.second_token_ms.append(r.second_token_ms)
        m.last_token_ms.append(r.last_token_ms)
        m.terminal_ms.append(t)
        m.input_length.append(r.prompt_len)
        m.requested_output.append(r.max_out)
        m.output_tokens.append(r.gen)
        m.reused_tokens.append(r.reused)
        m.first_reused_tokens.append(r.first_reused)
        m.admissions.append(r.admissions)
        # Free what the report does not need.
        r.gaps = []
        r.hashes = []
        # Follow-ups: the session's next turn, or (closed loop) the next session.
        nxt = self.wl.next_turn[r.idx]
        if nxt >= 0:
            heapq.heappush(self.arrivals, (t + self.wl.delay_ms[nxt], nxt))
        elif self.concurrency > 0 and self.session_head < len(self.session_queue):
            heapq.heappush(self.arrivals, (t, self.session_queue[self.session_head]))
            self.session_head += 1
