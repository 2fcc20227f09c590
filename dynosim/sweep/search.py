"""Which points a sweep runs: a strategy proposes grid indices and is told each one's result.

    grid    every combination, in grid order (the default)
    random  `trials` distinct points drawn without replacement (seeded)
    tpe     Optuna's TPE sampler; with constraints (infeasible points steer it away)
    nsga2   Optuna's NSGA-II; with constraints

The runner asks for up to `n` indices (the executor's free slots), runs or reuses them and tells
every result back. The budget (`trials`) counts points actually simulated: a result already on
disk (same config hash) is told with `reused=True` and frees its slot for another point.

Model-based strategies work in batches: while a batch is open (no simulated result of it has
come back yet) asks fill the free slots; then no new trial until the whole batch is told. So the
study sees the same history whatever order the executor finishes points in, and a seeded search
proposes the same points on any executor with the same slots. A model's repeat suggestion of a
point it already knows is answered from memory (it costs no simulation and no budget)."""
from __future__ import annotations

import math
import random
import time
import warnings
from typing import Any, Literal, Mapping, Protocol, Sequence

from dynosim.sweep.axes import space_size
from dynosim.sweep.spec import Objective, SweepSpec

Metrics = Mapping[str, float | None]
# Repeat suggestions allowed per budgeted trial before a model-based search gives up (its
# model keeps pointing at points it has already seen: the space is exhausted for it).
REPEATS_PER_TRIAL = 20
# A stand-in for an unmeasurable constraint (a metric the run did not produce).
MISSING_CONSTRAINT = 1e9


class Strategy(Protocol):
    evaluated: int  # points simulated so far (the budget's unit)
    repeats: int  # a model's suggestions of points it already knew (answered from memory)

    def ask(self, n: int) -> list[int]:
        """Up to `n` grid indices to run now; [] with nothing outstanding means finished."""
        ...

    def tell(self, index: int, metrics: Metrics | None, reused: bool) -> None:
        """The result of a proposed index (`metrics` None: the point failed)."""
        ...

    def optimizer_seconds(self) -> float:
        """Time spent choosing points (asks and tells), for the 'optimizer cost' figure."""
        ...


