"""What `--ray-address` ships to cluster nodes (the runtime env's working_dir): our four
packages as this installation's RECORD lists them, and of the mypyc group modules in
site-packages only the one the compiled engine's shims import. Older builds leave group
modules with other hashes behind (one was 36 MB); they are not shipped. No Ray needed."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import engine
from dynosim.sweep.executors import SHIPPED_PACKAGES, _installed_record, _ship_code_env, \
    code_manifest

USED, STALE = "0123456789abcdef0123__mypyc", "fedcba9876543210fedc__mypyc"
SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


def fake_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for rel, body in {f"engine/sim{SUFFIX}": b"\x7fELF...PyInit_" + USED.encode() + b"\0..",
                      "engine/__init__.py": b"", "engine/sim.py": b"",
                      "engine/__pycache__/sim.cpython-311.pyc": b"",
                      "dynosim/__init__.py": b"", "dynosim/gone.py": b"",  # not in RECORD
                      "planner/__init__.py": b"", "tui/app.tcss": b"",
                      USED + SUFFIX: b"used", STALE + SUFFIX: b"stale",
                      "other_pkg/__init__.py": b""}.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(body)
    return site


def test_only_recorded_files_and_the_group_module_the_shims_import(tmp_path: Path) -> None:
    site = fake_site(tmp_path)
    record = [f"engine/sim{SUFFIX}", "engine/__init__.py", "engine/sim.py",
              "engine/__pycache__/sim.cpython-311.pyc", "dynosim/__init__.py",
              "planner/__init__.py", "tui/app.tcss", USED + SUFFIX, STALE + SUFFIX,
              "../../../bin/dynosim-tui", "dynosim_tui-0.1.0.dist-info/RECORD"]
    assert code_manifest(str(site), record) == [
        "dynosim/__init__.py", "engine/__init__.py", f"engine/sim{SUFFIX}", "engine/sim.py",
        "planner/__init__.py", "tui/app.tcss", USED + SUFFIX]
    # from a source tree (no RECORD): the package folders' files, still only the used group
    assert code_manifest(str(site), None) == [
        "dynosim/__init__.py", "dynosim/gone.py", "engine/__init__.py", f"engine/sim{SUFFIX}",
        "engine/sim.py", "planner/__init__.py", "tui/app.tcss", USED + SUFFIX]


def test_the_installed_package_ships_its_own_group_module_only(tmp_path: Path) -> None:
    site = os.path.dirname(os.path.dirname(os.path.abspath(engine.__file__ or "")))
    record = _installed_record(site)
    stage = Path(_ship_code_env()["working_dir"])
    try:
        shipped = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
        top = sorted(p.name for p in stage.iterdir())
    finally:
        shutil.rmtree(stage)
    helpers = [n for n in top if "__mypyc" in n]
    assert [n for n in top if n not in helpers] == sorted(SHIPPED_PACKAGES)
    if engine.is_compiled():  # the group module the running engine was loaded from
        from engine import sim  # noqa: F401  (loads the group module)

        loaded = sorted(os.path.basename(m.__file__ or "") for name, m in sys.modules.items()
                        if name.endswith("__mypyc"))
        assert helpers == loaded and len(helpers) == 1
    if record is not None:  # an installed copy: nothing that is not in its RECORD
        assert set(shipped) <= set(record)
    assert not any("__pycache__" in f for f in shipped)
