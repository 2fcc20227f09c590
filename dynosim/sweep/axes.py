"""Grid points and what each one runs: axis values applied to the base give one RunOptions.

Order of application: path axes write into the base first, then `topology` spreads the engine
args over the pools it needs, then `tp` sets the TP size (and the hardware model's TP) in every
pool in use. So `extra_engine_args.startup_time` reaches both pools of a disagg topology."""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import msgspec

from dynosim.inputs.errors import InputError
from dynosim.replay import RunOptions
from dynosim.outputs.report import VERSION
from dynosim.sweep.spec import MAPPING_SETTINGS, Axis, SweepSpec, Topology


@dataclass(frozen=True)
class Point:
    index: int  # position in the grid (product: last axis fastest)
    values: dict[str, Any]  # axis name -> value (topology as its text form)
    options: RunOptions
    config_hash: str


def grid(spec: SweepSpec) -> list[tuple[Any, ...]]:
    if spec.combine == "zip":
        return list(zip(*(a.values for a in spec.axes)))
    return list(itertools.product(*(a.values for a in spec.axes)))


def space_size(spec: SweepSpec) -> int:
    if spec.combine == "zip":
        return len(spec.axes[0].values)
    return math.prod(len(a.values) for a in spec.axes)


def combo_at(spec: SweepSpec, index: int) -> tuple[Any, ...]:
    """grid(spec)[index] without building the grid (product: the last axis varies fastest)."""
    if spec.combine == "zip":
        return tuple(a.values[index] for a in spec.axes)
    out = []
    for a in reversed(spec.axes):
        index, k = divmod(index, len(a.values))
        out.append(a.values[k])
    return tuple(reversed(out))


def index_of(spec: SweepSpec, positions: tuple[int, ...]) -> int:
    """The grid index of one value position per axis (product combine)."""
    index = 0
    for a, k in zip(spec.axes, positions):
        index = index * len(a.values) + k
    return index


def _set_path(config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    if len(path) == 1:
        config[path[0]] = value
        return
    node = config.get(path[0])
    if node is None:
        node = config[path[0]] = {}
    for seg in path[1:-1]:
        nxt = node.get(seg)
        if nxt is None:
            nxt = node[seg] = {}
        elif not isinstance(nxt, dict):
            raise InputError(f"'{seg}' holds a value, not a mapping, so the path cannot go "
                             "deeper", field=".".join(path))
        node = nxt
    node[path[-1]] = value


def _apply_topology(config: dict[str, Any], topo: Topology) -> None:
    agg_args = config.get("extra_engine_args")
    if topo.disaggregated:
        pre = config.get("prefill_engine_args") or copy.deepcopy(agg_args) or {}
        dec = config.get("decode_engine_args") or copy.deepcopy(agg_args) or {}
        config.update(extra_engine_args=None, prefill_engine_args=pre, decode_engine_args=dec,
                      num_prefill_workers=topo.workers[0], num_decode_workers=topo.workers[1])
    else:
        args = agg_args if agg_args is not None else config.get("decode_engine_args")
        if isinstance(args, dict):
            args = copy.deepcopy(args)
            eng = args.get("engine") if "engine" in args else args
            if isinstance(eng, dict):  # a decode pool's role does not carry over
                eng.pop("worker_type", None)
        config.update(extra_engine_args=args, prefill_engine_args=None,
                      decode_engine_args=None, num_workers=topo.workers[0])
    planner = config.get("planner_config")
    if isinstance(planner, dict):
        planner["mode"] = "disagg" if topo.disaggregated else "agg"


def _apply_tp(config: dict[str, Any], tp: int) -> None:
    disagg = config.get("prefill_engine_args") is not None or \
        config.get("decode_engine_args") is not None
    keys = ("prefill_engine_args", "decode_engine_args") if disagg else ("extra_engine_args",)
    for key in keys:
        args = config.get(key)
        if args is None:
            args = config[key] = {}
        if not isinstance(args, dict):
            raise InputError("the tp axis sets tensor_parallel_size inside it: give it as a "
                             "mapping", field=key)
        args["tensor_parallel_size"] = tp
        eng = args.get("engine") if "engine" in args else args
        if isinstance(eng, dict) and (eng.get("aic_backend") is not None
                                      or "aic_tp_size" in eng):
            eng["aic_tp_size"] = tp  # the hardware model times a TP-sized replica
    planner = config.get("planner_config")
    if isinstance(planner, dict):
        for k in ("prefill_engine_num_gpu", "decode_engine_num_gpu"):
            if planner.get(k) is not None:
                planner[k] = tp


def _json_arg(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, dict) else v


def point_config(spec: SweepSpec, combo: tuple[Any, ...]) -> dict[str, Any]:
    """The base with one combination of axis values applied (mappings still mappings)."""
    config = copy.deepcopy(spec.base)
    derived: list[tuple[Axis, Any]] = []
    for axis, value in zip(spec.axes, combo):
        if axis.kind == "path":
            try:
                _set_path(config, axis.path, value)
            except InputError as e:
                raise InputError(e.message, source=spec.source, line=axis.line,
                                 field=f"axes.{axis.name}.path") from None
        else:
            derived.append((axis, value))
    for axis, value in sorted(derived, key=lambda av: av[0].kind != "topology"):
        if axis.kind == "topology":
            _apply_topology(config, value)
        else:
            try:
                _apply_tp(config, value)
            except InputError as e:
                raise InputError(e.message, source=spec.source, line=axis.line,
                                 field=f"base.{e.field}") from None
    return config


def to_options(config: dict[str, Any]) -> RunOptions:
    """Mapping-valued settings become the JSON text the CLI takes, so a point's options are
    exactly what `dynosim-tui TRACE --flag JSON ...` would build."""
    d = {k: (_json_arg(v) if k in MAPPING_SETTINGS else v) for k, v in config.items()}
    return msgspec.convert(d, RunOptions)


def config_hash(options: RunOptions, trace_digest: str | None) -> str:
    """Identifies a point's result: its options, the trace's content and our version."""
    payload = msgspec.json.encode({"options": options, "trace": trace_digest,
                                   "version": VERSION})
    return hashlib.sha256(payload).hexdigest()[:16]


def display_value(v: Any) -> Any:
    return str(v) if isinstance(v, Topology) else v


def file_digest(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None  # the run itself reports the unreadable trace
    return h.hexdigest()
