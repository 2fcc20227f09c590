"""Reports linear in their size, and what `--export DIR` adds to a replay (issue 13 item 1).

1. HTML rendering against the number of scaling events: one real planner replay (synthetic
   trace, 2 workers, agg latency planner) is rendered with its scaling events and per-tick
   snapshots replaced by N = 10, 100, 1,000 events (two ticks per event, cycling the run's
   own snapshots), median of `runs` renderings each; once as shipped (more than
   MAX_EVENT_LINES events are drawn as markers only) and once with every event drawn as a
   dotted line, the case that was quadratic.
2. The 1-hour, 12.5k-request trace (bench/hour_trace.py), 2 workers, round robin: the CLI
   with `--export DIR` against the same replay with only `--report-json`, alternating
   processes, medians and their ratio (target <= 1.15).

Prints one line per row. Run by `make bench` (bench/bench.py)."""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hour_trace import hour_trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "traces" / "synthetic_trace.jsonl"
PLANNER = {"mode": "agg", "optimization_target": "latency",
           "load_adjustment_interval_seconds": 10}
EVENTS = (10, 100, 1000)


def _planner_report(tmp: str) -> Any:
    from dynosim.replay import RunOptions, build_replay

    cfg = dict(PLANNER, report_output_dir=tmp)
    replay = build_replay(RunOptions(trace=str(TRACE), num_workers=2,
                                     planner_config=json.dumps(cfg)))
    replay.run_to_end(1_000_000)
    return replay.report()


def _with_events(report: Any, base_snaps: list[Any], base_events: list[Any], n: int) -> None:
    """The report as if its run had had n scaling events, one every other 10-s tick."""
    ticks = 2 * n
    report.planner_snapshots = [
        msgspec.structs.replace(base_snaps[i % len(base_snaps)], timestamp_s=10.0 * (i + 1))
        for i in range(ticks)]
    report.run["planner"]["scaling_events"] = [
        dict(base_events[i % len(base_events)], time_s=20.0 * (i + 1)) for i in range(n)]


def html_rows(runs: int) -> list[str]:
    import dynosim.outputs.html_report as html_report

    with tempfile.TemporaryDirectory() as tmp:
        report = _planner_report(tmp)
    snaps, events = report.planner_snapshots, report.run["planner"]["scaling_events"]
    html_report.render_html(report)  # warm: imports, the plotly template
    lines = []
    shipped_limit = html_report.MAX_EVENT_LINES
    for label, limit in (("as shipped", shipped_limit), ("every event a line", 10**9)):
        html_report.MAX_EVENT_LINES = limit
        times = {}
        for n in EVENTS:
            _with_events(report, snaps, events, n)
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                html_report.render_html(report)
                samples.append(time.perf_counter() - t0)
            times[n] = statistics.median(samples)
        html_report.MAX_EVENT_LINES = shipped_limit
        steps = ", ".join(f"{n} events {times[n]:.3f} s" for n in EVENTS)
        per_event = [(times[b] - times[a]) / (b - a) * 1000 for a, b in zip(EVENTS, EVENTS[1:])]
        lines.append(
            f"html report vs scaling events ({label}; {report.frame().height} requests, "
            f"2 ticks per event): {steps}; {per_event[0]:.2f} then {per_event[1]:.2f} ms per "
            f"added event (linear: about equal; target <= 0.5 s at 100)")
    return lines


def _cli_s(args: list[str], cwd: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one CLI process."""
    exe = str(Path(sys.executable).with_name("dynosim-tui"))  # the installed (compiled) one
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([exe, *args], check=True, capture_output=True, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def export_row(runs: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        trace = str(hour_trace(tmp))
        base = [trace, "--num-workers", "2", "--report-json", f"{tmp}/r.json"]
        headless, export = [], []
        for i in range(runs):
            headless.append(_cli_s(base, tmp))
            export.append(_cli_s([*base, "--export", f"{tmp}/out{i}"], tmp))
        files = sorted(p.name for p in Path(f"{tmp}/out0").iterdir())
    med = statistics.median
    h, e = med(w for w, _ in headless), med(w for w, _ in export)
    hc, ec = med(c for _, c in headless), med(c for _, c in export)
    return (f"--export DIR, 1-hour 12.5k-request trace, 2 workers: {e:.2f} s vs {h:.2f} s with "
            f"--report-json only = {e / h:.2f}x wall, {ec:.2f} vs {hc:.2f} CPU s = "
            f"{ec / hc:.2f}x (target <= 1.15; whole CLI processes, {runs} alternating runs, "
            f"medians; writes {', '.join(files)})")


def main(runs: int = 3) -> int:
    for line in html_rows(runs):
        print(line, flush=True)
    print(export_row(runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
