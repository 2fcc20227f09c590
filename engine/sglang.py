# Over 450 lines on purpose: one concept, the SGLang scheduler pass (prefill or decode, retraction, disagg hooks).
"""SGLang's scheduler, as Dynamo 1.6.1's mocker models it (spec backends.md §3).

A pass is either a prefill pass (new requests and chunks, FCFS under a page-rounded token
budget and an output reservation) or, when nothing can be admitted, a decode pass over every
running request; never both. KV lives in a radix cache of pages (engine/radix.py) whose new
pages become visible to the next pass. A decode pass that would run out of pages first retracts
the running request with the fewest generated tokens to the back of the queue.

The worker (engine/worker.py) owns the queues and hands its passes to this class; it shares the
waiting/running/rejected/handoffs lists, which are only ever mutated in place here.

Disaggregated (docs/backends.md): a prefill worker runs each request as a one-token request and
holds its pages once the prompt is done until the decode worker has them (release_source). A
decode worker reserves the page-rounded prompt (its cached prefix locked, the rest fresh pages)
when a hand-off reaches it, caches the prompt's pages when the KV lands, and takes landed
hand-offs into the running set at the start of its next pass; while any wait (to land or for
room) it admits nothing from its queue (retracted requests wait). Its prefill passes (a retracted
request's recompute) cost no time.
"""
from __future__ import annotations

from typing import Final, final

from librt.vecs import append

from engine.config import EngineConfig
from engine.kvpool import KvPool
from engine.radix import RadixCache, RadixNode
from engine.request import DONE, HANDOFF, PREEMPTED, RUNNING, Request
from engine.timing import TimingModel
from engine.waitqueue import WaitQueue

# SGLang's hidden constants (spec backends.md §1).
INIT_RATIO: Final = 0.7  # x schedule_conservativeness
MIN_RATIO_FACTOR: Final = 0.14
DECAY_STEPS: Final = 600.0
RETRACT_DECODE_STEPS: Final = 20
LPM_FALLBACK_WAITING: Final = 128  # more waiting than this: LPM keeps FIFO order
LPM_DUPLICATE_TOKENS: Final = 32  # in-batch duplicate-prefix thresholds


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def never_fits(cfg: EngineConfig, prompt_len: int, max_out: int) -> bool:
    """True when a request cannot be admitted even by an empty worker: its page-rounded prompt
    plus its (clipped) output reservation reach the pool (the reference then deadlocks)."""
    bs = cfg.block_size
    out = max_out if max_out < cfg.sglang_clip_max_new_tokens else cfg.sglang_clip_max_new_tokens
    return ceil_div(prompt_len, bs) * bs + out >= cfg.num_gpu_blocks * bs