class GridStrategy:
    """Every grid point once. With points running side by side (the first still running when
    more are asked for), the two ends of the grid go first; the end still running when the
    other finishes is the costlier one, and the rest follow from its side inward: points'
    costs mostly trend along an axis (the cold-start sweep's rise with startup_time), so the
    longest run first and the shortest fill the tail while the other workers finish. One
    slot, or no such signal: grid order. The order changes only when points run, not what
    they give."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lo = 0  # the remaining points are lo..hi (inclusive)
        self._hi = size - 1
        self._told: set[int] = set()
        self._ends: tuple[int, int] | None = None  # both ends handed out, neither told
        self._from_end = False  # the rest from the high end down
        self.evaluated = 0
        self.repeats = 0

    def ask(self, n: int) -> list[int]:
        out: list[int] = []
        if n > 0 and self._lo == 0 and self.size >= 3:
            out.append(0)
            self._lo = 1
        if (len(out) < n and self._lo == 1 and self._hi == self.size - 1 and self.size >= 3
                and 0 not in self._told):
            out.append(self._hi)  # the other end, beside the first
            self._hi -= 1
            self._ends = (0, self.size - 1)
        while len(out) < n and self._lo <= self._hi:
            if self._from_end:
                out.append(self._hi)
                self._hi -= 1
            else:
                out.append(self._lo)
                self._lo += 1
        return out

    def tell(self, index: int, metrics: Metrics | None, reused: bool) -> None:
        self._told.add(index)
        if not reused:
            self.evaluated += 1
        if self._ends is not None and index in self._ends:
            # the first end to finish simulating is the cheaper one (one from disk: no signal)
            self._from_end = not reused and index == self._ends[0]
            self._ends = None

    def optimizer_seconds(self) -> float:
        return 0.0


class RandomStrategy:
    """Distinct points in a seeded random order until `trials` were simulated."""

    def __init__(self, size: int, trials: int, seed: int) -> None:
        self.size = size
        self.trials = trials
        self._rng = random.Random(seed)
        self._order: list[int] | None = None  # a shuffled grid (small spaces)
        self._seen: set[int] = set()
        self._outstanding = 0
        self.evaluated = 0
        self.repeats = 0

    def _draw(self) -> int | None:
        if len(self._seen) >= self.size:
            return None
        if self.size <= 1_000_000:
            if self._order is None:
                self._order = list(range(self.size))
                self._rng.shuffle(self._order)
            return self._order[len(self._seen)]
        while True:  # a huge space: rejection sampling stays cheap far from exhaustion
            i = self._rng.randrange(self.size)
            if i not in self._seen:
                return i

    def ask(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n and self.evaluated + self._outstanding < self.trials:
            i = self._draw()
            if i is None:
                break
            self._seen.add(i)
            self._outstanding += 1
            out.append(i)
        return out

    def tell(self, index: int, metrics: Metrics | None, reused: bool) -> None:
        self._outstanding -= 1
        if not reused:
            self.evaluated += 1

    def optimizer_seconds(self) -> float:
        return 0.0


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


class OptunaStrategy:
    """An Optuna study over the axes' values, driven by ask-and-tell.

    Each axis is one parameter: numeric axes an integer position in their sorted values (so
    the model sees their order), others a categorical choice; a zip sweep is one parameter
    over its rows. Objectives: the frontier pair (`objective: pareto`) or the ranked metric;
    constraints as Optuna constraints (metric/bound - 1 <= 0); failures as failed trials."""

    def __init__(self, spec: SweepSpec, trials: int, seed: int, method: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.size = space_size(spec)
        self.trials = trials
        self.evaluated = 0
        self.repeats = 0
        self._seconds = 0.0
        self._objectives: tuple[Objective, ...] = (
            spec.pareto if spec.search.objective == "pareto" else (spec.rank,))
        directions: list[Literal["minimize", "maximize"]] = [
            "maximize" if o.goal == "max" else "minimize" for o in self._objectives]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: optuna.samplers.BaseSampler
            if method == "tpe":
                sampler = optuna.samplers.TPESampler(
                    seed=seed, multivariate=True,
                    n_startup_trials=max(4, min(10, trials // 4)))
            else:
                sampler = optuna.samplers.NSGAIISampler(
                    seed=seed,
                    population_size=max(4, min(50, trials // 4)))
        self._study = optuna.create_study(directions=directions, sampler=sampler)
        dist = optuna.distributions
        self._dists: dict[str, Any] = {}
        self._decode: list[list[int]] = []  # per parameter: parameter value -> value position
        axes = spec.axes
        groups = [list(range(len(axes[0].values)))] if spec.combine == "zip" else [
            list(range(len(a.values))) for a in axes]
        names = ["row"] if spec.combine == "zip" else [a.name for a in axes]
        for k, (name, positions) in enumerate(zip(names, groups)):
            values = axes[0].values if spec.combine == "zip" else axes[k].values
            if spec.combine != "zip" and _numeric(values) and len(values) > 1:
                order = sorted(positions, key=lambda i: values[i])
                self._dists[name] = dist.IntDistribution(0, len(order) - 1)
                self._decode.append(order)
            else:
                self._dists[name] = dist.CategoricalDistribution(positions)
                self._decode.append(positions)
        self._known: dict[int, tuple[list[float] | None, list[float]]] = {}
        self._waiting: dict[int, list[Any]] = {}  # index -> trials awaiting its result
        self._open = True
        self._asks = 0

    def _index(self, trial: Any) -> int:
        if self.spec.combine == "zip":
            return int(trial.params["row"])
        index = 0
        for (name, decode), axis in zip(zip(self._dists, self._decode), self.spec.axes):
            index = index * len(axis.values) + decode[int(trial.params[name])]
        return index

    def _finish(self, trial: Any, result: tuple[list[float] | None, list[float]]) -> None:
        import optuna

        values, cons = result
        if values is None:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        for c, v in zip(self.spec.constraints, cons):  # the samplers read these
            trial.set_constraint(c.metric, v)
        self._study.tell(trial, values)

    def ask(self, n: int) -> list[int]:
        t0 = time.perf_counter()
        try:
            return self._ask(n)
        finally:
            self._seconds += time.perf_counter() - t0

    def _ask(self, n: int) -> list[int]:
        if not self._open:
            if self._waiting:
                return []  # the batch is still running
            self._open = True
        out: list[int] = []
        limit = REPEATS_PER_TRIAL * self.trials + self.size
        while (len(out) < n and self.evaluated + len(self._waiting) < self.trials
               and self._asks < limit and len(self._known) + len(self._waiting) < self.size):
            trial = self._study.ask(self._dists)
            self._asks += 1
            index = self._index(trial)
            if index in self._known:  # a repeat: answered from memory
                self._finish(trial, self._known[index])
                self.repeats += 1
            elif index in self._waiting:  # running already: told when it finishes
                self._waiting[index].append(trial)
            else:
                self._waiting[index] = [trial]
                out.append(index)
        return out

    def _result(self, metrics: Metrics | None) -> tuple[list[float] | None, list[float]]:
        if metrics is None:
            return None, []
        values = [metrics.get(o.metric) for o in self._objectives]
        if any(v is None or not math.isfinite(v) for v in values):
            return None, []  # nothing to rank it by: a failed trial for the model
        cons = []
        for c in self.spec.constraints:
            v = metrics.get(c.metric)
            if v is None or not math.isfinite(v):
                cons.append(MISSING_CONSTRAINT)
            elif c.kind == "max":
                cons.append(v / c.bound - 1.0)
            else:
                cons.append(c.bound / v - 1.0 if v > 0 else MISSING_CONSTRAINT)
        return [float(v) for v in values if v is not None], cons

    def tell(self, index: int, metrics: Metrics | None, reused: bool) -> None:
        t0 = time.perf_counter()
        result = self._known[index] = self._result(metrics)
        for trial in self._waiting.pop(index, []):
            self._finish(trial, result)
        if not reused:
            self.evaluated += 1
            self._open = False  # a simulated result arrived: the batch is closed
        self._seconds += time.perf_counter() - t0

    def optimizer_seconds(self) -> float:
        return self._seconds


def make_strategy(spec: SweepSpec) -> Strategy:
    s = spec.search
    size = space_size(spec)
    if s.method == "grid":
        return GridStrategy(size)
    assert s.trials is not None
    if s.method == "random":
        return RandomStrategy(size, s.trials, s.seed)
    return OptunaStrategy(spec, s.trials, s.seed, s.method)
