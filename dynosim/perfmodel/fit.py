"""Fitting roofline coefficients to reference step times (aiconfigurator grids or measurements).

A grid point is a prefill pass (batch, isl incl. prefix, prefix) or a decode step (batch,
context per sequence) with its reference time in ms. The fit is a Levenberg-Marquardt least
squares on log(model/reference), followed by a few reweighting rounds that pull the worst
points in (a Lawson-style step towards the minimax fit). Needs numpy (a core dependency).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dynosim.perfmodel.build import PerfSetup, make_params
from dynosim.perfmodel.coeffs import Coeffs
from engine.roofline import Roofline

PREFILL = "prefill"
DECODE = "decode"


@dataclass(frozen=True)
class Point:
    phase: str  # PREFILL | DECODE
    batch: int
    isl: int  # prefill: total length incl. prefix; decode: context per sequence
    prefix: int  # prefill only
    ref_ms: float

    def predict(self, r: Roofline) -> float:
        if self.phase == PREFILL:
            return r.prefill_ms(float(self.batch), float(self.isl - self.prefix),
                                float(self.prefix))
        return r.decode_ms(float(self.batch), float(self.batch * self.isl))


# Fitted coefficients and their transforms: "frac" in (0, 1) via a logistic, "pos" > 0 via exp,
# "above1" > 1 via 1 + exp.
FIT_PARAMS: tuple[tuple[str, str], ...] = (
    ("c0_ms", "pos"), ("eta_w", "frac"), ("eta_kv", "frac"), ("c_seq_ms", "pos"),
    ("eta_g", "frac"), ("m_half", "pos"), ("eta_attn", "frac"), ("c_tok_ms", "pos"),
    ("c_m1_ms", "pos"),
)
# Mixture-of-experts models also fit how skewed the routing is and how sharp the compute/memory
# transition is (experts cross it one by one as their token counts differ): a knee >= 1.
MOE_PARAMS: tuple[tuple[str, str], ...] = (("moe_spread", "pos"), ("knee", "above1"))
# Order of the soft roofline max in fitted sets (3 fits AIC's GEMM knee better than a hard max).
KNEE = 3.0
_START = Coeffs(c0_ms=1.0, eta_w=0.75, eta_kv=0.7, c_seq_ms=0.01, eta_g=0.65, m_half=120.0,
                eta_attn=0.55, c_tok_ms=0.001, eta_el=0.8, c_m1_ms=0.05, knee=KNEE)
_TINY = 1e-7


def _to_theta(c: Coeffs, names: Sequence[tuple[str, str]]) -> np.ndarray:
    out = []
    for name, kind in names:
        v = getattr(c, name)
        if kind == "frac":
            v = min(max(v, 1e-4), 1 - 1e-4)
            out.append(math.log(v / (1 - v)))
        elif kind == "above1":
            out.append(math.log(max(v - 1.0, _TINY)))
        else:
            out.append(math.log(max(v, _TINY)))
    return np.array(out, dtype=float)


def _from_theta(theta: np.ndarray, base: Coeffs, names: Sequence[tuple[str, str]]) -> Coeffs:
    vals: dict[str, float] = {}
    for x, (name, kind) in zip(theta.tolist(), names):
        x = max(min(x, 40.0), -40.0)
        if kind == "frac":
            vals[name] = 1.0 / (1.0 + math.exp(-x))
        else:
            vals[name] = math.exp(x) + (1.0 if kind == "above1" else 0.0)
    return replace(base, **vals)


def predict(setup: PerfSetup, c: Coeffs, points: Sequence[Point]) -> np.ndarray:
    r = Roofline(make_params(setup.model, setup.gpu, setup.tp, c, setup.fmha_dtype))
    return np.array([p.predict(r) for p in points], dtype=float)


def rel_errors(setup: PerfSetup, c: Coeffs, points: Sequence[Point]) -> np.ndarray:
    ref = np.array([p.ref_ms for p in points], dtype=float)
    out: np.ndarray = predict(setup, c, points) / ref - 1.0
    return out


def _residuals(theta: np.ndarray, setup: PerfSetup, base: Coeffs, points: Sequence[Point],
               names: Sequence[tuple[str, str]], ref: np.ndarray, w: np.ndarray) -> np.ndarray:
    pred = predict(setup, _from_theta(theta, base, names), points)
    out: np.ndarray = np.sqrt(w) * np.log(np.maximum(pred, 1e-12) / ref)
    return out


def _lm(theta: np.ndarray, fun: "ResidualFn", iters: int = 200) -> np.ndarray:
    lam = 1e-2
    r = fun(theta)
    cost = float(r @ r)
    for _ in range(iters):
        h = 1e-6
        jac = np.empty((r.size, theta.size))
        for j in range(theta.size):
            t2 = theta.copy()
            t2[j] += h
            jac[:, j] = (fun(t2) - r) / h
        jtj = jac.T @ jac
        g = jac.T @ r
        improved = False
        for _ in range(12):
            a = jtj + lam * np.diag(np.diag(jtj) + 1e-9)
            try:
                step = -np.linalg.solve(a, g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            t_new = np.clip(theta + step, -40.0, 40.0)
            r_new = fun(t_new)
            c_new = float(r_new @ r_new)
            if c_new < cost:
                rel = (cost - c_new) / max(cost, 1e-30)
                theta, r, cost = t_new, r_new, c_new
                lam = max(lam / 3, 1e-9)
                improved = True
                break
            lam *= 4
        if not improved or rel < 1e-10:
            break
    return theta


class ResidualFn:
    """Weighted log errors, plus weak prior terms that keep coefficients the data cannot pin
    down near plausible values (instead of drifting to 0 or to a bound)."""

    def __init__(self, setup: PerfSetup, base: Coeffs, points: Sequence[Point],
                 names: Sequence[tuple[str, str]], w: np.ndarray, prior: np.ndarray,
                 prior_weight: float) -> None:
        self.setup, self.base, self.points, self.names, self.w = setup, base, points, names, w
        self.ref = np.array([p.ref_ms for p in points], dtype=float)
        self.prior, self.prior_weight = prior, prior_weight

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        r = _residuals(theta, self.setup, self.base, self.points, self.names, self.ref, self.w)
        if self.prior_weight <= 0.0:
            return r
        return np.concatenate([r, self.prior_weight * (theta - self.prior)])


def prior_coeffs(setup: PerfSetup) -> Coeffs:
    """Plausible values: the achievable efficiencies, a kernel-floor constant, small overheads."""
    return Coeffs(c0_ms=0.03 * setup.model.layers, eta_w=0.75, eta_kv=0.75, c_seq_ms=0.01,
                  eta_g=0.7, m_half=128.0, eta_attn=0.6, c_tok_ms=0.002, eta_el=0.8,
                  c_m1_ms=0.05, knee=KNEE, moe_spread=1.0)


@dataclass(frozen=True)
class FitResult:
    coeffs: Coeffs
    max_rel_err: float
    rms_rel_err: float
    points: int


def fit(setup: PerfSetup, points: Sequence[Point], *, minimax_rounds: int = 12,
        names: Sequence[tuple[str, str]] | None = None, start: Coeffs | None = None,
        prior_weight: float = 0.03) -> FitResult:
    """Fit the coefficients of `setup` to `points` (several starts; best max error wins).
    `names` defaults to FIT_PARAMS, plus MOE_PARAMS for a mixture-of-experts model."""
    if names is None:
        names = FIT_PARAMS + (MOE_PARAMS if setup.model.is_moe else ())
    prior = _to_theta(prior_coeffs(setup), names)
    starts = [start] if start is not None else [
        _START,
        replace(_START, m_half=30.0, eta_g=0.8, c0_ms=0.3),
        replace(_START, m_half=300.0, eta_w=0.6, eta_kv=0.5, c0_ms=2.0),
    ]
    best: FitResult | None = None
    for s in starts:
        w = np.ones(len(points))
        theta = _to_theta(s, names)
        cand: list[FitResult] = []
        for k in range(minimax_rounds + 1):
            theta = _lm(theta, ResidualFn(setup, s, points, names, w, prior, prior_weight))
            c = _from_theta(theta, s, names)
            err = rel_errors(setup, c, points)
            cand.append(FitResult(c, float(np.max(np.abs(err))),
                                  float(np.sqrt(np.mean(err ** 2))), len(points)))
            if k < minimax_rounds:  # Lawson-style reweighting towards the worst points
                a = np.abs(err) + 1e-6
                w = w * a / np.mean(w * a)
                w = 0.5 * w + 0.5  # keep a least-squares share (rms matters too)
        for r in cand:
            if best is None or _score(r) < _score(best):
                best = r
    assert best is not None
    return best


def _score(r: FitResult) -> float:
    return r.max_rel_err + 0.5 * r.rms_rel_err


# ---------------------------------------------------------------------------------------------
# Reading the shipped AIC tables (CSV with '#' provenance lines)


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(line for line in f if not line.startswith("#"))


def multi_config_points(path: Path) -> dict[tuple[str, str, int], list[Point]]:
    """`aic_multi_config_*.csv` -> {(system, model label, tp): points}."""
    out: dict[tuple[str, str, int], list[Point]] = {}
    for row in _rows(path):
        key = (row["system"], row["model"], int(row["tp"]))
        if row["phase"] == PREFILL:
            p = Point(PREFILL, int(row["batch"]), int(row["isl"]), 0, float(row["aic_ms"]))
        else:
            p = Point(DECODE, int(row["batch"]), int(row["context"]), 0, float(row["aic_ms"]))
        out.setdefault(key, []).append(p)
    return out


def prefix_points(path: Path, column: str = "aic_ms") -> list[Point]:
    """`aic_prefill_prefix_*.csv` -> prefill points with a cached prefix (batch 1)."""
    return [Point(PREFILL, 1, int(r["isl_total"]), int(r["prefix_tokens"]), float(r[column]))
            for r in _rows(path)]


def prefill_points(path: Path, column: str = "aic_ms") -> list[Point]:
    return [Point(PREFILL, int(r["batch"]), int(r["isl"]), int(r["prefix_tokens"]),
                  float(r[column])) for r in _rows(path)]


@dataclass(frozen=True)
class GridKey:
    """One configuration of an `aic_grid_*.csv` table (scripts/aic_grid.py)."""

    backend: str
    system: str
    model: str  # catalog name
    tp: int
    fmha: str  # attention dtype aiconfigurator resolved ("bfloat16" | "fp8")


def grid_points(path: Path) -> dict[GridKey, list[Point]]:
    """`aic_grid_*.csv` -> {configuration: points}."""
    out: dict[GridKey, list[Point]] = {}
    for r in _rows(path):
        key = GridKey(r["backend"], r["system"], r["model"], int(r["tp"]), r["fmha"])
        if r["phase"] == PREFILL:
            p = Point(PREFILL, int(r["batch"]), int(r["isl"]), int(r["prefix"]),
                      float(r["aic_ms"]))
        else:
            p = Point(DECODE, int(r["batch"]), int(r["context"]), 0, float(r["aic_ms"]))
        out.setdefault(key, []).append(p)
    return out


def decode_points(path: Path, column: str = "aic_ms") -> list[Point]:
    return [Point(DECODE, int(r["batch"]), int(r["context"]), 0, float(r[column]))
            for r in _rows(path)]


# Model labels used in the AIC tables -> catalog names (with the dtypes AIC resolved).
TABLE_MODELS: dict[str, tuple[str, str | None, str | None]] = {
    "nvidia/Llama-3.1-8B-Instruct-FP8": ("nvidia/Llama-3.1-8B-Instruct-FP8", None, None),
    "meta-llama/Meta-Llama-3.1-8B (BF16)": ("meta-llama/Llama-3.1-8B-Instruct", None, None),
    "nvidia/Llama-3.1-70B-Instruct-FP8": ("nvidia/Llama-3.1-70B-Instruct-FP8", None, None),
    "Qwen/Qwen3-8B (BF16)": ("Qwen/Qwen3-8B", None, None),
    "Qwen/Qwen3-32B (BF16)": ("Qwen/Qwen3-32B", None, None),
    "Qwen/Qwen3-32B-FP8 (fp8_block)": ("Qwen/Qwen3-32B-FP8", None, None),
    "Qwen/Qwen3-30B-A3B-FP8 (MoE, fp8_block)": ("Qwen/Qwen3-30B-A3B-FP8", None, None),
}
