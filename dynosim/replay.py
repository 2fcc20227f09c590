# Over 450 lines on purpose: one concept, options in, a checked and built replay out.
"""One builder for every front end (headless CLI and TUI): validate all inputs, then build the
engine. Anything wrong raises InputError before a single event runs, so nothing is written."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import msgspec

from dynosim.inputs.engine_args import ParsedEngineArgs, parse_engine_args
from dynosim.inputs.errors import InputError
from dynosim.inputs.memory import check_fits, run_demands
from dynosim.inputs.router_config import parse_router_config
from dynosim.inputs.synthetic import make_synthetic
from dynosim.inputs.trace import load_mooncake, trace_line_numbers
from engine.config import BACKEND_NAMES, BACKEND_SGLANG, EngineConfig
from engine.sglang import never_fits
from dynosim.gc_pause import paused_gc
from dynosim.outputs.records import RecordLayout
from dynosim.outputs.rejections import rejection_warnings
from dynosim.outputs.report import PlannerRecord, Report, ReportInputs, build_report
from dynosim.planner_driver import PlannerDriver
from dynosim.planner_setup import build_planner
from engine import is_compiled
from engine.sim import Simulation
from engine.topology import ROUTER_KV, TRANSFER_DESTINATION_MISSING, Topology
from engine.pool import POOL_AGG, POOL_DECODE, POOL_PREFILL
from engine.workload import Workload
from planner.config import PlannerConfig
from planner.planner import Planner
from planner.types import Decision, ScalingEvent, TickSnapshot

ROUTER_MODES = ("round_robin", "kv_router")
TRACE_FORMATS = ("mooncake",)


class RunOptions(msgspec.Struct, kw_only=True, frozen=True):
    """Everything a replay is built from; field names follow `python -m dynamo.replay` flags."""

    trace: str | None = None
    trace_format: str = "mooncake"
    trace_block_size: int = 512
    arrival_speedup_ratio: float = 1.0
    replay_concurrency: int | None = None
    num_workers: int = 1
    router_mode: str = "round_robin"
    extra_engine_args: str | None = None
    max_sim_time_seconds: float | None = None
    sla_ttft_ms: float | None = None
    sla_itl_ms: float | None = None
    sla_e2e_ms: float | None = None
    # synthetic workload (used when no trace is given)
    input_tokens: int | None = None
    output_tokens: int | None = None
    request_count: int | None = None
    request_rate: float | None = None
    arrival_interval_ms: float | None = None
    turns_per_session: int = 1
    inter_turn_delay_ms: float = 0.0
    arrival_seed: int = 42
    seed: int = 0
    # KV-aware routing and disaggregated prefill/decode
    router_config: str | None = None
    kv_event_lag_ms: float = 0.0
    prefill_engine_args: str | None = None
    decode_engine_args: str | None = None
    num_prefill_workers: int = 1
    num_decode_workers: int = 1
    planner_config: str | None = None

    @property
    def disaggregated(self) -> bool:
        return self.prefill_engine_args is not None or self.decode_engine_args is not None


def _check(cond: bool, flag: str, msg: str) -> None:
    if not cond:
        raise InputError(msg, source=flag)


def validate_options(o: RunOptions) -> None:
    _check(o.num_workers >= 1, "--num-workers", f"must be >= 1, got {o.num_workers}")
    _check(o.router_mode in ROUTER_MODES, "--router-mode",
           f"must be one of {', '.join(ROUTER_MODES)}, got {o.router_mode!r}")
    _check(o.router_config is None or o.router_mode == "kv_router", "--router-config",
           "only applies with --router-mode kv_router")
    _check(o.kv_event_lag_ms >= 0 and math.isfinite(o.kv_event_lag_ms), "--kv-event-lag-ms",
           f"must be a number >= 0, got {o.kv_event_lag_ms}")
    if o.disaggregated:
        missing = [f for f, v in (("--prefill-engine-args", o.prefill_engine_args),
                                  ("--decode-engine-args", o.decode_engine_args)) if v is None]
        if missing:
            raise InputError("disaggregated serving needs both --prefill-engine-args and "
                             "--decode-engine-args (JSON, may be '{}')", source=missing[0])
        _check(o.extra_engine_args is None, "--extra-engine-args",
               "applies to aggregated runs; with --prefill-engine-args/--decode-engine-args "
               "put the settings of each pool there")
        _check(o.num_prefill_workers >= 1, "--num-prefill-workers",
               f"must be >= 1, got {o.num_prefill_workers}")
        _check(o.num_decode_workers >= 1, "--num-decode-workers",
               f"must be >= 1, got {o.num_decode_workers}")
    _check(o.trace_format in TRACE_FORMATS, "--trace-format",
           f"only {', '.join(TRACE_FORMATS)} is supported, got {o.trace_format!r}")
    _check(o.arrival_speedup_ratio > 0 and math.isfinite(o.arrival_speedup_ratio),
           "--arrival-speedup-ratio", f"must be a positive number, got {o.arrival_speedup_ratio}")
    if o.replay_concurrency is not None:
        _check(o.replay_concurrency >= 1, "--replay-concurrency",
               f"must be >= 1, got {o.replay_concurrency}")
    if o.max_sim_time_seconds is not None:
        _check(o.max_sim_time_seconds > 0, "--max-sim-time-seconds",
               f"must be > 0, got {o.max_sim_time_seconds}")
    for name in ("sla_ttft_ms", "sla_itl_ms", "sla_e2e_ms"):
        v = getattr(o, name)
        if v is not None:
            _check(v > 0 and math.isfinite(v), "--" + name.replace("_", "-"),
                   f"must be a finite number > 0, got {v}")
    _check(o.trace_block_size >= 1, "--trace-block-size",
           f"must be an integer >= 1, got {o.trace_block_size}")
    _check(o.seed >= 0, "--seed", f"must be a non-negative integer, got {o.seed}")
    synthetic = [o.input_tokens, o.output_tokens, o.request_count]
    if o.trace is None:
        if any(v is None for v in synthetic):
            raise InputError(
                "give a trace file, or a synthetic workload with --input-tokens, "
                "--output-tokens and --request-count", source="TRACE")
    elif any(v is not None for v in synthetic):
        raise InputError("give either a trace file or --input-tokens/--output-tokens/"
                         "--request-count, not both", source="TRACE")


_SYNTHETIC_ONLY = ("request_rate", "arrival_interval_ms", "turns_per_session",
                   "inter_turn_delay_ms", "arrival_seed")


def ignored_settings(o: RunOptions) -> dict[str, str]:
    """The settings this run does not use (field -> why): the CLI refuses them when they are
    given, a sweep's reproducing command leaves them out."""
    rules: list[tuple[tuple[str, ...], bool, str]] = [
        (("num_prefill_workers", "num_decode_workers"), o.disaggregated,
         "only applies to a disaggregated run (with --prefill-engine-args and "
         "--decode-engine-args)"),
        (("num_workers",), not o.disaggregated,
         "applies to aggregated runs; a disaggregated run takes --num-prefill-workers and "
         "--num-decode-workers"),
        (_SYNTHETIC_ONLY, o.trace is None,
         "applies to a synthetic workload (--input-tokens/--output-tokens/--request-count), "
         "not to a trace file"),
        (("trace_format", "trace_block_size"), o.trace is not None,
         "applies to a trace file, not to a synthetic workload"),
        (("kv_event_lag_ms",), o.router_mode == "kv_router",
         "only applies with --router-mode kv_router"),
    ]
    return {name: why for names, applies, why in rules if not applies for name in names}


