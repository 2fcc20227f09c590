from __future__ import annotations

import numpy as np
import pytest

from planner.regression import (
    BucketedSamples,
    HingeFit,
    LinearFit,
    RegressionStore,
    fit_hinge,
    fit_nnls,
    hinge_knot_candidates,
    solve_gauss_jordan,
    solve_with_ridge,
)


def test_gauss_jordan_with_pivoting() -> None:
    a = [[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0]]
    b = [5.0, 3.0, 6.0]
    sol = solve_gauss_jordan(a, b)
    assert sol is not None
    assert sol == pytest.approx(list(np.linalg.solve(np.array(a), np.array(b))))


def test_singular_system_and_ridge_retry() -> None:
    a = [[2.0, 4.0], [4.0, 8.0]]
    assert solve_gauss_jordan(a, [1.0, 2.0]) is None
    sol = solve_with_ridge(a, [1.0, 2.0])
    assert sol is not None
    assert 2 * sol[0] + 4 * sol[1] == pytest.approx(1.0, rel=1e-6)


def test_nnls_recovers_known_coefficients() -> None:
    xs = [(float(b), float(b * c)) for b in (1, 8, 32, 64, 128) for c in (500, 2000, 8000)]
    ys = [5.0 + 0.02 * n + 2e-5 * kv for n, kv in xs]
    fit = fit_nnls(xs, ys, 2)
    assert fit is not None
    assert fit.intercept == pytest.approx(5.0, abs=1e-9)
    assert fit.coefficients == pytest.approx((0.02, 2e-5), rel=1e-9)


def test_nnls_rejects_negative_slopes() -> None:
    rng = np.random.default_rng(1)
    xs = [(float(a), float(b)) for a, b in rng.uniform(0, 100, size=(30, 2))]
    ys = [10.0 - 0.5 * a + 2.0 * b for a, b in xs]
    fit = fit_nnls(xs, ys, 2)
    assert fit is not None
    assert fit.coefficients[0] == 0.0  # the negative slope is dropped from the active set
    assert fit.coefficients[1] > 0.0
    # it is the best fit over the valid active sets: equal to OLS on (1, x2)
    x2 = np.array([[1.0, b] for _, b in xs])
    beta = np.linalg.lstsq(x2, np.array(ys), rcond=None)[0]
    assert fit.intercept == pytest.approx(beta[0])
    assert fit.coefficients[1] == pytest.approx(beta[1])


def test_hinge_candidates() -> None:
    xs = [1000.0 * k for k in range(1, 10)]
    c = hinge_knot_candidates(xs)
    assert c[:4] == [2000.0, 4000.0, 5000.0, 7000.0]  # distinct[floor(k*8/5)]
    logs = c[4:]
    assert len(logs) == 8
    assert logs[0] == pytest.approx(np.exp(np.log(1000) + (np.log(9000) - np.log(1000)) / 9))
    assert all(1000.0 < v < 9000.0 for v in c)
    assert hinge_knot_candidates([5.0, 5.0]) == []


def test_hinge_recovers_a_kink() -> None:
    xs = [(1000.0 * k,) for k in range(1, 10)]
    ys = [20.0 + 0.01 * x + 0.02 * max(0.0, x - 4000.0) for (x,) in xs]
    fit = fit_hinge(xs, ys)
    assert isinstance(fit, HingeFit)
    assert fit.knot == 4000.0
    assert (fit.intercept, fit.slope, fit.hinge) == pytest.approx((20.0, 0.01, 0.02), abs=1e-9)


def test_hinge_rejects_negative_intercept_and_store_falls_back_to_linear() -> None:
    xs = [(100.0 * k,) for k in range(1, 9)]
    ys = [-5.0 + 0.1 * x for (x,) in xs]
    assert fit_hinge(xs, ys) is None
    store = RegressionStore(1, min_observations=5, max_observations=64, bucket_count=16)
    for x, y in zip(xs, ys):
        store.add(x, y)
    assert isinstance(store.fit, LinearFit)
    assert store.fit.intercept == pytest.approx(-5.0)
    assert store.predict_ms((10.0,)) == 1e-6  # floor of the prediction


def test_two_distinct_prefill_sizes_fit_the_line_through_them() -> None:
    # What an aggregated planner learns without a bootstrap: full 8192-token chunks and one
    # shorter prefill. No knot can be pinned down by two x values, so there is no hinge (no
    # ridge rescue either) and the store uses the line through both points; Dynamo 1.4.2's
    # planner estimates these exact numbers (38.02 ms for 1,248 tokens).
    xs = [(8192.0,)] * 19 + [(3653.0,)]
    ys = [169.1369] * 19 + [83.4315]
    assert fit_hinge(xs, ys) is None
    store = RegressionStore(1, min_observations=5, max_observations=64, bucket_count=16)
    for x, y in zip(xs, ys):
        store.add(x, y)
    assert isinstance(store.fit, LinearFit)
    assert store.predict_ms((1248.0,)) == pytest.approx(38.02, abs=0.01)
    assert store.predict_ms((6271.0,)) == pytest.approx(132.86, abs=0.01)


def test_store_min_observations_and_hinge_threshold() -> None:
    store = RegressionStore(1, min_observations=5, max_observations=64, bucket_count=16)
    pts = [(100.0 * k,) for k in range(1, 8)]
    for i, x in enumerate(pts[:4]):
        store.add(x, 10.0 + x[0] * 0.05)
        assert not store.ready and store.predict_ms(x) is None
    store.add(pts[4], 10.0 + pts[4][0] * 0.05)
    assert isinstance(store.fit, LinearFit)  # 5 samples: linear only
    store.add(pts[5], 10.0 + pts[5][0] * 0.05)
    assert isinstance(store.fit, HingeFit)  # from 6 samples on: hinge
    assert store.predict_ms((1000.0,)) == pytest.approx(60.0)
    store.add((5.0,), 0.0)  # non-positive wall time: ignored
    store.add((5.0, 1.0), 3.0)  # wrong dimension: ignored
    assert store.count == 6


def test_retention_retires_oldest_of_fattest_bucket() -> None:
    s = BucketedSamples(1, bucket_count=4, max_observations=4)
    s.add((1.0,), 1.0)
    s.add((1.0,), 2.0)
    s.add((1.0,), 3.0)
    s.add((100.0,), 4.0)
    s.add((50.0,), 5.0)  # over the cap: the bucket of x=1 (3 samples) loses its oldest
    assert s.total == 4
    assert [y for _, y in s.samples()] == [2.0, 3.0, 4.0, 5.0]


def test_retention_tie_goes_to_the_oldest_sample() -> None:
    s = BucketedSamples(1, bucket_count=2, max_observations=3)
    s.add((100.0,), 1.0)  # high bin
    s.add((1.0,), 2.0)  # low bin (bounds move: re-binned)
    s.add((2.0,), 3.0)  # low bin -> low 2, high 1
    s.add((99.0,), 4.0)  # high 2, low 2 -> tie: high holds the oldest (y=1)
    assert [y for _, y in s.samples()] == [2.0, 3.0, 4.0]


def test_retention_2d_grid_and_cap() -> None:
    s = BucketedSamples(2, bucket_count=16, max_observations=64)
    assert s.bins == 4
    rng = np.random.default_rng(5)
    for a, b in rng.uniform(1, 1000, size=(200, 2)):
        s.add((float(a), float(b)), 1.0)
    assert s.total == 64
    assert len(s.samples()) == 64
