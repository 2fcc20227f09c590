"""Load predictors for the throughput loop (spec planner.md §3).

Three independent predictors of one kind forecast the next interval's request count, ISL and
OSL. Buffer rule shared by all: a non-finite reading counts as 0, and leading zeros are skipped
until the first non-zero value (the skip is re-armed once after a warm-up).

* constant - the last buffered value (0 when empty);
* arima    - `planner.arima` auto-ARIMA (see there for how it differs from pmdarima): last
             value until 5 points, the value itself for a constant series, a raw-space fit that
             collapses to (0, d, 0) is redone in log1p space (permanently), later calls refit the
             chosen order on all points; forecasts clipped at 0; any failure -> last value;
* kalman   - local-linear-trend Kalman filter (level, trend), written out with the exact
             filterpy update equations (Joseph-form covariance update);
* prophet  - optional (`pip install 'dynosim-tui[prophet]'`), Prophet() refitted on the last
             `prophet_window_size` points at synthetic timestamps every call.
"""
from __future__ import annotations

import importlib
import math
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol

from planner import arima
from planner.config import PROPHET_EXTRA, PlannerConfig
from planner.errors import ConfigError


class Predictor(Protocol):
    def add_data_point(self, value: float) -> None: ...

    def predict_next(self) -> float: ...

    def get_last_value(self) -> float: ...

    def reset_idle_skip(self) -> None: ...


class _BufferedPredictor:
    """The shared buffer: finite values only, leading zeros skipped."""

    def __init__(self) -> None:
        self.data_buffer: list[float] = []
        self._seen_nonzero = False

    def reset_idle_skip(self) -> None:
        self._seen_nonzero = False

    def _accept(self, value: float) -> float | None:
        v = float(value)
        if not math.isfinite(v):
            v = 0.0
        if v == 0.0 and not self._seen_nonzero:
            return None
        if v != 0.0:
            self._seen_nonzero = True
        return v

    def add_data_point(self, value: float) -> None:
        v = self._accept(value)
        if v is not None:
            self.data_buffer.append(v)

    def get_last_value(self) -> float:
        return self.data_buffer[-1] if self.data_buffer else 0.0


class ConstantPredictor(_BufferedPredictor):
    def predict_next(self) -> float:
        return self.get_last_value()


class ArimaPredictor(_BufferedPredictor):
    MIN_POINTS = 5

    def __init__(self, log1p: bool) -> None:
        super().__init__()
        self._requested_log1p = log1p
        self._log1p = log1p
        self._raw: list[float] = []
        self._fit: arima.ArimaFit | None = None
        self._stale = False  # new points since the last fit

    @property
    def mode(self) -> str:
        return "log1p" if self._log1p else "raw"

    @property
    def order(self) -> tuple[int, int, int] | None:
        return None if self._fit is None else self._fit.order

    def add_data_point(self, value: float) -> None:
        v = self._accept(value)
        if v is None:
            return
        raw = max(0.0, v)
        self._raw.append(raw)
        self.data_buffer.append(math.log1p(raw) if self._log1p else raw)
        self._stale = True

    def get_last_value(self) -> float:
        return self._raw[-1] if self._raw else 0.0

    def predict_next(self) -> float:
        if len(self._raw) < self.MIN_POINTS:
            return self.get_last_value()
        if len(set(self._raw)) == 1:
            return self._raw[0]
        try:
            if self._fit is None:
                self._first_fit()
            elif self._stale:
                # The reference updates the chosen model incrementally (no re-selection);
                # here the same order is refitted on all points.
                self._fit = arima.fit_arima(self._series(), *self._fit.order)
            self._stale = False
            if self._fit is None:
                return self.get_last_value()
            forecast = arima.forecast_one(self._fit, self._series())
            if not math.isfinite(forecast):
                return self.get_last_value()
            if self._log1p:
                return max(0.0, math.expm1(forecast))
            return max(0.0, forecast)
        except Exception:  # noqa: BLE001 - as the reference: any fitting failure -> last value
            self._stale = False
            return self.get_last_value()

    def _series(self) -> list[float]:
        return [math.log1p(v) for v in self._raw] if self._log1p else list(self._raw)

    def _first_fit(self) -> None:
        self._log1p = self._requested_log1p
        fit = arima.auto_arima(self._series())
        if fit is not None and not self._requested_log1p and fit.p == 0 and fit.q == 0:
            log_fit = arima.auto_arima([math.log1p(v) for v in self._raw])
            if log_fit is not None:
                self._log1p = True
                fit = log_fit
        self.data_buffer = self._series()
        self._fit = fit


