"""Replay-free checks against the reference planner runs (tests/golden/planner/<run>/, read by
`helpers.planner_reference`).

The planner is driven with observations rebuilt from the reference's own snapshot log: ready
counts, starting workers (from the scaling events and the start-up delay), the last-seen FPM
of each worker (queued prefill / queued and scheduled decode KV as logged) and the traffic
windows behind the logged observations. With no perf-model data the load loop can only reach
its guards, so everything that does not depend on the engine's timing is compared tick by
tick: GPU-hours, the gating reasons, the FPM cache and its rendering, observed values carried
forward, predictions, the snapshot's field names and clock labels.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from helpers import planner_reference
from planner.config import planner_config_from_dict
from dynosim.outputs.planner_log import event_line
from planner.planner import Planner
from planner.throughput import _replicas
from planner.types import Capabilities, ForwardPassMetrics, Observation, ScalingEvent, \
    TrafficWindow

RUNS = ["run_agg_syn", "run_agg_syn_st60", "run_disagg_syn"]
CAPS = Capabilities(num_gpu=1, max_num_batched_tokens=8192, max_num_seqs=256,
                    max_kv_tokens=29249 * 64, context_length=None)


def load(run: str) -> dict[str, Any]:
    return planner_reference(run)


def parse_events(lines: list[str]) -> list[tuple[float, str, int, int, str]]:
    out = []
    for line in lines:
        # "  t=110.0s [agg]: 2 -> 3 (scale_up)"
        head, rest = line.strip().split(" [", 1)
        comp, rest = rest.split("]: ", 1)
        counts, reason = rest.split(" (", 1)
        a, b = counts.split(" -> ")
        out.append((float(head[2:-1]), comp, int(a), int(b), reason.rstrip(")")))
    return out


def non_draining_at(events: list[tuple[float, str, int, int, str]], comp: str, t: float,
                    initial: int) -> int:
    n = initial
    for te, c, _, to, _ in events:
        if te < t and c == comp:
            n = to
    return n


def engines_to_fpms(entries: list[dict[str, Any]]) -> list[ForwardPassMetrics]:
    return [ForwardPassMetrics(
        worker_id=int(e["worker_id"]), dp_rank=int(e["dp_rank"]), wall_time_s=0.0,
        num_prefill_requests=0, sum_prefill_tokens=0, sum_prefill_kv_tokens=0,
        var_prefill_length=0.0, num_decode_requests=1 if e["inflight_decode_kv_tokens"] else 0,
        sum_decode_kv_tokens=int(e["inflight_decode_kv_tokens"]), var_decode_kv_tokens=0.0,
        queued_prefill_requests=0, queued_prefill_tokens=int(e["queued_prefill_tokens"]),
        queued_decode_requests=0, queued_decode_kv_tokens=int(e["queued_decode_kv_tokens"]))
        for e in entries]


def window(dur: float, snap: dict[str, Any] | None, tp_interval: float) -> TrafficWindow:
    if snap is None:
        return TrafficWindow(dur, 0, 0.0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0)
    n = int(round(snap["observed_requests_per_second"] * tp_interval))
    ttft, itl = snap["observed_ttft_ms"], snap["observed_itl_ms"]
    return TrafficWindow(dur, n, snap["observed_input_sequence_tokens"],
                         snap["observed_output_sequence_tokens"], 1,
                         ttft if ttft is not None else 0.0, 1 if ttft is not None else 0,
                         itl if itl is not None else 0.0, 1 if itl is not None else 0,
                         snap["observed_kv_hit_rate"], 1)


def drive(run: str) -> tuple[dict[str, Any], list[dict[str, object]], Planner]:
    data = load(run)
    cfg = planner_config_from_dict(data["planner_config"])
    mode = cfg.mode
    comps = ["decode"] if mode == "agg" else ["prefill", "decode"]
    caps = {c: CAPS for c in comps}
    planner = Planner(cfg, mode, caps)  # no bootstrap: the load loop stops at its guards
    events = parse_events(data["event_lines"])
    initial = {"decode": data["snapshots"][0]["num_decode_replicas"],
               "prefill": data["snapshots"][0]["num_prefill_replicas"]}
    tp = float(cfg.throughput_adjustment_interval_seconds)
    ours = []
    for snap in data["snapshots"]:
        t = snap["timestamp_s"]
        active: dict[str, list[int]] = {}
        starting: dict[str, list[int]] = {}
        fpms: dict[str, list[ForwardPassMetrics]] = {}
        for c in comps:
            ready = snap[f"num_{c}_replicas"]
            ev_comp = "agg" if mode == "agg" else c
            nd = non_draining_at(events, ev_comp, t, initial[c])
            # ids of the workers that have run a pass (the logged cache), plus stand-ins for
            # active workers that have not run one yet; fresh ids are never reused
            ran = sorted({int(e["worker_id"]) for e in snap[f"{c}_engines"]})
            active[c] = ran + [10_000 + k for k in range(ready - len(ran))]
            starting[c] = [20_000 + k for k in range(max(0, nd - ready))]
            fpms[c] = engines_to_fpms(snap[f"{c}_engines"])
        traffic = window(cfg.scale_interval_s,
                         snap if snap["throughput_decision_reason"] is not None else None, tp)
        obs = Observation(t_s=t, active=active, starting=starting,
                          draining={c: [] for c in comps}, fpms=fpms, traffic=traffic)
        d = planner.tick(obs)
        assert d.snapshot is not None
        ours.append(d.snapshot.as_row())  # the log row, as the reference wrote its own
    return data, ours, planner


@pytest.mark.parametrize("run", RUNS)
def test_tick_by_tick_against_reference(run: str) -> None:
    data, ours, planner = drive(run)
    ref = data["snapshots"]
    assert len(ours) == len(ref) == data["metadata"]["num_snapshots"]
    assert planner.total_ticks == len(ref)
    for mine, theirs in zip(ours, ref):
        t = theirs["timestamp_s"]
        assert set(mine) == set(theirs), t
        for key in ("timestamp_s", "timestamp_utc", "kind", "schema", "num_prefill_replicas",
                    "num_decode_replicas", "prefill_engines", "decode_engines",
                    "observed_request_duration_seconds"):
            assert mine[key] == theirs[key], (t, key)
        assert mine["gpu_hours"] == pytest.approx(theirs["gpu_hours"], rel=1e-12, abs=1e-15), t
        for key in ("observed_requests_per_second", "observed_input_sequence_tokens",
                    "observed_output_sequence_tokens", "observed_ttft_ms", "observed_itl_ms",
                    "observed_kv_hit_rate", "predicted_requests_per_second",
                    "predicted_input_sequence_tokens", "predicted_output_sequence_tokens",
                    "predicted_kv_hit_rate"):
            if theirs[key] is None:
                assert mine[key] is None, (t, key)
            else:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-12), (t, key)
        # gating reasons come from counts and the FPM cache only
        gate = {"scaling_in_progress", "worker_count_mismatch", "no_fpm_data"}
        for suffix in ("", "_prefill", "_decode"):
            key = "load_decision_reason" + suffix
            if theirs[key] in gate:
                assert mine[key] == theirs[key], (t, key)
            elif theirs[key] is not None:
                assert mine[key] == "insufficient_data", (t, key)
            else:
                assert mine[key] is None, (t, key)


@pytest.mark.parametrize("run", RUNS)
def test_gpu_hours_total(run: str) -> None:
    data, ours, planner = drive(run)
    assert planner.gpu_hours == pytest.approx(data["snapshots"][-1]["gpu_hours"], rel=1e-12)
    expected = {"run_agg_syn": 1.50, "run_agg_syn_st60": 1.27}
    if run in expected:  # the "GPU hours: x.xx" line of the reference HTML report
        assert f"{planner.gpu_hours:.2f}" == f"{expected[run]:.2f}"


def test_gating_pattern_with_startup_60() -> None:
    data, ours, _ = drive("run_agg_syn_st60")
    reasons = {s["timestamp_s"]: s["load_decision_reason"] for s in ours}
    for t in (120.0, 130.0, 140.0, 150.0, 160.0):
        assert reasons[t] == "scaling_in_progress"
    assert reasons[170.0] == "worker_count_mismatch"  # active, no forward pass yet
    assert reasons[180.0] == "insufficient_data"  # the guards pass again


@pytest.mark.parametrize("run", RUNS)
def test_throughput_lower_bound_arithmetic(run: str) -> None:
    data = load(run)
    cfg = planner_config_from_dict(data["planner_config"])
    checked = 0
    for s in data["snapshots"]:
        if s["throughput_decision_reason"] != "set_lower_bound":
            continue
        demand = s["predicted_requests_per_second"]
        for comp in ("prefill", "decode"):
            rps = s[f"engine_rps_{comp}"]
            if cfg.mode == "agg" and comp == "prefill":
                assert rps == s["engine_rps_decode"]
                continue
            assert s[f"throughput_lower_bound_{comp}"] == _replicas(demand, rps,
                                                                    cfg.min_endpoint)
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("run", RUNS)
def test_event_lines_format(run: str) -> None:
    data = load(run)
    mode = data["planner_config"]["mode"]
    lines = []
    prev_target: dict[str, int | None] = {"prefill": None, "decode": None}
    for s in data["snapshots"]:
        for comp in ("prefill", "decode"):
            to = s[f"scale_to_{comp}"]
            if to is None or (mode == "agg" and comp == "prefill"):
                continue
            ready = s[f"num_{comp}_replicas"]
            prev = prev_target[comp]
            frm: int = prev if prev is not None else int(ready)
            if to == frm:
                continue
            name = "agg" if mode == "agg" else comp
            ev = ScalingEvent(s["timestamp_s"], name, frm, to,
                              "scale_up" if to > frm else "scale_down")
            lines.append(event_line(ev))
            prev_target[comp] = to
    assert lines == data["event_lines"]


def test_reference_predictions_are_last_values() -> None:
    # With 300-s intervals the 17-minute trace gives 3 points: arima returns the last value.
    data = load("run_agg_syn")
    for s in data["snapshots"]:
        if s["predicted_requests_per_second"] is not None:
            assert s["predicted_requests_per_second"] == s["observed_requests_per_second"]
            assert s["predicted_input_sequence_tokens"] == s["observed_input_sequence_tokens"]
            assert not math.isnan(s["predicted_output_sequence_tokens"])
