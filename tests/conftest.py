from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root() -> Path:
    return ROOT


def golden_cases() -> list[dict]:
    return json.loads((ROOT / "tests" / "golden" / "cases.json").read_text())