class KalmanPredictor(_BufferedPredictor):
    """State [level, trend]; F = [[1,1],[0,1]], H = [1,0], P0 = 1000 I."""

    def __init__(self, q_level: float, q_trend: float, r: float, log1p: bool) -> None:
        super().__init__()
        self._log1p = log1p
        self._q = (max(1e-12, q_level), max(1e-12, q_trend))
        self._r = max(1e-9, r)
        self._x = [0.0, 0.0]
        self._p = [[1000.0, 0.0], [0.0, 1000.0]]
        self._initialized = False
        self._has_cached = False
        self._cached = 0.0

    @property
    def state(self) -> tuple[float, float]:
        return self._x[0], self._x[1]

    def _predict(self) -> None:
        x0, x1 = self._x
        self._x = [x0 + x1, x1]
        (a, b), (c, d) = self._p
        # F P F^T + Q with F = [[1,1],[0,1]]
        self._p = [[a + b + c + d + self._q[0], b + d], [c + d, d + self._q[1]]]

    def _update(self, z: float) -> None:
        (a, b), (c, d) = self._p
        s = a + self._r
        k0, k1 = a / s, c / s
        y = z - self._x[0]
        self._x = [self._x[0] + k0 * y, self._x[1] + k1 * y]
        # Joseph form: (I - K H) P (I - K H)^T + K R K^T, with I - K H = [[1-k0, 0], [-k1, 1]]
        m00, m10 = 1.0 - k0, -k1
        # A = (I - K H) P
        a00, a01 = m00 * a, m00 * b
        a10, a11 = m10 * a + c, m10 * b + d
        # A (I - K H)^T
        p00 = a00 * m00
        p01 = a00 * m10 + a01
        p10 = a10 * m00
        p11 = a10 * m10 + a11
        r = self._r
        self._p = [[p00 + k0 * r * k0, p01 + k0 * r * k1], [p10 + k1 * r * k0, p11 + k1 * r * k1]]

    def add_data_point(self, value: float) -> None:
        v = self._accept(value)
        if v is None:
            return
        self.data_buffer.append(v)
        z = math.log1p(max(0.0, v)) if self._log1p else v
        if not self._initialized:
            self._x = [z, 0.0]
            self._initialized = True
        else:
            if not self._has_cached:
                self._predict()
            self._update(z)
        self._has_cached = False

    def _out(self, level: float) -> float:
        return max(0.0, math.expm1(level)) if self._log1p else level

    def predict_next(self) -> float:
        if not self._initialized:
            return self.get_last_value()
        if not self._has_cached:
            self._predict()
            self._cached = self._x[0]
            self._has_cached = True
        return self._out(self._cached)


