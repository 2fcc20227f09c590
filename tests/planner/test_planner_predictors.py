from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from planner import arima
from planner.config import PlannerConfig
from planner.errors import ConfigError
from planner.predictors import (
    ArimaPredictor,
    ConstantPredictor,
    KalmanPredictor,
    LoadPredictors,
    ProphetPredictor,
    make_predictor,
    warmup_buckets,
)


def sla(**kw: object) -> PlannerConfig:
    return PlannerConfig(optimization_target="sla", enable_load_scaling=True,
                         throughput_adjustment_interval_seconds=300,
                         load_adjustment_interval_seconds=10, **kw)  # type: ignore[arg-type]


def test_constant_buffer_rules() -> None:
    p = ConstantPredictor()
    assert p.predict_next() == 0.0
    for v in (0, 0.0, float("nan"), 0):
        p.add_data_point(v)  # leading zeros (NaN counts as 0) are skipped
    assert p.data_buffer == []
    p.add_data_point(5)
    p.add_data_point(0)
    p.add_data_point(float("inf"))  # non-finite -> 0, kept after the first non-zero
    assert p.data_buffer == [5.0, 0.0, 0.0]
    assert p.predict_next() == 0.0
    p.add_data_point(7)
    assert p.predict_next() == 7.0


def test_idle_skip_rearmed() -> None:
    p = ConstantPredictor()
    p.add_data_point(3)
    p.reset_idle_skip()
    p.add_data_point(0)
    assert p.data_buffer == [3.0]
    p.add_data_point(4)
    p.add_data_point(0)
    assert p.data_buffer == [3.0, 4.0, 0.0]


def test_arima_last_value_below_five_points() -> None:
    p = ArimaPredictor(log1p=False)
    for v in (1091, 1163, 1215):  # the reference's three 300-s windows
        p.add_data_point(v)
        assert p.predict_next() == float(v)
    assert p.order is None


def test_arima_constant_series() -> None:
    p = ArimaPredictor(log1p=False)
    for _ in range(8):
        p.add_data_point(42)
    assert p.predict_next() == 42.0


def test_arima_fits_a_trend() -> None:
    p = ArimaPredictor(log1p=False)
    for k in range(1, 21):
        p.add_data_point(10.0 * k + (1.0 if k % 2 else -1.0))
    f = p.predict_next()
    assert p.order is not None
    assert 195.0 < f < 225.0
    # incremental: more points refit the same order
    order = p.order
    p.add_data_point(211)
    assert 200.0 < p.predict_next() < 240.0
    assert p.order == order


def test_arima_log1p_fallback_on_white_noise() -> None:
    rng = np.random.default_rng(7)
    vals = [float(v) for v in 100 + rng.normal(0, 5, size=30)]
    fit = arima.auto_arima(vals)
    assert fit is not None
    p = ArimaPredictor(log1p=False)
    for v in vals:
        p.add_data_point(v)
    f = p.predict_next()
    if fit.p == 0 and fit.q == 0:
        assert p.mode == "log1p"
    assert 80.0 < f < 120.0
    assert f >= 0.0


def test_arima_forecast_is_clipped_at_zero() -> None:
    p = ArimaPredictor(log1p=False)
    for v in (100, 80, 60, 40, 20, 5, 1):
        p.add_data_point(v)
    assert p.predict_next() >= 0.0


def test_arima_ar1_recovers_coefficient() -> None:
    rng = np.random.default_rng(3)
    y = [0.0]
    for _ in range(400):
        y.append(0.6 * y[-1] + rng.normal())
    fit = arima.fit_arima(y, 1, 0, 0)
    assert fit is not None
    assert fit.phi[0] == pytest.approx(0.6, abs=0.08)
    nxt = arima.forecast_one(fit, y)
    assert nxt == pytest.approx(fit.const + fit.phi[0] * y[-1])


def test_kpss_differencing_choice() -> None:
    trend = np.arange(40, dtype=float)
    assert arima.choose_d(trend) == 1
    rng = np.random.default_rng(0)
    assert arima.choose_d(rng.normal(size=60)) == 0


