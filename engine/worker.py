# Over 450 lines on purpose: one concept, the vLLM/TRT-LLM scheduler pass and its KV allocation.
"""One aggregated vLLM-style worker: waiting/running queues, a KV pool and the scheduler pass
(spec engine.md §4). The pass is decided at its start; its tokens become visible at its end."""
from __future__ import annotations

from typing import Final, final

from librt.vecs import append

from engine.config import BACKEND_SGLANG, BACKEND_TRTLLM, EngineConfig
from engine.kvpool import KvPool
from engine.passmetrics import PassMetrics
from engine.pool import POOL_AGG, POOL_DECODE, POOL_PREFILL, STATE_ACTIVE
from engine.request import DONE, HANDOFF, PREEMPTED, RUNNING, Request
from engine.sglang import SglangScheduler
from engine.timing import TimingModel, make_timing
from engine.waitqueue import WaitQueue

OK: Final = 0
BLOCKED: Final = 1
SELF_PREEMPTED: Final = 2


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@final
class Worker:
    idx: int  # global index in the simulation
    local_idx: int  # index within its pool (what routers and reports use)
    created_ms: float  # lifetime for worker-seconds: created .. stopped (or the end)
    stopped_ms: float  # -1.0 while alive
    ready_ms: float  # when it becomes routable (start-up delay)
    # Forward-pass metrics for the planner: the pass in flight, and the last finished one.
    fpm_staged: PassMetrics
    fpm: PassMetrics
    track_fpm: bool  # record them (only when a planner is attached)
    cfg: EngineConfig
    bs: int
    capacity: int
    max_model_len: int
    compat_1_4: bool
    # TRT-LLM (spec backends.md §2): the vLLM pass with guaranteed-no-evict admission (prompt +
    # whole output reserved), outputs clamped to the pool, whole-prompt prefix hits.
    no_evict: bool
    clamped: int  # TRT-LLM requests whose output was clamped to the KV pool
    inbound: list[Request]  # disagg decode side: hand-offs holding blocks here, not yet running
    # SGLang (spec backends.md §3): its own scheduler and radix cache run the passes; `pool`
    # then only carries KV events for a router.
    sg: SglangScheduler | None
    pool: KvPool
    timer: TimingModel
    waiting: WaitQueue
    running: list[Request]
    kind: int  # POOL_*
    state: int  # STATE_*
    busy: bool
    listed: bool  # in the simulation's list of workers to visit when passes start
    pass_end: float
    ready: list[Request]  # requests that emit a token (or finish) at pass end
    rejected: list[Request]  # rejected at the current pass start, drained by the simulation
    firsts: list[Request]  # produced their first visible token (or finished prefill) at pass end
    handoffs: list[Request]  # prefill worker: prefills finished at pass end, KV held
    # Disagg hand-off operations on this worker's KV state, applied only between its passes.
    inbox_ops: list[int]
    inbox_reqs: list[Request]
    pending_reservations: int  # hand-offs queued here that have no destination blocks yet
    deferred_activations: int  # transfers that completed while this worker was mid-pass
    passes: int
    committed_prefill: int
    preemptions: int
    # per-pass scratch
    budget: int
    batch_n: int
    sum_end: int
    sum_start: int
    preempted_any: bool

    def __init__(self, idx: int, cfg: EngineConfig) -> None:
        self.idx = idx
        self.local_idx = idx
        self.created_ms = 0.0
        self.stopped_ms = -1.0
        self.ready_ms = 0.0
        self.fpm_staged = PassMetrics()
        self.fpm = PassMetrics()
        self.track_fpm = False
        self.cfg = cfg
        self.bs = cfg.block_size
        self.capacity = cfg.num_gpu_blocks
        self.max_model_len = cfg.max_model_len
        self.compat_1_4 = cfg.compat_1_4
        self.no_evict = cfg.backend == BACKEND_TRTLLM
        self.clamped = 0
        self.inbound = []
        self.pool = KvPool(cfg.num_gpu_blocks)
        self.timer = make_timing(cfg)
        self.waiting = WaitQueue()
        self.running = []
        self.kind = POOL_AGG
        self.state = STATE_ACTIVE
        self.busy = False
        self.listed = False
        self.pass_end = 0.0
        self.ready = []
        self.rejected = []
        self.firsts = []
        self.handoffs = []
        self.inbox_ops = []
        self.inbox_reqs = []
        self.pending_reservations = 0
        self.deferred_activations = 0
        self.passes = 0
        self.committed_prefill = 0
        self.preemptions = 0
        self.budget = 0
        self.batch_n = 0
        self.sum_end = 0
        self.sum_start = 0
        self.preempted_any = False
        self.sg = None
        if cfg.backend == BACKEND_SGLANG:
            self.sg = SglangScheduler(cfg, self.waiting, self.running, self.rejected,
                                      self.handoffs, self.timer, self.pool)

    def set_kind(self, kind: int) -> None:
        """Place the worker in a pool (aggregated, prefill or decode)."""
        self.kind = kind
        sg = self.sg
        if sg is not None:
            sg.prefill_only = kind == POOL_PREFILL
            sg.decode_only = kind == POOL_DECODE

    def has_work(self) -> bool:
        """Requests queued or running here (an SGLang decode worker's landed hand-offs too)."""
        if self.running or self.waiting:
            return True
        sg = self.sg
        return sg is not None and len(sg.landed) > 0

    # ---- KV occupancy for views (blocks, or SGLang pages) ---------------------------------------
    def kv_active(self) -> int:
        sg = self.sg
        return sg.used_pages() if sg is not None else self.pool.num_active()

    def kv_cached(self) -> int:
        sg = self.sg
        return sg.cached_pages() if sg is not None else self.pool.n_inactive

    def kv_free(self) -> int:
        sg = self.sg
        return sg.free_pages() if sg is not None else self.pool.num_free()

    def enqueue(self, r: Request) -> None:
        r.worker = self.idx
        sg = self.sg
        if sg is not None and r.computed == 0 and not sg.accept(r):
            r.status = DONE
            self.rejected.append(r)  # the simulation reports it at once
            return
        if self.no_evict and r.computed == 0:
            self._clamp_output(r)
        self.waiting.append(r)

    def _clamp_output(self, r: Request) -> None:
        """TRT-LLM: a request's output never outgrows the KV pool (nor max_model_len)."""
        limit = self.capacity * self.bs - r.prompt_len
        if limit > 0 and r.max_out > limit:
            r.max_out = limit
            self.clamped += 1
        mml = self.max_model_len
        if mml > r.prompt_len and r.max_out > mml - r.prompt_len:
            r.max_out = mml - r.prompt_len

    def _no_evict_available(self) -> int:
        """Blocks an admission may claim under guaranteed-no-evict: the pool minus what is held
        by running requests and what they still need to run to completion."""
        bs = self.bs
        avail = self.capacity - self.pool.num_active()
        for r in self.running:
            avail -= self.footprint(r) - len(r.blocks)
        for r in self.inbound:
            avail -= self.footprint(r) - len(r.blocks)
        return avail

    def footprint(self, r: Request) -> int:
        """Blocks r holds once it has run to completion here (a prefill worker runs it as a
        one-token request)."""
        out = r.max_out if self.kind != POOL_PREFILL or r.max_out == 0 else 1
        return ceil_div(r.prompt_len + out, self.bs)

    # ---- the pass -----------------------------------------------------------------------------
    def start_pass(self, now: float) -> float:
        """Schedule one pass at `now`; returns its end time, or -1.0 if nothing could run."""
        sg = self.sg
        if sg is not None:
            self.passes += 1
            sg.pending = self.pending_reservations
            end = sg.start_pass(now)
            if end < 0.0:
                return -1.0
            self.busy = True
            self.pass_end = end
            if self.track_fpm:
                self.batch_n = sg.pass_prefill_reqs
                self.sum_end = sg.pass_prefill_kv_tokens
                self.sum_start = sg.pass_prefill_kv_tokens - sg.pass_prefill_tokens
                self._record_fpm(now, sg.pass_decode_reqs, sg.pass_decode_kv_tokens)
            return end
        cfg = self.cfg
        bs = self.bs
        self.passes += 1
        pid = self.passes
        self.budget = cfg.max_num_batched_tokens
        self.batch_n = 0
        self.sum_end = 0
        self.sum_start = 0
        self.preempted_any = False

        # (A) running requests in admission order (the budget in a local while decode steps
        # take the inlined path; _schedule reads and updates self.budget)
        i = 0
        running = self.running
        caching = cfg.enable_prefix_caching
        budget = self.budget
        while i < len(running) and budget > 0:
            r = running[i]
            start = r.computed
            nxt = start + 1
            prompt = r.prompt_len
            if start >= prompt and nxt == prompt + r.gen and nxt <= len(r.blocks) * bs:
                # The common case, inlined: one decode token that fits the blocks already
                # held (what _schedule does for it, minus the branches that cannot apply).
                if nxt > r.alloc_tokens:
                    r.alloc_tokens = nxt
                r.computed = nxt
                nfull = nxt // bs
                if nfull > r.n_final:
                    if caching:
                        r.publish_full(self.pool, nfull)
                    r.n_final = nfull
                budget -= 1
                r.pass_id = pid
                r.pass_tokens = 1
                r.pass_p_start = prompt
                r.pass_p_tokens = 0
                i += 1
                continue
            # The index is not shifted when a FIFO victim leaves the front of the list, so the
            # request after `r` waits a pass: the reference does this (overload_fifo golden).
            self.budget = budget
            res = self._schedule(r, False, 0, now, pid)
            budget = self.budget
            if res == OK:
                i += 1
            elif res == BLOCKED:
                break
        self.budget = budget

        # (B) waiting requests, strictly FCFS from the head. One exception on a disagg decode
        # worker: while hand-offs wait for room here, preempted requests are passed over
        # (neither admitted nor blocking the queue), which is what the reference does.
        j = 0
        waiting = self.waiting
        while not self.preempted_any and len(self.running) < cfg.max_num_seqs and j < len(waiting):
            r = waiting[j]
            seq = r.seq_len()
            if r.decode_side and r.computed == 0 and self.pending_reservations > 0:
                j += 1
                continue
            too_big = seq if not self.no_evict else r.prompt_len + r.max_out
            if (r.admissions == 0 and (ceil_div(too_big, bs) > self.capacity
                                       or (self.no_evict and r.max_out <= 0 < r.prompt_len))) or (
                self.max_model_len > 0 and r.prompt_len >= self.max_model_len
            ):
                waiting.pop_at(j)
                r.status = DONE
                self.rejected.append(r)
                continue
            hit = 0
            active_hit = 0
            if r.computed > 0:
                # A disagg hand-off: the prompt's KV is already in place here.
                if self.no_evict:
                    # r's own remaining footprint is among the inbound ones counted there
                    if self._no_evict_available() < 0:
                        break
                else:
                    needed = ceil_div(seq, bs) - len(r.blocks)
                    if needed > self.capacity - self.pool.num_active():
                        break
            else:
                if not self.no_evict and seq > 0 and self.pool.num_active() >= self.capacity:
                    break  # needs >= 1 block beyond any prefix hit and none is left: skip lookup
                if cfg.enable_prefix_caching:
                    nfull = seq // bs
                    # vLLM recomputes at least one token; TRT-LLM may hit the whole prompt
                    limit = (seq - 1) // bs if not self.no_evict else nfull
                    if limit > nfull:
                        limit = nfull
                    hashes = r.full_block_hashes(nfull)
                    # vLLM: fewer held hits than this and it does not fit (the check below)
                    min_active = (0 if self.no_evict else
                                  ceil_div(seq, bs) - (self.capacity - self.pool.num_active()))
                    hit = self.pool.match_prefix(hashes, limit, min_active)
                    if hit < 0:
                        break  # head-of-line blocking, no watermark
                    active_hit = self.pool.matched_active
                if self.no_evict:
                    needed = self.footprint(r) - active_hit
                    if needed > self._no_evict_available():
                        break
                else:
                    needed = ceil_div(seq, bs) - active_hit
                    if needed > self.capacity - self.pool.num_active():
                        break  # head-of-line blocking, no watermark
            res = self._schedule(r, True, hit, now, pid)
            if res != OK:
                break
            if waiting[j] is r:
                waiting.pop_at(j)
            else:
                waiting.remove(r)
            if r.pass_tokens == 0 and self.budget == 0:
                break

        # Which running requests emit a token at the end of this pass.
        ready = self.ready
        n_dec = 0
        sum_ctx = 0
        n_first = 0  # requests whose prefill completes in this pass
        ctx_first = 0
        for r in self.running:
            s = r.prompt_len + r.gen
            if r.computed >= s:
                ready.append(r)
                # The first token is sampled from the prefill forward (no decode cost), except
                # on a disagg decode worker, where it comes from a decode step over the prompt,
                # and for a TRT-LLM request whose whole prompt was a prefix hit (no prefill).
                if r.gen > 0 or r.decode_side or (r.pass_id == pid and r.pass_p_tokens == 0
                                                   and self.kind != POOL_PREFILL):
                    n_dec += 1
                    sum_ctx += s
                else:
                    n_first += 1
                    ctx_first += s
        if self.budget == cfg.max_num_batched_tokens and len(ready) == 0:
            return -1.0
        # A decode-pool worker never charges prefill time, even when it recomputes a preempted
        # request's prompt (mirror of prefill workers never charging decode time): the
        # reference's overload_disagg timings show it.
        prefill = 0.0
        if self.kind != POOL_DECODE:
            prefill = self.timer.prefill_ms(self.batch_n, self.sum_end, self.sum_start)
        if self.compat_1_4:
            # 1.4.2 also charged decode for requests finishing prefill in this pass, and keyed
            # decode time on the physical active blocks (its forward-pass metrics did not
            # count those requests as decode, so the planner's view below excludes them).
            # Its prefill workers decode too (see finish_pass) but never charge for it.
            n = n_dec + n_first
            decode = 0.0
            if n > 0 and self.kind != POOL_PREFILL:
                decode = self.timer.decode_ms(n, self.pool.num_active() * self.bs)
        else:
            decode = self.timer.decode_ms(n_dec, sum_ctx)
        self.busy = True
        self.pass_end = (now + prefill) + decode
        if self.track_fpm:
            self._record_fpm(now, n_dec, sum_ctx)
        return self.pass_end

    def _record_fpm(self, now: float, n_dec: int, sum_ctx: int) -> None:
        m = self.fpm_staged
        m.wall_ms = self.pass_end - now
        m.prefill_reqs = self.batch_n
        m.prefill_tokens = self.sum_end - self.sum_start
        m.prefill_kv_tokens = self.sum_end
        m.decode_reqs = n_dec
        m.decode_kv_tokens = sum_ctx
        m.queued_prefill_reqs = len(self.waiting)
        m.queued_prefill_tokens = self.waiting.prefill_tokens

    def _schedule(self, r: Request, from_waiting: bool, hit: int, now: float, pid: int) -> int:
        bs = self.bs
        cached = hit * bs if r.computed == 0 else 0
        start = r.computed + cached
        prompt = r.prompt_len
        p_start = start if start < prompt else prompt
        seq = prompt + r.gen
        remaining = seq - start
        if not self.cfg.enable_chunked_prefill and prompt - p_start > self.budget:
            return BLOCKED
        take = remaining if remaining < self.budget else self.budget
        if take == 0 and remaining > 0:
            return BLOCKED
        end = start + take
        reuse_blocks = cached // bs
        while True:
            if self._allocate(r, end, reuse_blocks):
                r.computed = end
                break
            v = self._preempt_one()
            if v is None:
                end = start
                break
            self.preempted_any = True
            if v.pass_id == pid:
                self._undo(v)
            if v is r:
                return SELF_PREEMPTED
        if end == start and end < seq:
            return BLOCKED
        # Full blocks computed this pass become cache-visible now (same-pass visibility).
        nfull = end // bs
        if self.cfg.enable_prefix_caching:
            r.publish_full(self.pool, nfull)
        if nfull > r.n_final:
            r.n_final = nfull
        p_end = end if end < prompt else prompt
        p_tokens = p_end - p_start
        if p_tokens > 0:
            self.batch_n += 1
            self.sum_end += p_start + p_tokens
            self.sum_start += p_start
        else:
            p_tokens = 0
        # committed_prefill_tokens: every token of a non-decode step (prompt chunks and, after a
        # preemption, the recompute of generated tokens). Exact on overload_w1; within 0.1% on
        # the other preemption goldens (the reference's rule for readmissions is not pinned).
        if not (start == seq - 1 and seq > prompt):
            self.committed_prefill += end - start
        if from_waiting:
            self.running.append(r)
            r.status = RUNNING
            if r.decode_side:
                if self.no_evict and r in self.inbound:
                    self.inbound.remove(r)
                # decode_reused_input_tokens: prefix hits of decode-side readmissions (the
                # materialised admission itself counts 0, as in the reference).
                r.admissions += 1
                if r.decode_admit_ms < 0.0:
                    r.decode_admit_ms = now
                if cached > r.decode_reused:
                    r.decode_reused = cached
            else:
                r.admissions += 1
                if r.admissions == 1:
                    r.first_admit_ms = now
                    r.first_reused = cached
                    if self.kind == POOL_PREFILL:
                        r.prefill_admit_ms = now
                if cached > r.reused:
                    r.reused = cached
        self.budget -= end - start
        r.pass_id = pid
        r.pass_tokens = end - start
        r.pass_p_start = p_start
        r.pass_p_tokens = p_tokens
        return OK

    def _allocate(self, r: Request, target: int, reuse_blocks: int) -> bool:
        bs = self.bs
        prev = len(r.blocks)
        want = ceil_div(target, bs)
        if want <= prev:
            if target > r.alloc_tokens:
                r.alloc_tokens = target
            return True
        reuse = reuse_blocks - prev
        if reuse < 0:
            reuse = 0
        fresh = (want - prev) - reuse
        pool = self.pool
        # The reused blocks are the pool's `matched` ones: match_prefix ran just before this
        # admission and nothing was evicted since (a preemption only releases blocks).
        pinned_inactive = pool.count_inactive(prev, prev + reuse) if reuse > 0 else 0
        if not pool.can_take(fresh, pinned_inactive):
            return False
        blocks = r.blocks
        matched = pool.matched
        for k in range(prev, prev + reuse):
            blocks.append(pool.pin(matched[k]))
        for _ in range(fresh):
            blocks.append(pool.take_fresh())
        if reuse > 0:
            r.n_final = prev + reuse
        r.alloc_tokens = target
        return True

    def _preempt_one(self) -> Request | None:
        if not self.running:
            return None
        if self.cfg.preemption_lifo:
            v = self.running.pop()
        else:
            v = self.running.pop(0)
        self.pool.release(v.blocks)
        v.blocks = []
        v.alloc_tokens = 0
        v.computed = 0
        v.n_final = 0
        v.status = PREEMPTED
        self.waiting.appendleft(v)
        self.preemptions += 1
        return v

    def _undo(self, v: Request) -> None:
        self.budget += v.pass_tokens
        if v.pass_p_tokens > 0:
            self.batch_n -= 1
            self.sum_end -= v.pass_p_start + v.pass_p_tokens
            self.sum_start -= v.pass_p_start
        v.pass_id = -1

    def finish_pass(self, now: float, done: list[Request]) -> None:
        """Apply the pass that ends at `now`: emit tokens, complete requests (appended to done)."""
        sg = self.sg
        if sg is not None:
            if self.track_fpm:
                self.fpm.publish(self.fpm_staged, now)
            sg.finish_pass(now, done, self.firsts)
            self.committed_prefill = sg.committed
            self.preemptions = sg.retractions
            self.busy = False
            return
        if self.track_fpm:
            self.fpm.publish(self.fpm_staged, now)
        any_done = False
        mml = self.max_model_len
        prefill_pool = self.kind == POOL_PREFILL
        for r in self.ready:
            if prefill_pool and r.max_out > 0:
                if self.compat_1_4:
                    # 1.4.2's prefill workers run the whole request, its decode steps free of
                    # charge, and hand it off only once its last token is out; the decode
                    # worker then generates every token again. Probed on the 1.4.2 binary:
                    # hand-offs wait for the prefill worker's passes, and its forward-pass
                    # metrics show these requests as decode work.
                    r.gen += 1
                    if r.gen < r.max_out and not (mml > 0 and r.prompt_len + r.gen >= mml):
                        continue
                    r.gen = 0
                # Prefill done: the KV is held here until the decode worker has it.
                r.status = HANDOFF
                r.source_held_ms = now
                self.handoffs.append(r)
                any_done = True
                continue
            if r.max_out > 0:
                r.gen += 1
                if r.gen == 1:
                    r.first_token_ms = now
                    self.firsts.append(r)
                else:
                    r.gaps = append(r.gaps, now - r.last_token_ms)
                    if r.gen == 2:
                        r.second_token_ms = now
                r.last_token_ms = now
            if r.gen >= r.max_out or (mml > 0 and r.prompt_len + r.gen >= mml):
                self.pool.release(r.blocks)
                r.blocks = []
                r.status = DONE
                done.append(r)
                any_done = True
        self.ready.clear()
        if any_done:
            self.running = [r for r in self.running if r.status == RUNNING]
        self.busy = False

    def prefill_backlog(self) -> int:
        """Prompt tokens not yet computed, over running and waiting requests."""
        n = 0
        for r in self.running:
            if r.computed < r.prompt_len:
                n += r.prompt_len - r.computed
        return n + self.waiting.prefill_tokens
