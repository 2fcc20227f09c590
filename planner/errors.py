"""The planner's one error type: a setting (or a combination of settings) that cannot work.

The planner reads no files and knows no command-line flags; the edge that built the config from
user text adds where it came from (dynosim turns a `ConfigError` into its `InputError`).
"""
from __future__ import annotations

from typing import Any

import msgspec


class ConfigError(Exception):
    """`field` names the setting (dotted for nested ones: 'scheduling.scale_interval_seconds').

    Not a ValueError: msgspec would turn one raised in `__post_init__` into its own error."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message if field is None else f"field '{field}': {message}")


def show_value(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a user-supplied value for error messages (NaN and the
    infinities as `nan`, `inf`, `-inf`: JSON would call them null)."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
