"""Golden parity with Dynamo 1.6.1's offline replay (numbers from tests/golden/regenerate.sh).

Every numeric summary key the reference computes from the simulation must agree to 1e-6
relative; counts, token totals and duration exactly (to float noise)."""
from __future__ import annotations

import json
import math

import pytest

from helpers import ROOT, WALL_KEYS, golden_cases
from dynosim.replay import RunOptions, build_replay

# Wall-clock dependent keys (differ run to run in the reference itself).
EXACT_KEYS = {"num_requests", "completed_requests", "total_input_tokens",
              "total_output_tokens", "committed_prefill_tokens", "num_ttft_samples",
              "num_tpot_samples", "num_e2e_latency_samples"}
REL_TOL = 1e-6
# The metrics issue 2 requires at 1e-6 (checked with no exception anywhere).
REQUIRED = {"num_requests", "completed_requests", "total_input_tokens", "total_output_tokens",
            "duration_ms", "mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms", "p99_ttft_ms",
            "mean_itl_ms", "p90_itl_ms", "mean_e2e_latency_ms", "prefix_cache_reused_ratio"}
# Known, explained gaps outside REQUIRED: (case, key) -> relative tolerance.
#  - committed_prefill_tokens after preemptions: the reference's count for readmitted requests
#    is not pinned down (our rule is exact on overload_w1; <= 0.1% off on the others).
#  - p99_itl_ms on two small single-worker runs: every exact ITL statistic (mean, min, max,
#    std, count) agrees, so the pooled gaps are the same; the reference's sketch tail is not.
KNOWN_GAPS = {
    ("overload_w2", "committed_prefill_tokens"): 1e-3,
    ("overload_w4", "committed_prefill_tokens"): 1e-3,
    ("overload_fifo_w1", "committed_prefill_tokens"): 2e-3,
    ("overload_smallbatch_w1", "committed_prefill_tokens"): 1e-3,
    ("tiny_noprefix_w1", "p99_itl_ms"): 3e-3,
    ("tiny_conc4_w1", "p99_itl_ms"): 0.3,
}


def _json_arg(case: dict, key: str) -> str | None:
    v = case.get(key)
    return json.dumps(v) if v is not None else None


def run_case(case: dict, seed: int = 0) -> dict:
    opts = RunOptions(
        trace=str(ROOT / case["trace"]),
        num_workers=case.get("num_workers", 1),
        router_mode=case.get("router_mode", "round_robin"),
        seed=seed,
        extra_engine_args=_json_arg(case, "extra_engine_args"),
        prefill_engine_args=_json_arg(case, "prefill_engine_args"),
        decode_engine_args=_json_arg(case, "decode_engine_args"),
        num_prefill_workers=case.get("num_prefill_workers", 1),
        num_decode_workers=case.get("num_decode_workers", 1),
        arrival_speedup_ratio=case.get("arrival_speedup_ratio") or 1.0,
        replay_concurrency=case.get("replay_concurrency"),
    )
    replay = build_replay(opts)
    replay.run_to_end()
    return replay.report().summary


# The SGLang / TRT-LLM goldens (suite "backends") run in test_backends_parity.py.
DETERMINISTIC = [c for c in golden_cases() if c.get("runs", 1) == 1 and "suite" not in c]
RANDOMISED = [c for c in golden_cases() if c.get("runs", 1) > 1 and "suite" not in c]
# The full synthetic trace through two pools: several seconds each (`-m "not slow"` skips them).
# The pressure cases' summaries are also checked, at 1e-9, by test_disagg_parity.py.
SLOW_CASES = ("synthetic_disagg", "pressure_disagg")


def _marked(case: dict) -> object:
    slow = case["name"].startswith(SLOW_CASES)
    return pytest.param(case, id=case["name"], marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("case", [_marked(c) for c in DETERMINISTIC])
def test_summary_matches_reference(case: dict) -> None:
    expected = json.loads((ROOT / case["summary"]).read_text())
    got = run_case(case)
    assert list(k for k in got if k not in WALL_KEYS) == list(
        k for k in expected if k not in WALL_KEYS), "summary keys or their order differ"
    bad = summary_mismatches(case["name"], got, expected, KNOWN_GAPS)
    assert not bad, "\n".join(bad)


def summary_mismatches(name: str, got: dict, expected: dict,
                       known_gaps: dict[tuple[str, str], float]) -> list[str]:
    """One line per summary value that differs beyond the tolerances above."""
    bad = []
    for key, want in expected.items():
        if key in WALL_KEYS:
            continue
        have = got[key]
        gap = known_gaps.get((name, key))
        if gap is not None and key not in REQUIRED:
            if not math.isclose(have, want, rel_tol=gap):
                bad.append(f"{key}: ours {have!r} reference {want!r} beyond known gap {gap}")
            continue
        if key in EXACT_KEYS or isinstance(want, (str, type(None))):
            if have != want:
                bad.append(f"{key}: ours {have!r} reference {want!r}")
        elif not math.isclose(have, want, rel_tol=REL_TOL, abs_tol=1e-9):
            bad.append(f"{key}: ours {have!r} reference {want!r} "
                       f"(rel {abs(have - want) / max(abs(want), 1e-300):.2e})")
    return bad


# kv_router breaks cost ties at random (the reference too), so these compare means: ours over
# SEEDS against the reference's runs. Issue 3: mean and p90 TTFT within 2%, reuse within 0.01.
SEEDS = range(5)


@pytest.mark.slow  # 5 seeds per case: about half of the whole suite's time
@pytest.mark.parametrize("case", RANDOMISED, ids=lambda c: c["name"])
def test_kv_router_matches_reference_statistically(case: dict) -> None:
    bad = kv_router_mismatches(case)
    assert not bad, "\n".join(bad)


def kv_router_mismatches(case: dict) -> list[str]:
    runs = json.loads((ROOT / case["summary"]).read_text())["runs"]
    ours = [run_case(case, seed=seed) for seed in SEEDS]

    def mean(rows: list[dict], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    for key in ("num_requests", "completed_requests", "total_input_tokens", "total_output_tokens"):
        assert {r[key] for r in ours} == {r[key] for r in runs}, key
    bad = []
    for key, rel in (("mean_ttft_ms", 0.02), ("p90_ttft_ms", 0.02)):
        o, r = mean(ours, key), mean(runs, key)
        if abs(o - r) > rel * r:
            bad.append(f"{key}: ours {o:.4f} reference {r:.4f} ({(o - r) / r:+.2%})")
    o, r = mean(ours, "prefix_cache_reused_ratio"), mean(runs, "prefix_cache_reused_ratio")
    if abs(o - r) > 0.01:
        bad.append(f"prefix_cache_reused_ratio: ours {o:.4f} reference {r:.4f}")
    return bad


def test_kv_router_same_seed_same_numbers() -> None:
    case = next(c for c in RANDOMISED if c["name"] == "prefix_heavy_kv_w4")
    a = run_case(case, seed=7)
    b = run_case(case, seed=7)
    c = run_case(case, seed=8)
    drop = WALL_KEYS
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert a["mean_ttft_ms"] != c["mean_ttft_ms"]  # the seed does reach the tie-break
