"""Build the planner for a replay from `--planner-config` and the engine args: the config (read
here: the planner reads no files), capabilities per component, the "rapid" bootstrap from the
hardware timing model, the warmup trace, the start-up delay."""
from __future__ import annotations

from typing import Any

from dynosim.inputs.engine_args import ParsedEngineArgs
from dynosim.inputs.errors import InputError
from dynosim.inputs.source import read_mapping, with_field_line
from dynosim.inputs.trace import load_mooncake
from engine.config import EngineConfig
from planner.bootstrap import bootstrap_fpms
from planner.config import PlannerConfig, planner_config_from_dict
from planner.errors import ConfigError
from planner.planner import Planner
from planner.predictors import warmup_buckets
from planner.types import Capabilities, ForwardPassMetrics

FLAG = "--planner-config"


def load_planner_config(value: str) -> PlannerConfig:
    """Parse `--planner-config`: inline JSON or a .json/.yaml/.yml path."""
    obj, source = read_mapping(value, FLAG, yaml_files=True)
    try:
        return planner_config(obj, source)
    except InputError as exc:
        raise with_field_line(exc, source, FLAG) from None


def planner_config(obj: Any, source: str = FLAG) -> PlannerConfig:
    """A decoded planner config, validated; a problem names `source` (the flag or the file)."""
    try:
        return planner_config_from_dict(obj)
    except ConfigError as exc:
        raise InputError(exc.message, source=source, field=exc.field) from None


def warmup_from_trace(path: str, interval_s: float) -> list[tuple[int, float, float]]:
    """(request count, avg ISL, avg OSL) per `interval_s` of a Mooncake trace's first turns
    (later turns arrive relative to a completion, so they carry no arrival time)."""
    wl = load_mooncake(path)
    return warmup_buckets(((wl.arrival_ms[i], wl.input_length[i], wl.output_length[i])
                           for i in range(len(wl)) if wl.turn[i] == 0),
                          interval_s)


def capabilities(cfg: EngineConfig) -> Capabilities:
    return Capabilities(
        num_gpu=cfg.tensor_parallel_size,
        max_num_batched_tokens=cfg.max_num_batched_tokens,
        max_num_seqs=cfg.max_num_seqs,
        max_kv_tokens=cfg.num_gpu_blocks * cfg.block_size,
        context_length=cfg.max_model_len or None,
    )


def _sweep(args: ParsedEngineArgs, caps: Capabilities
           ) -> tuple[list[ForwardPassMetrics], list[ForwardPassMetrics]] | None:
    """Bootstrap FPMs from the roofline model of the engine's aic_* identity (even when an
    explicit timing_model times the engine, as in the reference runs)."""
    perf = args.perf
    if perf is None:
        return None
    roof = perf.setup.roofline()
    return bootstrap_fpms(lambda isl: roof.prefill_ms(1.0, float(isl), 0.0),
                          lambda bs, ctx: roof.decode_ms(float(bs), float(bs * ctx)), caps)


def build_planner(value: str, pools: list[ParsedEngineArgs], disaggregated: bool
                  ) -> tuple[Planner, PlannerConfig, float, list[str]]:
    """(planner, its config, start-up delay in ms, notes for the user)."""
    config = load_planner_config(value)
    mode = "disagg" if disaggregated else "agg"
    notes: list[str] = []
    if disaggregated:
        caps = {"prefill": capabilities(pools[0].config), "decode": capabilities(pools[1].config)}
    else:
        caps = {"decode": capabilities(pools[0].config)}
    bootstrap: dict[str, list[ForwardPassMetrics]] | None = None
    if config.optimization_target == "sla":
        if disaggregated:
            pre = _sweep(pools[0], caps["prefill"])
            dec = _sweep(pools[1], caps["decode"])
            if pre is not None and dec is not None:
                bootstrap = {"prefill": pre[0], "decode": dec[1]}
        else:
            both = _sweep(pools[0], caps["decode"])
            if both is not None:
                bootstrap = {"prefill": both[0], "decode": both[1]}
        if bootstrap is None:
            notes.append("planner: no aic_* engine args, so its perf model starts empty and "
                         "learns from live forward passes (no 'rapid' bootstrap)")
    warmup = None
    if config.load_predictor_warmup_trace is not None and not config.is_easy:
        warmup = warmup_from_trace(config.load_predictor_warmup_trace,
                                   float(config.throughput_adjustment_interval_seconds))
    try:
        planner = Planner(config, mode, caps, bootstrap, warmup)
    except ConfigError as exc:
        raise InputError(exc.message, source=FLAG, field=exc.field) from None
    startup = [a.config.startup_time_s for a in pools if a.config.startup_time_s >= 0.0]
    if len(set(startup)) > 1:
        raise InputError("prefill and decode engine args give different startup_time values; "
                         "the simulator uses one start-up delay", source="--decode-engine-args",
                         field="startup_time")
    startup_ms = startup[0] * 1000.0 if startup else 0.0
    return planner, config, startup_ms, notes
