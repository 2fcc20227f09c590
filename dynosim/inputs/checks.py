"""Value checks shared by the input parsers (engine args, router config, traces).

A check takes a decoded JSON value and returns what is wrong with it ("expected a positive
integer, got -1"), or None when the value is fine; the caller adds where (file, line, field).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from dynosim.inputs.errors import show_value

Check = Callable[[Any], "str | None"]


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def int_range(lo: int, hi: int | None = None) -> Check:
    if lo == 1 and hi is None:
        want = "a positive integer"
    elif lo == 0 and hi is None:
        want = "a non-negative integer"
    else:
        want = f"an integer in [{lo}, {hi}]"

    def check(v: Any) -> str | None:
        if not is_int(v) or v < lo or (hi is not None and v > hi):
            return f"expected {want}, got {show_value(v)}"
        return None

    return check


def num_range(lo: float, hi: float | None = None) -> Check:
    want = "a finite number >= 0" if hi is None else f"a finite number in [{lo:g}, {hi:g}]"

    def check(v: Any) -> str | None:
        if not is_num(v) or not math.isfinite(v) or v < lo or (hi is not None and v > hi):
            return f"expected {want}, got {show_value(v)}"
        return None

    return check


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"expected true or false, got {show_value(v)}"


def string(v: Any) -> str | None:
    return None if isinstance(v, str) else f"expected a string, got {show_value(v)}"


def mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) else f"expected a JSON object, got {show_value(v)}"


def anything(v: Any) -> str | None:
    return None


def enum(*values: str) -> Check:
    quoted = [f'"{x}"' for x in values]
    if len(quoted) == 1:
        listed = quoted[0]
    elif len(quoted) == 2:
        listed = " or ".join(quoted)
    else:
        listed = "one of " + ", ".join(quoted)

    def check(v: Any) -> str | None:
        if v not in values or not isinstance(v, str):
            return f"expected {listed}, got {show_value(v)}"
        return None

    return check


POS_INT = int_range(1)
NONNEG_INT = int_range(0)
NONNEG_NUM = num_range(0.0)
FRACTION = num_range(0.0, 1.0)
PORT = int_range(0, 65535)
