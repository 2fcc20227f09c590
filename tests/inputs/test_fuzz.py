"""Property-based fuzzing of the input parsers (issue 11): whatever the bytes or the JSON values,
the outcome is a valid result or one `InputError` line naming the file (or flag), the line and
the field; never another exception.

Bounded: a modest, fixed set of examples per property and no deadline (the machine is shared),
so the module runs in a few seconds. For a deeper hunt: DYNOSIM_FUZZ_EXAMPLES=5000 (random
examples then, a different set each run).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynosim.inputs.engine_args as engine_args
import dynosim.inputs.router_config as router_config
from dynosim.inputs.errors import InputError
from dynosim.inputs.trace import load_mooncake
from dynosim.planner_setup import load_planner_config
from engine.workload import Workload
from planner.config import PlannerConfig

_DEEP = os.environ.get("DYNOSIM_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_DEEP or 60), deadline=None, derandomize=_DEEP is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TRACE_FIELDS = ("timestamp", "created_time", "input_length", "input_tokens", "output_length",
                "output_tokens", "hash_ids", "session_id", "delay", "delay_ms", "request_id",
                "output_token_ids", "priority", "strict_priority", "policy_class")

# Any JSON value, the awkward ones included: huge and negative integers, floats, deep nesting.
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=12)
# Mostly plausible values, so that parsing gets past the first field.
plausible = st.one_of(st.integers(min_value=0, max_value=5000),
                      st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6),
                      json_values)


def good_row(i: int) -> dict[str, Any]:
    return {"timestamp": i * 10, "input_length": 100, "output_length": 5, "hash_ids": [i, i + 1]}


def check_error(exc: InputError, source: str, line: int | None = None,
                fields: tuple[str, ...] | None = None) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text
    assert exc.source == source and text.startswith(source)
    if line is not None:
        assert exc.line == line, text
    if fields is not None and exc.field is not None:
        assert exc.field.split(".")[0].split("[")[0] in fields, text


def load(data: bytes, **kw: Any) -> Workload | InputError:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.jsonl"
        path.write_bytes(data)
        try:
            return load_mooncake(str(path), **kw)
        except InputError as exc:
            check_error(exc, str(path))
            return exc


# ---- the trace parser ----------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=400))
def test_trace_random_bytes(data: bytes) -> None:
    load(data)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=60),
                          st.builds(lambda i: json.dumps(good_row(i)).encode(),
                                    st.integers(0, 100))), min_size=1, max_size=6),
       st.booleans())
def test_trace_lines_of_noise_among_good_ones(lines: list[bytes], closed: bool) -> None:
    data = b"\n".join(lines)
    out = load(data, closed_loop=closed)
    if isinstance(out, InputError) and out.line is not None:
        assert 1 <= out.line <= data.count(b"\n") + 1


@FUZZ
@given(st.dictionaries(st.sampled_from(TRACE_FIELDS), plausible, max_size=8),
       st.dictionaries(st.text(max_size=5), json_values, max_size=2),
       st.integers(min_value=0, max_value=3))
def test_trace_random_values_in_every_field(row: dict[str, Any], extra: dict[str, Any],
                                            before: int) -> None:
    lines = [json.dumps(good_row(i)) for i in range(before)] + [json.dumps({**extra, **row})]
    out = load(("\n".join(lines) + "\n").encode())
    if isinstance(out, InputError):
        check_error(out, out.source or "", line=before + 1, fields=TRACE_FIELDS)
    else:
        assert len(out) == before + 1


@FUZZ
@given(st.integers(min_value=1, max_value=5), st.data())
def test_trace_truncated_line(n: int, data: st.DataObject) -> None:
    rows = [json.dumps({**good_row(i), "session_id": f"s{i % 2}"}) for i in range(n)]
    last = rows[-1]
    cut = data.draw(st.integers(min_value=1, max_value=len(last) - 1))
    rows[-1] = last[:cut]
    out = load("\n".join(rows).encode())
    assert isinstance(out, InputError)  # a cut JSON object is never valid
    check_error(out, out.source or "", line=n)


# ---- the config parsers -------------------------------------------------------------------------

ENGINE_NAMES = tuple(k.name for k in engine_args._ENGINE_KEYS)
TOP_NAMES = tuple(k.name for k in engine_args._TOP_KEYS)
LEGACY_NAMES = tuple(k.name for k in engine_args._LEGACY_KEYS)
ROUTER_NAMES = tuple(router_config._KEYS)
PLANNER_NAMES = tuple(PlannerConfig.__struct_fields__)


def parse_or_error(parse: Any, text: str, source: str, fields: tuple[str, ...]) -> Any:
    try:
        return parse(text)
    except InputError as exc:
        check_error(exc, source, fields=fields)
        return exc


@FUZZ
@given(st.dictionaries(st.sampled_from(ENGINE_NAMES), plausible, max_size=6),
       st.dictionaries(st.sampled_from(TOP_NAMES), plausible, max_size=3))
def test_engine_args_nested(engine: dict[str, Any], top: dict[str, Any]) -> None:
    text = json.dumps({"engine": engine, **top})
    parse_or_error(lambda t: engine_args.parse_engine_args(t, what="--extra-engine-args"),
                   text, "--extra-engine-args", ("engine", *TOP_NAMES))


@FUZZ
@given(st.dictionaries(st.sampled_from(ENGINE_NAMES + TOP_NAMES + LEGACY_NAMES), plausible,
                       max_size=6))
def test_engine_args_flat(obj: dict[str, Any]) -> None:
    parse_or_error(lambda t: engine_args.parse_engine_args(t, what="--decode-engine-args"),
                   json.dumps(obj), "--decode-engine-args", ENGINE_NAMES + TOP_NAMES + LEGACY_NAMES)


@FUZZ
@given(st.text(max_size=40))
def test_engine_args_any_text(text: str) -> None:
    if text.strip() and not text.strip().startswith(("{", "[")):
        text = "{" + text  # inline, not a path
    parse_or_error(lambda t: engine_args.parse_engine_args(t), text, "--extra-engine-args",
                   None)  # type: ignore[arg-type]


@FUZZ
@given(st.dictionaries(st.sampled_from(ROUTER_NAMES), json_values, max_size=5))
def test_router_config(obj: dict[str, Any]) -> None:
    parse_or_error(router_config.parse_router_config, json.dumps(obj), "--router-config",
                   ROUTER_NAMES)


@FUZZ
@given(st.dictionaries(st.sampled_from(PLANNER_NAMES), plausible, max_size=6))
def test_planner_config_json(obj: dict[str, Any]) -> None:
    parse_or_error(load_planner_config, json.dumps(obj), "--planner-config", PLANNER_NAMES)


@FUZZ
@given(st.binary(max_size=200))
def test_planner_config_yaml_file_of_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.yaml"
        path.write_bytes(data)
        try:
            load_planner_config(str(path))
        except InputError as exc:
            check_error(exc, str(path))
