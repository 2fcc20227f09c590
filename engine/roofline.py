"""Roofline step-time model of one engine (all GPUs of a TP group), in milliseconds.

Every input is a plain number: the uncompiled edge (dynosim.perfmodel) turns a model
architecture, a GPU spec and a coefficient set into a `RooflineParams`. Quantities are per GPU
(weights, heads and KV heads already divided by the tensor-parallel size).

Terms (seconds inside, ms out):

  gemm(T)   = max(flops_tok·(T + m_half) / (eta_g·f_gemm),  weight_bytes(T) / (eta_w·bw))
              T = tokens through the linear layers; m_half models small-M GEMM inefficiency;
              weight_bytes(T) grows with the experts touched for mixture-of-experts models;
              with knee k > 0 the max is softened to (compute^k + memory^k)^(1/k)
  head(B)   = max(head_flops·B / (eta_g·f_attn), head_bytes / (eta_w·bw))   one logits row/seq
  attn      = attn_coef·B·(N·P + N²/2) / (eta_attn·f_attn)   causal prefill attention (FA, BF16)
  kv        = tokens of KV read or written · kv_bytes / (eta_kv·bw)
  elem      = tokens · elem_bytes / (eta_el·bw)              norms, rope, activation
  allreduce = n_ar·ar_lat + tokens·ar_bytes / link_bw        TP all-reduces (0 when TP = 1)
  floors    = c0 (per pass) + c_tok per prefill token + c_seq per decoded sequence
              + c_m1 when the pass's GEMMs see a single token (GEMV path)

prefill(B, N, P) = gemm(B·N) + head(B) + attn + kv(B·(N+P)) + elem(B·N) + allreduce(B·N)
                   + c0 + c_tok·B·N                         (N new tokens after P cached each)
decode(B, ΣC)    = gemm(B) + head(B) + kv(ΣC) + elem(B) + allreduce(B) + c0 + c_seq·B
                   (+ c_m1 if B == 1)
mixed            = one pass holding both: the weights are streamed once.
"""
from __future__ import annotations

import math
from typing import Final, final

from librt.vecs import append, vec
from mypy_extensions import i64

MS: Final = 1000.0
MEMO_MAX_BATCH: Final = 4096  # decode batches memoized (max_num_seqs is 256 by default)


@final
class RooflineParams:
    """Numbers the roofline needs. Shape/hardware fields come from the model and GPU catalogs;
    the coefficient fields from a calibration set (or the uncalibrated defaults)."""

    # model shape, per GPU
    flops_tok: float  # linear-layer FLOPs per token (2 x active linear params)
    dense_bytes: float  # linear weight bytes streamed every pass (dense part)
    expert_bytes: float  # bytes of one expert (all MoE layers together); 0 for dense models
    n_experts: float  # experts per MoE layer (0 for dense models)
    top_k: float  # experts per token
    head_flops: float  # lm_head FLOPs per logits row
    head_bytes: float  # lm_head weight bytes
    attn_coef: float  # attention FLOPs per (query token x key token), all layers
    kv_bytes: float  # KV cache bytes per token, all layers
    elem_bytes: float  # elementwise traffic per token
    n_ar: float  # all-reduces per pass (0 when TP = 1)
    ar_bytes: float  # all-reduce bytes per token (ring factor included)
    # hardware
    bw: float  # HBM bytes/s
    f_gemm: float  # dense FLOP/s for the linear layers' dtype
    f_attn: float  # dense BF16 FLOP/s (attention, lm_head)
    link_bw: float  # achievable all-reduce bytes/s per GPU
    ar_lat: float  # seconds per all-reduce
    # coefficients
    c0_ms: float
    eta_w: float
    eta_kv: float
    c_seq_ms: float
    eta_g: float
    m_half: float
    eta_attn: float
    c_tok_ms: float
    eta_el: float
    c_m1_ms: float
    knee: float  # 0 = hard roofline max; k > 0 = soft max (compute^k + memory^k)^(1/k)

    def __init__(self) -> None:
        self.flops_tok = 0.0
        self.dense_bytes = 0.0
        self.expert_bytes = 0.0
        self.n_experts = 0.0
        self.top_k = 0.0
        self.head_flops = 0.0
        self.head_bytes = 0.0
        self.attn_coef = 0.0
        self.kv_bytes = 0.0
        self.elem_bytes = 0.0
        self.n_ar = 0.0
        self.ar_bytes = 0.0
        self.bw = 1.0
        self.f_gemm = 1.0
        self.f_attn = 1.0
        self.link_bw = 1.0
        self.ar_lat = 0.0
        self.c0_ms = 0.0
        self.eta_w = 1.0
        self.eta_kv = 1.0
        self.c_seq_ms = 0.0
        self.eta_g = 1.0
        self.m_half = 0.0
        self.eta_attn = 1.0
        self.c_tok_ms = 0.0
        self.eta_el = 1.0
        self.c_m1_ms = 0.0
        self.knee = 0.0


