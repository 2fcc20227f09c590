"""Forward-pass time regression (spec planner.md §5.3): the perf model's learning core.

One `RegressionStore` per workload kind. A store keeps at most `max_observations` samples
(x = feature vector, y = wall time in ms) and refits after every added sample once it holds
`min_observations`:

* 1-D stores (prefill kind, x = [prefill tokens]) try a weighted hinge
  y = a + b*x + c*max(0, x - knot) (weights 1/max(y, 25 ms) on the residuals) when they hold
  at least max(min_observations, 6) samples, and fall back to the linear fit below;
* linear fits (1-D fallback and the 2-D decode / mixed stores) are non-negative least squares
  solved by enumerating every active set of slopes (the intercept is always free), each by
  Gauss-Jordan elimination on the normal equations with a ridge retry on a tiny pivot.

Predictions are max(fit(x), 1e-6) ms.

Retention (the spec leaves the reference's exact binning open): each axis is cut into
equal-width bins over x itself between the smallest and the largest value seen so far (bounds
only grow; every sample is re-binned when they move). Linear, not log1p, bins: against Dynamo
1.4.2's own planner (a disaggregated run without AIC bootstrap, where the decode store starts
retiring at 650 s) they reproduce its ITL estimates at all but 2 of 106 ticks; log1p bins
differ at 38. 1-D
stores use `bucket_count` bins, 2-D stores isqrt(bucket_count) per axis (4 x 4 by default).
When the store exceeds its cap, the oldest sample of the most populated bucket is retired;
ties go to the bucket holding the oldest sample (the reference breaks ties by hash order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

RIDGE_SCALE = 1e-9
PIVOT_EPS = 1e-12
HINGE_MIN_SAMPLES = 6
HINGE_WEIGHT_FLOOR_MS = 25.0
HINGE_NEG_TOL = 1e-6
MIN_PREDICTION_MS = 1e-6


# --------------------------------------------------------------------------------------------
# Linear algebra


def solve_gauss_jordan(lhs: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Gauss-Jordan elimination with partial pivoting; None on a pivot below 1e-12."""
    n = len(rhs)
    a = [row[:] for row in lhs]
    b = rhs[:]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < PIVOT_EPS:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        b[col], b[pivot] = b[pivot], b[col]
        div = a[col][col]
        for j in range(col, n):
            a[col][j] /= div
        b[col] /= div
        for r in range(n):
            if r == col:
                continue
            f = a[r][col]
            if f == 0.0:
                continue
            for j in range(col, n):
                a[r][j] -= f * a[col][j]
            b[r] -= f * b[col]
    return b


