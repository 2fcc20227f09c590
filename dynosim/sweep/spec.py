# Over 450 lines on purpose: one concept, the sweep spec and its validation (each key with its file:line error).
"""The sweep spec: a YAML or JSON file (or a preset) describing a grid of runs.

    name: cold-start                     # optional; names the output directory by default
    base:                                # any single-run setting (RunOptions field names)
      trace: ../traces/synthetic_trace.jsonl   # relative to this file
      num_workers: 2
      extra_engine_args: {engine: {...}}       # mappings here; axes reach inside them
      planner_config: {mode: agg, ttft_ms: 1500, itl_ms: 50}
    axes:                                # name -> values, or {path, values | range}
      startup_time: {path: extra_engine_args.startup_time, range: {start: 0, stop: 300, step: 10}}
      topology: [agg:4, disagg:1:3]      # derived: workers and pools
      tp: [1, 2]                         # derived: GPUs per replica and the hardware model
    combine: product                     # or zip (axes of equal length, walked together)
    constraints: {p90_ttft_ms: 1500, p90_itl_ms: {max: 50}, gpus: {max: 8}}
    objectives: {rank: output_tok_s_per_gpu, pareto: [output_tok_s_per_gpu, output_tok_s_per_user]}
    search: {method: tpe, trials: 40, seed: 0}   # optional; default grid (every combination)
    capacity: {load: arrival_speedup_ratio, low: 0.5, high: 4, tolerance: 0.05, steps: 8}

`search` picks which points run (see dynosim/sweep/search.py): grid, random (a seeded budget
of `trials` distinct points), tpe or nsga2 (Optuna, extra `[search]`; `objective: rank` for
the one ranked metric, `pareto` for the frontier pair). `capacity` bisects, per candidate,
the highest load that still meets every constraint (see dynosim/sweep/capacity.py).

Every error names the file, the line and the field, and lists what is valid.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from dynosim.inputs.errors import InputError
from dynosim.replay import RunOptions
from dynosim.sweep.metrics import METRIC_NAMES, default_goal
from dynosim.sweep.yamlsrc import Located, Path, read_located

TOP_KEYS = ("name", "base", "axes", "combine", "constraints", "objectives", "search",
            "capacity")
BASE_KEYS: tuple[str, ...] = tuple(RunOptions.__struct_fields__)
# Settings given as JSON objects on the CLI; in a spec they are mappings axes can reach into.
MAPPING_SETTINGS = ("extra_engine_args", "prefill_engine_args", "decode_engine_args",
                    "planner_config", "router_config")
DERIVED_AXES = ("topology", "tp")
AXIS_KEYS = ("path", "values", "range")
RANGE_KEYS = ("start", "stop", "step", "num", "scale")
OBJECTIVE_KEYS = ("rank", "pareto")
GOALS = ("max", "min")
DEFAULT_RANK = "output_throughput_tok_s"
DEFAULT_PARETO = ("output_tok_s_per_gpu", "output_tok_s_per_user")
SEARCH_KEYS = ("method", "trials", "seed", "objective")
METHODS = ("grid", "random", "tpe", "nsga2")
MODEL_METHODS = ("tpe", "nsga2")  # Optuna samplers
SEARCH_OBJECTIVES = ("pareto", "rank")
CAPACITY_KEYS = ("load", "low", "high", "tolerance", "steps", "candidates")
CAPACITY_LOADS = ("arrival_speedup_ratio", "request_rate")
CAPACITY_CANDIDATES = ("all", "feasible", "pareto")
SEARCH_EXTRA = "pip install 'dynosim-tui[search]'"


@dataclass(frozen=True)
class Topology:
    """`agg:N` or `disagg:P:D`."""

    disaggregated: bool
    workers: tuple[int, ...]  # (N,) or (P, D)

    def __str__(self) -> str:
        return ("disagg:" if self.disaggregated else "agg:") + ":".join(map(str, self.workers))


@dataclass(frozen=True)
class Axis:
    name: str
    kind: Literal["path", "topology", "tp"]
    path: tuple[str, ...]  # into the base (empty for derived axes)
    values: tuple[Any, ...]
    line: int | None = None


@dataclass(frozen=True)
class Constraint:
    metric: str
    bound: float
    kind: Literal["max", "min"]  # metric <= bound, or metric >= bound

    def describe(self) -> str:
        return f"{self.metric} {'<=' if self.kind == 'max' else '>='} {self.bound:g}"


@dataclass(frozen=True)
class Objective:
    metric: str
    goal: Literal["max", "min"]


@dataclass(frozen=True)
class Search:
    """Which points run: every one (grid), or a budget of `trials` distinct evaluated points."""

    method: Literal["grid", "random", "tpe", "nsga2"] = "grid"
    trials: int | None = None  # points actually simulated; reused results do not count
    seed: int = 0
    objective: Literal["pareto", "rank"] = "pareto"  # what a model-based search optimises


@dataclass(frozen=True)
class Capacity:
    """Per candidate: the highest `load` in [low, high] meeting every constraint, by bisection
    to within `tolerance` (in the load's unit) or until `steps` runs were spent."""

    load: Literal["arrival_speedup_ratio", "request_rate"]
    low: float
    high: float
    tolerance: float
    steps: int = 10
    candidates: Literal["all", "feasible", "pareto"] = "all"


@dataclass
class SweepSpec:
    name: str
    source: str
    base: dict[str, Any]
    axes: list[Axis]
    combine: Literal["product", "zip"] = "product"
    constraints: list[Constraint] = field(default_factory=list)
    rank: Objective = Objective(DEFAULT_RANK, "max")
    pareto: tuple[Objective, Objective] = (Objective(DEFAULT_PARETO[0], "max"),
                                           Objective(DEFAULT_PARETO[1], "max"))
    located: Located | None = None
    search: Search = Search()
    capacity: Capacity | None = None

    def error_line(self, path: Path) -> int | None:
        return self.located.line(path) if self.located is not None else None


def _one_of(valid: tuple[str, ...]) -> str:
    return ", ".join(valid)


def _expect_mapping(doc: Located, path: Path, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(doc: Located, path: Path, value: dict[str, Any], valid: tuple[str, ...],
                what: str) -> None:
    for key in value:
        if key not in valid:
            raise doc.error((*path, key), f"unknown {what} '{key}'; valid: {_one_of(valid)}")


def _number(doc: Located, path: Path, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise doc.error(path, f"expected a finite number, got {v!r}")
    return v


def _range_values(doc: Located, path: Path, r: Any) -> list[Any]:
    r = _expect_mapping(doc, path, r)
    _check_keys(doc, path, r, RANGE_KEYS, "range key")
    for k in ("start", "stop"):
        if k not in r:
            raise doc.error(path, f"a range needs '{k}' (keys: {_one_of(RANGE_KEYS)})")
    start = _number(doc, (*path, "start"), r["start"])
    stop = _number(doc, (*path, "stop"), r["stop"])
    scale = r.get("scale", "linear")
    if scale not in ("linear", "log"):
        raise doc.error((*path, "scale"), f"must be linear or log, got {scale!r}")
    if ("step" in r) == ("num" in r):
        raise doc.error(path, "a range needs exactly one of 'step' (linear: added; log: "
                        "multiplied) or 'num' (number of points)")
    ints = all(isinstance(x, int) for x in (r["start"], r["stop"], r.get("step", 1)))
    if "num" in r:
        num = r["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise doc.error((*path, "num"), f"expected an integer >= 1, got {num!r}")
    if scale == "linear":
        if "step" in r:
            step = _number(doc, (*path, "step"), r["step"])
            if step <= 0:
                raise doc.error((*path, "step"), f"must be > 0, got {step!r}")
            if stop < start:
                raise doc.error((*path, "stop"), f"must be >= start ({start}), got {stop}")
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            vals = [start + i * step for i in range(n)]
        else:
            vals = [start + (stop - start) * i / (num - 1) if num > 1 else start
                    for i in range(num)]
            ints = ints and all(float(v).is_integer() for v in vals)
    else:
        if start <= 0 or stop <= 0:
            raise doc.error(path, f"a log range needs start and stop > 0, got {start}, {stop}")
        if "step" in r:
            factor = _number(doc, (*path, "step"), r["step"])
            if factor <= 1:
                raise doc.error((*path, "step"), f"a log step multiplies: must be > 1, got "
                                f"{factor!r}")
            n = int(math.floor(math.log(stop / start) / math.log(factor) + 1e-9)) + 1
            vals = [start * factor ** i for i in range(n)]
        else:
            vals = [start * (stop / start) ** (i / (num - 1)) if num > 1 else start
                    for i in range(num)]
    if ints:  # integer ranges stay integers (num_workers, startup_time in s); duplicates dropped
        return list(dict.fromkeys(int(round(v)) for v in vals))
    return [float(f"{v:.12g}") for v in vals]


def _parse_topology(doc: Located, path: Path, v: Any) -> Topology:
    text = str(v)
    parts = text.split(":")
    try:
        nums = tuple(int(p) for p in parts[1:])
    except ValueError:
        nums = ()
    ok = (parts[0] == "agg" and len(nums) == 1) or (parts[0] == "disagg" and len(nums) == 2)
    if not ok or any(n < 1 for n in nums):
        raise doc.error(path, f"expected agg:N or disagg:P:D (worker counts >= 1), got {text!r}")
    return Topology(parts[0] == "disagg", nums)


def _parse_axis(doc: Located, name: str, raw: Any) -> Axis:
    path: Path = ("axes", name)
    shorthand = isinstance(raw, list)  # `name: [v1, v2]` = {values: [v1, v2]}
    if shorthand:
        raw = {"values": raw}
    else:
        raw = _expect_mapping(doc, path, raw)
        _check_keys(doc, path, raw, AXIS_KEYS, "axis key")
    lines_path = path
    if "path" in raw:
        text = raw["path"]
        if not isinstance(text, str) or not text:
            raise doc.error((*path, "path"), f"expected a dotted path, got {text!r}")
        segs = tuple(text.split("."))
        if segs[0] not in BASE_KEYS:
            raise doc.error((*path, "path"), f"'{segs[0]}' is not a run setting; valid: "
                            f"{_one_of(BASE_KEYS)} (and the derived axes topology, tp "
                            "without a path)")
        if len(segs) > 1 and segs[0] not in MAPPING_SETTINGS:
            raise doc.error((*path, "path"), f"'{segs[0]}' is a plain setting with no keys "
                            f"inside; only {_one_of(MAPPING_SETTINGS)} have")
        if len(segs) == 1 and segs[0] in MAPPING_SETTINGS:
            raise doc.error((*path, "path"), f"name a key inside {segs[0]}, e.g. "
                            f"{segs[0]}.<key>")
        kind: Literal["path", "topology", "tp"] = "path"
    elif name in DERIVED_AXES:
        segs, kind = (), name  # type: ignore[assignment]
    elif name in BASE_KEYS and name not in MAPPING_SETTINGS:
        segs, kind = (name,), "path"
    else:
        raise doc.error(path, f"axis '{name}' needs a 'path' into the base (e.g. "
                        "extra_engine_args.startup_time, planner_config.ttft_ms, num_workers) "
                        f"unless it is a run setting or one of {_one_of(DERIVED_AXES)}")
    if ("values" in raw) == ("range" in raw):
        raise doc.error(path, "an axis needs exactly one of 'values' (a list) or 'range' "
                        f"({{{_one_of(RANGE_KEYS)}}})")
    if "values" in raw:
        vals = raw["values"]
        if not isinstance(vals, list) or not vals:
            raise doc.error(path if shorthand else (*path, "values"),
                            "expected a non-empty list")
        values = list(vals)
    else:
        values = _range_values(doc, (*path, "range"), raw["range"])
    if kind == "topology":
        values = [_parse_topology(doc, (*path, "values", i), v) for i, v in enumerate(values)]
    elif kind == "tp":
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise doc.error((*path, "values", i), f"expected a TP size >= 1, got {v!r}")
    return Axis(name, kind, segs, tuple(values), doc.line(lines_path))


def _metric(doc: Located, path: Path, name: Any) -> str:
    if not isinstance(name, str) or name not in METRIC_NAMES:
        raise doc.error(path, f"unknown metric {name!r}; valid: {_one_of(METRIC_NAMES)}")
    return name


def _objective(doc: Located, path: Path, raw: Any) -> Objective:
    if isinstance(raw, dict):
        _check_keys(doc, path, raw, ("metric", "goal"), "objective key")
        metric = _metric(doc, (*path, "metric"), raw.get("metric"))
        goal = raw.get("goal", default_goal(metric))
        if goal not in GOALS:
            raise doc.error((*path, "goal"), f"must be max or min, got {goal!r}")
        return Objective(metric, goal)
    metric = _metric(doc, path, raw)
    return Objective(metric, default_goal(metric))  # type: ignore[arg-type]


def _constraints(doc: Located, raw: Any) -> list[Constraint]:
    path: Path = ("constraints",)
    raw = _expect_mapping(doc, path, raw)
    out = []
    for metric, bound in raw.items():
        p = (*path, metric)
        _metric(doc, p, metric)
        if isinstance(bound, dict):
            _check_keys(doc, p, bound, GOALS, "bound")
            if len(bound) != 1:
                raise doc.error(p, "give one bound: {max: X} (metric <= X) or {min: X}")
            kind, value = next(iter(bound.items()))
            p = (*p, kind)
        else:
            kind, value = "max", bound
        value = _number(doc, p, value)
        if value <= 0 and kind == "max":
            raise doc.error(p, f"an upper bound must be > 0, got {value}")
        out.append(Constraint(metric, float(value), kind))
    return out


def _int(doc: Located, path: Path, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise doc.error(path, f"expected an integer >= {low}, got {v!r}")
    return v


def optuna_missing() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return True
    return False


def _search(doc: Located, raw: Any) -> Search:
    path: Path = ("search",)
    raw = _expect_mapping(doc, path, raw)
    _check_keys(doc, path, raw, SEARCH_KEYS, "search key")
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise doc.error((*path, "method"), f"unknown search method {method!r}; valid: "
                        f"{_one_of(METHODS)}")
    if method == "grid":
        extra = [k for k in ("trials", "objective") if k in raw]
        if extra:
            raise doc.error((*path, extra[0]), f"grid runs every point: '{extra[0]}' applies "
                            f"to the methods {_one_of(METHODS[1:])}")
        trials = None
    elif "trials" not in raw:
        raise doc.error(path, f"search method {method} needs 'trials' (how many points to "
                        "simulate; results already on disk do not count)")
    else:
        trials = _int(doc, (*path, "trials"), raw["trials"], 1)
    seed = _int(doc, (*path, "seed"), raw.get("seed", 0), 0)
    objective = raw.get("objective", "pareto")
    if objective not in SEARCH_OBJECTIVES:
        raise doc.error((*path, "objective"), f"must be pareto (the frontier pair) or rank "
                        f"(the ranked metric), got {objective!r}")
    if method in MODEL_METHODS and optuna_missing():
        raise doc.error((*path, "method"), f"search method {method} needs Optuna: "
                        f"{SEARCH_EXTRA}")
    return Search(method, trials, seed, objective)


def _capacity(doc: Located, raw: Any, base: dict[str, Any], axes: list[Axis],
              constraints: list[Constraint]) -> Capacity:
    path: Path = ("capacity",)
    raw = _expect_mapping(doc, path, raw)
    _check_keys(doc, path, raw, CAPACITY_KEYS, "capacity key")
    for k in ("load", "low", "high", "tolerance"):
        if k not in raw:
            raise doc.error(path, f"capacity needs '{k}' (keys: {_one_of(CAPACITY_KEYS)})")
    load = raw["load"]
    if load not in CAPACITY_LOADS:
        raise doc.error((*path, "load"), f"unknown load {load!r}; valid: "
                        f"{_one_of(CAPACITY_LOADS)}")
    if load == "arrival_speedup_ratio" and base.get("trace") is None:
        raise doc.error((*path, "load"), "arrival_speedup_ratio scales a trace: the base has "
                        "none (a synthetic workload bisects request_rate)")
    if load == "request_rate" and (base.get("trace") is not None
                                   or base.get("request_rate") is None):
        raise doc.error((*path, "load"), "request_rate needs a synthetic workload with a "
                        "request_rate in the base (a trace bisects arrival_speedup_ratio)")
    for a in axes:
        if a.path == (load,):
            raise doc.error((*path, "load"), f"axis '{a.name}' already sets {load}: bisect a "
                            "load that is not an axis")
    if not constraints:
        raise doc.error(path, "capacity is the highest load within the constraints: give "
                        "some (e.g. constraints: {p90_ttft_ms: 500})")
    low = _number(doc, (*path, "low"), raw["low"])
    high = _number(doc, (*path, "high"), raw["high"])
    if low <= 0:
        raise doc.error((*path, "low"), f"must be > 0, got {low}")
    if high <= low:
        raise doc.error((*path, "high"), f"must be > low ({low:g}), got {high:g}")
    tol = _number(doc, (*path, "tolerance"), raw["tolerance"])
    if tol <= 0:
        raise doc.error((*path, "tolerance"), f"must be > 0, got {tol}")
    steps = _int(doc, (*path, "steps"), raw.get("steps", 10), 2)
    cands = raw.get("candidates", "all")
    if cands not in CAPACITY_CANDIDATES:
        raise doc.error((*path, "candidates"), f"must be one of "
                        f"{_one_of(CAPACITY_CANDIDATES)}, got {cands!r}")
    return Capacity(load, float(low), float(high), float(tol), steps, cands)


def _base(doc: Located, raw: Any, spec_dir: str) -> dict[str, Any]:
    base = dict(_expect_mapping(doc, ("base",), raw))
    _check_keys(doc, ("base",), base, BASE_KEYS, "base setting")
    for key in MAPPING_SETTINGS:
        v = base.get(key)
        if v is not None and not isinstance(v, (dict, str)):
            raise doc.error(("base", key), "expected a mapping (or a JSON string / file path, "
                            "as on the command line)")
    trace = base.get("trace")
    if trace is not None:
        if not isinstance(trace, str):
            raise doc.error(("base", "trace"), f"expected a file path, got {trace!r}")
        if not os.path.isabs(trace):
            base["trace"] = os.path.normpath(os.path.join(spec_dir, trace))
    return base


def parse_spec(doc: Located, spec_dir: str, default_name: str) -> SweepSpec:
    top = _expect_mapping(doc, (), doc.value)
    _check_keys(doc, (), top, TOP_KEYS, "top-level key")
    if "base" not in top:
        raise doc.error((), "missing 'base' (the settings every run shares)")
    base = _base(doc, top["base"], spec_dir)
    axes_raw = top.get("axes")
    if not axes_raw:
        raise doc.error(("axes",), "the sweep has no axes: give at least one, e.g. "
                        "{startup_time: {path: extra_engine_args.startup_time, values: [0, 60]}}")
    axes_raw = _expect_mapping(doc, ("axes",), axes_raw)
    axes = [_parse_axis(doc, name, raw) for name, raw in axes_raw.items()]
    for key in MAPPING_SETTINGS:
        for ax in axes:
            if ax.path and ax.path[0] == key and len(ax.path) > 1:
                v = base.get(key)
                if isinstance(v, str):
                    try:
                        base[key] = json.loads(v)
                    except ValueError:
                        raise doc.error(("base", key), "axes reach inside this setting: give "
                                        "it as a mapping, not a file path") from None
    combine = top.get("combine", "product")
    if combine not in ("product", "zip"):
        raise doc.error(("combine",), f"must be product or zip, got {combine!r}")
    if combine == "zip" and len({len(a.values) for a in axes}) > 1:
        lens = ", ".join(f"{a.name}: {len(a.values)}" for a in axes)
        raise doc.error(("combine",), f"zip needs axes of equal length, got {lens}")
    if combine == "product":
        for a in axes:
            if len(set(map(repr, a.values))) != len(a.values):
                raise doc.error(("axes", a.name), "axis values repeat")
    elif len(set(map(repr, zip(*(a.values for a in axes))))) != len(axes[0].values):
        raise doc.error(("axes",), "zipped axes give the same combination twice")
    constraints = _constraints(doc, top["constraints"]) if "constraints" in top else []
    obj = _expect_mapping(doc, ("objectives",), top.get("objectives", {}))
    _check_keys(doc, ("objectives",), obj, OBJECTIVE_KEYS, "objectives key")
    rank = (_objective(doc, ("objectives", "rank"), obj["rank"]) if "rank" in obj
            else Objective(DEFAULT_RANK, "max"))
    if "pareto" in obj:
        pr = obj["pareto"]
        if not isinstance(pr, list) or len(pr) != 2:
            raise doc.error(("objectives", "pareto"), "expected two metrics, e.g. "
                            "[output_tok_s_per_gpu, output_tok_s_per_user]")
        pareto = (_objective(doc, ("objectives", "pareto", 0), pr[0]),
                  _objective(doc, ("objectives", "pareto", 1), pr[1]))
    else:
        pareto = (Objective(DEFAULT_PARETO[0], "max"), Objective(DEFAULT_PARETO[1], "max"))
    name = top.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise doc.error(("name",), f"expected a non-empty string, got {name!r}")
    search = _search(doc, top["search"]) if "search" in top else Search()
    capacity = (_capacity(doc, top["capacity"], base, axes, constraints)
                if "capacity" in top else None)
    return SweepSpec(name, doc.source, base, axes, combine, constraints, rank, pareto, doc,
                     search, capacity)


def override_axes(doc: Located, overrides: list[str]) -> None:
    """`--axis NAME=V1,V2,...`: replace an axis's values (each item read as YAML)."""
    import yaml

    axes = doc.value.get("axes") if isinstance(doc.value, dict) else None
    for text in overrides:
        name, sep, vals = text.partition("=")
        if not sep or not vals:
            raise InputError(f"expected NAME=V1,V2,..., got {text!r}", source="--axis")
        if not isinstance(axes, dict) or name not in axes:
            valid = ", ".join(axes) if isinstance(axes, dict) else "none"
            raise InputError(f"no axis '{name}' in the spec; its axes: {valid}",
                             source="--axis")
        try:
            values = [yaml.safe_load(v) for v in vals.split(",")]
        except yaml.YAMLError:
            raise InputError(f"cannot read the values {vals!r}", source="--axis") from None
        raw = axes[name]
        axes[name] = ({k: v for k, v in raw.items() if k != "range"} | {"values": values}
                      if isinstance(raw, dict) else values)


def load_spec(path: str, axis_overrides: list[str] | None = None) -> SweepSpec:
    doc = read_located(path)
    override_axes(doc, axis_overrides or [])
    stem = os.path.splitext(os.path.basename(path))[0]
    return parse_spec(doc, os.path.dirname(path), stem)


def spec_from_mapping(value: dict[str, Any], source: str, default_name: str,
                      axis_overrides: list[str] | None = None) -> SweepSpec:
    """A spec built in code (presets): same checks, no line numbers."""
    doc = Located(value, {}, source)
    override_axes(doc, axis_overrides or [])
    return parse_spec(doc, "", default_name)
