"""`dynosim-tui`: replay an LLM-serving trace through simulated vLLM-style workers.

Flag names follow `python -m dynamo.replay`, so existing scripts work with the command renamed.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Sequence

from dynosim.arguments import Parser, package_version
from dynosim.interrupts import Terminated, sigterm_raises, stop_status, stop_words

# Only the standard library at import time: the heavy modules (numpy, polars, the engine) are
# imported inside main(), where Ctrl-C and SIGTERM during start-up are handled like later.
if TYPE_CHECKING:
    from dynosim.outputs.plan import OutputPlan
    from dynosim.replay import Replay, RunOptions
    from planner.config import PlannerConfig

EPILOG = """\
examples:
  dynosim-tui traces/synthetic_trace.jsonl --num-workers 4 --export out/
  dynosim-tui trace.jsonl --extra-engine-args '{"engine": {"num_gpu_blocks": 8192}}' \\
      --report-json report.json
  dynosim-tui --input-tokens 2000 --output-tokens 200 --request-count 500 --request-rate 5
  dynosim-tui trace.jsonl --num-workers 8 --router-mode kv_router --seed 1 --export out/
  dynosim-tui trace.jsonl --prefill-engine-args '{"engine": {"kv_transfer_bandwidth": 25,
      "kv_transfer_bytes_per_token": 131072}}' --decode-engine-args '{}' \\
      --num-prefill-workers 2 --num-decode-workers 2 --export out/

