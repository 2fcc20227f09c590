"""The cold-start sweep example runs (three points) and every figure comes from the JSON."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, SYNTH


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xargs") is None, reason="needs xargs")
def test_three_point_sweep(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("dynosim-tui")
    env = dict(os.environ, PYTHON=sys.executable, JOBS="2",
               DYNOSIM=str(exe) if exe.exists() else "dynosim-tui")
    out = tmp_path / "sweep"
    subprocess.run(["bash", str(ROOT / "examples" / "cold_start_sweep.sh"),
                    SYNTH, str(out), "0", "60", "120"],
                   env=env, check=True, capture_output=True, text=True, timeout=600)
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [float(r["startup_s"]) for r in rows] == [0.0, 60.0, 120.0]
    for r in rows:
        for key in ("mean_ttft_ms", "p90_ttft_ms", "mean_itl_ms", "p90_itl_ms", "gpu_hours",
                    "scaling_events"):
            assert float(r[key]) >= 0.0
    # a slower start-up hurts latency: scale-ups arrive later
    assert float(rows[2]["p90_ttft_ms"]) > float(rows[0]["p90_ttft_ms"])
    for st in (0, 60, 120):
        assert (out / f"startup_{st}.log.jsonl.gz").exists()
