"""SGLang workers in a planner-in-the-loop run: they publish the forward-pass metrics the
planner reads (as vLLM and TRT-LLM workers do), so it sees their load and scales on it.
The reference's planner runs (tests/golden/planner/, Dynamo 1.4.2) predate its SGLang
backend, so there is no reference run to compare with."""
from __future__ import annotations

import json

import pytest

from helpers import PLANNER_RUNS, SYNTH
from dynosim.replay import Replay, RunOptions, build_replay


def planner_run(backend: str, disagg: bool) -> Replay:
    name = "run_disagg_syn" if disagg else "run_agg_syn"
    cfg = json.loads((PLANNER_RUNS / name / "run_config.json").read_text())
    engine: dict[str, object] = {"backend": backend, "block_size": 64, "num_gpu_blocks": 29249}

    def args(worker_type: str | None) -> str:
        eng = dict(engine) if worker_type is None else {**engine, "worker_type": worker_type}
        return json.dumps({"engine": eng})

    pc = json.dumps(cfg["planner_config"])
    if disagg:
        opts = RunOptions(trace=SYNTH, planner_config=pc, prefill_engine_args=args("prefill"),
                          decode_engine_args=args("decode"))
    else:
        opts = RunOptions(trace=SYNTH, num_workers=2, planner_config=pc,
                          extra_engine_args=args(None))
    replay = build_replay(opts)
    replay.run_to_end()
    return replay


@pytest.mark.slow
@pytest.mark.parametrize("disagg", [False, True], ids=["agg", "disagg"])
def test_sglang_workers_feed_the_planner(disagg: bool) -> None:
    replay = planner_run("sglang", disagg)
    summary = replay.report().summary
    assert summary["completed_requests"] == summary["num_requests"]
    rows = [s.as_row() for s in replay.tick_snapshots()]
    assert rows
    side = "decode_engines"
    seen = [e["inflight_decode_kv_tokens"] for r in rows for e in r[side]]
    assert max(seen) > 0  # the planner saw the SGLang workers' decode load
    queued = [e["queued_prefill_tokens"] for r in rows
              for e in r["prefill_engines" if disagg else side]]
    assert max(queued) > 0
    assert replay.scaling_events(), "the load moved the planner"
