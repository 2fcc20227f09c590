"""Model + GPU + TP + coefficients -> the numbers of the compiled roofline (`RooflineParams`)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dynosim.perfmodel import dtypes
from dynosim.perfmodel.coeffs import Coeffs, achievable, find_calibrated
from dynosim.perfmodel.gpus import GpuSpec, find_gpu
from dynosim.perfmodel.models import ModelArch, find_model, with_dtypes
from engine.roofline import Roofline, RooflineParams

# TP all-reduce: a fixed latency per collective and 70 % of the per-direction link bandwidth.
AR_LATENCY_S = 6e-6
LINK_EFFICIENCY = 0.7
BACKENDS = ("vllm", "sglang", "trtllm")
# Backends whose attention kernels run in FP8 when the KV cache is FP8 (as aiconfigurator
# resolves them; vLLM's flash attention stays BF16).
FP8_FMHA_BACKENDS = ("sglang", "trtllm")


def default_fmha(backend: str, kv_dtype: str) -> str:
    return "fp8" if backend in FP8_FMHA_BACKENDS and kv_dtype == "fp8" else "bf16"


@dataclass(frozen=True)
class Shape:
    """Per-GPU sizes of one model under tensor parallelism."""

    weight_bytes: float  # all weights resident on one GPU (for the KV-capacity estimate)
    kv_bytes_per_token: float  # per GPU
    fields: dict[str, float]  # shape part of RooflineParams


def model_shape(m: ModelArch, tp: int) -> Shape:
    t = float(tp)
    d, hd, layers = float(m.hidden), float(m.head_dim), float(m.layers)
    heads = m.heads / t
    kvh = m.kv_heads / t if m.kv_heads >= tp else 1.0  # KV heads are replicated past TP = n_kv
    wb = dtypes.weight_bytes(m.weight_dtype)
    attn_lin = 2.0 * d * heads * hd + 2.0 * d * kvh * hd
    if m.is_moe:
        expert = 3.0 * d * m.moe_intermediate / t
        shared = 3.0 * d * m.shared_intermediate / t
        router = d * m.n_experts
        dense_params = attn_lin + shared
        active = attn_lin + shared + m.top_k * expert
        dense_bytes = layers * (dense_params * wb + router * 2.0)
        expert_bytes = layers * expert * wb
        mlp_width = (m.top_k * m.moe_intermediate + m.shared_intermediate) / t
        all_weights = dense_bytes + m.n_experts * expert_bytes
    else:
        mlp = 3.0 * d * m.intermediate / t
        active = attn_lin + mlp
        dense_bytes = layers * active * wb
        expert_bytes = 0.0
        mlp_width = m.intermediate / t
        all_weights = dense_bytes
    head_params = m.vocab * d / t
    head_b = dtypes.weight_bytes(m.head_dtype)
    emb_bytes = 0.0 if m.tied_embeddings else m.vocab * d * 2.0 / t
    kv_b = dtypes.kv_bytes(m.kv_dtype)
    kv_tok = 2.0 * layers * kvh * hd * kv_b
    f: dict[str, float] = {
        "flops_tok": 2.0 * layers * active,
        "dense_bytes": dense_bytes,
        "expert_bytes": expert_bytes,
        "n_experts": float(m.n_experts),
        "top_k": float(m.top_k),
        "head_flops": 2.0 * head_params,
        "head_bytes": head_params * head_b,
        "attn_coef": 4.0 * layers * heads * hd,
        "kv_bytes": kv_tok,
        "elem_bytes": layers * (8.0 * d + 2.0 * (heads + kvh) * hd + 3.0 * mlp_width) * 2.0,
        "n_ar": 2.0 * layers if tp > 1 else 0.0,
        "ar_bytes": 2.0 * layers * 2.0 * (t - 1.0) / t * d * 2.0 if tp > 1 else 0.0,
    }
    return Shape(weight_bytes=all_weights + head_params * head_b + emb_bytes,
                 kv_bytes_per_token=kv_tok, fields=f)


def make_params(m: ModelArch, gpu: GpuSpec, tp: int, c: Coeffs,
                fmha_dtype: str = "bf16") -> RooflineParams:
    p = RooflineParams()
    for k, v in model_shape(m, tp).fields.items():
        setattr(p, k, float(v))
    p.bw = float(gpu.hbm_bw)
    p.f_gemm = float(gpu.flops(dtypes.gemm_rate(m.weight_dtype)))
    p.f_attn = float(gpu.flops("fp8" if fmha_dtype == "fp8" else "bf16"))
    p.link_bw = float(gpu.link_bw * LINK_EFFICIENCY)
    p.ar_lat = AR_LATENCY_S
    for k, v in c.as_dict().items():
        if k != "moe_spread":
            setattr(p, k, float(v))
    if p.n_experts > 0.0 and c.moe_spread != 1.0:
        # miss^(T·spread) == (miss^spread)^T: the engine's per-token miss rate carries the spread
        miss = (1.0 - p.top_k / p.n_experts) ** c.moe_spread
        p.top_k = p.n_experts * (1.0 - miss)
    return p


@dataclass(frozen=True)
class PerfSetup:
    """A resolved (system, model, backend, TP) with its coefficient set."""

    model: ModelArch
    gpu: GpuSpec
    backend: str
    tp: int
    coeffs: Coeffs
    calibrated: bool
    fmha_dtype: str
    warning: str | None  # set when the coefficients are not fitted for this combination
    description: str

    def params(self) -> RooflineParams:
        return make_params(self.model, self.gpu, self.tp, self.coeffs, self.fmha_dtype)

    def roofline(self) -> Roofline:
        return Roofline(self.params())

    def shape(self) -> Shape:
        return model_shape(self.model, self.tp)


class PerfModelError(ValueError):
    """`key` names the offending input: system, model, backend, tp, gemm_dtype, kv_dtype or
    fmha_dtype."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@lru_cache(maxsize=256)
