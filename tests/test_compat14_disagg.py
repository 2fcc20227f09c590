"""Disaggregated serving with `timing_compat: "1.4"` against Dynamo 1.4.2's own replay (the
engine the planner references ran on; golden file built by tests/golden/compat14/
make_golden.py). 1.4.2's prefill workers decode each request to its last token, free of
charge, before handing it off (the decode worker then generates every token itself); their
decode-only passes all run at the instant they become due, before the decode worker picks up
what they released; and a worker idle for a second shows the planner an all-zero forward pass.
Each case checks every request's hand-off milestones and token times, and what each 1-second
planner tick saw of both workers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT
from dynosim.factory import RunOptions, build_replay
from dynosim.records import per_request_records

GOLDEN = json.loads((ROOT / "tests" / "golden" / "compat14" / "compat14_disagg.json").read_text())
MILESTONES = ("source_held_ms", "destination_activated_ms", "first_token_ms", "last_token_ms")


def options(trace: Path, planner: bool) -> RunOptions:
    engine = {**GOLDEN["engine_args"], "timing_compat": "1.4"}
    return RunOptions(
        trace=str(trace),
        prefill_engine_args=json.dumps({"engine": {**engine, "worker_type": "prefill"}}),
        decode_engine_args=json.dumps({"engine": {**engine, "worker_type": "decode"}}),
        num_prefill_workers=1, num_decode_workers=1,
        planner_config=json.dumps(GOLDEN["planner_config"]) if planner else None)


def write_trace(path: Path, reqs: list[list[int]]) -> Path:
    base = 0
    with path.open("w") as f:
        for ts, isl, osl in reqs:
            n = (isl + 63) // 64
            f.write(json.dumps({"timestamp": ts, "input_length": isl, "output_length": osl,
                                "hash_ids": list(range(base, base + n))}) + "\n")
            base += n
    return path


@pytest.mark.parametrize("name", sorted(GOLDEN["cases"]))
def test_matches_1_4_2(name: str, tmp_path: Path) -> None:
    case: dict[str, Any] = GOLDEN["cases"][name]
    trace = write_trace(tmp_path / f"{name}.jsonl", case["requests"])
    replay = build_replay(options(trace, planner=False))
    while replay.advance(100_000):
        pass
    report = replay.report()
    rows = per_request_records(report._cols, report._workload, report._layout)
    rows.sort(key=lambda r: (r["arrival_time_ms"], r["input_length"]))
    assert len(rows) == len(case["per_request"])
    for ours, ref in zip(rows, case["per_request"]):
        for m in MILESTONES:
            assert ours[m] == pytest.approx(ref[m], abs=1e-6), (name, m, ours, ref)

    replay = build_replay(options(trace, planner=True))
    while replay.advance(100_000):
        pass
    assert replay.planner is not None
    seen = [[s["timestamp_s"],
             [[e["inflight_decode_kv_tokens"], e["queued_prefill_tokens"]]
              for e in s["prefill_engines"]],
             [[e["inflight_decode_kv_tokens"], e["queued_prefill_tokens"]]
              for e in s["decode_engines"]]] for s in replay.planner.snapshots]
    assert seen == case["ticks"]
