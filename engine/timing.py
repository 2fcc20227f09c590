"""Pass duration models (spec engine.md §6).

A pass costs prefill_ms(batch) then decode_ms(decode set), each divided by the speedup ratios
and rounded to the nanosecond (the reference keeps them as Rust Durations), added in that order.
"""
from __future__ import annotations

import math
from typing import Callable, Final, final

from engine.config import TIMING_EXTERNAL, TIMING_FIXED, TIMING_ROOFLINE, EngineConfig
from engine.roofline import Roofline

# Default "polynomial" model of the reference mocker (no perf data).
PREFILL_A: Final = 4.209989e-07
PREFILL_B: Final = 1.518344e-02
PREFILL_C: Final = 16.50142
DECODE_A: Final = -25.74
DECODE_B: Final = 54.01
DECODE_C: Final = 5.74


def round_ns(ms: float) -> float:
    """Round a duration in ms to the nearest nanosecond (half away from zero)."""
    return math.floor(ms * 1e6 + 0.5) / 1e6


def scaled_duration_ms(raw_ms: float, div: float) -> float:
    """The reference's Duration arithmetic: round the model time to whole nanoseconds, then
    divide its seconds by the speedup and round to nanoseconds again (a Rust `div_f64`)."""
    if div == 1.0:
        return math.floor(raw_ms * 1e6 + 0.5) / 1e6
    ns = secs_to_ns(raw_ms / 1000.0)
    secs = float(ns // 1_000_000_000) + float(ns % 1_000_000_000) / 1e9
    return secs_to_ns(secs / div) / 1e6


def secs_to_ns(secs: float) -> int:
    """Whole nanoseconds nearest to the exact binary value of secs (Duration::from_secs_f64)."""
    mant, exp = math.frexp(secs)
    m = int(mant * 9007199254740992.0)  # 2**53: exact integer mantissa
    e = exp - 53
    num = m * 1_000_000_000
    if e >= 0:
        return num << e
    d = 1 << (-e)
    q = num // d
    if 2 * (num - q * d) >= d:
        q += 1
    return q


class TimingModel:
    """Base of the timing models; compiled subclasses override both methods."""

    prefill_div: float
    decode_div: float

    def __init__(self, cfg: EngineConfig) -> None:
        speed = cfg.speedup_ratio if cfg.speedup_ratio > 0.0 else 1.0
        dspeed = cfg.decode_speedup_ratio if cfg.decode_speedup_ratio > 0.0 else 1.0
        self.prefill_div = speed
        self.decode_div = speed * dspeed

    def prefill_raw_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        raise NotImplementedError

    def decode_raw_ms(self, batch_n: int, sum_ctx: int) -> float:
        raise NotImplementedError

    def prefill_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        if batch_n == 0:
            return 0.0
        return scaled_duration_ms(self.prefill_raw_ms(batch_n, sum_end, sum_start), self.prefill_div)

    def decode_ms(self, batch_n: int, sum_ctx: int) -> float:
        if batch_n == 0:
            return 0.0
        return scaled_duration_ms(self.decode_raw_ms(batch_n, sum_ctx), self.decode_div)


@final
class PolynomialTiming(TimingModel):
    kv_capacity_tokens: float

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        self.kv_capacity_tokens = float(cfg.num_gpu_blocks * cfg.block_size)

    def prefill_raw_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        # Integer floors of the batch means, as the reference: T may differ from the sum by < n.
        t = batch_n * (sum_end // batch_n - sum_start // batch_n)
        if t <= 0:
            return 0.0
        x = float(t)
        return PREFILL_A * x * x + PREFILL_B * x + PREFILL_C

    def decode_raw_ms(self, batch_n: int, sum_ctx: int) -> float:
        p = float(sum_ctx) / self.kv_capacity_tokens
        if p > 1.0:
            p = 1.0
        v = DECODE_A * p * p + DECODE_B * p + DECODE_C
        return v if v > 1.0 else 1.0


@final
class FixedTiming(TimingModel):
    prefill_const: float
    decode_const: float

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        self.prefill_const = cfg.fixed_prefill_ms
        self.decode_const = cfg.fixed_decode_ms

    def prefill_raw_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        return self.prefill_const

    def decode_raw_ms(self, batch_n: int, sum_ctx: int) -> float:
        return self.decode_const


# The reference mocker clamps model decode times to at least 1 ms.
DECODE_FLOOR_MS: Final = 1.0


@final
class RooflineTiming(TimingModel):
    """Hardware roofline (engine/roofline.py). Prefill sees the batch means the reference passes
    to its perf models: mean end and mean start positions (integer floors)."""

    roof: Roofline

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        p = cfg.roofline
        if p is None:
            raise ValueError("TIMING_ROOFLINE needs EngineConfig.roofline")
        self.roof = Roofline(p)

    def prefill_raw_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        mean_start = sum_start // batch_n
        new = sum_end // batch_n - mean_start
        if new <= 0:
            return 0.0
        return self.roof.prefill_ms(float(batch_n), float(new), float(mean_start))

    def decode_raw_ms(self, batch_n: int, sum_ctx: int) -> float:
        v = self.roof.decode_ms(float(batch_n), float(sum_ctx))
        return v if v > DECODE_FLOOR_MS else DECODE_FLOOR_MS

    def decode_ms(self, batch_n: int, sum_ctx: int) -> float:
        # The base method, without its two indirect calls (it runs every pass).
        if batch_n == 0:
            return 0.0
        v = self.roof.decode_ms(float(batch_n), float(sum_ctx))
        if not v > DECODE_FLOOR_MS:
            v = DECODE_FLOOR_MS
        div = self.decode_div
        if div == 1.0:
            return math.floor(v * 1e6 + 0.5) / 1e6
        return scaled_duration_ms(v, div)


@final
class ExternalTiming(TimingModel):
    """Times from Python callables (the optional aiconfigurator provider, memoized there)."""

    prefill_fn: Callable[[int, int, int], float]
    decode_fn: Callable[[int, int], float]

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        pf = cfg.external_prefill
        df = cfg.external_decode
        if pf is None or df is None:
            raise ValueError("TIMING_EXTERNAL needs EngineConfig.external_prefill/_decode")
        self.prefill_fn = pf
        self.decode_fn = df

    def prefill_raw_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        return float(self.prefill_fn(batch_n, sum_end, sum_start))

    def decode_raw_ms(self, batch_n: int, sum_ctx: int) -> float:
        return float(self.decode_fn(batch_n, sum_ctx))


def make_timing(cfg: EngineConfig) -> TimingModel:
    if cfg.timing_kind == TIMING_FIXED:
        return FixedTiming(cfg)
    if cfg.timing_kind == TIMING_ROOFLINE:
        return RooflineTiming(cfg)
    if cfg.timing_kind == TIMING_EXTERNAL:
        return ExternalTiming(cfg)
    return PolynomialTiming(cfg)
