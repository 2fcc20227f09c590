"""KV-cache capacity of one engine: `num_gpu_blocks` from GPU memory, weights and KV bytes.

vLLM sizes its KV cache per GPU as

    gpu_memory_utilization x device memory - weights - peak activations - runtime overhead

and every GPU of a TP group holds its slice (KV heads / TP) of every cached token, so the
engine's block count is that budget over (block_size x per-GPU KV bytes per token).

Activations are those of vLLM's profiling pass: `max_num_batched_tokens` tokens through one
layer (BF16 hidden, QKV and gate/up outputs) plus FP32 logits for `max_num_seqs` rows. The
fixed runtime overhead (CUDA context, CUDA graphs, NCCL and allocator slack) is 2.75 GiB per
GPU, the value at which Llama-3.1-8B-Instruct-FP8 / TP1 / H200 / gpu_memory_utilization 0.9
gives the reference's 29249 blocks of 64 tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

from dynosim.perfmodel.build import PerfSetup

GIB = 1024**3
RUNTIME_OVERHEAD_BYTES = int(2.75 * GIB)
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9


@dataclass(frozen=True)
class KvCapacity:
    num_gpu_blocks: int
    kv_tokens: int
    kv_bytes_per_token: float  # per GPU
    budget_bytes: float  # per GPU
    weight_bytes: float  # per GPU
    activation_bytes: float  # per GPU


class DoesNotFit(ValueError):
    pass


def activation_bytes(setup: PerfSetup, max_num_batched_tokens: int, max_num_seqs: int) -> float:
    m, t = setup.model, float(setup.tp)
    kvh = m.kv_heads / t if m.kv_heads >= setup.tp else 1.0
    width = m.intermediate if not m.is_moe else m.top_k * m.moe_intermediate
    per_tok = 2.0 * (4.0 * m.hidden + (m.heads / t + 2.0 * kvh) * m.head_dim + 2.0 * width / t)
    logits = 4.0 * max_num_seqs * m.vocab / t
    return max_num_batched_tokens * per_tok + logits


def kv_capacity(setup: PerfSetup, block_size: int, *,
                gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
                max_num_batched_tokens: int = 8192, max_num_seqs: int = 256) -> KvCapacity:
    shape = setup.shape()
    act = activation_bytes(setup, max_num_batched_tokens, max_num_seqs)
    budget = (gpu_memory_utilization * setup.gpu.mem_bytes - shape.weight_bytes - act
              - RUNTIME_OVERHEAD_BYTES)
    per_block = block_size * shape.kv_bytes_per_token
    blocks = int(budget // per_block) if budget > 0 else 0
    if blocks < 1:
        need = (shape.weight_bytes + act + RUNTIME_OVERHEAD_BYTES) / GIB
        have = gpu_memory_utilization * setup.gpu.mem_bytes / GIB
        raise DoesNotFit(
            f"{setup.model.name} at TP{setup.tp} does not fit on {setup.gpu.name}: weights, "
            f"activations and runtime need {need:.1f} GiB per GPU, gpu_memory_utilization "
            f"{gpu_memory_utilization:g} leaves {have:.1f} GiB (raise the TP size or give "
            f"num_gpu_blocks explicitly)")
    return KvCapacity(num_gpu_blocks=blocks, kv_tokens=blocks * block_size,
                      kv_bytes_per_token=shape.kv_bytes_per_token, budget_bytes=budget,
                      weight_bytes=shape.weight_bytes, activation_bytes=act)
