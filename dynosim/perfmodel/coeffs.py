"""Roofline coefficient sets: the fitted (calibrated) ones and the uncalibrated defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from dynosim.perfmodel import calibrated as _data


@dataclass(frozen=True)
class Coeffs:
    """Efficiencies (fractions of peak) and per-pass/-token/-sequence overheads (ms)."""

    c0_ms: float  # per pass (kernel launch floors, framework constant)
    eta_w: float  # weight streaming, fraction of HBM bandwidth
    eta_kv: float  # KV-cache reads/writes, fraction of HBM bandwidth
    c_seq_ms: float  # per decoded sequence
    eta_g: float  # GEMMs, fraction of dense tensor-core peak (large M)
    m_half: float  # tokens of small-M GEMM inefficiency
    eta_attn: float  # prefill attention, fraction of BF16 peak
    c_tok_ms: float  # per prefill token
    eta_el: float = 0.8  # elementwise kernels (norms, rope, activation), fraction of HBM BW
    c_m1_ms: float = 0.0  # extra when a pass's GEMMs see one token (GEMV kernels)
    knee: float = 0.0  # 0 = hard roofline max(compute, memory); k > 0 = soft max of order k
    # MoE only: a pass of T tokens reads the experts T·moe_spread uniformly routed tokens would
    # touch (< 1: routing is skewed, fewer distinct experts; 1 = uniform routing)
    moe_spread: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> Coeffs:
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in d.items() if k in names})


# "Achievable" efficiencies, fixed a priori from public kernel results (not fitted to AIC):
# HBM streams at 80 %, FP8/BF16 GEMMs at 70 % of dense peak, prefill flash attention at 55 %,
# and a floor of 10 kernels x 3 us per layer per pass.
ACHIEVABLE_FLOOR_MS_PER_LAYER = 10 * 0.003


def achievable(layers: int) -> Coeffs:
    return Coeffs(c0_ms=ACHIEVABLE_FLOOR_MS_PER_LAYER * layers, eta_w=0.8, eta_kv=0.8,
                  c_seq_ms=0.0, eta_g=0.7, m_half=0.0, eta_attn=0.55, c_tok_ms=0.0, eta_el=0.8,
                  c_m1_ms=0.0, knee=0.0)


@dataclass(frozen=True)
class CalibratedSet:
    system: str
    model: str
    backend: str
    backend_version: str  # of the aiconfigurator database the set was fitted to
    tp: int
    gemm_dtype: str
    kv_dtype: str
    fmha_dtype: str  # attention kernels' dtype the set was fitted with
    coeffs: Coeffs
    quality: str  # "calibrated" (fit within 15 % everywhere) or "rough"
    max_rel_err: float  # of the fit on its grid
    rms_rel_err: float
    median_rel_err: float
    points: int
    source: str


def calibrated_sets() -> list[CalibratedSet]:
    return list(_SETS.values())


def find_calibrated(system: str, model: str, backend: str, tp: int) -> CalibratedSet | None:
    return _SETS.get((system, model.lower(), backend, tp))


def _load() -> dict[tuple[str, str, str, int], CalibratedSet]:
    out: dict[tuple[str, str, str, int], CalibratedSet] = {}
    for row in _data.SETS:
        s = CalibratedSet(system=str(row["system"]), model=str(row["model"]),
                          backend=str(row["backend"]),
                          backend_version=str(row["backend_version"]), tp=int(row["tp"]),
                          gemm_dtype=str(row["gemm_dtype"]), kv_dtype=str(row["kv_dtype"]),
                          fmha_dtype=str(row.get("fmha_dtype", "bf16")),
                          coeffs=Coeffs.from_dict(row["coeffs"]),
                          quality=str(row.get("quality", "calibrated")),
                          max_rel_err=float(row["max_rel_err"]),
                          rms_rel_err=float(row["rms_rel_err"]),
                          median_rel_err=float(row["median_rel_err"]), points=int(row["points"]),
                          source=str(_data.SOURCE))
        out[(s.system, s.model.lower(), s.backend, s.tp)] = s
    return out


_SETS = _load()
