"""The HTML report (issue 6): the planner diagnostics report and the per-replay run report.

One planner replay (synthetic trace, SLA planner) and one plain replay (tiny trace) are run
once per module through the CLI; the tests check the written files, and one loads the planner
report in headless Chromium (screenshot kept under tests/artifacts/).
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import ROOT, SYNTH, TINY
from dynosim.cli import main
from dynosim.outputs.html_report import PLANNER_PANELS, RUN_PANELS, TEXT_PANELS

ARTIFACTS = ROOT / "tests" / "artifacts"
MAX_BYTES = 8 * 1024 * 1024
GPU_HOURS = re.compile(r"GPU hours: ([0-9]+\.[0-9]+)")


def run_cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def planner_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    tmp = tmp_path_factory.mktemp("html_planner")
    cfg = {"mode": "agg", "optimization_target": "sla", "ttft_ms": 1500, "itl_ms": 50,
           "max_gpu_budget": 8, "report_output_dir": str(tmp / "planner_reports"),
           "report_filename": "diag.html"}
    stdout = run_cli(SYNTH, "--num-workers", "2", "--planner-config", json.dumps(cfg),
                     "--report-json", str(tmp / "r.json"), "--export", str(tmp / "out"))
    return {"stdout": stdout, "html": tmp / "planner_reports" / "diag.html",
            "export_html": tmp / "out" / "report.html", "json": tmp / "r.json"}


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    tmp = tmp_path_factory.mktemp("html_plain")
    stdout = run_cli(TINY, "--num-workers", "2", "--export", str(tmp / "out"))
    return {"stdout": stdout, "html": tmp / "out" / "report.html"}


def test_planner_report_written_and_announced(planner_run: dict) -> None:
    path = planner_run["html"]
    assert path.is_file()
    assert f"Planner diagnostics report: {path}" in planner_run["stdout"]
    assert planner_run["export_html"].is_file()
    # the engine's fixed-interval worker samples are exported too
    import polars as pl
    samples = pl.read_parquet(planner_run["export_html"].parent / "worker_samples.parquet")
    assert samples.height > 0 and samples["kv_usage"].max() <= 1.0
    assert set(samples["pool"].unique()) == {"agg"}
    # the snapshot log sits next to it, as in the reference
    assert (path.parent / "diag.log.jsonl.gz").is_file()


def test_gpu_hours_line_matches_json(planner_run: dict) -> None:
    planner = json.loads(planner_run["json"].read_text())["dynosim"]["planner"]
    want = f"{planner['gpu_hours_planner']:.2f}"
    for key in ("html", "export_html"):
        text = planner_run[key].read_text()
        # plain text, grep-able by sweep scripts: exactly one such line in a planner report
        assert GPU_HOURS.findall(text) == [want], key
        assert f"Replica transitions: " in text and "SLA targets: TTFT=1500ms, ITL=50ms" in text


def test_header_times_are_simulated_not_dates(planner_run: dict) -> None:
    text = planner_run["html"].read_text()
    header = text[text.index('<div class="header">'):text.index("</div>\n", text.index("SLA"))]
    assert "Planner Diagnostics Report" in header
    assert "1970" not in header
    assert re.search(r"Time range: 00:00:\d\d — \d\d:\d\d:\d\d simulated", header)
    assert '"type":"date"' not in text


@pytest.mark.parametrize("which", ["planner", "plain"])
def test_self_contained_with_every_panel(which: str, planner_run: dict, plain_run: dict) -> None:
    path = (planner_run if which == "planner" else plain_run)["html"]
    text = path.read_text()
    assert path.stat().st_size < MAX_BYTES
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)  # plotly.js is inline
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", text, re.I)
    assert text.count("Plotly.newPlot") >= len(RUN_PANELS)
    panels = RUN_PANELS + TEXT_PANELS + (PLANNER_PANELS if which == "planner" else ())
    for panel in panels:
        assert f'id="{panel}"' in text, panel
    if which == "plain":
        assert "Replay Run Report" in text
        assert not any(f'id="{p}"' in text for p in PLANNER_PANELS)
    assert "NVIDIA AIPerf | LLM Metrics" in text  # the summary table
    assert "&quot;router_mode&quot;" in text  # the run configuration


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (`apt-get install "
                    "chromium`; .ci/run installs it so CI runs this test)")
def test_renders_in_headless_chromium(planner_run: dict, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    url = planner_run["html"].resolve().as_uri()
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-dev-shm-usage", "--virtual-time-budget=5000"]
    t0 = time.monotonic()
    dom = subprocess.run(
        [*base, f"--user-data-dir={tmp_path / 'u1'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", url], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert dom.returncode == 0, dom.stderr[-2000:]
    errors = [ln for ln in dom.stderr.splitlines()
              if "CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln)]
    assert errors == []
    # every plotly panel rendered its SVG
    for panel in PLANNER_PANELS + RUN_PANELS:
        m = re.search(rf'id="{panel}"[^>]*>(.*?)</div>', dom.stdout, re.S)
        assert m and "plot-container" in m.group(1), panel
    assert dom.stdout.count('class="main-svg"') >= len(PLANNER_PANELS + RUN_PANELS)
    assert elapsed < 60  # includes browser start-up; the render-time budget is a bench row
    # The page measures its own render time (make bench reads it; no wall-clock budget here).
    assert re.search(r'data-render-ms="\d+"', dom.stdout)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    res = subprocess.run(
        [*base, f"--user-data-dir={tmp_path / 'u2'}", f"--screenshot={shot}",
         "--window-size=1400,3000", url], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_many_workers_become_heat_maps() -> None:
    from dynosim.replay import RunOptions, build_replay
    from dynosim.outputs.html_report import MAX_LINE_WORKERS, render_html

    replay = build_replay(RunOptions(trace=TINY, num_workers=MAX_LINE_WORKERS + 4))
    replay.run_to_end(5000)
    report = replay.report()
    samples = report.samples_frame()
    assert samples["worker"].n_unique() == MAX_LINE_WORKERS + 4
    assert samples.columns == ["time_s", "worker", "pool", "kv_blocks_active", "kv_blocks_total",
                               "waiting", "running", "kv_usage"]
    # fixed 1 s intervals, not per event
    assert samples["time_s"].n_unique() <= report.summary["duration_ms"] / 1000.0 + 2
    text = render_html(report)
    # queue depth and KV usage: two heat-map traces with a (workers x times) z
    shapes = re.findall(r'"z":\{[^}]*"shape":"(\d+), \d+"\},"type":"heatmap"', text)
    assert shapes == [str(MAX_LINE_WORKERS + 4)] * 2
    assert len(text.encode()) < MAX_BYTES
    assert "GPU hours: " not in text.split("<h2>")[0]  # only planner reports carry that line


def test_planner_run_with_export_renders_the_html_once(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import dynosim.outputs.html_report as html_report

    calls = []  # one per rendering, whoever calls the renderer
    real = html_report._planner_panels

    def panels(page: object, report: object) -> None:
        calls.append(report)
        real(page, report)  # type: ignore[arg-type]

    monkeypatch.setattr(html_report, "_planner_panels", panels)
    cfg = {"mode": "agg", "optimization_target": "sla", "ttft_ms": 1500, "itl_ms": 50,
           "report_output_dir": str(tmp_path / "planner_reports"), "report_filename": "d.html"}
    run_cli(TINY, "--num-workers", "2", "--planner-config", json.dumps(cfg),
            "--export", str(tmp_path / "out"))
    assert len(calls) == 1
    assert ((tmp_path / "planner_reports" / "d.html").read_text()
            == (tmp_path / "out" / "report.html").read_text())


def test_run_configuration_names_backend_and_kv_unit() -> None:
    from dynosim.outputs.html_report import header_lines
    from dynosim.replay import RunOptions, build_replay
    from helpers import TINY
    rp = build_replay(RunOptions(trace=TINY, extra_engine_args='{"engine": {"backend": "sglang", '
                                 '"block_size": 16}}'))
    while rp.advance(100_000):
        pass
    report = rp.report()
    assert report.run["backend"] == "sglang" and report.run["kv_unit"] == "pages of 16 tokens"
    assert "Backend: sglang" in header_lines(report)[0]
    rp = build_replay(RunOptions(trace=TINY, extra_engine_args='{"engine": {"backend": "trtllm"}}'))
    assert rp.kv_unit() == "blocks of 32 tokens" and rp.backend() == "trtllm"