class ProphetPredictor(_BufferedPredictor):
    MIN_POINTS = 5

    def __init__(self, window_size: int, step_seconds: float, log1p: bool) -> None:
        super().__init__()
        try:
            self._prophet: Any = importlib.import_module("prophet")
            self._pd: Any = importlib.import_module("pandas")
        except ImportError:
            raise ConfigError(
                "load_predictor 'prophet' needs the optional Prophet extra: "
                f"pip install '{PROPHET_EXTRA}'", "load_predictor") from None
        self._window = window_size
        self._step = step_seconds
        self._log1p = log1p
        self._start = datetime(2024, 1, 1)
        self._curr_step = 0
        self._points: list[tuple[datetime, float]] = []

    def add_data_point(self, value: float) -> None:
        v = self._accept(value)
        if v is None:
            return
        ts = self._start + timedelta(seconds=self._curr_step * self._step)
        y = math.log1p(max(0.0, v)) if self._log1p else v
        self._points.append((ts, y))
        self.data_buffer.append(v)
        self._curr_step += 1
        if len(self._points) > self._window:
            self._points = self._points[-self._window:]

    def get_last_value(self) -> float:
        if not self._points:
            return 0.0
        y = self._points[-1][1]
        return max(0.0, math.expm1(y)) if self._log1p else y

    def predict_next(self) -> float:
        if len(self._points) < self.MIN_POINTS:
            return self.get_last_value()
        df = self._pd.DataFrame({"ds": [p[0] for p in self._points],
                                 "y": [p[1] for p in self._points]})
        model = self._prophet.Prophet()
        model.fit(df)
        nxt = self._start + timedelta(seconds=self._curr_step * self._step)
        yhat = float(model.predict(self._pd.DataFrame({"ds": [nxt]}))["yhat"].iloc[0])
        return max(0.0, math.expm1(yhat)) if self._log1p else max(0.0, yhat)


def make_predictor(config: PlannerConfig) -> Predictor:
    name = config.load_predictor
    if name == "constant":
        return ConstantPredictor()
    if name == "arima":
        return ArimaPredictor(config.load_predictor_log1p)
    if name == "kalman":
        return KalmanPredictor(config.kalman_q_level, config.kalman_q_trend, config.kalman_r,
                               config.load_predictor_log1p)
    return ProphetPredictor(config.prophet_window_size,
                            float(config.throughput_adjustment_interval_seconds),
                            config.load_predictor_log1p)


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


class LoadPredictors:
    """The three predictors plus the observe path of spec §3."""

    def __init__(self, config: PlannerConfig) -> None:
        self.num_req = make_predictor(config)
        self.isl = make_predictor(config)
        self.osl = make_predictor(config)
        self._last_shape: tuple[float, float] | None = None

    def observe(self, num_req: float, isl: float, osl: float) -> None:
        n = _finite(float(num_req))
        self.num_req.add_data_point(n)
        if n > 0:
            shape = (_finite(float(isl)), _finite(float(osl)))
            self._last_shape = shape
        elif self._last_shape is not None:
            shape = self._last_shape  # idle interval: keep the last request shape
        else:
            shape = (_finite(float(isl)), _finite(float(osl)))
        self.isl.add_data_point(shape[0])
        self.osl.add_data_point(shape[1])

    def predict(self) -> tuple[float, float, float]:
        return self.num_req.predict_next(), self.isl.predict_next(), self.osl.predict_next()

    def reset_idle_skip(self) -> None:
        for p in (self.num_req, self.isl, self.osl):
            p.reset_idle_skip()


def warmup_buckets(arrivals: Iterable[tuple[float, int, int]], interval_s: float
                   ) -> list[tuple[int, float, float]]:
    """Bucket first-turn arrivals (arrival ms, ISL, OSL) by `interval_s`: (request count,
    avg ISL, avg OSL) per bucket, from t = 0. Empty buckets in between give (0, 0, 0)."""
    counts: dict[int, list[float]] = {}
    for arrival, isl, osl in arrivals:
        if not math.isfinite(arrival):
            continue
        b = int(arrival / 1000.0 // interval_s)
        acc = counts.setdefault(b, [0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += isl
        acc[2] += osl
    if not counts:
        return []
    out: list[tuple[int, float, float]] = []
    for b in range(0, max(counts) + 1):
        got = counts.get(b)
        if got is None:
            out.append((0, 0.0, 0.0))
        else:
            out.append((int(got[0]), got[1] / got[0], got[2] / got[0]))
    return out
