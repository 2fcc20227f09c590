"""Pool workers run numpy's BLAS on one thread (its spinning threads took the other workers'
cores), a user's own setting wins, the driver's environment is left as it was, and the
planner's ARIMA fits give the same figures as in the driver (default thread count)."""
from __future__ import annotations

import math
import os

import pytest

from dynosim.sweep import executors
from dynosim.sweep.evaluate import PointOutcome, PointTask
from dynosim.sweep.executors import WORKER_ENV, LocalPoolExecutor


def _series() -> list[float]:
    # a seasonal, trending request count with some noise: enough for auto_arima's lstsq fits
    return [200.0 + 3.0 * i + 40.0 * math.sin(i / 3.0) + 7.0 * ((i * 37) % 11 - 5)
            for i in range(80)]


def _probe(task: PointTask) -> PointOutcome:
    """Runs in a pool worker: its BLAS thread settings and an ARIMA forecast, in the error text."""
    import numpy  # noqa: F401  (already imported with the worker's modules)

    from planner.arima import auto_arima, forecast_one

    y = _series()
    fit = auto_arima(y)
    forecast = forecast_one(fit, y) if fit is not None else float("nan")
    env = ",".join(f"{k}={os.environ.get(k, '')}" for k in sorted(WORKER_ENV))
    return PointOutcome(task.index, task.config_hash, "ok", error=f"{env}|{forecast!r}")


def _run_probe(monkeypatch: pytest.MonkeyPatch) -> tuple[str, float]:
    monkeypatch.setattr(executors, "_pool_task", _probe)
    pool = LocalPoolExecutor(1)
    try:
        pool.submit(PointTask(0, "h", None))  # type: ignore[arg-type]
        out = pool.next_outcome()
    finally:
        pool.close()
    env, forecast = out.error.split("|")
    return env, float(forecast)


def test_pool_workers_get_single_threaded_blas_and_the_same_arima_figures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from planner.arima import auto_arima, forecast_one

    for k in WORKER_ENV:
        monkeypatch.delenv(k, raising=False)
    env, forecast = _run_probe(monkeypatch)
    assert env == ",".join(f"{k}=1" for k in sorted(WORKER_ENV))
    assert not any(k in os.environ for k in WORKER_ENV)  # the driver's own env is unchanged
    y = _series()
    fit = auto_arima(y)
    assert fit is not None
    assert forecast == forecast_one(fit, y)  # bit for bit, one BLAS thread or many


def test_a_users_thread_setting_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in WORKER_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    env, _ = _run_probe(monkeypatch)
    assert "OPENBLAS_NUM_THREADS=2" in env and "OMP_NUM_THREADS=1" in env
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2"