@final
class Roofline:
    """Evaluates `RooflineParams`; precomputes the per-unit costs (seconds) once."""

    p: RooflineParams
    s_gemm_tok: float  # s per GEMM token (compute side)
    s_gemm_off: float  # s of the small-M offset (compute side)
    s_dense: float  # s to stream the dense weights
    s_expert: float  # s to stream one expert (all layers)
    n_experts: float
    miss: float  # 1 - top_k/n_experts
    s_head_row: float
    s_head_w: float
    s_attn: float  # s per (query x key) token pair
    s_kv: float  # s per KV token read/written
    s_elem: float
    s_ar_tok: float
    s_ar_fixed: float
    c0: float  # s
    c_tok: float
    c_seq: float
    c_m1: float
    knee: float
    inv_knee: float
    # linear_s(b, b) of a decode pass by batch size b (-1.0 = not computed yet): it depends on
    # the batch only, and the soft-max knee costs three pow() calls per pass. Unboxed: a list
    # of floats cost a boxed read every pass.
    decode_linear: vec[float]

    def __init__(self, p: RooflineParams) -> None:
        self.p = p
        fg = p.eta_g * p.f_gemm
        self.s_gemm_tok = p.flops_tok / fg
        self.s_gemm_off = p.flops_tok * p.m_half / fg
        wb = p.eta_w * p.bw
        self.s_dense = p.dense_bytes / wb
        self.s_expert = p.expert_bytes / wb
        self.n_experts = p.n_experts
        self.miss = 1.0 - p.top_k / p.n_experts if p.n_experts > 0.0 else 1.0
        self.s_head_row = p.head_flops / (p.eta_g * p.f_attn)
        self.s_head_w = p.head_bytes / wb
        self.s_attn = p.attn_coef / (p.eta_attn * p.f_attn)
        self.s_kv = p.kv_bytes / (p.eta_kv * p.bw)
        self.s_elem = p.elem_bytes / (p.eta_el * p.bw)
        self.s_ar_tok = p.ar_bytes / p.link_bw
        self.s_ar_fixed = p.n_ar * p.ar_lat
        self.c0 = p.c0_ms / MS
        self.c_tok = p.c_tok_ms / MS
        self.c_seq = p.c_seq_ms / MS
        self.c_m1 = p.c_m1_ms / MS
        self.knee = p.knee
        self.inv_knee = 1.0 / p.knee if p.knee > 0.0 else 0.0
        self.decode_linear = vec[float]()

    def weights_s(self, tokens: float) -> float:
        """Seconds to stream the weights a pass of `tokens` tokens touches."""
        s = self.s_dense
        if self.n_experts > 0.0:
            touched = self.n_experts * (1.0 - math.pow(self.miss, tokens))
            s += touched * self.s_expert
        return s

    def linear_s(self, tokens: float, rows: float) -> float:
        """GEMMs for `tokens` tokens plus the lm_head for `rows` logits rows."""
        compute = self.s_gemm_off + tokens * self.s_gemm_tok
        memory = self.weights_s(tokens)
        if self.knee > 0.0:
            g = math.pow(math.pow(compute, self.knee) + math.pow(memory, self.knee),
                         self.inv_knee)
        else:
            g = compute if compute > memory else memory
        hc = rows * self.s_head_row
        h = hc if hc > self.s_head_w else self.s_head_w
        s = g + h + tokens * self.s_elem + self.c0
        if self.s_ar_fixed > 0.0:
            s += self.s_ar_fixed + tokens * self.s_ar_tok
        if tokens == 1.0:
            s += self.c_m1
        return s

    def prefill_ms(self, batch: float, new: float, prefix: float) -> float:
        """One forward pass of `batch` sequences, each `new` uncached tokens after `prefix`
        cached ones."""
        if batch <= 0.0 or new <= 0.0:
            return 0.0
        t = batch * new
        s = self.linear_s(t, batch)
        s += batch * (new * prefix + 0.5 * new * new) * self.s_attn
        s += batch * (new + prefix) * self.s_kv
        s += t * self.c_tok
        return s * MS

    def decode_ms(self, batch: float, sum_ctx: float) -> float:
        """One decode step of `batch` sequences whose contexts sum to `sum_ctx` tokens."""
        if batch <= 0.0:
            return 0.0
        n = i64(batch)
        if float(n) == batch and n <= MEMO_MAX_BATCH:
            memo = self.decode_linear
            if n >= len(memo):
                while len(memo) <= n:
                    memo = append(memo, -1.0)
                self.decode_linear = memo
            lin = memo[n]
            if lin < 0.0:
                lin = self.linear_s(batch, batch)
                memo[n] = lin
        else:
            lin = self.linear_s(batch, batch)
        s = lin + sum_ctx * self.s_kv + batch * self.c_seq
        return s * MS

    def mixed_ms(self, p_batch: float, new: float, prefix: float, d_batch: float,
                 sum_ctx: float) -> float:
        """One chunked-prefill + decode pass: the weights are read once for all tokens."""
        t = p_batch * new if p_batch > 0.0 and new > 0.0 else 0.0
        if t == 0.0:
            return self.decode_ms(d_batch, sum_ctx)
        s = self.linear_s(t + d_batch, p_batch + d_batch)
        s += p_batch * (new * prefix + 0.5 * new * new) * self.s_attn
        s += (p_batch * (new + prefix) + sum_ctx) * self.s_kv
        s += t * self.c_tok + d_batch * self.c_seq
        return s * MS