outputs: the AIPerf-style table on stdout; the JSON report (the reference's summary keys at top
level, plus a "dynosim" section with the run's configuration) at --report-json, or by default at
./dynosim_replay_report_<timestamp>.json; with --export DIR: DIR/report.json,
DIR/requests.jsonl, DIR/requests.parquet, DIR/summary.txt, DIR/report.html (a self-contained
HTML report) and DIR/worker_samples.parquet (per-worker KV usage and queue depth every 1 s).
With --planner-config, also the planner diagnostics HTML report at
<report_output_dir>/<report_filename> (default ./planner_reports/planner_report_<timestamp>.html).
Every output location is checked before the run; all files appear together, complete, or
not at all. A target that is a device, FIFO or the pipe behind /dev/stdout is written in place.

exit status: 0 success; 1 every request was rejected, or some could never be scheduled so the
replay could not finish (the report is still written, and a warning says why); 2 bad input or an output that cannot be written (one line on stderr naming
file, line and field, or the path; nothing written); 130 Ctrl-C; 143 SIGTERM (nothing
written). A closed stdout (| head) is not an error: the report files are still written.
Many runs over a grid of settings, ranked against SLAs: dynosim-tui sweep --help.
"""


def make_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="dynosim-tui",
        description="Simulate LLM inference serving: replay a Mooncake trace (or a synthetic "
        "workload) through vLLM-style workers with a paged, prefix-caching KV cache, and report "
        "TTFT, ITL, throughput and GPU-hours as NVIDIA Dynamo's offline replay does.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # no prefix matching: "--out" must not mean --output-tokens
    )
    p.add_argument("trace", nargs="?", help="Mooncake-format JSONL trace (one request per line)")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    g = p.add_argument_group("workload")
    g.add_argument("--trace-format", default="mooncake", help="trace format (default: mooncake)")
    g.add_argument("--trace-block-size", type=int, default=512,
                   help="tokens per trace hash id (default: 512)")
    g.add_argument("--arrival-speedup-ratio", type=float, default=1.0,
                   help="divide arrival times and inter-turn delays by this (default: 1.0)")
    g.add_argument("--replay-concurrency", type=int, default=None,
                   help="closed loop: keep N sessions in flight, ignoring timestamps")
    g.add_argument("--max-sim-time-seconds", type=float, default=None,
                   help="stop at this simulated time; unfinished requests are left out")
    s = p.add_argument_group("synthetic workload (instead of a trace)")
    s.add_argument("--input-tokens", type=int, help="prompt length of every request")
    s.add_argument("--output-tokens", type=int, help="output length of every request")
    s.add_argument("--request-count", type=int, help="number of requests (sessions x turns)")
    s.add_argument("--request-rate", type=float, help="Poisson arrivals, requests per second")
    s.add_argument("--arrival-interval-ms", type=float, help="fixed gap between arrivals")
    s.add_argument("--turns-per-session", type=int, default=1, help="turns per session")
    s.add_argument("--inter-turn-delay-ms", type=float, default=0.0,
                   help="think time between turns")
    s.add_argument("--arrival-seed", type=int, default=42, help="seed of the Poisson arrivals")
    e = p.add_argument_group("engine and routing")
    e.add_argument("--num-workers", type=int, default=1, help="aggregated workers (default: 1)")
    e.add_argument("--router-mode", default="round_robin",
                   help="round_robin (default), or kv_router: send each request to the worker "
                   "with the lowest cost = queued prefill blocks - cached prefix blocks + "
                   "active decode blocks (ties broken at random, see --seed)")
    e.add_argument("--router-config", default=None, metavar="JSON|PATH",
                   help="kv_router knobs as inline JSON or a .json/.yaml file, e.g. "
                   "'{\"overlap_score_weight\": 1.0, \"router_temperature\": 0.0}' (unknown "
                   "keys are rejected)")
    e.add_argument("--kv-event-lag-ms", type=float, default=0.0,
                   help="extra delay before the router sees a worker's KV cache changes")
    d = p.add_argument_group("disaggregated serving (prefill and decode pools)")
    d.add_argument("--prefill-engine-args", default=None, metavar="JSON|PATH",
                   help="engine args of the prefill pool (also holds kv_transfer_bandwidth "
                   "[GB/s] and kv_transfer_bytes_per_token for the KV hand-off)")
    d.add_argument("--decode-engine-args", default=None, metavar="JSON|PATH",
                   help="engine args of the decode pool")
    d.add_argument("--num-prefill-workers", type=int, default=1, help="prefill workers")
    d.add_argument("--num-decode-workers", type=int, default=1, help="decode workers")
    pl = p.add_argument_group("planner in the loop")
    pl.add_argument("--planner-config", default=None, metavar="JSON|PATH",
                    help="autoscale with the Dynamo planner: inline JSON or a .json/.yaml file, "
                    'e.g. \'{"mode": "agg", "optimization_target": "sla", "ttft_ms": 1500, '
                    '"itl_ms": 50}\'; scale-ups take the engine args\' startup_time (s)')
    e.add_argument("--extra-engine-args", default=None, metavar="JSON|PATH",
                   help="engine args as inline JSON or a .json/.yaml file; nested 1.6 form "
                   '{"engine": {...}, "tensor_parallel_size": 1} or flat 1.4 form '
                   '{"block_size": 64, ...}')
    e.add_argument("--seed", type=int, default=0,
                   help="seed of the router's random tie-break (recorded in the report; the "
                   "same seed gives identical reports)")
    r = p.add_argument_group("SLA (adds goodput keys to the report)")
    r.add_argument("--sla-ttft-ms", type=float,
                   help="a request meets the SLA only if its TTFT is at most this")
    r.add_argument("--sla-itl-ms", type=float,
                   help="... and its mean inter-token latency at most this")
    r.add_argument("--sla-e2e-ms", type=float,
                   help="... and its end-to-end latency at most this")
    o = p.add_argument_group("output")
    o.add_argument("--report-json", metavar="PATH", help="write the JSON report here")
    o.add_argument("--report-jsonl", metavar="PATH",
                   help="write one JSON record per request here")
    o.add_argument("--export", metavar="DIR",
                   help="write report.json, requests.jsonl, requests.parquet, summary.txt, "
                   "report.html, worker_samples.parquet here")
    o.add_argument("--headless", action="store_true",
                   help="run without the live view (implied by --export, and when stdin or "
                   "stdout is not a terminal)")
    o.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: on when stderr is a terminal)")
    return p


def options_from_args(a: argparse.Namespace) -> RunOptions:
    from dynosim.replay import RunOptions

    return RunOptions(
        trace=a.trace, trace_format=a.trace_format, trace_block_size=a.trace_block_size,
        arrival_speedup_ratio=a.arrival_speedup_ratio, replay_concurrency=a.replay_concurrency,
        num_workers=a.num_workers, router_mode=a.router_mode,
        extra_engine_args=a.extra_engine_args, max_sim_time_seconds=a.max_sim_time_seconds,
        sla_ttft_ms=a.sla_ttft_ms, sla_itl_ms=a.sla_itl_ms, sla_e2e_ms=a.sla_e2e_ms,
        input_tokens=a.input_tokens, output_tokens=a.output_tokens,
        request_count=a.request_count, request_rate=a.request_rate,
        arrival_interval_ms=a.arrival_interval_ms, turns_per_session=a.turns_per_session,
        inter_turn_delay_ms=a.inter_turn_delay_ms, arrival_seed=a.arrival_seed, seed=a.seed,
        router_config=a.router_config, kv_event_lag_ms=a.kv_event_lag_ms,
        prefill_engine_args=a.prefill_engine_args, decode_engine_args=a.decode_engine_args,
        num_prefill_workers=a.num_prefill_workers, num_decode_workers=a.num_decode_workers,
        planner_config=a.planner_config,
    )


def check_flags_apply(o: RunOptions, given: set[str]) -> None:
    """A flag the run would ignore (`--num-prefill-workers` without disaggregated pools, a
    synthetic-workload flag with a trace, ...) is refused rather than dropped without a word."""
    from dynosim.inputs.errors import InputError
    from dynosim.replay import ignored_settings

    for name, why in ignored_settings(o).items():
        flag = "--" + name.replace("_", "-")
        if flag in given:
            raise InputError(why, source=flag)


def given_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The long options present on the command line (`--flag value` or `--flag=value`)."""
    known = set(parser._option_string_actions)
    given: set[str] = set()
    for token in argv:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        if name in known:
            given.add(name)
    return given


def run_inputs(o: RunOptions) -> list[tuple[str, str | None]]:
    """The run's input files, which no output may overwrite."""
    return [("input trace", o.trace), ("--extra-engine-args file", o.extra_engine_args),
            ("--prefill-engine-args file", o.prefill_engine_args),
            ("--decode-engine-args file", o.decode_engine_args),
            ("--router-config file", o.router_config),
            ("--planner-config file", o.planner_config)]


def plan_headless(a: argparse.Namespace, o: RunOptions,
                  planner: PlannerConfig | None) -> OutputPlan:
    from dynosim.outputs.plan import plan_run_outputs

    return plan_run_outputs(report_json=a.report_json, report_jsonl=a.report_jsonl,
                            export_dir=a.export, planner=planner, inputs=run_inputs(o),
                            default_json=True)


class _Console:
    """stdout that a closed pipe (`| head`) silences instead of failing the run."""

    closed = False

    def say(self, text: str) -> None:
        if self.closed:
            return
        try:
            print(text)
        except BrokenPipeError:
            self.close()

    def flush(self) -> None:
        if self.closed:
            return
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            self.close()
        except ValueError:  # closed by the caller
            self.closed = True

    def close(self) -> None:
        # Later writes, and the interpreter's final flush, go to /dev/null.
        self.closed = True
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, sys.stdout.fileno())
            os.close(fd)
        except (OSError, ValueError):
            pass


