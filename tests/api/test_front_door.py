"""`import dynosim` as a notebook uses it: build, run, report; and the shadowing guard."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import dynosim
from helpers import GOLDEN, TINY, WALL_KEYS


def test_build_run_report_from_python() -> None:
    assert sorted(dynosim.__all__) == ["InputError", "Replay", "Report", "RunOptions",
                                       "build_replay"]
    replay = dynosim.build_replay(dynosim.RunOptions(trace=TINY, num_workers=1))
    assert isinstance(replay, dynosim.Replay)
    replay.run_to_end()
    report = replay.report()
    assert isinstance(report, dynosim.Report)
    want = json.loads((GOLDEN / "tiny_w1.json").read_text())  # the reference's own run
    got = report.summary
    assert [k for k in got if k not in WALL_KEYS] == [k for k in want if k not in WALL_KEYS]
    for key in ("completed_requests", "total_input_tokens", "total_output_tokens"):
        assert got[key] == want[key], key
    for key in ("mean_ttft_ms", "p90_itl_ms", "duration_ms"):
        assert math.isclose(got[key], want[key], rel_tol=1e-9), key
    try:
        dynosim.build_replay(dynosim.RunOptions(trace=TINY, num_workers=0))
    except dynosim.InputError as exc:
        assert str(exc).startswith("--num-workers: ")
    else:
        raise AssertionError("num_workers=0 was accepted")


def test_a_shadowing_module_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "planner.py").write_text("# someone else's planner\n")
    env = dict(os.environ)
    # the child imports dynosim from where this test does (installed or source tree)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(dynosim.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", "import dynosim"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: dynosim: 'planner' resolves to ")
    assert str(tmp_path / "planner.py") in last and "shadows it" in last
