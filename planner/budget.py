"""GPU budget clamps (spec planner.md §4.4).

`max_budget` / `min_budget` < 0 disable that bound. GPUs per replica come from the engine
capabilities (`Capabilities.num_gpu`), not from the GPU-hours settings of the config.
"""
from __future__ import annotations

import math


def clamp_single(desired: int, gpu: int, min_budget: int, max_budget: int, min_endpoint: int
                 ) -> int:
    """Clamp one component's replica count into the GPU budget band."""
    max_on = max_budget >= 0
    min_on = min_budget >= 0
    if not max_on and not min_on:
        return desired
    gpu = max(gpu, 1)
    total = desired * gpu
    tolerance = gpu if (max_on and min_on) else 0
    if max_on and total > max_budget:
        if max_budget < min_endpoint * gpu:
            return 0
        return max(min_endpoint, max_budget // gpu)
    if min_on and total < min_budget - tolerance:
        return max(min_endpoint, math.ceil(min_budget / gpu))
    return desired


def clamp_pair(prefill: int, decode: int, gpu_p: int, gpu_d: int, min_budget: int,
               max_budget: int, min_endpoint: int) -> tuple[int, int]:
    """Clamp a disaggregated (prefill, decode) pair into the GPU budget band."""
    max_on = max_budget >= 0
    min_on = min_budget >= 0
    if not max_on and not min_on:
        return prefill, decode
    gpu_p = max(gpu_p, 1)
    gpu_d = max(gpu_d, 1)
    total = prefill * gpu_p + decode * gpu_d
    tolerance = max(gpu_p, gpu_d) if (max_on and min_on) else 0
    if max_on and total > max_budget:
        if max_budget < min_endpoint * (gpu_p + gpu_d):
            return 0, 0
        scale = max_budget / total
        new_p = max(min_endpoint,
                    min(math.floor((max_budget - min_endpoint * gpu_d) / gpu_p),
                        math.floor(prefill * scale)))
        new_d = max(min_endpoint, math.floor((max_budget - new_p * gpu_p) / gpu_d))
        return new_p, new_d
    if min_on and total < min_budget - tolerance:
        if total <= 0:
            new_p = max(min_endpoint, math.ceil(min_budget / 2 / gpu_p))
        else:
            new_p = max(min_endpoint, math.ceil(prefill * min_budget / total))
        new_d = max(min_endpoint, math.ceil(max(0, min_budget - new_p * gpu_p) / gpu_d))
        if max_on and new_p * gpu_p + new_d * gpu_d > max_budget:
            return prefill, decode
        return new_p, new_d
    return prefill, decode
