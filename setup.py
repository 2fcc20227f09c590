"""Build hook: compile the engine's hot modules with mypyc (always; not an opt-in).

engine/__init__.py stays interpreted: it holds the DYNOSIM_INTERPRETED switch that loads the
same modules from their .py sources. Targets are sorted so the generated C is deterministic.
"""
import glob
import os

from setuptools import setup
from mypyc.build import mypycify

ENGINE_MODULES = sorted(
    p for p in glob.glob(os.path.join("engine", "*.py")) if not p.endswith("__init__.py")
)

setup(
    ext_modules=mypycify(
        ENGINE_MODULES,
        opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
        debug_level=os.environ.get("MYPYC_DEBUG_LEVEL", "0"),
    ),
)
