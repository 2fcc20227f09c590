"""Built-in sweeps over a trace.

cold-start  the Dynamo planner guide's start-up sweep: agg, 2 workers, H200 / Llama-3.1-8B-FP8 /
            TP1, planner SLA TTFT 1500 ms / ITL 50 ms (GPUs per engine set), startup_time
            0..300 s in 10 s steps; the cliff is the first point whose p90 TTFT or ITL crosses
            its SLA.
topology    every agg:N and disagg:P:D split with TP 1, 2, 4, 8 that fits in --gpus N, static
            workers (no planner), ranked by the fewest GPUs that meet the SLA.
"""
from __future__ import annotations

from typing import Any

from dynosim.sweep.spec import SweepSpec, spec_from_mapping

PRESETS = ("cold-start", "topology")
HARDWARE = {"aic_backend": "vllm", "aic_system": "h200_sxm",
            "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1}


def cold_start(trace: str, ttft_ms: float, itl_ms: float) -> dict[str, Any]:
    return {
        "name": "cold-start",
        "base": {
            "trace": trace,
            "num_workers": 2,
            "extra_engine_args": {"engine": dict(HARDWARE)},
            "planner_config": {
                "mode": "agg", "optimization_target": "sla", "ttft_ms": ttft_ms,
                "itl_ms": itl_ms, "throughput_adjustment_interval_seconds": 300,
                "load_adjustment_interval_seconds": 10, "enable_throughput_scaling": True,
                "enable_load_scaling": True, "pre_deployment_sweeping_mode": "rapid",
                # unset would count 0 GPUs per engine (the guide's GPU-hours pitfall)
                "prefill_engine_num_gpu": 1, "decode_engine_num_gpu": 1,
            },
        },
        "axes": {"startup_time": {"path": "extra_engine_args.startup_time",
                                  "range": {"start": 0, "stop": 300, "step": 10}}},
        "constraints": {"p90_ttft_ms": {"max": ttft_ms}, "p90_itl_ms": {"max": itl_ms}},
        "objectives": {"rank": "gpu_hours", "pareto": ["gpu_hours", "p90_ttft_ms"]},
    }


def topology(trace: str, gpus: int, ttft_ms: float, itl_ms: float) -> dict[str, Any]:
    topologies: list[str] = []
    tps: list[int] = []
    tp = 1
    while tp <= gpus:
        replicas = gpus // tp
        for n in range(1, replicas + 1):
            topologies.append(f"agg:{n}")
            tps.append(tp)
        for p in range(1, replicas):
            for d in range(1, replicas - p + 1):
                topologies.append(f"disagg:{p}:{d}")
                tps.append(tp)
        tp *= 2
    return {
        "name": f"topology-{gpus}gpu",
        "base": {"trace": trace, "extra_engine_args": {"engine": dict(HARDWARE)},
                 "sla_ttft_ms": ttft_ms, "sla_itl_ms": itl_ms},
        "axes": {"topology": {"values": topologies}, "tp": {"values": tps}},
        "combine": "zip",
        "constraints": {"p90_ttft_ms": {"max": ttft_ms}, "p90_itl_ms": {"max": itl_ms},
                        "gpus": {"max": gpus}},
        "objectives": {"rank": "gpus", "pareto": ["gpus", "p90_ttft_ms"]},
    }


def preset_mapping(name: str, trace: str, *, gpus: int | None, ttft_ms: float,
                   itl_ms: float) -> dict[str, Any]:
    if name == "cold-start":
        return cold_start(trace, ttft_ms, itl_ms)
    assert name == "topology" and gpus is not None
    return topology(trace, gpus, ttft_ms, itl_ms)


def preset_spec(name: str, trace: str, *, gpus: int | None = None, ttft_ms: float = 1500.0,
                itl_ms: float = 50.0, axis_overrides: list[str] | None = None) -> SweepSpec:
    return spec_from_mapping(preset_mapping(name, trace, gpus=gpus, ttft_ms=ttft_ms,
                                            itl_ms=itl_ms), f"--preset {name}", name,
                             axis_overrides)
