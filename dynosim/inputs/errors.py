"""User-facing input errors.

Every problem with something the user handed us (a trace file, a JSON argument, a CLI value)
is raised as `InputError`. Its `str()` is a single line that says where the problem is and what
was wrong, so the CLI can print it as-is and exit with status 2:

    traces/x.jsonl:17: field 'output_length': expected a non-negative integer, got "abc"
"""
from __future__ import annotations

from typing import Any

from planner.errors import show_value  # one rendering of a bad value, shared with the planner

__all__ = ["InputError", "json_kind", "show_value"]


class InputError(Exception):
    """Bad user input. `source` is a file path or an argument name (e.g. `--extra-engine-args`)."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts: list[str] = []
        if self.source is not None:
            parts.append(self.source if self.line is None else f"{self.source}:{self.line}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        # Keep it on one line whatever the message carried.
        return ": ".join(parts).replace("\r", " ").replace("\n", " ")


def json_kind(value: Any) -> str:
    """The JSON type name of a decoded value ('string', 'integer', ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