@final
class SglangScheduler:
    bs: int
    max_num_seqs: int
    prefix_caching: bool
    lpm: bool  # schedule_policy "lpm"
    max_model_len: int
    clip: int
    max_prefill_tokens: int
    chunk_size: int
    init_ratio: float
    min_ratio: float
    decay: float
    ratio: float  # new-token ratio: share of the remaining output reserved at admission
    interval: int  # prefill_decode_interval: passes after a prefill pass that may not prefill
    defer: int  # passes left in that countdown
    radix: RadixCache
    timer: TimingModel
    waiting: WaitQueue
    running: list[Request]
    rejected: list[Request]
    handoffs: list[Request]  # prefill worker: prompts done at the pass end, pages held
    cfg: EngineConfig
    prefill_only: bool  # a disagg prefill worker
    decode_only: bool  # a disagg decode worker
    landed: list[Request]  # decode worker: hand-offs whose KV is here, not yet running
    pending: int  # decode worker: hand-offs waiting for a reservation (set by the worker)
    # Capacity generation: bumped when pages come back (a completion, a retraction, a landed
    # prompt sharing cached pages). A hand-off whose reservation failed is retried only after
    # a bump, as the reference does.
    generation: int
    # the pass in flight
    prefill: bool
    batch: list[Request]  # a prefill pass's admissions, in order
    committed: int  # prompt tokens computed (committed_prefill_tokens)
    retractions: int
    # the pass in flight, for the planner's forward-pass metrics
    pass_prefill_reqs: int
    pass_prefill_tokens: int
    pass_prefill_kv_tokens: int
    pass_decode_reqs: int
    pass_decode_kv_tokens: int
    stuck: int  # requests rejected because an idle worker could not admit them

    def __init__(self, cfg: EngineConfig, waiting: WaitQueue, running: list[Request],
                 rejected: list[Request], handoffs: list[Request], timer: TimingModel,
                 events: KvPool) -> None:
        self.cfg = cfg
        self.handoffs = handoffs
        self.prefill_only = False
        self.decode_only = False
        self.landed = []
        self.pending = 0
        self.generation = 0
        self.bs = cfg.block_size
        self.max_num_seqs = cfg.max_num_seqs
        self.prefix_caching = cfg.enable_prefix_caching
        self.lpm = cfg.sglang_lpm
        self.max_model_len = cfg.max_model_len
        self.clip = cfg.sglang_clip_max_new_tokens
        self.max_prefill_tokens = cfg.sglang_max_prefill_tokens
        self.chunk_size = cfg.sglang_chunked_prefill_size
        r0 = INIT_RATIO * cfg.sglang_conservativeness
        if r0 > 1.0:
            r0 = 1.0
        self.init_ratio = r0
        self.min_ratio = r0 * MIN_RATIO_FACTOR
        self.decay = (r0 - self.min_ratio) / DECAY_STEPS
        self.ratio = r0
        self.interval = cfg.sglang_prefill_decode_interval
        self.defer = 0
        self.radix = RadixCache(cfg.num_gpu_blocks, events)
        self.timer = timer
        self.waiting = waiting
        self.running = running
        self.rejected = rejected
        self.prefill = False
        self.batch = []
        self.committed = 0
        self.retractions = 0
        self.pass_prefill_reqs = 0
        self.pass_prefill_tokens = 0
        self.pass_prefill_kv_tokens = 0
        self.pass_decode_reqs = 0
        self.pass_decode_kv_tokens = 0
        self.stuck = 0

    # ---- queue entry --------------------------------------------------------------------------
    def accept(self, r: Request) -> bool:
        """Whether a new request may queue here; False = rejected (too long for max_model_len, or
        it could never be admitted)."""
        mml = self.max_model_len
        if mml > 0:
            if r.prompt_len >= mml:
                return False
            if r.max_out > mml - r.prompt_len:
                r.max_out = mml - r.prompt_len
        return not never_fits(self.cfg, r.prompt_len, self._out(r))

    def _out(self, r: Request) -> int:
        """Output tokens r generates here: a prefill worker produces only the first."""
        if self.prefill_only and r.max_out > 1:
            return 1
        return r.max_out

    # ---- counts for views ---------------------------------------------------------------------
    def used_pages(self) -> int:
        """Pages held by requests (private or locked in the tree)."""
        rx = self.radix
        return rx.capacity - rx.free - rx.unlocked

    def cached_pages(self) -> int:
        return self.radix.unlocked

    def free_pages(self) -> int:
        return self.radix.free

    # ---- the pass -----------------------------------------------------------------------------
    def start_pass(self, now: float) -> float:
        """Decide the pass at `now`; its end time, or -1.0 if nothing can run."""
        batch = self.batch
        batch.clear()
        blocked = False
        if self.decode_only:
            blocked = self._take_landed(now)
        if self.defer > 0 and not self.running:
            self._idle_countdown()
        if self.lpm and self.prefix_caching and 1 < len(self.waiting) <= LPM_FALLBACK_WAITING:
            self._longest_prefix_first()
        if not blocked and self.defer == 0:
            self._admit(now)
        while not blocked and not batch and not self.running and self.waiting:
            # An idle worker that cannot admit its head never will (e.g. max_prefill_tokens
            # below the page-rounded prompt): reject it rather than stall, as the reference does.
            r = self.waiting.popleft()
            self._release(r)
            r.computed = 0
            r.status = DONE
            self.rejected.append(r)
            self.stuck += 1
            self._admit(now)
        if batch:
            self.prefill = True
            n = len(batch)
            sum_end = 0
            sum_start = 0
            for r in batch:
                sum_end += r.computed
                sum_start += r.pass_p_start
            self.pass_prefill_reqs = n
            self.pass_prefill_tokens = sum_end - sum_start
            self.pass_prefill_kv_tokens = sum_end
            self.pass_decode_reqs = 0
            self.pass_decode_kv_tokens = 0
            if sum_end > sum_start:
                self.defer = self.interval
            if self.decode_only:
                return now
            return now + self.timer.prefill_ms(n, sum_end, sum_start)
        if not self.running:
            if self.defer > 0:
                self._idle_countdown()
            return -1.0
        self.prefill = False
        if self.defer > 0:
            self.defer -= 1
        self._retract_if_short()
        rx = self.radix
        bs = self.bs
        ctx = 0
        for r in self.running:
            seq = r.prompt_len + r.gen
            need = ceil_div(seq + 1, bs) - r.sg_pages
            if need > 0:
                rx.take(need)
                r.sg_pages += need
            ctx += seq
        self.pass_prefill_reqs = 0
        self.pass_prefill_tokens = 0
        self.pass_prefill_kv_tokens = 0
        self.pass_decode_reqs = len(self.running)
        self.pass_decode_kv_tokens = ctx
        return now + self.timer.decode_ms(len(self.running), ctx)

    def _idle_countdown(self) -> None:
        """prefill_decode_interval with nothing to decode: the reference runs the rest of the
        countdown as zero-duration idle passes at once, each resetting the new-token ratio
        (SGLang's on_idle)."""
        self.defer = 0
        self.ratio = self.init_ratio

    def _longest_prefix_first(self) -> None:
        """LPM: order the queue by cached prefix length, longest first (stable), after moving
        back requests whose short match (<= 32 tokens) repeats the first pages of one already
        seen in this scan (SGLang's in-batch duplicate-prefix deprioritisation)."""
        rx = self.radix
        bs = self.bs
        dup_pages = ceil_div(LPM_DUPLICATE_TOKENS, bs)
        seen: set[int] = set()
        keys: list[tuple[int, int, int]] = []
        reqs = list(self.waiting)
        for k in range(len(reqs)):
            r = reqs[k]
            seq = r.prompt_len + r.gen
            nfull = seq // bs
            hashes = r.full_block_hashes(nfull)
            prefix = len(rx.match(hashes, nfull)) * bs
            dep = 0
            if prefix <= LPM_DUPLICATE_TOKENS and seq >= dup_pages * bs:
                h = hashes[dup_pages - 1]
                if h in seen:
                    dep = 1
                else:
                    seen.add(h)
            keys.append((dep, -prefix, k))
        keys.sort()
        self.waiting.reorder([reqs[e[2]] for e in keys])

    def _take_landed(self, now: float) -> bool:
        """Decode worker, pass start: landed hand-offs join the running set (up to
        max_num_seqs). True while hand-offs still wait here (to land, for room or for a
        running slot): then nothing is admitted from the queue this pass."""
        landed = self.landed
        k = 0
        while k < len(landed) and len(self.running) < self.max_num_seqs:
            r = landed[k]
            r.status = RUNNING
            r.admissions += 1
            if r.decode_admit_ms < 0.0:
                r.decode_admit_ms = now
            self.running.append(r)
            k += 1
        if k > 0:
            del landed[:k]
        return len(landed) > 0 or self.pending > 0

    def _admit(self, now: float) -> None:
        """FCFS admission into a prefill batch (SGLang's PrefillAdder): the pool at the pass
        start (free + evictable pages) less the running requests' output reservation pays for
        each admission's page-rounded chunk and, when the chunk ends the prompt, its clipped
        output; the pages are then taken at once, and a request whose pages cannot be had
        (its own matched prefix no longer evictable) ends the batch too."""
        bs = self.bs
        rx = self.radix
        clip = self.clip
        reserved = 0.0
        for r in self.running:
            left = r.max_out - r.gen
            reserved += float(left if left < clip else clip) * self.ratio
        rem_total = float((rx.free + rx.unlocked) * bs) - reserved
        rem_input = self.max_prefill_tokens
        rem_chunk = self.chunk_size
        waiting = self.waiting
        batch = self.batch
        room = self.max_num_seqs - len(self.running)
        while waiting and len(batch) < room:
            r = waiting[0]
            seq = r.prompt_len + r.gen
            fresh = r.computed == 0
            path = r.sg_path
            cached = 0
            out_total = self._out(r)
            if fresh and self.prefix_caching:
                match_len = seq - 1 if out_total > 0 else seq
                path = rx.match(r.full_block_hashes(seq // bs), match_len // bs)
                cached = len(path) * bs
            start = r.computed if r.computed > cached else cached
            extend = seq - start
            if extend <= rem_chunk:
                chunk = extend
            else:
                chunk = (rem_chunk // bs) * bs
            charged = ceil_div(chunk, bs) * bs
            out_res = 0
            if chunk == extend:
                left = out_total - r.gen
                out_res = left if left < clip else clip
            if (chunk == 0 or float(charged + out_res) >= rem_total or charged > rem_input
                    or charged > rem_chunk):
                break
            held = len(path) if fresh else r.sg_pages
            need = ceil_div(start + chunk, bs) - held
            if fresh:
                rx.acquire(path)
            if need > rx.free + rx.unlocked:
                if fresh:
                    rx.unlock_path(path)
                break
            waiting.popleft()
            if fresh:
                r.sg_path = path
                r.sg_pages = len(path)
                self._record_admission(r, now, cached)
            if need > 0:
                rx.take(need)
                r.sg_pages += need
            r.pass_p_start = start
            r.computed = start + chunk
            self.committed += chunk
            rem_total -= float(charged + out_res)
            rem_input -= charged
            rem_chunk -= charged
            batch.append(r)
            if rem_chunk <= 0:
                break

    def _record_admission(self, r: Request, now: float, cached: int) -> None:
        r.admissions += 1
        r.status = RUNNING
        if r.decode_side:  # a retracted hand-off readmitted on its decode worker
            if cached > r.decode_reused:
                r.decode_reused = cached
            return
        if r.admissions == 1:
            r.first_admit_ms = now
            r.first_reused = cached
            if self.prefill_only:
                r.prefill_admit_ms = now
        if cached > r.reused:
            r.reused = cached

    def _retract_if_short(self) -> None:
        """Before a decode step: retract requests until the pages the step needs are free or
        evictable (SGLang's retract_decode), then re-estimate the new-token ratio."""
        bs = self.bs
        rx = self.radix
        running = self.running
        retracted = False
        while len(running) > 1:
            growth = 0
            for r in running:
                growth += ceil_div(r.prompt_len + r.gen + 1, bs) * bs - r.sg_pages * bs
            if (rx.free + rx.unlocked) * bs >= growth:
                break
            k = 0
            for i in range(1, len(running)):
                if running[i].gen < running[k].gen:
                    k = i
            v = running.pop(k)
            self._release(v)
            v.computed = 0
            v.status = PREEMPTED
            self.waiting.append(v)
            self.retractions += 1
            retracted = True
        if retracted:
            self.generation += 1
            out = 0
            total = 0
            for r in running:
                out += r.gen
                total += r.max_out
            est = float(out + RETRACT_DECODE_STEPS * len(running)) / float(total + 1)
            self.ratio = est if est < 1.0 else 1.0
        else:
            nr = self.ratio - self.decay
            self.ratio = nr if nr > self.min_ratio else self.min_ratio

    def _cache_pages(self, r: Request) -> int:
        """Insert r's full materialised pages not yet in the tree (a duplicate of a page another
        request cached meanwhile frees r's copy). The pages so freed."""
        rx = self.radix
        full = r.computed // self.bs
        path = r.sg_path
        k = len(path)
        if k >= full:
            return 0
        freed = rx.insert_run(path, r.full_block_hashes(full), k, full)
        rx.free += freed
        return freed

    def _release(self, r: Request) -> None:
        """Cache r's full pages, unlock its path, free its private pages."""
        self._cache_pages(r)
        rx = self.radix
        rx.free += r.sg_pages - len(r.sg_path)
        rx.unlock_path(r.sg_path)
        r.sg_path = []
        r.sg_pages = 0

    # ---- disaggregated hand-off ----------------------------------------------------------------
    def hold_source(self, r: Request) -> None:
        """Prefill worker: r's pages become the hand-off's source (the request itself moves on)."""
        r.src_sg_path = r.sg_path
        r.src_sg_pages = r.sg_pages
        r.sg_path = []
        r.sg_pages = 0

    def release_source(self, r: Request) -> None:
        """Prefill worker: the KV reached the decode worker; cache the prompt's full pages and
        free the rest, as for a request completing here."""
        rx = self.radix
        path = r.src_sg_path
        full = r.prompt_len // self.bs
        k = len(path)
        if k < full:
            rx.free += rx.insert_run(path, r.full_block_hashes(full), k, full)
        rx.free += r.src_sg_pages - len(path)
        rx.unlock_path(path)
        r.src_sg_path = []
        r.src_sg_pages = 0
        if r.metrics_row >= 0:  # it already finished on its decode worker
            r.hashes = []

    def reserve(self, r: Request) -> int:
        """Decode worker: hold the page-rounded prompt for an incoming hand-off, its cached
        prefix locked, the rest fresh pages (LRU eviction if needed). The fresh pages (what the
        transfer must fill), or -1 when they cannot be had."""
        rx = self.radix
        bs = self.bs
        path: list[RadixNode] = []
        if self.prefix_caching:
            nfull = r.prompt_len // bs
            path = rx.match(r.full_block_hashes(nfull), nfull)
        fresh = ceil_div(r.prompt_len, bs) - len(path)
        rx.acquire(path)
        if fresh > rx.free + rx.unlocked:
            rx.unlock_path(path)
            return -1
        rx.take(fresh)
        r.dest_sg_path = path
        r.dest_sg_pages = len(path) + fresh
        return fresh

    def activate(self, r: Request) -> None:
        """Decode worker: the KV landed; the prompt's full pages enter the radix cache and the
        request waits for the next pass (landed, in reservation order)."""
        r.sg_path = r.dest_sg_path
        r.sg_pages = r.dest_sg_pages
        r.dest_sg_path = []
        r.dest_sg_pages = 0
        r.computed = r.prompt_len
        if self._cache_pages(r) > 0:
            self.generation += 1
        landed = self.landed
        k = len(landed)
        while k > 0 and landed[k - 1].reserve_seq > r.reserve_seq:
            k -= 1
        landed.insert(k, r)

    def finish_pass(self, now: float, done: list[Request], firsts: list[Request]) -> None:
        """Apply the pass that ends at `now`."""
        if self.prefill:
            self._finish_prefill(now, done, firsts)
        else:
            self._finish_decode(now, done)

    def _finish_prefill(self, now: float, done: list[Request], firsts: list[Request]) -> None:
        """The prefill pass's bookkeeping, in the reference's order: chunked requests cache
        their finished pages; then the first-token step sets aside the requests it completes
        (no output, or the first token is the last), makes room for the others' first-token
        pages at once (evicting before any of them is cached), gives each its page, token and
        cached pages; the set-aside requests release their pages last."""
        bs = self.bs
        rx = self.radix
        partial: list[Request] = []
        prefilled: list[Request] = []
        for r in self.batch:
            if r.computed < r.prompt_len + r.gen:
                self._cache_pages(r)
                partial.append(r)
            else:
                prefilled.append(r)
        k = len(partial) - 1
        while k >= 0:
            self.waiting.appendleft(partial[k])
            k -= 1
        self.batch.clear()
        finishing: list[Request] = []
        for r in prefilled:
            if r.max_out == 0:
                finishing.append(r)
        growing: list[Request] = []
        need = 0
        for r in prefilled:
            if r.max_out == 0:
                continue
            if self.prefill_only or r.max_out - r.gen == 1:
                finishing.append(r)
                continue
            growing.append(r)
            n = ceil_div(r.prompt_len + r.gen + 1, bs) - r.sg_pages
            if n > 0:
                need += n
        if need > rx.free:
            rx.evict(need - rx.free)
        if need <= rx.free:
            for r in growing:
                n = ceil_div(r.prompt_len + r.gen + 1, bs) - r.sg_pages
                if n > 0:
                    rx.free -= n
                    r.sg_pages += n
                r.computed += 1
                self._emit(r, now, firsts)
                self._cache_pages(r)
                self.running.append(r)
        else:
            # No room for the first tokens even after eviction: they come with the next
            # decode step, as in the reference.
            for r in growing:
                self.running.append(r)
        for r in finishing:
            if r.max_out == 0:
                self._complete(r, now, done)
            elif self.prefill_only:
                # The prompt is done: its pages stay held here until the decode worker has
                # them (release_source); the first token comes from the decode worker.
                r.status = HANDOFF
                r.source_held_ms = now
                self.handoffs.append(r)
            else:
                self._emit(r, now, firsts)
                self._complete(r, now, done)

    def _finish_decode(self, now: float, done: list[Request]) -> None:
        running = self.running
        any_done = False
        mml = self.max_model_len
        for r in running:
            r.computed += 1
            self._emit(r, now, None)
            if r.gen >= r.max_out or (mml > 0 and r.prompt_len + r.gen >= mml):
                r.status = DONE
                any_done = True
            else:
                self._cache_pages(r)
        if any_done:
            keep: list[Request] = []
            for r in running:
                if r.status == DONE:
                    self._complete(r, now, done)
                else:
                    keep.append(r)
            running.clear()
            running.extend(keep)

    def _emit(self, r: Request, now: float, firsts: list[Request] | None) -> None:
        r.gen += 1
        if r.gen == 1:
            r.first_token_ms = now
            if firsts is not None:
                firsts.append(r)
        else:
            r.gaps = append(r.gaps, now - r.last_token_ms)
            if r.gen == 2:
                r.second_token_ms = now
        r.last_token_ms = now

    def _complete(self, r: Request, now: float, done: list[Request]) -> None:
        self.generation += 1
        self._release(r)
        r.status = DONE
        done.append(r)
