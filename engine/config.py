"""Per-worker engine configuration (the reference's `engine.*` launch args)."""
from __future__ import annotations

from typing import Callable, Final, final

from engine.roofline import RooflineParams

TIMING_POLYNOMIAL: Final = 0
TIMING_FIXED: Final = 1
TIMING_ROOFLINE: Final = 2  # hardware roofline (aic_* args); parameters in `roofline`
TIMING_EXTERNAL: Final = 3  # Python callbacks (the optional aiconfigurator provider)

# Scheduler families (the reference's engine.backend).
BACKEND_VLLM: Final = 0
BACKEND_SGLANG: Final = 1
BACKEND_TRTLLM: Final = 2
BACKEND_NAMES: Final = ("vllm", "sglang", "trtllm")


@final
class EngineConfig:
    backend: int  # BACKEND_*
    block_size: int  # SGLang: the page size
    num_gpu_blocks: int
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int  # 0 = unlimited
    enable_prefix_caching: bool
    enable_chunked_prefill: bool
    preemption_lifo: bool  # "lifo" (default) vs "fifo"
    speedup_ratio: float  # 0 means unscaled (as the reference's offline replay)
    decode_speedup_ratio: float
    timing_kind: int  # TIMING_*
    fixed_prefill_ms: float
    fixed_decode_ms: float
    tensor_parallel_size: int
    startup_time_s: float  # -1 = not given (planner use)
    roofline: RooflineParams | None  # TIMING_ROOFLINE
    external_prefill: Callable[[int, int, int], float] | None  # (batch_n, sum_end, sum_start)
    external_decode: Callable[[int, int], float] | None  # (batch_n, sum_ctx)
    # Dynamo 1.4.2's mocker timing (spec engine.md §12): decode time keyed on physical active
    # blocks x block_size, and the pass that completes a prefill also charges decode for it.
    compat_1_4: bool
    # SGLang scheduler (engine.sglang.*; spec backends.md §1)
    sglang_lpm: bool  # schedule_policy "lpm" (else fifo)
    sglang_max_prefill_tokens: int
    sglang_chunked_prefill_size: int
    sglang_clip_max_new_tokens: int
    sglang_conservativeness: float
    sglang_prefill_decode_interval: int  # passes after a prefill pass that may not prefill

    def __init__(self) -> None:
        self.backend = BACKEND_VLLM
        self.block_size = 64
        self.num_gpu_blocks = 16384
        self.max_num_seqs = 256
        self.max_num_batched_tokens = 8192
        self.max_model_len = 0
        self.enable_prefix_caching = True
        self.enable_chunked_prefill = True
        self.preemption_lifo = True
        self.speedup_ratio = 1.0
        self.decode_speedup_ratio = 1.0
        self.timing_kind = TIMING_POLYNOMIAL
        self.fixed_prefill_ms = 0.0
        self.fixed_decode_ms = 0.0
        self.tensor_parallel_size = 1
        self.startup_time_s = -1.0
        self.roofline = None
        self.external_prefill = None
        self.external_decode = None
        self.compat_1_4 = False
        self.sglang_lpm = False
        self.sglang_max_prefill_tokens = 16384
        self.sglang_chunked_prefill_size = 8192
        self.sglang_clip_max_new_tokens = 4096
        self.sglang_conservativeness = 1.0
        self.sglang_prefill_decode_interval = 0
