"""A small, dependency-free auto-ARIMA (numpy only) for the `arima` load predictor.

The reference uses `pmdarima.auto_arima` (stepwise search, MLE fits via statsmodels). pmdarima
does install on Python 3.11 but drags in scipy, scikit-learn, statsmodels and pandas (about
250 MB), so this module re-implements the idea at a smaller scale:

* differencing order d in {0, 1}: d = 1 when a KPSS level-stationarity test rejects at 5 %
  (statistic > 0.463, Bartlett long-run variance with trunc(3*sqrt(n)/13) lags, as pmdarima's
  `ndiffs` default);
* orders (p, q) in {0, 1, 2} x {0, 1, 2}, searched exhaustively (not stepwise), with a constant
  term (mean for d = 0, drift for d = 1);
* each candidate is fitted by conditional sum of squares: ordinary least squares when q = 0
  (exact), Hannan-Rissanen two-step least squares when q > 0 (a long AR fit supplies the
  innovations, then OLS on lagged values and lagged innovations);
* candidates that are non-stationary (AR roots) or non-invertible (MA roots), or that have
  too few points for their parameter count, are skipped; the lowest AIC
  (n*log(sigma^2) + 2k on a common conditioning window) wins.

So forecasts are close to, not identical with, pmdarima's. With few points (the predictor
needs >= 5, and a 17-minute trace at 300 s intervals gives only 3) the predictor never fits
and returns the last value, exactly as the reference does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MAX_P = 2
MAX_Q = 2
MAX_D = 1
KPSS_CRITICAL_5PCT = 0.463


@dataclass(frozen=True)
class ArimaFit:
    p: int
    d: int
    q: int
    const: float
    phi: tuple[float, ...]
    theta: tuple[float, ...]
    sigma2: float
    aic: float

    @property
    def order(self) -> tuple[int, int, int]:
        return self.p, self.d, self.q


def kpss_level_statistic(y: FloatArray) -> float:
    """KPSS statistic for the null of level stationarity."""
    n = len(y)
    e = y - y.mean()
    s = np.cumsum(e)
    lags = int(3.0 * math.sqrt(n) / 13.0)
    lrv = float(np.dot(e, e)) / n
    for lag in range(1, lags + 1):
        w = 1.0 - lag / (lags + 1.0)
        lrv += 2.0 * w * float(np.dot(e[lag:], e[:-lag])) / n
    if lrv <= 0.0:
        return 0.0
    return float(np.dot(s, s)) / (n * n * lrv)


def choose_d(y: FloatArray) -> int:
    d = 0
    w = y
    while d < MAX_D and len(w) >= 3 and float(np.ptp(w)) > 0.0:
        if kpss_level_statistic(w) <= KPSS_CRITICAL_5PCT:
            break
        d += 1
        w = np.diff(w)
    return d


def _roots_outside_unit_circle(coefs: tuple[float, ...], sign: float) -> bool:
    """True when 1 + sign*(c1 z + c2 z^2 + ...) has all roots outside |z| = 1."""
    if not coefs or all(c == 0.0 for c in coefs):
        return True
    poly = [sign * c for c in reversed(coefs)] + [1.0]  # highest degree first
    while poly and poly[0] == 0.0:
        poly.pop(0)
    roots = np.roots(poly)
    return bool(np.all(np.abs(roots) > 1.0 + 1e-8))


def _lstsq(x: FloatArray, y: FloatArray) -> FloatArray | None:
    try:
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(beta)):
        return None
    return np.asarray(beta, dtype=np.float64)


def _innovations(w: FloatArray, const: float, phi: tuple[float, ...], theta: tuple[float, ...],
                 start: int) -> FloatArray:
    """CSS residuals e_t for t >= start (pre-sample innovations are zero)."""
    e = np.zeros(len(w))
    for t in range(start, len(w)):
        pred = const
        for i, c in enumerate(phi, 1):
            pred += c * w[t - i]
        for j, c in enumerate(theta, 1):
            if t - j >= start:
                pred += c * e[t - j]
        e[t] = w[t] - pred
    return e


def _fit_order(w: FloatArray, p: int, q: int, start: int) -> tuple[float, tuple[float, ...],
                                                                   tuple[float, ...],
                                                                   FloatArray] | None:
    n = len(w)
    rows = n - start
    k = 1 + p + q
    if rows < k + 2:
        return None
    if q == 0:
        x = np.ones((rows, k))
        for i in range(1, p + 1):
            x[:, i] = w[start - i:n - i]
        beta = _lstsq(x, w[start:])
        if beta is None:
            return None
        const = float(beta[0])
        phi: tuple[float, ...] = tuple(float(v) for v in beta[1:])
        theta: tuple[float, ...] = ()
    else:
        # Hannan-Rissanen: long AR for the innovations, then OLS on lags of both.
        m = min(max(p + q, 2), max(1, (n - 1) // 3))
        if n - m < m + 3:
            return None
        xa = np.ones((n - m, m + 1))
        for i in range(1, m + 1):
            xa[:, i] = w[m - i:n - i]
        ba = _lstsq(xa, w[m:])
        if ba is None:
            return None
        ehat = np.zeros(n)
        ehat[m:] = w[m:] - xa @ ba
        s0 = max(start, m + q)
        rows = n - s0
        if rows < k + 2:
            return None
        x = np.ones((rows, k))
        for i in range(1, p + 1):
            x[:, i] = w[s0 - i:n - i]
        for j in range(1, q + 1):
            x[:, p + j] = ehat[s0 - j:n - j]
        beta = _lstsq(x, w[s0:])
        if beta is None:
            return None
        const = float(beta[0])
        phi = tuple(float(v) for v in beta[1:1 + p])
        theta = tuple(float(v) for v in beta[1 + p:])
    if not _roots_outside_unit_circle(phi, -1.0) or not _roots_outside_unit_circle(theta, 1.0):
        return None
    e = _innovations(w, const, phi, theta, start)
    return const, phi, theta, e


def auto_arima(y: list[float] | FloatArray, d: int | None = None) -> ArimaFit | None:
    """Select (p, d, q) by AIC and fit; None when no candidate can be fitted."""
    arr = np.asarray(y, dtype=np.float64)
    if d is None:
        d = choose_d(arr)
    w = np.diff(arr, n=d) if d > 0 else arr
    best: ArimaFit | None = None
    for p in range(MAX_P + 1):
        for q in range(MAX_Q + 1):
            fit = fit_arima(arr, p, d, q, w=w)
            if fit is not None and (best is None or fit.aic < best.aic):
                best = fit
    return best


def fit_arima(y: list[float] | FloatArray, p: int, d: int, q: int,
              w: FloatArray | None = None) -> ArimaFit | None:
    """Fit a fixed order by CSS (conditioning on the first MAX_P differenced points)."""
    arr = np.asarray(y, dtype=np.float64)
    if w is None:
        w = np.diff(arr, n=d) if d > 0 else arr
    start = MAX_P
    res = _fit_order(w, p, q, start)
    if res is None:
        return None
    const, phi, theta, e = res
    n_eff = len(w) - start
    sse = float(np.dot(e[start:], e[start:]))
    sigma2 = max(sse / n_eff, 1e-300)
    k = 1 + p + q + 1  # constant, coefficients, innovation variance
    aic = n_eff * math.log(sigma2) + 2.0 * k
    return ArimaFit(p=p, d=d, q=q, const=const, phi=phi, theta=theta, sigma2=sigma2, aic=aic)


def forecast_one(fit: ArimaFit, y: list[float] | FloatArray) -> float:
    """One-step-ahead forecast of the (undifferenced) series."""
    arr = np.asarray(y, dtype=np.float64)
    w = np.diff(arr, n=fit.d) if fit.d > 0 else arr
    e = _innovations(w, fit.const, fit.phi, fit.theta, MAX_P)
    n = len(w)
    nxt = fit.const
    for i, c in enumerate(fit.phi, 1):
        nxt += c * float(w[n - i])
    for j, c in enumerate(fit.theta, 1):
        if n - j >= MAX_P:
            nxt += c * float(e[n - j])
    if fit.d == 0:
        return float(nxt)
    return float(arr[-1]) + float(nxt)
