"""Build the planner for a replay from `--planner-config` and the engine args: capabilities per
component, the "rapid" bootstrap from the hardware timing model, the start-up delay."""
from __future__ import annotations

from dynosim.inputs.engine_args import ParsedEngineArgs
from dynosim.inputs.errors import InputError
from engine.config import EngineConfig
from planner.bootstrap import bootstrap_fpms
from planner.config import PlannerConfig, load_planner_config
from planner.planner import Planner
from planner.types import Capabilities, ForwardPassMetrics


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
    planner = Planner(config, mode, caps, bootstrap)
    startup = [a.config.startup_time_s for a in pools if a.config.startup_time_s >= 0.0]
    if len(set(startup)) > 1:
        raise InputError("prefill and decode engine args give different startup_time values; "
                         "the simulator uses one start-up delay", source="--decode-engine-args",
                         field="startup_time")
    startup_ms = startup[0] * 1000.0 if startup else 0.0
    return planner, config, startup_ms, notes