def resolve(system: str, model: str, backend: str = "vllm", tp: int = 1,
            gemm_dtype: str | None = None, kv_dtype: str | None = None,
            fmha_dtype: str | None = None, coeffs: str = "auto") -> PerfSetup:
    """Look up the GPU and model (name or local config path), apply dtype overrides and pick the
    coefficient set: the fitted one for (system, model, backend, tp) when shipped, otherwise the
    uncalibrated "achievable" defaults (with a warning). coeffs="achievable" forces the defaults.
    Raises PerfModelError (unknown names list the known ones)."""
    key = "system"
    try:
        gpu = find_gpu(system)
        key = "model"
        arch = find_model(model)
        key = "gemm_dtype"
        arch = with_dtypes(arch, gemm_dtype, None)
        key = "kv_dtype"
        arch = with_dtypes(arch, None, kv_dtype)
    except ValueError as e:
        raise PerfModelError(str(e), key) from None
    if backend not in BACKENDS:
        raise PerfModelError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}",
                             "backend")
    try:
        fmha = (default_fmha(backend, arch.kv_dtype) if not fmha_dtype
                else "fp8" if dtypes.kv_dtype(fmha_dtype) == "fp8" else "bf16")
    except ValueError as e:
        raise PerfModelError(str(e), "fmha_dtype") from None
    if tp < 1:
        raise PerfModelError(f"tensor-parallel size must be >= 1, got {tp}", "tp")
    if arch.heads % tp != 0:
        raise PerfModelError(f"{arch.name}: {arch.heads} attention heads do not split over "
                             f"TP {tp}", "tp")
    cal = find_calibrated(gpu.name, arch.name, backend, tp) if coeffs == "auto" else None
    what = f"{arch.name} on {gpu.name} TP{tp} ({backend})"
    warning = None
    if cal is not None:
        c = cal.coeffs
        calibrated = True
        if (arch.weight_dtype, arch.kv_dtype, fmha) != (cal.gemm_dtype, cal.kv_dtype,
                                                         cal.fmha_dtype):
            warning = (f"the roofline coefficients for {what} were fitted with "
                       f"{cal.gemm_dtype} weights, {cal.kv_dtype} KV and {cal.fmha_dtype} "
                       f"attention; the dtype override ({arch.weight_dtype} weights, "
                       f"{arch.kv_dtype} KV, {fmha} attention) only changes the byte and FLOP "
                       f"counts")
        if cal.quality != "calibrated" and warning is None:
            warning = (f"the roofline coefficients for {what} are only a rough fit to "
                       f"aiconfigurator (up to {cal.max_rel_err:.0%} off on its grid; its data "
                       f"for this configuration is irregular)")
        desc = (f"roofline calibrated to aiconfigurator for {what} (fit: max "
                f"{cal.max_rel_err:.1%}, rms {cal.rms_rel_err:.1%})")
    else:
        c = achievable(arch.layers)
        calibrated = False
        if coeffs == "auto":
            warning = (f"no calibrated roofline coefficients for {what}; using the uncalibrated "
                       f"'achievable efficiency' defaults (expect roughly -30%..+30% versus "
                       f"aiconfigurator)")
        desc = f"uncalibrated roofline ('achievable' efficiencies) for {what}"
    return PerfSetup(model=arch, gpu=gpu, backend=backend, tp=tp, coeffs=c, calibrated=calibrated,
                     fmha_dtype=fmha, warning=warning, description=desc)
