"""Disaggregated serving under decode-side KV pressure with KV transfer delays, against Dynamo
1.6.1's replay: every summary value within 1e-9 and every request's hand-off milestones and
token times equal (tests/golden/*.handoffs.jsonl.gz, from tests/golden/regenerate.sh)."""
from __future__ import annotations

import gzip
import json
import math

import pytest

from helpers import ROOT, WALL_KEYS, golden_cases
from dynosim.replay import RunOptions, build_replay

REL_TOL = 1e-9
TIME_FIELDS = ("prefill_admit_ms", "source_held_ms", "destination_reserved_ms",
               "destination_activated_ms", "decode_admit_ms", "source_released_ms",
               "first_token_ms", "terminal_time_ms")
EXACT_FIELDS = ("input_length", "requested_output_length", "output_length",
                "prefill_worker_idx", "decode_worker_idx")
CASES = [c for c in golden_cases() if c.get("handoffs")]


def _order(r: dict) -> tuple[float, int, int]:
    return (r["arrival_time_ms"], r["input_length"], r["requested_output_length"])


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def test_the_pressure_cases_cover_the_p_d_splits() -> None:
    splits = {(c["num_prefill_workers"], c["num_decode_workers"]) for c in CASES}
    assert {(3, 1), (2, 2), (4, 1), (1, 2)} <= splits


@pytest.mark.slow  # a 1500-request trace through two pools per case
@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_handoffs_and_summary_equal_the_reference(case: dict) -> None:
    replay = build_replay(RunOptions(
        trace=str(ROOT / case["trace"]),
        prefill_engine_args=json.dumps(case["prefill_engine_args"]),
        decode_engine_args=json.dumps(case["decode_engine_args"]),
        num_prefill_workers=case["num_prefill_workers"],
        num_decode_workers=case["num_decode_workers"],
    ))
    replay.run_to_end()
    report = replay.report()
    want = json.loads((ROOT / case["summary"]).read_text())
    assert [k for k in report.summary if k not in WALL_KEYS] == [
        k for k in want if k not in WALL_KEYS], "summary keys or their order differ"
    bad = []
    for key, ref in want.items():
        have = report.summary[key]
        if key in WALL_KEYS or isinstance(ref, (str, type(None))):
            continue
        if not _close(have, ref):
            bad.append(f"summary {key}: ours {have!r} reference {ref!r}")
    with gzip.open(ROOT / case["handoffs"], "rt") as f:
        ref_recs = [json.loads(line) for line in f]
    ours = sorted(report.records(), key=_order)
    assert len(ours) == len(ref_recs)
    for k, (o, r) in enumerate(zip(ours, ref_recs)):
        for f in EXACT_FIELDS:
            if o[f] != r[f]:
                bad.append(f"request {k} {f}: ours {o[f]!r} reference {r[f]!r}")
        for f in TIME_FIELDS:
            if not _close(o[f], r[f]):
                bad.append(f"request {k} (arrival {r['arrival_time_ms']}) {f}: "
                           f"ours {o[f]!r} reference {r[f]!r}")
        if len(bad) > 20:
            break
    assert not bad, "\n".join(bad)
