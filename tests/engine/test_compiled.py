"""The installed engine is mypyc-compiled, and DYNOSIM_INTERPRETED=1 runs the same code
from its .py sources."""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import pkgutil
import subprocess
import sys

import pytest

import engine

MODULES = sorted(m.name for m in pkgutil.iter_modules(engine.__path__))


def test_engine_has_the_expected_modules() -> None:
    for name in ("sim", "worker", "kvpool", "timing", "metrics", "blockhash"):
        assert name in MODULES


@pytest.mark.skipif(engine.INTERPRETED_REQUESTED, reason="DYNOSIM_INTERPRETED=1 requested")
def test_installed_engine_modules_are_compiled_extensions() -> None:
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    not_compiled = []
    for name in MODULES:
        mod = importlib.import_module(f"engine.{name}")
        path = mod.__file__ or ""
        if not path.endswith(suffixes):
            not_compiled.append(f"engine.{name} -> {path}")
    assert not not_compiled, (
        "engine modules are not compiled (run the tests with `make test`, which installs the "
        "package with its mypyc build):\n" + "\n".join(not_compiled))
    assert engine.is_compiled()


def test_interpreted_switch_loads_sources() -> None:
    code = (
        "import engine, engine.sim, engine.worker;"
        "print(engine.is_compiled(), engine.sim.__file__.endswith('.py'),"
        " engine.worker.__file__.endswith('.py'))"
    )
    env = dict(os.environ, DYNOSIM_INTERPRETED="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "True", "True"]
