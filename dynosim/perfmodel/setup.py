"""aic_* engine args -> the engine's timing model and KV capacity (the uncompiled edge)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynosim.perfmodel.build import PerfModelError, PerfSetup, resolve
from dynosim.perfmodel.memory import (DEFAULT_GPU_MEMORY_UTILIZATION, DoesNotFit, KvCapacity,
                                      kv_capacity)
from dynosim.perfmodel.coeffs import find_calibrated
from engine.config import TIMING_EXTERNAL, TIMING_ROOFLINE, EngineConfig


@dataclass(frozen=True)
class AicTiming:
    """What the aic_* args resolved to."""

    setup: PerfSetup  # model, GPU, TP and roofline coefficients
    provider: str  # "roofline" | "aiconfigurator"
    tp: int
    timing: bool  # False: an explicit timing_model keeps the engine's timing
    capacity: KvCapacity | None  # derived num_gpu_blocks (None when given explicitly)
    warnings: tuple[str, ...]  # for the user: uncalibrated / rough / not modelled settings
    external: Any = None  # the aiconfigurator provider object

    @property
    def description(self) -> str:
        if not self.timing:
            return "explicit timing_model (aic_* args size the KV cache only)"
        if self.external is not None:
            return str(self.external.description)
        return self.setup.description

    def apply(self, cfg: EngineConfig) -> None:
        if self.capacity is not None:
            cfg.num_gpu_blocks = self.capacity.num_gpu_blocks
        if not self.timing:
            return
        if self.external is not None:
            cfg.timing_kind = TIMING_EXTERNAL
            cfg.external_prefill = self.external.prefill_ms
            cfg.external_decode = self.external.decode_ms
        else:
            cfg.timing_kind = TIMING_ROOFLINE
            cfg.roofline = self.setup.params()


def configure_aic(*, backend: str, system: str, model: str, tp: int = 1,
                  gemm_dtype: str | None = None, kv_dtype: str | None = None,
                  fmha_dtype: str | None = None, provider: str = "roofline",
                  backend_version: str | None = None, moe_tp_size: int | None = None,
                  moe_ep_size: int | None = None, timing: bool = True,
                  block_size: int | None = None, gpu_memory_utilization: float | None = None,
                  max_num_batched_tokens: int = 8192, max_num_seqs: int = 256) -> AicTiming:
    """Resolve the aic_* settings. `block_size` None means num_gpu_blocks was given explicitly
    (no capacity estimate). Raises PerfModelError (`key` names the offending setting;
    "memory" when the model does not fit)."""
    setup = resolve(system, model, backend, tp, gemm_dtype, kv_dtype, fmha_dtype)
    capacity = None
    if block_size is not None:
        gmu = (DEFAULT_GPU_MEMORY_UTILIZATION if gpu_memory_utilization is None
               else gpu_memory_utilization)
        try:
            capacity = kv_capacity(setup, block_size, gpu_memory_utilization=gmu,
                                   max_num_batched_tokens=max_num_batched_tokens,
                                   max_num_seqs=max_num_seqs)
        except DoesNotFit as e:
            raise PerfModelError(str(e), "memory") from None
    external = None
    warnings: list[str] = []
    if timing and setup.warning:
        warnings.append(setup.warning)
    if timing and provider == "aiconfigurator":
        from dynosim.perfmodel import aic

        overrides = (("gemm_quant_mode", gemm_dtype), ("kvcache_quant_mode", kv_dtype),
                     ("fmha_quant_mode", fmha_dtype), ("moe_tp_size", moe_tp_size),
                     ("moe_ep_size", moe_ep_size))
        external = aic.provider(setup.gpu.name, model, backend, backend_version, tp,
                                tuple((k, v) for k, v in overrides if v is not None))
        warnings = []  # exact by construction
    elif provider != "roofline" and timing:
        raise PerfModelError(f"unknown aic_provider {provider!r}", "provider")
    elif timing and backend_version and setup.calibrated:
        cal = find_calibrated(setup.gpu.name, setup.model.name, backend, tp)
        fitted = cal.backend_version if cal is not None else None
        if fitted and backend_version != fitted:
            warnings.append(f"the roofline coefficients are fitted to aiconfigurator's "
                            f"{backend} {fitted} data; aic_backend_version {backend_version} "
                            f"is not modelled")
    return AicTiming(setup=setup, provider=provider, tp=tp, timing=timing, capacity=capacity,
                     warnings=tuple(warnings), external=external)
