"""`dynosim-tui sweep`: many ordinary runs over a grid, ranked against SLAs and a GPU budget."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import yaml

from dynosim.arguments import Parser
from dynosim.inputs.errors import InputError
from dynosim.interrupts import Terminated, sigterm_raises, stop_status, stop_words
from dynosim.outputs.plan import check_folder
from dynosim.outputs.writers import OutputError
from dynosim.sweep.axes import Point
from dynosim.sweep.executors import Executor, default_jobs, make_executor
from dynosim.sweep.presets import PRESETS, preset_mapping, preset_spec
from dynosim.sweep.spec import SweepSpec, load_spec

SLA_TTFT_MS = 1500.0  # the presets' SLA unless --sla-ttft-ms / --sla-itl-ms say otherwise
SLA_ITL_MS = 50.0

EPILOG = """\
examples:
  dynosim-tui sweep examples/sweeps/router_topology.yaml --out out/router --axis tp=1
  dynosim-tui sweep --preset cold-start traces/synthetic_trace.jsonl
  dynosim-tui sweep --preset topology traces/synthetic_trace.jsonl --gpus 8 --jobs 2
  dynosim-tui sweep spec.yaml --executor ray --ray-address ray://head:10001

which points run: the spec's `search:` key; grid (default) runs every combination; random,
tpe and nsga2 (the last two need pip install 'dynosim-tui[search]') run `trials` points, and
results already in --out do not count against them. `capacity:` bisects each candidate's
highest load within the constraints. See the README's Sweeps section.

