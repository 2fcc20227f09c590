"""One request (one turn) inside a worker."""
from __future__ import annotations

from typing import Final, cast, final

from librt.vecs import vec

from engine.kvpool import Block, KvPool
from engine.radix import RadixNode

WAITING: Final = 0
RUNNING: Final = 1
PREEMPTED: Final = 2
DONE: Final = 3
HANDOFF: Final = 4  # prefill done on a prefill worker; KV held until the transfer completes


@final
class Request:
    idx: int  # workload index (file order)
    prompt_len: int
    max_out: int  # output tokens to generate (TRT-LLM may clamp it to the KV pool)
    requested_out: int  # the trace's output length
    gen: int  # tokens generated so far
    computed: int  # tokens whose KV is computed
    alloc_tokens: int  # tokens covered by allocated blocks
    hashes: list[int]  # chained ids of the prompt's full blocks
    gen_hash_base: int  # negative base for ids of blocks that contain generated tokens
    blocks: list[Block]  # physical blocks held, in sequence order
    n_final: int  # leading blocks already published or shared
    status: int
    worker: int
    arrival_ms: float
    first_admit_ms: float
    first_token_ms: float
    second_token_ms: float
    last_token_ms: float
    reused: int
    first_reused: int
    admissions: int
    # Inter-token gaps, unboxed: a list of boxed floats cost an allocation per token and a
    # cache miss per gap when the request's row was recorded (long after they were made).
    gaps: vec[float]
    # Scheduling bookkeeping of the current pass (to undo a same-pass preemption).
    pass_id: int
    pass_tokens: int
    pass_p_start: int
    pass_p_tokens: int
    queued_tokens: int  # prompt tokens still to compute when it joined a waiting queue
    # Routing record and router load (kv_router)
    route_overlap: int  # blocks the chosen worker already cached (router's view)
    route_best_overlap: int  # best overlap over all candidates
    route_prefill_tokens: int  # effective prefill tokens charged to the worker's load
    route_prefill_open: bool  # those tokens not yet released (first token not produced)
    # Disaggregated serving
    prefill_worker: int
    decode_worker: int
    prefill_admit_ms: float
    source_held_ms: float
    dest_reserved_ms: float
    dest_activated_ms: float
    decode_admit_ms: float
    source_released_ms: float
    decode_reused: int
    decode_route_overlap: int
    reserve_seq: int  # order of its destination reservation among all hand-offs (-1 before)
    src_blocks: list[Block]  # prefill-side blocks held during the transfer
    decode_side: bool  # materialised on a disagg decode worker: its first token costs a decode
    metrics_row: int  # row in MetricColumns once terminal (-1 before)
    # SGLang: pages allocated, and the locked radix path (its cached leading pages)
    sg_pages: int
    sg_path: list[RadixNode]
    src_sg_pages: int  # disagg: the prefill worker's pages and path, held during the transfer
    src_sg_path: list[RadixNode]
    dest_sg_pages: int  # SGLang disagg: the decode worker's reservation, held during the prefill
    dest_sg_path: list[RadixNode]
    reserve_failed_gen: int  # SGLang disagg: destination capacity generation of a failed try
    dest_missing: int  # disagg: prompt tokens the destination lacks (what a transfer must fill)

    def __init__(self, idx: int, prompt_len: int, max_out: int, hashes: list[int],
                 arrival_ms: float) -> None:
        self.idx = idx
        self.prompt_len = prompt_len
        self.max_out = max_out
        self.requested_out = max_out
        self.gen = 0
        self.computed = 0
        self.alloc_tokens = 0
        self.hashes = hashes
        self.gen_hash_base = -((idx + 1) << 24)
        self.blocks = []
        self.n_final = 0
        self.status = WAITING
        self.worker = -1
        self.arrival_ms = arrival_ms
        self.first_admit_ms = -1.0
        self.first_token_ms = -1.0
        self.second_token_ms = -1.0
        self.last_token_ms = -1.0
        self.reused = 0
        self.first_reused = 0
        self.admissions = 0
        self.gaps = vec[float]()
        self.pass_id = -1
        self.pass_tokens = 0
        self.pass_p_start = 0
        self.pass_p_tokens = 0
        self.queued_tokens = 0
        self.route_overlap = 0
        self.route_best_overlap = 0
        self.route_prefill_tokens = 0
        self.route_prefill_open = False
        self.prefill_worker = -1
        self.decode_worker = -1
        self.prefill_admit_ms = -1.0
        self.source_held_ms = -1.0
        self.dest_reserved_ms = -1.0
        self.dest_activated_ms = -1.0
        self.decode_admit_ms = -1.0
        self.source_released_ms = -1.0
        self.decode_reused = 0
        self.decode_route_overlap = 0
        self.reserve_seq = -1
        self.src_blocks = []
        self.decode_side = False
        self.metrics_row = -1
        self.sg_pages = 0
        self.sg_path = []
        self.src_sg_pages = 0
        self.src_sg_path = []
        self.dest_sg_pages = 0
        self.dest_sg_path = []
        self.reserve_failed_gen = -1
        self.dest_missing = 0

    def seq_len(self) -> int:
        return self.prompt_len + self.gen

    def block_key(self, k: int) -> object:
        """Id of full block k as the object a KV pool keys it by: the prompt chain's own boxed
        int (not unboxed and boxed again), or a per-request id once generated tokens enter."""
        if k < len(self.hashes):
            return cast(list[object], self.hashes)[k]
        return self.gen_block_id(k)

    def publish_full(self, pool: KvPool, nfull: int) -> None:
        """Its blocks n_final..nfull-1, now full and computed, become cache-visible in `pool`
        (n_final itself is the caller's to advance)."""
        blocks = self.blocks
        keys = cast(list[object], self.hashes)
        n_prompt = len(keys)
        k = self.n_final
        while k < nfull:
            if k < n_prompt:
                pool.publish(blocks[k], keys[k])
            else:
                pool.publish(blocks[k], self.gen_block_id(k))
            k += 1

    def gen_block_id(self, k: int) -> int:
        """Id of block k >= len(hashes), which holds generated tokens (unique per request)."""
        return self.gen_hash_base - k

    def full_block_hashes(self, n: int) -> list[int]:
        if n <= len(self.hashes):
            return self.hashes
        out = list(self.hashes)
        for k in range(len(self.hashes), n):
            out.append(self.gen_block_id(k))
        return out