def load_workload(o: RunOptions, notes: list[str] | None = None) -> Workload:
    """The run's workload; `notes` receives the trace's warnings (fields it ignores)."""
    closed = o.replay_concurrency is not None
    if o.trace is not None:
        return load_mooncake(o.trace, trace_block_size=o.trace_block_size,
                             arrival_speedup_ratio=o.arrival_speedup_ratio, closed_loop=closed,
                             notes=notes)
    assert o.input_tokens is not None and o.output_tokens is not None
    assert o.request_count is not None
    if not closed and (o.request_rate is None) == (o.arrival_interval_ms is None):
        raise InputError("a synthetic workload needs exactly one of --request-rate, "
                         "--arrival-interval-ms or --replay-concurrency", source="--request-rate")
    try:
        return make_synthetic(
            o.input_tokens, o.output_tokens, o.request_count, request_rate=o.request_rate,
            arrival_interval_ms=o.arrival_interval_ms, seed=o.arrival_seed,
            turns_per_session=o.turns_per_session, inter_turn_delay_ms=o.inter_turn_delay_ms,
            closed_loop=closed)
    except InputError as exc:  # name the flag the user typed, not the parameter
        flag = _SYNTHETIC_FLAGS.get(exc.field or "")
        if flag is None:
            raise
        raise InputError(exc.message, source=flag) from None