def warn(line: str) -> None:
    try:
        print(f"dynosim-tui: warning: {line}", file=sys.stderr)
    except (BrokenPipeError, ValueError):
        pass


def run_headless(a: argparse.Namespace, replay: Replay, plan: OutputPlan, state: _RunState
                 ) -> int:
    from dynosim.gc_pause import paused_gc
    from dynosim.outputs.files import write_outputs
    from dynosim.progress import Progress

    console = state.console
    for line in replay.warnings():
        warn(line)
    total = len(replay.workload)
    bar = Progress(total, enabled=a.progress)
    try:
        with paused_gc():  # over the whole run, not per chunk (Replay.advance's own pause)
            while replay.advance(2000):
                snap = replay.sim
                bar.update(snap.completed + snap.rejected, snap.now)
    finally:
        bar.close()
    report = replay.report()
    stranded = report.run["stranded_requests"]
    if stranded:
        warn(f"{stranded} request(s) could never be scheduled, so the replay could not finish: "
             "a request outgrew the KV cache of every worker it could go to (a preempted "
             "request that grew past num_gpu_blocks, or a hand-off the decode pool cannot "
             "hold); raise num_gpu_blocks. They are left out of the report; exit status 1")
    for line in replay.rejection_warnings():
        warn(line)
    console.say(report.table())
    log = plan.planner_log.path if plan.planner_log is not None else None
    for line in report.planner_lines(log):
        console.say(line)
    console.flush()
    written = write_outputs(report, plan, on_commit=state.committed)
    if written.broken_pipes:
        console.close()
    for what in ("--report-json", "--report-json (default)"):
        if what in written.paths:
            console.say(f"Saved full report to: {written.paths[what]}")
    if plan.planner_html is not None:
        console.say(f"Planner diagnostics report: {plan.planner_html.path}")
    if a.export:
        console.say(f"Exported to: {a.export}")
    console.flush()
    rejected = report.run["rejected_requests"]
    if total > 0 and rejected == total:
        warn(f"every request ({total}) was rejected, so nothing was served; exit status 1")
        return 1
    return 1 if stranded else 0  # the reference stops with an error on such a run


