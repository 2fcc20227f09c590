from __future__ import annotations

from typing import TYPE_CHECKING

import json
from pathlib import Path

import pytest

if TYPE_CHECKING:
    from engine.config import EngineConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root() -> Path:
    return ROOT


def golden_cases() -> list[dict]:
    return json.loads((ROOT / "tests" / "golden" / "cases.json").read_text())


def fixed_timing(prefill_ms: float = 100.0, decode_ms: float = 10.0) -> "EngineConfig":
    """The reference's verified toy timing: every prefill pass 100 ms, every decode pass 10 ms."""
    from engine.config import TIMING_FIXED, EngineConfig

    c = EngineConfig()
    c.timing_kind = TIMING_FIXED
    c.fixed_prefill_ms = prefill_ms
    c.fixed_decode_ms = decode_ms
    return c
