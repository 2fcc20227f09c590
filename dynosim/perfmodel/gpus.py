"""GPU specs the roofline knows by name (public datasheet figures, dense tensor-core rates).

`mem_bytes` is the device memory the driver reports (nvidia-smi "total"), which is what
vLLM's `gpu_memory_utilization` is a fraction of. `link_bw` is the per-direction NVLink (or PCIe)
bandwidth of one GPU, used for tensor-parallel all-reduces.
"""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuSpec:
    name: str
    hbm_bw: float  # bytes/s
    bf16_flops: float  # dense FLOP/s
    fp8_flops: float  # dense FLOP/s (== bf16 on GPUs without FP8 tensor cores)
    fp4_flops: float  # dense FLOP/s (== fp8 on GPUs without FP4 tensor cores)
    mem_bytes: int
    link_bw: float  # bytes/s per direction
    aliases: tuple[str, ...] = ()

    def flops(self, rate: str) -> float:
        return {"bf16": self.bf16_flops, "fp8": self.fp8_flops, "fp4": self.fp4_flops}[rate]


_CATALOG: list[GpuSpec] = [
    GpuSpec("h100_sxm", 3.35e12, 989e12, 1979e12, 1979e12, 81559 * MIB, 450e9,
            aliases=("h100", "h100-sxm", "h100_sxm5", "h100-sxm5-80gb")),
    GpuSpec("h200_sxm", 4.8e12, 989e12, 1979e12, 1979e12, 143771 * MIB, 450e9,
            aliases=("h200", "h200-sxm", "h200_sxm5", "h200-sxm-141gb")),
    GpuSpec("b200_sxm", 8.0e12, 2250e12, 4500e12, 9000e12, 183359 * MIB, 900e9,
            aliases=("b200", "b200-sxm", "hgx_b200")),
    GpuSpec("gb200", 8.0e12, 2500e12, 5000e12, 10000e12, 186 * 10**9, 900e9,
            aliases=("gb200_nvl", "gb200-nvl72")),
    GpuSpec("a100_sxm", 2.039e12, 312e12, 312e12, 312e12, 81920 * MIB, 300e9,
            aliases=("a100", "a100-sxm", "a100_sxm4", "a100-sxm4-80gb")),
    GpuSpec("l40s", 0.864e12, 362e12, 733e12, 733e12, 46068 * MIB, 32e9, aliases=("l40s_pcie",)),
]

_BY_NAME: dict[str, GpuSpec] = {}
for _g in _CATALOG:
    for _n in (_g.name, *_g.aliases):
        _BY_NAME[_n.lower()] = _g


def known_gpus() -> list[str]:
    return [g.name for g in _CATALOG]


class UnknownGpu(ValueError):
    pass


def find_gpu(name: str) -> GpuSpec:
    g = _BY_NAME.get(name.strip().lower())
    if g is None:
        raise UnknownGpu(f"unknown GPU/system {name!r}; known: {', '.join(known_gpus())}")
    return g