# make_synthetic's parameter -> the flag that sets it
_SYNTHETIC_FLAGS = {
    "input_tokens": "--input-tokens", "output_tokens": "--output-tokens",
    "request_count": "--request-count", "request_rate": "--request-rate",
    "arrival_interval_ms": "--arrival-interval-ms", "turns_per_session": "--turns-per-session",
    "inter_turn_delay_ms": "--inter-turn-delay-ms", "seed": "--arrival-seed",
    "trace_block_size": "--trace-block-size",
}


# The longest output a request may ask for: far beyond any model's context, small enough that
# every count stays a machine integer. Longer than WARN_OUTPUT_TOKENS is allowed with a warning:
# the engine simulates every decoded token.
MAX_OUTPUT_TOKENS = 2**31 - 1
WARN_OUTPUT_TOKENS = 1_000_000


def check_output_lengths(o: RunOptions, workload: Workload) -> list[str]:
    """InputError past MAX_OUTPUT_TOKENS; a warning (returned) past WARN_OUTPUT_TOKENS, naming
    the first trace line or the flag."""
    lengths = workload.output_length
    longest = max(lengths) if len(lengths) else 0
    if longest <= WARN_OUTPUT_TOKENS:
        return []
    if o.trace is None:
        source, line, field = "--output-tokens", None, None
    else:
        idx = next(i for i, v in enumerate(lengths) if v > WARN_OUTPUT_TOKENS)
        source, line, field = o.trace, trace_line_numbers(o.trace, [idx])[0], "output_length"
        if longest > MAX_OUTPUT_TOKENS:
            idx = next(i for i, v in enumerate(lengths) if v > MAX_OUTPUT_TOKENS)
            line = trace_line_numbers(o.trace, [idx])[0]
    if longest > MAX_OUTPUT_TOKENS:
        raise InputError(f"must be at most {MAX_OUTPUT_TOKENS} tokens, got {longest}",
                         source=source, line=line, field=field)
    where = str(InputError("", source=source, line=line, field=field)).rstrip(": ")
    count = sum(1 for v in lengths if v > WARN_OUTPUT_TOKENS)
    return [f"{where}: {count} request(s) ask for more than {WARN_OUTPUT_TOKENS:,} output "
            f"tokens (up to {longest:,}); every token is simulated, so this run may take long"]


