"""dynosim-tui's compiled replay engine (mypyc). See engine/sim.py for the entry point.

Set DYNOSIM_INTERPRETED=1 to import the same modules from their .py sources instead of the
compiled extensions (for debugging, profiling, and measuring the compilation gain).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))


class _SourceFirstFinder(importlib.abc.MetaPathFinder):
    """Resolve engine.* submodules to their .py files even when a compiled .so sits beside."""

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(__name__ + "."):
            return None
        src = os.path.join(_HERE, *fullname.split(".")[1:]) + ".py"
        if not os.path.isfile(src):
            return None
        return importlib.util.spec_from_file_location(fullname, src)


INTERPRETED_REQUESTED = os.environ.get("DYNOSIM_INTERPRETED", "") not in ("", "0")
if INTERPRETED_REQUESTED:
    sys.meta_path.insert(0, _SourceFirstFinder())


def is_compiled() -> bool:
    """True when the engine modules in use are mypyc-built extension modules."""
    from engine import sim

    return not (sim.__file__ or "").endswith(".py")
