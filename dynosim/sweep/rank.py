"""Constraints, penalties, ranking and the Pareto frontier over finished points.

Penalty (as the reference ranks): the sum over constraints of max(metric/bound - 1, 0) for an
upper bound (max(bound/metric - 1, 0) for a lower one); a missing metric counts as infinite.
Feasible = penalty 0. Feasible points rank first, by the objective (ties: fewer GPUs, then grid
order); infeasible ones follow by penalty. The Pareto set is the feasible points no other
feasible point dominates on the two frontier metrics (every point when none is feasible).

A point whose replay stranded requests (it ran out of events with requests still waiting: the
reference stops with an error there, and our CLI exits 1) is infeasible whatever the constraints
say, since its latencies describe only the requests that finished; a spec that constrains
`stranded_requests` itself decides instead."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from dynosim.sweep.spec import Constraint, Objective

Metrics = Mapping[str, float | None]


@dataclass(frozen=True)
class Violation:
    constraint: Constraint
    value: float | None
    excess: float  # max(value/bound - 1, 0) (lower bounds: bound/value - 1); inf if missing

    def describe(self) -> str:
        c = self.constraint
        if c is UNFINISHED:
            return f"{c.metric} {self.value:.4g}>0 (the replay could not finish)"
        if self.value is None:
            return f"{c.metric} missing"
        op = ">" if c.kind == "max" else "<"
        return f"{c.metric} {self.value:.4g}{op}{c.bound:g} (+{self.excess:.0%})"


# The implicit requirement that a point's replay finished (see the module doc).
UNFINISHED = Constraint("stranded_requests", 0.0, "max")


def violations(m: Metrics, constraints: Sequence[Constraint]) -> list[Violation]:
    out = []
    stranded = m.get("stranded_requests")
    if stranded and not any(c.metric == UNFINISHED.metric for c in constraints):
        out.append(Violation(UNFINISHED, stranded, math.inf))
    for c in constraints:
        v = m.get(c.metric)
        if v is None or not math.isfinite(v):
            out.append(Violation(c, None, math.inf))
            continue
        if c.kind == "max":
            excess = max(v / c.bound - 1.0, 0.0)
        else:
            excess = max(c.bound / v - 1.0, 0.0) if v > 0 else math.inf
        if excess > 0:
            out.append(Violation(c, v, excess))
    return out


def penalty(vs: Sequence[Violation]) -> float:
    return sum(v.excess for v in vs)


def _key(m: Metrics, obj: Objective) -> float:
    v = m.get(obj.metric)
    if v is None or not math.isfinite(v):
        return math.inf  # a point without the metric ranks last among its peers
    return -v if obj.goal == "max" else v


def rank_order(points: Sequence[tuple[int, Metrics, float]], objective: Objective) -> list[int]:
    """Point indices best first. `points`: (index, metrics, penalty) of the finished points."""
    def key(p: tuple[int, Metrics, float]) -> tuple[int, float, float, int]:
        idx, m, pen = p
        gpus = m.get("gpus")
        g = gpus if gpus is not None else math.inf
        if pen == 0:
            return (0, _key(m, objective), g, idx)
        return (1, pen, g, idx)
    return [p[0] for p in sorted(points, key=key)]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a, b in 'larger is better' form."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_set(points: Sequence[tuple[int, Metrics, float]],
               objectives: Sequence[Objective]) -> set[int]:
    feasible = [p for p in points if p[2] == 0]
    pool = feasible or list(points)
    scored: list[tuple[int, list[float]]] = []
    for idx, m, _ in pool:
        vals = [m.get(o.metric) for o in objectives]
        finite = [v for v in vals if v is not None and math.isfinite(v)]
        if len(finite) != len(objectives):
            continue
        scored.append((idx, [v if o.goal == "max" else -v for v, o in zip(finite, objectives)]))
    return {i for i, s in scored if not any(dominates(t, s) for j, t in scored if j != i)}