def check_memory(o: RunOptions, pools: list[ParsedEngineArgs], workload: Workload | None
                 ) -> None:
    """Refuse a run that cannot fit in memory (dynosim/inputs/memory.py), before the
    synthetic workload or the engine is built."""
    bs = pools[0].config.block_size
    if workload is not None:
        n = len(workload)
        # an upper bound of sum(ceil(tokens / bs)), at C speed
        blocks = (sum(workload.input_length) + sum(workload.output_length)) // bs + n
        req_setting = o.trace or "TRACE"
    else:
        assert o.input_tokens is not None and o.output_tokens is not None
        assert o.request_count is not None
        n = max(o.request_count, 0) * max(o.turns_per_session, 1)
        blocks = n * -(-(max(o.input_tokens, 0) + max(o.output_tokens, 0)) // bs)
        req_setting = "--request-count"
    if o.disaggregated:
        workers = o.num_prefill_workers + o.num_decode_workers
        workers_setting = "--num-prefill-workers" if (
            o.num_prefill_workers >= o.num_decode_workers) else "--num-decode-workers"
        flag = "--prefill-engine-args"
    else:
        workers, workers_setting, flag = o.num_workers, "--num-workers", "--extra-engine-args"
    per_worker = max(a.config.num_gpu_blocks for a in pools)
    check_fits(run_demands(
        requests=n, requests_setting=req_setting, workers=workers,
        workers_setting=workers_setting, kv_blocks_per_worker=per_worker,
        blocks_setting=f"{flag} num_gpu_blocks", workload_blocks=blocks))


class Replay:
    """A built replay: the engine plus what the report needs. Front ends call `advance` in
    chunks (the TUI paces it; the CLI runs it flat out) and `report` at any time."""

    def __init__(self, options: RunOptions, workload: Workload, pools: list[ParsedEngineArgs],
                 sim: Simulation, build_ms: float) -> None:
        self.options = options
        self.workload = workload
        self.sim = sim
        self.engine_wall_ms = build_ms  # engine construction + execution, as the reference
        self.pools = pools  # aggregated: one; disaggregated: prefill, decode
        self.router_config: dict[str, Any] = {}
        self.planner: Planner | None = None
        self.planner_config: PlannerConfig | None = None
        self.planner_driver: PlannerDriver | None = None
        self.decisions: list[Decision] = []  # one per planner tick, in order
        self.notes: list[str] = []

    def backend(self) -> str:
        """The scheduler family ("vllm", "sglang", "trtllm"; "prefill/decode" when they differ)."""
        names = [a.normalized["engine"]["backend"] for a in self.pools]
        return names[0] if len(set(names)) == 1 else "/".join(names)

    def kv_unit(self) -> str:
        """What one unit of a worker's KV counts: SGLang's pages or vLLM/TRT-LLM's blocks."""
        cfg = self.pools[-1].config
        kind = "page" if cfg.backend == BACKEND_SGLANG else "block"
        return f"{kind}s of {cfg.block_size} tokens"

    def warnings(self) -> list[str]:
        """Things the user should know before trusting the numbers (one line each)."""
        flags = (["--prefill-engine-args", "--decode-engine-args"] if self.options.disaggregated
                 else ["--extra-engine-args"])
        out: list[str] = []
        for flag, args in zip(flags, self.pools):
            for key in args.ignored:
                out.append(f"{flag}: '{key}' is accepted but has no effect in this version")
            for msg in args.warnings:
                out.append(f"{flag}: {msg}")
        return out + self.notes

    def rejection_warnings(self) -> list[str]:
        """After the run: rejected requests by reason, with the first trace lines affected."""
        if self.sim.rejected == 0:
            return []
        trace = self.options.trace

        def where(idxs: list[int]) -> str:
            if trace is None:
                return "requests " + ", ".join(str(i + 1) for i in idxs)
            lines = trace_line_numbers(trace, idxs)
            return f"{trace} line{'s' if len(lines) > 1 else ''} " + ", ".join(map(str, lines))

        return rejection_warnings(self.sim.collect(), self.workload,
                                  [p.config for p in self.pools], where)

    def advance(self, max_steps: int) -> bool:
        """Run up to max_steps engine instants. True while work remains."""
        t0 = time.perf_counter()
        # The engine allocates millions of long-lived objects (requests, KV blocks) and no
        # garbage cycles: the cyclic GC would only rescan them (~9% of a run).
        with paused_gc():
            more = self.sim.run_steps(max_steps)
            driver = self.planner_driver
            if self.sim.at_tick and driver is not None:
                # the engine resumes the tick's instant on its next step
                self.decisions.append(driver.on_tick())
        self.engine_wall_ms += (time.perf_counter() - t0) * 1000.0
        return more

    def scaling_events(self) -> list[ScalingEvent]:
        """The planner's scaling events so far, in order (from the decisions)."""
        return [ev for d in self.decisions for ev in d.events]

    def tick_snapshots(self) -> list[TickSnapshot]:
        """The planner's per-tick snapshots so far (ticks that decided or looked)."""
        return [d.snapshot for d in self.decisions if d.snapshot is not None]

    def run_to_end(self, chunk: int = 100_000) -> None:
        """Advance until no work is left (or --max-sim-time-seconds stops the replay)."""
        with paused_gc():  # over the whole run, not per chunk
            while self.advance(chunk):
                pass

    def finished(self) -> bool:
        return self.sim.is_finished()

    def time_limited(self) -> bool:
        """True when --max-sim-time-seconds stopped the replay with work left."""
        o = self.options
        if o.max_sim_time_seconds is None:
            return False
        sim = self.sim
        return sim.next_event_time() > o.max_sim_time_seconds * 1000.0

    def report(self) -> Report:
        """The report of the run so far (complete once `advance` returned False)."""
        return build_report(self.report_inputs())

    def report_inputs(self) -> ReportInputs:
        sim = self.sim
        cols = sim.collect()
        o = self.options
        topo = sim.topo
        # Workers exist until the replay's last event (a late rejection can outlast every
        # completion), which is what the reference bills worker-seconds for.
        end_ms = max(cols.terminal_ms) if len(cols) else 0.0
        if topo.disaggregated:
            pre, dec = self.pools
            worker_counts = {"prefill": topo.num_prefill, "decode": topo.num_decode}
            worker_s = (sim.worker_seconds(POOL_PREFILL, end_ms),
                        sim.worker_seconds(POOL_DECODE, end_ms))
            gpus = (pre.config.tensor_parallel_size, dec.config.tensor_parallel_size)
            engine_args: dict[str, Any] = {"prefill": pre.normalized, "decode": dec.normalized}
        else:
            worker_counts = {"aggregated": o.num_workers}
            worker_s = (0.0, sim.worker_seconds(POOL_AGG, end_ms))
            gpus = (0, self.pools[0].config.tensor_parallel_size)
            engine_args = self.pools[0].normalized
        snap = sim.snapshot()
        unfinished = snap.total_requests - snap.completed - snap.rejected
        planner = None
        if self.planner is not None and self.planner_config is not None:
            p = self.planner
            planner = PlannerRecord(
                self.planner_config, p.gpus,
                events=self.scaling_events(), snapshots=self.tick_snapshots(),
                total_ticks=p.total_ticks, gpu_hours=p.gpu_hours)
        return ReportInputs(
            cols=cols, workload=self.workload,
            options={k: getattr(o, k) for k in o.__struct_fields__},
            sla_ms=(o.sla_ttft_ms, o.sla_itl_ms, o.sla_e2e_ms),
            disaggregated=topo.disaggregated, worker_counts=worker_counts,
            worker_seconds=worker_s, gpus_per_worker=gpus, engine_args=engine_args,
            router_mode=o.router_mode, router_config=self.router_config or None,
            router_hit_rate=snap.router_hit_rate if snap.router_hit_rate >= 0 else None,
            seed=o.seed, sim_time_ms=sim.now, engine_wall_ms=self.engine_wall_ms,
            finished=sim.is_finished() and unfinished == 0,
            rejected=snap.rejected, unfinished=unfinished,
            stranded=unfinished if sim.is_finished() and not self.time_limited() else 0,
            compiled_engine=is_compiled(),
            layout=RecordLayout(topo.disaggregated, topo.router_mode == ROUTER_KV,
                                topo.num_prefill, self.pools[0].config.block_size),
            worker_samples=sim.samples.copy(),
            planner=planner,
            backend=self.backend(), kv_unit=self.kv_unit(),
        )


def check_aggregated(engine_args: ParsedEngineArgs, what: str = "--extra-engine-args") -> None:
    """An aggregated run needs aggregated workers: a prefill/decode worker_type (or the 1.4
    is_prefill/is_decode flags) belongs to a disaggregated run, which takes its pools from
    --prefill-engine-args and --decode-engine-args."""
    role = engine_args.normalized["engine"]["worker_type"]
    if role != "aggregated":
        field = "engine.worker_type" if engine_args.form == "nested" else "worker_type"
        raise InputError(
            f'"{role}" workers mean disaggregated serving: give the pools with '
            "--prefill-engine-args/--decode-engine-args; an aggregated run "
            'needs "aggregated"', source=what, field=field)


def _pool_args(value: str | None, flag: str, role: str) -> ParsedEngineArgs:
    args = parse_engine_args(value, what=flag)
    given = args.normalized["engine"]["worker_type"]
    if given not in ("aggregated", role):
        field = "engine.worker_type" if args.form == "nested" else "worker_type"
        raise InputError(f'must be "{role}" here, got "{given}"', source=flag, field=field)
    args.normalized["engine"]["worker_type"] = role
    return args


def build_topology(o: RunOptions) -> tuple[Topology, list[ParsedEngineArgs], dict[str, Any]]:
    """Engine args per pool, the router, the hand-off: everything validated up front."""
    topo = Topology(o.num_workers)
    topo.seed = o.seed
    topo.kv_event_lag_ms = o.kv_event_lag_ms
    router_norm: dict[str, Any] = {}
    if o.router_mode == "kv_router":
        topo.router_mode = ROUTER_KV
        topo.router_cfg, router_norm = parse_router_config(o.router_config)
    if not o.disaggregated:
        args = parse_engine_args(o.extra_engine_args, what="--extra-engine-args")
        check_aggregated(args)
        topo.agg_cfg = args.config
        for key in ("kv_transfer_bandwidth", "kv_transfer_bytes_per_token"):
            if args.normalized["engine"].get(key) is not None:
                args.ignored.append(f"engine.{key}")  # only a disaggregated hand-off uses it
        return topo, [args], router_norm
    pre = _pool_args(o.prefill_engine_args, "--prefill-engine-args", "prefill")
    dec = _pool_args(o.decode_engine_args, "--decode-engine-args", "decode")
    if pre.config.backend != dec.config.backend:
        # the reference refuses this too ("requires matching backend engine types")
        field = "engine.backend" if dec.form == "nested" else "backend"
        raise InputError(
            f'backend must match the prefill pool\'s ("{BACKEND_NAMES[pre.config.backend]}") '
            f'for the KV hand-off, got "{BACKEND_NAMES[dec.config.backend]}"',
            source="--decode-engine-args", field=field)
    if pre.config.block_size != dec.config.block_size:
        raise InputError(
            f"block_size must match the prefill pool's ({pre.config.block_size}) for the KV "
            f"hand-off, got {dec.config.block_size}", source="--decode-engine-args",
            field="engine.block_size")
    topo.disaggregated = True
    topo.prefill_cfg = pre.config
    topo.decode_cfg = dec.config
    topo.num_prefill = o.num_prefill_workers
    topo.num_decode = o.num_decode_workers
    # The reference takes the hand-off settings from the prefill side.
    eng = pre.normalized["engine"]
    bw = eng.get("kv_transfer_bandwidth")
    bpt = eng.get("kv_transfer_bytes_per_token")
    topo.transfer_bandwidth_gbps = float(bw) if bw is not None else 0.0
    topo.transfer_bytes_per_token = float(bpt) if bpt is not None else 0.0
    if eng.get("kv_transfer_timing_mode") == "destination_missing":
        topo.transfer_mode = TRANSFER_DESTINATION_MISSING
    return topo, [pre, dec], router_norm


def _sglang_unfit_note(o: RunOptions, wl: Workload, pools: list[ParsedEngineArgs]) -> str:
    """SGLang workers reject requests they could never admit (the reference deadlocks on them:
    spec backends.md §5.1). Say how many up front, and where they are in the trace. With two
    pools the decode pool decides (a prefill worker holds the prompt and one token)."""
    cfg = pools[-1].config
    if cfg.backend != BACKEND_SGLANG:
        return ""
    pre = pools[0].config
    bad = [i for i in range(len(wl))
           if never_fits(cfg, wl.input_length[i], wl.output_length[i])
           or never_fits(pre, wl.input_length[i], min(wl.output_length[i], 1))]
    if not bad:
        return ""
    if o.trace is not None:
        where = "trace lines " + ", ".join(str(n) for n in trace_line_numbers(o.trace, bad[:5]))
    else:
        where = "requests " + ", ".join(str(i + 1) for i in bad[:5])
    more = ", ..." if len(bad) > 5 else ""
    cap = cfg.num_gpu_blocks * cfg.block_size
    return (f"{len(bad)} request(s) rejected: the page-rounded prompt plus min(output, "
            f"clip_max_new_tokens {cfg.sglang_clip_max_new_tokens}) reaches the SGLang KV pool "
            f"({cap} tokens = num_gpu_blocks x block_size), so they could never be admitted "
            f"({where}{more}); raise block_size or num_gpu_blocks to run them")


def build_replay(o: RunOptions,
                 before_engine: Callable[[PlannerConfig | None], None] | None = None,
                 load: Callable[[RunOptions], Workload] = load_workload) -> Replay:
    """Validate every input, then build the engine. `before_engine(planner config)` runs
    once all inputs are known good and before anything big is built (the CLI checks its
    output locations there). `load` builds the workload once the options are valid (a sweep
    passes one that reuses the trace it parsed for an earlier point)."""
    validate_options(o)
    topo, pools, router_norm = build_topology(o)
    if o.trace is None:
        check_memory(o, pools, None)
    trace_notes: list[str] = []
    workload = load_workload(o, trace_notes) if load is load_workload else load(o)
    if o.trace is not None:
        check_memory(o, pools, workload)
    length_notes = trace_notes + check_output_lengths(o, workload)
    planned = None
    if o.planner_config is not None:
        planned = build_planner(o.planner_config, pools, o.disaggregated)
    if before_engine is not None:
        before_engine(planned[1] if planned is not None else None)
    t0 = time.perf_counter()
    max_ms = o.max_sim_time_seconds * 1000.0 if o.max_sim_time_seconds is not None else -1.0
    sim = Simulation(workload, topo, o.replay_concurrency or 0, max_ms)
    replay = Replay(o, workload, pools, sim, (time.perf_counter() - t0) * 1000.0)
    replay.router_config = router_norm
    note = _sglang_unfit_note(o, workload, pools)
    if note:
        replay.notes.append(note)
    replay.notes.extend(length_notes)
    if planned is not None:
        planner, config, startup_ms, notes = planned
        sim.enable_ticks(config.scale_interval_s * 1000.0, startup_ms)
        replay.planner = planner
        replay.planner_config = config
        replay.planner_driver = PlannerDriver(sim, planner)
        replay.notes.extend(notes)
    return replay