def _reference_kalman(zs: list[float], q: tuple[float, float], r: float,
                      predict_between: bool = True) -> list[float]:
    """filterpy's equations written with matrices, for comparison."""
    x = np.zeros((2, 1))
    p = np.eye(2) * 1000.0
    f = np.array([[1.0, 1.0], [0.0, 1.0]])
    h = np.array([[1.0, 0.0]])
    qm = np.diag(q)
    rm = np.array([[r]])
    out = []
    init = False
    for z in zs:
        if not init:
            x = np.array([[z], [0.0]])
            init = True
        else:
            x = f @ x
            p = f @ p @ f.T + qm
            y = np.array([[z]]) - h @ x
            s = h @ p @ h.T + rm
            k = p @ h.T @ np.linalg.inv(s)
            x = x + k @ y
            ikh = np.eye(2) - k @ h
            p = ikh @ p @ ikh.T + k @ rm @ k.T
        # one-step forecast (without consuming it)
        out.append(float((f @ x)[0, 0]))
    return out


def test_kalman_matches_filterpy_equations() -> None:
    zs = [120.0, 135.0, 128.0, 160.0, 170.0, 150.0, 190.0, 210.0]
    expected = _reference_kalman(zs, (1.0, 0.1), 10.0)
    p = KalmanPredictor(1.0, 0.1, 10.0, log1p=False)
    got = []
    for z in zs:
        p.add_data_point(z)
        got.append(p.predict_next())
        assert p.predict_next() == got[-1]  # cached: no second advance
    assert got == pytest.approx(expected, rel=1e-12)


def test_kalman_without_predict_calls_matches_too() -> None:
    zs = [10.0, 12.0, 15.0, 11.0]
    p = KalmanPredictor(1.0, 0.1, 10.0, log1p=False)
    for z in zs:
        p.add_data_point(z)
    assert p.predict_next() == pytest.approx(_reference_kalman(zs, (1.0, 0.1), 10.0)[-1])


def test_kalman_log1p_and_first_point() -> None:
    p = KalmanPredictor(1.0, 0.1, 10.0, log1p=True)
    assert p.predict_next() == 0.0
    p.add_data_point(99.0)
    assert p.predict_next() == pytest.approx(99.0)  # level = log1p(99), trend 0
    q = KalmanPredictor(1.0, 0.1, 10.0, log1p=False)
    for z in (100.0, 50.0, 0.0, 0.0):
        q.add_data_point(z)
    assert q.predict_next() < 0.0  # raw mode returns the level unclipped


def test_prophet_needs_extra() -> None:
    if importlib.util.find_spec("prophet") is None:
        with pytest.raises(ConfigError, match=r"dynosim-tui\[prophet\]"):
            ProphetPredictor(50, 300.0, False)
        with pytest.raises(ConfigError, match=r"dynosim-tui\[prophet\]"):
            make_predictor(sla(load_predictor="prophet"))
    else:  # pragma: no cover - only with the extra installed
        assert ProphetPredictor(50, 300.0, False).predict_next() == 0.0


def test_make_predictor_kinds() -> None:
    assert isinstance(make_predictor(sla(load_predictor="constant")), ConstantPredictor)
    assert isinstance(make_predictor(sla()), ArimaPredictor)
    assert isinstance(make_predictor(sla(load_predictor="kalman")), KalmanPredictor)


def test_observe_path_keeps_last_shape_on_idle_windows() -> None:
    lp = LoadPredictors(sla(load_predictor="constant"))
    lp.observe(0, 0.0, 0.0)  # leading idle window: skipped everywhere
    assert lp.predict() == (0.0, 0.0, 0.0)
    lp.observe(100, 2000.0, 150.0)
    lp.observe(0, 0.0, 0.0)  # idle: count 0, shape = the last one
    assert lp.predict() == (0.0, 2000.0, 150.0)
    lp.observe(50, float("nan"), 90.0)
    assert lp.predict() == (50.0, 0.0, 90.0)


def test_warmup_buckets() -> None:
    # (arrival ms, ISL, OSL) of first turns; a non-finite arrival carries no time: left out
    rows = [(0.0, 100, 10), (1000.0, 300, 30), (9000.0, 500, 50), (float("nan"), 7, 7)]
    got = warmup_buckets(rows, 4.0)
    assert got == [(2, 200.0, 20.0), (0, 0.0, 0.0), (1, 500.0, 50.0)]
    assert warmup_buckets([], 4.0) == []
    cfg = sla(load_predictor="constant")
    lp = LoadPredictors(cfg)
    for n, isl, osl in got:
        lp.observe(n, isl, osl)
    lp.reset_idle_skip()
    assert lp.predict() == (1.0, 500.0, 50.0)
    assert math.isfinite(lp.predict()[1])