outputs (in --out, default ./sweep_<name>): results.parquet and results.csv (one row per point:
axis values, status, feasibility, penalty and violated constraints, rank, Pareto mark, every
summary metric, planner figures, wall time, config hash, the reproducing command), points/<hash>.json
(each point's JSON report, as --report-json writes it), sweep.html (the sweep report), and the
ranked table on stdout. A rerun with the same --out skips points already finished (--force redoes
them); a failed point is recorded with its error and the sweep goes on; Ctrl-C stops cleanly.
Exit status: 0 done, 1 some points failed, 2 a bad spec, trace or --out, or an executor that
cannot start (one line naming file, line and field; nothing written), 130 Ctrl-C, 143 SIGTERM.

live view: in a terminal the sweep opens a sweep screen: the points with their status (running
ones with their simulated time), rank and metrics, the Pareto frontier starred, a chart beside
them; keys p pause dispatching, x skip/cancel the selected point, s sort by the cursor's column,
f frontier only, Enter replay a finished point (Esc back), o open sweep.html, q stop. With
--headless, or off a terminal, it prints one line per point and a progress bar instead.
"""


def make_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="dynosim-tui sweep", allow_abbrev=False,
        description="Run many replays over a grid of settings (a YAML/JSON spec or a preset), "
        "rank them against SLA and GPU-budget constraints, and mark the Pareto frontier.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC|TRACE",
                   help="the sweep spec (.yaml/.json); with --preset, the trace")
    p.add_argument("--preset", choices=PRESETS,
                   help="a built-in sweep over TRACE: cold-start (the planner guide's "
                   "startup_time 0..300 s sweep) or topology (agg/disagg splits and TP within "
                   "--gpus)")
    p.add_argument("--gpus", type=int, help="GPU budget of the topology preset (required there)")
    p.add_argument("--sla-ttft-ms", type=float, default=None,
                   help=f"presets: TTFT SLA (p90), default {SLA_TTFT_MS:g}")
    p.add_argument("--sla-itl-ms", type=float, default=None,
                   help=f"presets: ITL SLA (p90), default {SLA_ITL_MS:g}")
    p.add_argument("--print-spec", action="store_true",
                   help="print the preset as a spec file (YAML) and exit")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="replace an axis's values, e.g. --axis startup_time=0,60,120 "
                   "(repeatable)")
    p.add_argument("--out", metavar="DIR", help="output directory (default ./sweep_<name>)")
    p.add_argument("--jobs", type=int, default=None,
                   help=f"points run at once (default: the cores, {default_jobs()} here)")
    p.add_argument("--point-timeout", type=float, default=None, metavar="SECONDS",
                   help="cancel a point that runs longer and record it as failed ('timed "
                   "out'); a search is told it failed")
    p.add_argument("--executor", choices=("local", "ray", "serial"), default="local",
                   help="local process pool (default), Ray (pip install 'dynosim-tui[ray]'), "
                   "or serial in this process")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (default: start a local Ray)")
    p.add_argument("--ray-ship-code", action=argparse.BooleanOptionalAction, default=True,
                   help="with --ray-address, upload this installation's packages to the "
                   "cluster (default; nodes need the same Python and platform); "
                   "--no-ray-ship-code when the nodes have dynosim-tui installed")
    p.add_argument("--force", action="store_true", help="rerun points already finished")
    p.add_argument("--keep-html", action="store_true",
                   help="also write each point's HTML report (points/<hash>.html)")
    p.add_argument("--no-html", action="store_true", help="skip the sweep HTML report")
    p.add_argument("--top", type=int, default=25, help="rows of the ranked table (default 25)")
    p.add_argument("--quiet", action="store_true", help="no per-point progress lines")
    p.add_argument("--headless", action="store_true",
                   help="no live sweep screen: progress on stderr (the default when stdin or "
                   "stdout is not a terminal)")
    return p


def check_out_dir(out: str) -> None:
    """--out is a folder that exists or can be created, writable, on a real file system."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise OutputError(out, "exists and is not a directory (--out takes a folder)")
    check_folder(out, os.path.join(os.path.abspath(out), "points"))


@dataclass(frozen=True)
class LiveSweep:
    """What the live sweep screen needs to run the sweep itself (the spec already checked)."""
    spec: SweepSpec
    points: list[Point] | None  # None for a search: its points are built as it proposes them
    out: str
    make_executor: Callable[[], Executor]
    force: bool
    keep_html: bool
    html: bool
    executor_name: str
    point_timeout_s: float | None = None


def main(argv: Sequence[str] | None = None,
         live: Callable[[LiveSweep], int] | None = None) -> int:
    """`live` opens the sweep screen (the entry point passes it: dynosim never imports the
    view); without it, or with --headless or no terminal, the sweep runs headless."""
    a = make_parser().parse_args(argv)
    try:
        if a.jobs is not None and a.jobs < 1:
            raise InputError(f"must be >= 1, got {a.jobs}", source="--jobs")
        if a.point_timeout is not None and not a.point_timeout > 0:
            raise InputError(f"must be > 0 seconds, got {a.point_timeout:g}",
                             source="--point-timeout")
        if a.ray_address and a.executor != "ray":
            raise InputError("only applies with --executor ray", source="--ray-address")
        if a.preset:
            if a.preset == "topology" and (a.gpus is None or a.gpus < 1):
                raise InputError("the topology preset needs --gpus N (N >= 1)", source="--gpus")
            if a.preset != "topology" and a.gpus is not None:
                raise InputError("only applies with --preset topology", source="--gpus")
            ttft_ms = SLA_TTFT_MS if a.sla_ttft_ms is None else a.sla_ttft_ms
            itl_ms = SLA_ITL_MS if a.sla_itl_ms is None else a.sla_itl_ms
            if a.print_spec:
                if not os.path.isfile(a.spec):
                    raise InputError("trace file not found", source=a.spec)
                if a.axis:
                    raise InputError("does not apply with --print-spec: edit the printed "
                                     "spec's axes instead", source="--axis")
                # A spec's trace is read relative to the spec file, which may be saved anywhere.
                trace = os.path.abspath(a.spec)
                print(yaml.safe_dump(preset_mapping(a.preset, trace, gpus=a.gpus,
                                                    ttft_ms=ttft_ms, itl_ms=itl_ms),
                                     sort_keys=False), end="")
                return 0
            spec = preset_spec(a.preset, a.spec, gpus=a.gpus, ttft_ms=ttft_ms, itl_ms=itl_ms,
                               axis_overrides=a.axis)
        else:
            for flag, given in (("--gpus", a.gpus is not None), ("--print-spec", a.print_spec),
                                ("--sla-ttft-ms", a.sla_ttft_ms is not None),
                                ("--sla-itl-ms", a.sla_itl_ms is not None)):
                if given:
                    raise InputError("only applies with --preset (a spec states its "
                                     "constraints)", source=flag)
            spec = load_spec(a.spec, a.axis)
        from dynosim.sweep.progress import HeadlessProgress
        from dynosim.sweep.html import write_sweep_html
        from dynosim.sweep.runner import build_points, check_space, check_traces, \
            describe_index, point_at, run_sweep
        from dynosim.sweep.table import format_summary

        out = a.out or f"sweep_{spec.name}"
        check_out_dir(out)  # before any point is built or run
        points: list[Point] | None = None
        if spec.search.method == "grid":
            points = build_points(spec)  # every point checked before anything runs
            what = f"{len(points)} points"
        else:
            what = (f"{spec.search.method} search, {spec.search.trials} trials over a space of "
                    f"{check_space(spec)} points (seed {spec.search.seed})")
        check_traces(points if points is not None else [point_at(spec, 0)])
        if spec.capacity is not None:
            c = spec.capacity
            what += (f", capacity search on {c.load} in [{c.low:g}, {c.high:g}] (tolerance "
                     f"{c.tolerance:g}, <= {c.steps} runs per candidate)")

        def executor() -> Executor:
            return make_executor(a.executor, a.jobs, a.ray_address, a.ray_ship_code)

        if live is not None and not a.headless and sys.stdin.isatty() and sys.stdout.isatty():
            return live(LiveSweep(spec, points, out, executor, force=a.force,
                                  keep_html=a.keep_html, html=not a.no_html,
                                  executor_name=a.executor,
                                  point_timeout_s=a.point_timeout))
        # The banner comes with the sweep's start, once the executor is up (run_sweep makes
        # it then, and only when there is something to run): a Ray head that does not answer
        # is one line and exit 2, with no output directory left behind.
        progress = HeadlessProgress(
            lambda i: describe_index(spec, i), lines=not a.quiet,
            banner=f"sweep '{spec.name}': {what}, executor {a.executor}, results in {out}")
        with sigterm_raises():  # stops the sweep as Ctrl-C does (run_sweep saves what ran)
            res = run_sweep(spec, out, executor, force=a.force, keep_html=a.keep_html,
                            observer=progress, points=points,
                            point_timeout_s=a.point_timeout)
            if not a.no_html:
                res.files.append(write_sweep_html(res, out))
    except (InputError, OutputError) as exc:
        print(f"dynosim-tui sweep: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. Ray not installed
        print(f"dynosim-tui sweep: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output directory went away or filled up mid-sweep
        print(f"dynosim-tui sweep: error: cannot write the results: {exc.strerror or exc}"
              + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        terminated = isinstance(exc, Terminated)
        print(f"dynosim-tui sweep: {stop_words(terminated)} while writing the tables; rerun "
              "to resume", file=sys.stderr)
        return stop_status(terminated)
    print(format_summary(res, a.top))
    print("results: " + ", ".join(res.files))
    if res.interrupted:
        print(f"dynosim-tui sweep: {stop_words(res.terminated)}: {res.ran} point(s) finished in "
              f"this run are saved; rerun the same command to resume", file=sys.stderr)
        return stop_status(res.terminated)
    return 1 if res.failed else 0
