"""Planner in the loop against the reference runs (Dynamo 1.4.2, `tests/golden/planner/`, copied
from ../shared/reference/planner/): the engine timed by the polynomial model with 1.4 timing,
29249 KV blocks, and the planner bootstrapped from the hardware model of
vllm/h200_sxm/Llama-3.1-8B-FP8/TP1 (the reference used AIC for that bootstrap).

Issue 5's bar: scaling events within 2 in number, every matched event within one load tick
(10 s), both GPU-hours figures within 5%. The disaggregated run also depends on how 1.4.2's
prefill workers behaved (they decode every request to its end before handing it off: engine
tests in test_compat14.py)."""
from __future__ import annotations

import gzip
import json

from typing import Any

import pytest

from helpers import PLANNER_RUNS as GOLDEN, SYNTH
from dynosim.replay import RunOptions, build_replay


Run = tuple[list[tuple[float, str, int, int, str]], float, float, int, list[dict[str, Any]]]


def run_reference_config(name: str) -> Run:
    cfg = json.loads((GOLDEN / name / "run_config.json").read_text())
    aic = dict(cfg["aic_engine_args"])
    aic["aic_model_path"] = "nvidia/Llama-3.1-8B-Instruct-FP8"
    aic.pop("aic_backend_version", None)
    startup = aic.pop("startup_time", None)
    engine = {**aic, "timing_model": {"type": "polynomial"}, "num_gpu_blocks": 29249,
              "block_size": 64, "timing_compat": "1.4"}
    trace = SYNTH
    planner_config = json.dumps(cfg["planner_config"])

    def args(worker_type: str | None) -> str:
        eng = dict(engine) if worker_type is None else {**engine, "worker_type": worker_type}
        out: dict[str, object] = {"engine": eng}
        if startup is not None:
            out["startup_time"] = startup
        return json.dumps(out)

    if cfg["planner_config"]["mode"] == "disagg":
        options = RunOptions(trace=trace, planner_config=planner_config,
                             prefill_engine_args=args("prefill"),
                             decode_engine_args=args("decode"))
    else:
        options = RunOptions(trace=trace, num_workers=2, planner_config=planner_config,
                             extra_engine_args=args(None))
    replay = build_replay(options)
    replay.run_to_end()
    planner = replay.planner
    assert planner is not None
    events = [(e.t_s, e.component, e.from_replicas, e.to_replicas, e.reason)
              for e in replay.scaling_events()]
    return (events, planner.gpu_hours, replay.report().summary["gpu_hours"], planner.total_ticks,
            [s.as_row() for s in replay.tick_snapshots()])


def reference_events(name: str) -> list[tuple[float, str, int, int, str]]:
    out = []
    for line in (GOLDEN / name / "stdout_summary.txt").read_text().splitlines():
        if line.startswith("  t="):
            t, rest = line.strip()[2:].split("s [", 1)
            comp, rest = rest.split("]: ", 1)
            a, rest = rest.split(" -> ", 1)
            b, reason = rest.split(" (", 1)
            out.append((float(t), comp, int(a), int(b), reason.rstrip(")")))
    return out


def reference_snapshots(name: str) -> list[dict[str, Any]]:
    with gzip.open(GOLDEN / name / f"{LOGS[name]}.log.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f][1:]  # after the metadata line


def reference_html_gpu_hours(name: str) -> float:
    """The planner's cumulative GPU-hours at its last tick (what the HTML header shows)."""
    return float(reference_snapshots(name)[-1]["gpu_hours"])


def engines_seen(snap: dict[str, Any]) -> list[list[tuple[str, int, int]]]:
    """What a tick saw of each worker: id, decode KV tokens, queued prefill tokens."""
    return [[(e["worker_id"], e["inflight_decode_kv_tokens"], e["queued_prefill_tokens"])
             for e in snap[side]] for side in ("prefill_engines", "decode_engines")]


LOGS = {"run_agg_syn": "planner_agg", "run_agg_syn_st60": "planner_agg_startup60",
        "run_disagg_syn": "planner_disagg"}


@pytest.mark.parametrize("name", ["run_agg_syn", "run_agg_syn_st60"])
def test_agg_planner_runs_match_the_reference(name: str) -> None:
    # Both are identical event for event and in both GPU-hours figures: the forward-pass
    # metrics the planner sees (last completed pass, decode KV = sum of contexts, zeros a second
    # after a worker's last pass) and round robin as a position in the active list (which
    # decides where requests go after a scale-down, hence the workers' lifetimes).
    ours, planner_gh, lifetime_gh, ticks, _ = run_reference_config(name)
    ref = reference_events(name)
    ref_lifetime = json.loads((GOLDEN / name / "report.json").read_text())["gpu_hours"]
    assert ticks == 102
    assert ours == ref
    assert planner_gh == pytest.approx(reference_html_gpu_hours(name), rel=1e-9)
    assert lifetime_gh == pytest.approx(ref_lifetime, rel=1e-9)


@pytest.mark.slow
def test_disagg_planner_run_matches_the_reference() -> None:
    # Every reference event happens at the same tick here; we add one up/down pair (230 s,
    # 240 s) where our TTFT estimate (bootstrapped from the roofline, not AIC) crosses the SLA
    # (1502.4 ms vs the reference's 1499.1). Until then every tick sees every worker exactly
    # as the reference's did.
    name = "run_disagg_syn"
    ours, planner_gh, lifetime_gh, ticks, snaps = run_reference_config(name)
    ref_snaps = reference_snapshots(name)
    for mine, theirs in zip(snaps, ref_snaps):
        if theirs["timestamp_s"] > 230.0:
            break
        assert engines_seen(mine) == engines_seen(theirs), theirs["timestamp_s"]
    ref = reference_events(name)
    ref_lifetime = json.loads((GOLDEN / name / "report.json").read_text())["gpu_hours"]
    assert ticks == 102
    assert abs(len(ours) - len(ref)) <= 2, (len(ours), len(ref))
    unmatched = list(ours)
    for theirs in ref:
        near = [m for m in unmatched if m[1:] == theirs[1:] and abs(m[0] - theirs[0]) <= 10.0]
        assert near, f"no event of ours within one load tick of {theirs}"
        unmatched.remove(min(near, key=lambda m: abs(m[0] - theirs[0])))
    assert planner_gh == pytest.approx(reference_html_gpu_hours(name), rel=0.05)
    assert lifetime_gh == pytest.approx(ref_lifetime, rel=0.05)