class _RunState:
    def __init__(self) -> None:
        self.console = _Console()
        self.written = False  # the report files are in place (an interrupt came after)

    def committed(self) -> None:
        self.written = True


def _run(argv: Sequence[str] | None, state: _RunState) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    from dynosim.inputs.errors import InputError
    from dynosim.outputs.writers import OutputError

    try:
        o = options_from_args(args)
        check_flags_apply(o, given_flags(parser, argv or []))
        headless = bool(args.export or args.headless
                        or not (sys.stdin.isatty() and sys.stdout.isatty()))
        plan: list[OutputPlan] = []
        from dynosim.replay import build_replay

        if headless:
            replay = build_replay(o, lambda cfg: plan.append(plan_headless(args, o, cfg)))
            return run_headless(args, replay, plan[0], state)
        from dynosim.outputs.plan import plan_live_outputs
        from tui.launch import run_tui  # Textual is imported only for the live view

        replay = build_replay(o, lambda cfg: plan_live_outputs(
            args.report_json, args.report_jsonl, run_inputs(o), planner=cfg))
        return run_tui(replay, report_json=args.report_json, report_jsonl=args.report_jsonl,
                       inputs=run_inputs(o))
    except (InputError, OutputError) as exc:
        print(f"dynosim-tui: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:  # `dynosim-tui sweep ...` (a trace named "sweep": ./sweep)
        from dynosim.sweep.cli import main as sweep_main
        from tui.launch import run_sweep_tui  # Textual is imported only when it is called

        return sweep_main(argv[1:], live=run_sweep_tui)
    state = _RunState()
    try:
        with sigterm_raises():  # staged files are removed, nothing partial is left
            return _run(argv, state)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        terminated = isinstance(exc, Terminated)
        done = "the report was already written" if state.written else "no report written"
        print(f"dynosim-tui: {stop_words(terminated)}; {done}", file=sys.stderr)
        return stop_status(terminated)
    finally:
        state.console.flush()


if __name__ == "__main__":
    sys.exit(main())
