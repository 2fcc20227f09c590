"""Presets (issue 14): the planner guide's cold-start sweep through the example one-liner, the
sweep HTML report in headless Chromium, and the topology search within a GPU budget."""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from helpers import ROOT, SYNTH, TINY
from dynosim.sweep.cli import main as sweep_main
from dynosim.sweep.html import find_cliff
from dynosim.sweep.presets import preset_spec
from dynosim.sweep.runner import build_points
from dynosim.sweep.spec import load_spec

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ONE_AXIS_PANELS = ("panel-ttft", "panel-itl", "panel-gpu-hours", "panel-scaling-events")
ALWAYS_PANELS = ("panel-pareto", "panel-axis-0")


@pytest.fixture(scope="module")
def cold_start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cold_start") / "out"
    exe = Path(sys.executable).with_name("dynosim-tui")
    env = dict(os.environ, DYNOSIM=str(exe) if exe.exists() else "dynosim-tui")
    run = subprocess.run(["bash", str(ROOT / "examples" / "cold_start_sweep.sh"), SYNTH,
                          str(out), "--axis", "startup_time=0,120", "--jobs", "2"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    (out / "stdout.txt").write_text(run.stdout)
    return out


def test_cold_start_preset_is_the_guides_sweep() -> None:
    spec = preset_spec("cold-start", SYNTH)
    (axis,) = spec.axes
    assert axis.path == ("extra_engine_args", "startup_time")
    assert axis.values == tuple(range(0, 301, 10))  # 31 runs
    assert [c.describe() for c in spec.constraints] == ["p90_ttft_ms <= 1500",
                                                        "p90_itl_ms <= 50"]
    p = spec.base["planner_config"]
    assert (p["mode"], p["ttft_ms"], p["itl_ms"]) == ("agg", 1500, 50)
    assert p["prefill_engine_num_gpu"] == p["decode_engine_num_gpu"] == 1
    assert spec.base["num_workers"] == 2
    assert spec.base["extra_engine_args"]["engine"]["aic_system"] == "h200_sxm"


def test_print_spec_round_trips(tmp_path: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sweep_main(["--preset", "cold-start", SYNTH, "--print-spec"]) == 0
    path = tmp_path / "cold.yaml"
    path.write_text(out.getvalue())
    from_file = build_points(load_spec(str(path)))
    from_preset = build_points(preset_spec("cold-start", SYNTH))
    assert [p.config_hash for p in from_file] == [p.config_hash for p in from_preset]


@pytest.mark.slow
def test_cold_start_figures(cold_start: Path) -> None:
    rows = pl.read_csv(cold_start / "results.csv").sort("startup_time").to_dicts()
    assert [r["startup_time"] for r in rows] == [0, 120]
    for r in rows:
        assert r["status"] == "ok"
        assert r["gpu_hours"] > 0 and r["gpu_hours_planner"] > 0  # GPUs per engine are set
        assert r["scaling_events"] >= 1
    # a slower start-up hurts latency: scale-ups arrive later
    assert rows[1]["p90_ttft_ms"] > rows[0]["p90_ttft_ms"]
    stdout = (cold_start / "stdout.txt").read_text()
    assert "ranked by gpu_hours (min)" in stdout
    assert re.search(r"reproduce: \S*dynosim-tui \S+synthetic_trace.jsonl --num-workers 2 "
                     r"--extra-engine-args", stdout) or "no point meets" in stdout


@pytest.mark.slow
def test_cliff_is_the_first_point_over_its_sla(cold_start: Path) -> None:
    frame = pl.read_csv(cold_start / "results.csv").sort("startup_time")
    over = frame.filter((pl.col("p90_ttft_ms") > 1500) | (pl.col("p90_itl_ms") > 50))
    html = (cold_start / "sweep.html").read_text()
    if over.height:
        first = over["startup_time"][0]
        assert f"cliff: startup_time = {first} " in html
    else:
        assert "cliff:" not in html


@pytest.mark.slow
def test_sweep_html_is_self_contained(cold_start: Path) -> None:
    from plotly.offline import get_plotlyjs

    text = (cold_start / "sweep.html").read_text()
    bundle = get_plotlyjs().replace("</script", "<\\/script")
    assert text.count(bundle) == 1  # plotly.js inlined once
    page = text.replace(bundle, "")
    assert "src=" not in "".join(re.findall(r"<script[^>]*>", page))  # nothing fetched
    assert "<link" not in page
    for panel in ONE_AXIS_PANELS + ALWAYS_PANELS + ("panel-table",):
        assert f'id="{panel}"' in text, panel
    assert "SLA 1500 ms" in text and "SLA 50 ms" in text


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (`apt-get install "
                    "chromium`; .ci/run installs it so CI runs this test)")
def test_sweep_html_renders_in_headless_chromium(cold_start: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    url = (cold_start / "sweep.html").resolve().as_uri()
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-dev-shm-usage", "--virtual-time-budget=5000"]
    dom = subprocess.run([*base, f"--user-data-dir={tmp_path / 'u1'}", "--enable-logging=stderr",
                          "--v=0", "--dump-dom", url], capture_output=True, text=True,
                         timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    errors = [ln for ln in dom.stderr.splitlines()
              if "CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln)]
    assert errors == []
    for panel in ONE_AXIS_PANELS + ALWAYS_PANELS:
        m = re.search(rf'id="{panel}"[^>]*>(.*?)</div>', dom.stdout, re.S)
        assert m and "plot-container" in m.group(1), panel
    assert dom.stdout.count('class="main-svg"') >= len(ONE_AXIS_PANELS + ALWAYS_PANELS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "sweep_report.png"
    res = subprocess.run([*base, f"--user-data-dir={tmp_path / 'u2'}", f"--screenshot={shot}",
                          "--window-size=1400,2200", url], capture_output=True, text=True,
                         timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_topology_preset_stays_within_the_budget(tmp_path: Path) -> None:
    spec = preset_spec("topology", TINY, gpus=2)
    combos = list(zip(*(a.values for a in spec.axes)))
    assert [(str(t), tp) for t, tp in combos] == [("agg:1", 1), ("agg:2", 1),
                                                   ("disagg:1:1", 1), ("agg:1", 2)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = sweep_main(["--preset", "topology", TINY, "--gpus", "2", "--out",
                           str(tmp_path / "o"), "--executor", "serial"])
    assert code == 0
    frame = pl.read_csv(tmp_path / "o" / "results.csv")
    assert frame["gpus"].to_list() == [1.0, 2.0, 2.0, 2.0]
    assert frame["status"].to_list() == ["ok"] * 4
    ranked = frame.filter(pl.col("feasible")).sort("rank")
    assert ranked["gpus"].to_list() == sorted(ranked["gpus"].to_list())  # fewest GPUs first
    text = (tmp_path / "o" / "sweep.html").read_text()
    assert 'id="panel-pareto"' in text and 'id="panel-axis-1"' in text
    assert 'id="panel-ttft"' not in text  # two axes: no per-axis line charts


def test_cliff_helper_on_rows() -> None:
    class R:  # the minimal shape find_cliff reads
        pass

    spec = preset_spec("cold-start", SYNTH)
    res = R()
    res.spec = spec  # type: ignore[attr-defined]
    res.rows = [  # type: ignore[attr-defined]
        {"point": i, "status": "ok", "startup_time": st, "p90_ttft_ms": ttft, "p90_itl_ms": itl}
        for i, (st, ttft, itl) in enumerate([(20, 900, 30), (0, 800, 25), (40, 1400, 60),
                                             (60, 5000, 80)])]
    assert find_cliff(res) == {"point": 2, "value": 40, "metric": "p90_itl_ms"}  # type: ignore


def test_a_printed_spec_works_wherever_it_is_saved(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's `--print-spec > cold.yaml` with the trace named relative to the current
    folder: the spec reads its trace relative to itself, so the printed path is absolute."""
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sweep_main(["--preset", "cold-start", "traces/mooncake_tiny.jsonl",
                           "--print-spec"]) == 0
    saved = tmp_path / "specs" / "cold.yaml"
    saved.parent.mkdir()
    saved.write_text(out.getvalue())
    from_file = build_points(load_spec(str(saved)))
    assert from_file[0].options.trace == TINY
    assert [p.config_hash for p in from_file] == [
        p.config_hash for p in build_points(preset_spec("cold-start", TINY))]


@pytest.mark.parametrize("argv, message", [
    (["--preset", "cold-start", TINY, "--gpus", "8"], "--gpus: only applies with --preset "
     "topology"),
    (["--preset", "cold-start", TINY, "--print-spec", "--axis", "startup_time=0,60"],
     "--axis: does not apply with --print-spec"),
    ([str(ROOT / "examples/sweeps/router_topology.yaml"), "--sla-ttft-ms", "500"],
     "--sla-ttft-ms: only applies with --preset"),
])
def test_a_sweep_flag_that_would_be_ignored_is_refused(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert sweep_main([*argv, "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dynosim-tui sweep: error: {message}")
    assert os.listdir(tmp_path) == []


def test_the_example_script_runs_after_make_run_without_an_activated_venv(tmp_path: Path) -> None:
    """`make run` leaves dynosim-tui in .venv/bin, not on PATH: the script finds it there."""
    if not (ROOT / ".venv" / "bin" / "dynosim-tui").exists():
        pytest.skip("no .venv in this checkout")
    env = {k: v for k, v in os.environ.items() if k != "DYNOSIM"}
    env["PATH"] = "/usr/bin:/bin"
    run = subprocess.run(["bash", str(ROOT / "examples" / "cold_start_sweep.sh"), TINY,
                          str(tmp_path / "out"), "--axis", "startup_time=0", "--headless",
                          "--jobs", "1"], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "out" / "results.csv").exists()


@pytest.mark.parametrize("out, reason", [
    ("afile", "afile: exists and is not a directory (--out takes a folder)"),
    ("afile/sub", "afile/sub: {tmp}/afile is not a directory"),
    ("/proc/dynosim_sweep", "/proc/dynosim_sweep: /proc is on a virtual file system"),
])
def test_a_bad_out_folder_is_one_line_before_anything_runs(
        out: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """It was a traceback (NotADirectoryError from mkdir) after the sweep had started."""
    if out.startswith("/proc") and (not os.path.isdir("/proc/self")
                                    or os.statvfs("/proc").f_flag & os.ST_RDONLY):
        pytest.skip("no writable-looking /proc here")
    monkeypatch.chdir(tmp_path)
    reason = reason.format(tmp=tmp_path)
    (tmp_path / "afile").write_text("")
    assert sweep_main(["--preset", "cold-start", TINY, "--axis", "startup_time=0",
                       "--out", out, "--headless"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"dynosim-tui sweep: error: {reason}" + err.split(reason, 1)[1]
                                .rstrip("\n")], err
    assert os.listdir(tmp_path) == ["afile"] and not os.path.exists(out + "/points")


def test_a_new_relative_out_folder_is_created(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        assert sweep_main(["--preset", "cold-start", TINY, "--axis", "startup_time=0",
                           "--out", "fresh", "--headless", "--executor", "serial",
                           "--no-html"]) == 0
    assert (tmp_path / "fresh" / "results.csv").exists()


def test_print_spec_of_a_missing_trace_is_refused(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.jsonl")
    assert sweep_main(["--preset", "cold-start", missing, "--print-spec"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"dynosim-tui sweep: error: {missing}: trace file not found\n"
