"""Data-type names (aiconfigurator's quant-mode spellings included) -> canonical names, bytes."""
from __future__ import annotations

from collections.abc import Mapping

# canonical GEMM (weight) dtypes: bytes per weight (block/group scales included) and the
# tensor-core rate they run at ("bf16", "fp8", "fp4")
_GEMM: dict[str, tuple[float, str]] = {
    "bf16": (2.0, "bf16"),
    "fp8": (1.0, "fp8"),
    "fp8_block": (1.0 + 4.0 / (128 * 128), "fp8"),
    "fp4": (0.5 + 1.0 / 16, "fp4"),
    "int4_wo": (0.5 + 2.0 / 128, "bf16"),  # weight-only: dequantised to BF16 MMAs
    "int8_wo": (1.0 + 2.0 / 128, "bf16"),
}
_GEMM_ALIASES: dict[str, str] = {
    "bfloat16": "bf16", "float16": "bf16", "fp16": "bf16", "half": "bf16", "auto": "bf16",
    "fp8_static": "fp8", "fp8_per_tensor": "fp8", "float8": "fp8", "fp8_e4m3": "fp8",
    "fp8_dynamic": "fp8", "w8a8_fp8": "fp8", "fp8_blockwise": "fp8_block",
    "nvfp4": "fp4", "mxfp4": "fp4", "w4a16": "int4_wo", "int4": "int4_wo", "awq": "int4_wo",
    "gptq": "int4_wo", "w8a16": "int8_wo", "int8": "int8_wo",
}
_KV: dict[str, float] = {"bf16": 2.0, "fp8": 1.0, "fp4": 0.5625}
_KV_ALIASES: dict[str, str] = {
    "bfloat16": "bf16", "float16": "bf16", "fp16": "bf16", "half": "bf16", "auto": "bf16",
    "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "float8": "fp8", "int8": "fp8", "nvfp4": "fp4",
}


class UnknownDtype(ValueError):
    pass


def _resolve(name: str, table: Mapping[str, object], aliases: Mapping[str, str],
             what: str) -> str:
    key = name.strip().lower()
    key = aliases.get(key, key)
    if key not in table:
        valid = ", ".join(sorted({*table, *aliases}))
        raise UnknownDtype(f"unknown {what} dtype {name!r}; known: {valid}")
    return key


def gemm_dtype(name: str) -> str:
    return _resolve(name, _GEMM, _GEMM_ALIASES, "weight/GEMM")


def kv_dtype(name: str) -> str:
    return _resolve(name, _KV, _KV_ALIASES, "KV-cache")


def weight_bytes(dtype: str) -> float:
    return _GEMM[gemm_dtype(dtype)][0]


def gemm_rate(dtype: str) -> str:
    return _GEMM[gemm_dtype(dtype)][1]


def kv_bytes(dtype: str) -> float:
    return _KV[kv_dtype(dtype)]