def solve_with_ridge(lhs: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Solve; on a singular system retry with ridge 1e-9 * trace on the slope diagonal."""
    sol = solve_gauss_jordan(lhs, rhs)
    if sol is not None:
        return sol
    scale = max(sum(abs(lhs[i][i]) for i in range(len(rhs))), 1.0)
    ridged = [row[:] for row in lhs]
    for i in range(1, len(rhs)):  # index 0 is the intercept
        ridged[i][i] += scale * RIDGE_SCALE
    return solve_gauss_jordan(ridged, rhs)


def _normal_equations(rows: list[list[float]], ys: Sequence[float], weights: list[float] | None
                      ) -> tuple[list[list[float]], list[float]]:
    size = len(rows[0])
    lhs = [[0.0] * size for _ in range(size)]
    rhs = [0.0] * size
    for k, (row, y) in enumerate(zip(rows, ys)):
        w2 = 1.0 if weights is None else weights[k] * weights[k]
        for i in range(size):
            ri = row[i] * w2
            rhs[i] += ri * y
            li = lhs[i]
            for j in range(size):
                li[j] += ri * row[j]
    return lhs, rhs


def _normal_equations_2d(xs: Sequence[tuple[float, ...]], ys: Sequence[float]
                         ) -> tuple[list[list[float]], list[float]]:
    """`_normal_equations` of the rows (1, x0, x1), unweighted, written out: each entry is the
    same sum of the same products in the same order (x * 1.0 and 1.0 * x are x; the
    symmetric entries of an unweighted system are equal), so the same bits, at a fraction
    of the interpreter's cost (this runs for every refit of a 2-D store)."""
    n = s0 = s1 = s00 = s01 = s11 = r0 = r1 = r2 = 0.0
    for (x0, x1), y in zip(xs, ys):
        n += 1.0
        s0 += x0
        s1 += x1
        s00 += x0 * x0
        s01 += x0 * x1
        s11 += x1 * x1
        r0 += y
        r1 += x0 * y
        r2 += x1 * y
    return [[n, s0, s1], [s0, s00, s01], [s1, s01, s11]], [r0, r1, r2]


# --------------------------------------------------------------------------------------------
# Fits


@dataclass(frozen=True)
class LinearFit:
    intercept: float
    coefficients: tuple[float, ...]

    def predict(self, x: tuple[float, ...]) -> float:
        return self.intercept + sum(c * v for c, v in zip(self.coefficients, x))


@dataclass(frozen=True)
class HingeFit:
    intercept: float
    slope: float
    hinge: float  # extra slope above the knot
    knot: float

    def predict(self, x: tuple[float, ...]) -> float:
        v = x[0]
        return self.intercept + self.slope * v + self.hinge * max(0.0, v - self.knot)


Fit = LinearFit | HingeFit


def fit_nnls(xs: Sequence[tuple[float, ...]], ys: Sequence[float], ndim: int) -> LinearFit | None:
    """Least squares with non-negative slopes: best valid active set by unweighted SSE."""
    if not xs:
        return None
    best: LinearFit | None = None
    best_sse = math.inf
    # Every active set's normal equations are a sub-block of the full set's: the same sums
    # of the same products in the same order, so building them once gives the same bits.
    if ndim == 2:
        full_lhs, full_rhs = _normal_equations_2d(xs, ys)
    else:
        full_lhs, full_rhs = _normal_equations([[1.0, *x] for x in xs], ys, None)
    for mask in range((1 << ndim) - 1, -1, -1):  # the full set first
        cols = [j for j in range(ndim) if mask >> j & 1]
        idx = [0] + [j + 1 for j in cols]
        lhs = [[full_lhs[i][k] for k in idx] for i in idx]
        rhs = [full_rhs[i] for i in idx]
        sol = solve_with_ridge(lhs, rhs)
        if sol is None or not all(math.isfinite(v) for v in sol):
            continue
        if any(v < 0.0 for v in sol[1:]):
            continue
        coefs = [0.0] * ndim
        for j, v in zip(cols, sol[1:]):
            coefs[j] = v
        fit = LinearFit(sol[0], tuple(coefs))
        sse = _sse(fit, xs, ys)
        if sse < best_sse:
            best, best_sse = fit, sse
    return best


def _sse(fit: LinearFit, xs: Sequence[tuple[float, ...]], ys: Sequence[float]) -> float:
    """sum((y - fit.predict(x)) ** 2): the same operations in the same order for 1 and 2
    dimensions (predict's sum starts from 0, which only drops the sign of a zero, and a
    square does not see that sign)."""
    a = fit.intercept
    total = 0.0
    if len(fit.coefficients) == 2:
        c0, c1 = fit.coefficients
        for (v0, v1), y in zip(xs, ys):
            total += (y - (a + (c0 * v0 + c1 * v1))) ** 2
    elif len(fit.coefficients) == 1:
        c0 = fit.coefficients[0]
        for x, y in zip(xs, ys):
            total += (y - (a + c0 * x[0])) ** 2
    else:
        for x, y in zip(xs, ys):
            total += (y - fit.predict(x)) ** 2
    return total


def hinge_knot_candidates(values: Sequence[float]) -> list[float]:
    """Quantile knots (20/40/60/80 % of the distinct values) then 8 log-spaced knots."""
    distinct = sorted(set(values))
    nd = len(distinct)
    if nd < 2:
        return []
    lo, hi = distinct[0], distinct[-1]
    cands = [distinct[(k * (nd - 1)) // 5] for k in range(1, 5)]
    if lo > 0.0:
        llo, lhi = math.log(lo), math.log(hi)
        cands += [math.exp(llo + i / 9.0 * (lhi - llo)) for i in range(1, 9)]
    out: list[float] = []
    for c in cands:
        if lo < c < hi and c not in out:
            out.append(c)
    return out


def fit_hinge(xs: Sequence[tuple[float, ...]], ys: Sequence[float]) -> HingeFit | None:
    """Weighted hinge fit on 1-D data; None when no candidate knot gives a valid fit."""
    vals = [x[0] for x in xs]
    weights = [1.0 / max(y, HINGE_WEIGHT_FLOOR_MS) for y in ys]
    best: HingeFit | None = None
    best_rmse = math.inf
    # The normal equations of the rows (1, v, max(0, v - knot)), each weighted by w^2, as
    # `_normal_equations` sums them (same products, same order, same bits): the entries of
    # the (1, v) block do not depend on the knot, so they are summed once for all knots.
    w2s = [w * w for w in weights]
    vw2s = [v * w2 for v, w2 in zip(vals, w2s)]
    l00 = l01 = l11 = r0 = r1 = 0.0
    for v, y, w2, vw2 in zip(vals, ys, w2s, vw2s):
        r0 += w2 * y
        l00 += w2
        l01 += w2 * v
        r1 += vw2 * y
        l11 += vw2 * v
    n = len(vals)
    for knot in hinge_knot_candidates(vals):
        l02 = l12 = l21 = l22 = r2 = 0.0
        for v, y, w2, vw2 in zip(vals, ys, w2s, vw2s):
            h = v - knot
            # Rows below the knot (h = max(0, v - knot) = 0) add only zeros, which leave a sum
            # that starts at +0.0 unchanged: skipped, the same bits.
            if h > 0.0:
                hw2 = h * w2
                r2 += hw2 * y
                l02 += w2 * h
                l12 += vw2 * h
                l21 += hw2 * v
                l22 += hw2 * h
        lhs = [[l00, l01, l02], [l01, l11, l12], [l02, l21, l22]]
        # No ridge retry here (only the linear fits have one): a knot the data cannot pin down
        # (e.g. two distinct x values) gives no hinge, and the store falls back to the line
        # through them, as the reference's estimates show.
        sol = solve_gauss_jordan(lhs, [r0, r1, r2])
        if sol is None or not all(math.isfinite(v) for v in sol):
            continue
        a, b, c = sol
        if a < -HINGE_NEG_TOL or b < -HINGE_NEG_TOL or b + c < -HINGE_NEG_TOL:
            continue
        # sum((w * (y - HingeFit(a, b, c, knot).predict((v,)))) ** 2) / n, written out
        total = 0.0
        for v, y, w in zip(vals, ys, weights):
            h = v - knot
            total += (w * (y - ((a + b * v) + c * (h if h > 0.0 else 0.0)))) ** 2
        rmse = math.sqrt(total / n)
        if rmse < best_rmse:
            best, best_rmse = HingeFit(a, b, c, knot), rmse
    return best


# --------------------------------------------------------------------------------------------
# Retention


class BucketedSamples:
    """Capped sample set retiring from the most populated bucket (geometry: module doc)."""

    def __init__(self, ndim: int, bucket_count: int, max_observations: int) -> None:
        self.ndim = ndim
        self.bins = bucket_count if ndim == 1 else max(1, math.isqrt(bucket_count))
        self.max_observations = max_observations
        self._lo = [math.inf] * ndim
        self._hi = [-math.inf] * ndim
        self._seq = 0
        # seq -> (x, y), in insertion (= seq) order: the samples as `samples` lists them
        self._live: dict[int, tuple[tuple[float, ...], float]] = {}
        # key -> seqs in insertion order
        self._buckets: dict[tuple[int, ...], list[int]] = {}
        self.total = 0

    def _key(self, x: tuple[float, ...]) -> tuple[int, ...]:
        key = []
        for i, v in enumerate(x):
            lo, hi = self._lo[i], self._hi[i]
            if hi <= lo:
                key.append(0)
                continue
            pos = (max(v, 0.0) - lo) / (hi - lo) * self.bins
            key.append(min(max(int(pos), 0), self.bins - 1))
        return tuple(key)

    def add(self, x: tuple[float, ...], y: float) -> None:
        moved = False
        for i, v in enumerate(x):
            t = max(v, 0.0)
            if t < self._lo[i]:
                self._lo[i] = t
                moved = True
            if t > self._hi[i]:
                self._hi[i] = t
                moved = True
        if moved and self.total > 0:
            self._buckets = {}
            for seq, (sx, _) in self._live.items():
                self._buckets.setdefault(self._key(sx), []).append(seq)
        self._buckets.setdefault(self._key(x), []).append(self._seq)
        self._live[self._seq] = (x, y)
        self._seq += 1
        self.total += 1
        if self.total > self.max_observations:
            self._retire()

    def _retire(self) -> None:
        key = max(self._buckets, key=lambda k: (len(self._buckets[k]), -self._buckets[k][0]))
        bucket = self._buckets[key]
        del self._live[bucket.pop(0)]
        if not bucket:
            del self._buckets[key]
        self.total -= 1

    def samples(self) -> list[tuple[tuple[float, ...], float]]:
        return list(self._live.values())


class RegressionStore:
    """Samples of one workload kind and their current fit.

    The fit is a function of the samples alone, so it is computed when first asked for after
    a change rather than after every added sample (the spec's "refit after every sample"):
    the same fit whenever anyone looks, without the refits nobody reads (a load tick adds one
    sample per worker before asking anything)."""

    def __init__(self, ndim: int, *, min_observations: int, max_observations: int,
                 bucket_count: int) -> None:
        self.ndim = ndim
        self.min_observations = min_observations
        self.samples = BucketedSamples(ndim, bucket_count, max_observations)
        self._fit: Fit | None = None
        self._stale = False  # samples changed since the fit was computed

    @property
    def count(self) -> int:
        return self.samples.total

    @property
    def fit(self) -> Fit | None:
        if self._stale:
            self.refit()
        return self._fit

    @property
    def ready(self) -> bool:
        return self.fit is not None

    def add(self, x: tuple[float, ...], y_ms: float) -> None:
        if not (math.isfinite(y_ms) and y_ms > 0.0) or len(x) != self.ndim:
            return
        if not all(math.isfinite(v) for v in x):
            return
        self.samples.add(x, y_ms)
        self._stale = True

    def refit(self) -> None:
        self._stale = False
        data = self.samples.samples()
        if len(data) < self.min_observations:
            self._fit = None
            return
        xs = [d[0] for d in data]
        ys = [d[1] for d in data]
        fit: Fit | None = None
        if self.ndim == 1 and len(data) >= max(self.min_observations, HINGE_MIN_SAMPLES):
            fit = fit_hinge(xs, ys)
        if fit is None:
            fit = fit_nnls(xs, ys, self.ndim)
        self._fit = fit

    def predict_ms(self, x: tuple[float, ...]) -> float | None:
        fit = self.fit
        if fit is None:
            return None
        return max(fit.predict(x), MIN_PREDICTION_MS)
