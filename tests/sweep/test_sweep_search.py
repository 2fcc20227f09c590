"""Search strategies and capacity search (issue 15): which points run, what the budget counts,
seeded determinism, the optional Optuna extra, constraints told to the model, and a capacity
bisection whose answer follows from the queueing arithmetic."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers import ROOT
from dynosim.inputs.errors import InputError
from dynosim.sweep.axes import combo_at, grid, space_size
from dynosim.sweep.capacity import Bisection
from dynosim.sweep.cli import main as sweep_main
from dynosim.sweep.executors import LocalPoolExecutor, SerialExecutor
from dynosim.sweep.html import render_sweep_html
from dynosim.sweep.runner import run_sweep
from dynosim.sweep.search import OptunaStrategy, RandomStrategy
from dynosim.sweep.spec import load_spec

TINY = str(ROOT / "traces" / "mooncake_tiny.jsonl")
FIXED = {"engine": {"timing_model": {"type": "fixed", "prefill_ms": 40, "decode_ms": 5}}}


def space_spec(tmp_path: Path, search: str, name: str = "spec.yaml",
               constraints: str = "{p90_ttft_ms: 400}") -> str:
    p = tmp_path / name
    p.write_text(f"""base:
  trace: {TINY}
  extra_engine_args: {json.dumps(FIXED)}
axes:
  num_workers: [1, 2, 3]
  router_mode: [round_robin, kv_router]
  speed: {{path: arrival_speedup_ratio, values: [1.0, 4.0, 16.0]}}
constraints: {constraints}
objectives: {{rank: output_throughput_tok_s, pareto: [output_throughput_tok_s, p90_ttft_ms]}}
search: {search}
""")
    return str(p)


def error_of(path: str) -> str:
    with pytest.raises(InputError) as e:
        load_spec(path)
    return str(e.value)


def test_combo_at_walks_the_grid_in_order(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: grid}"))
    assert space_size(spec) == 18
    assert [combo_at(spec, i) for i in range(18)] == grid(spec)


def test_search_spec_errors_name_file_line_and_field(tmp_path: Path) -> None:
    p = space_spec(tmp_path, "{method: random, trails: 3}")
    assert error_of(p).endswith(":10: field 'search.trails': unknown search key 'trails'; "
                                "valid: method, trials, seed, objective")
    assert "search method random needs 'trials'" in error_of(
        space_spec(tmp_path, "{method: random}"))
    assert "grid runs every point: 'trials' applies to the methods random, tpe, nsga2" in \
        error_of(space_spec(tmp_path, "{method: grid, trials: 3}"))
    assert "unknown search method 'bayes'; valid: grid, random, tpe, nsga2" in error_of(
        space_spec(tmp_path, "{method: bayes, trials: 3}"))
    assert "field 'search.trials': expected an integer >= 1, got 0" in error_of(
        space_spec(tmp_path, "{method: random, trials: 0}"))


def test_a_missing_optuna_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails
    msg = error_of(space_spec(tmp_path, "{method: tpe, trials: 4}"))
    assert msg.endswith(":10: field 'search.method': search method tpe needs Optuna: "
                        "pip install 'dynosim-tui[search]'")
    load_spec(space_spec(tmp_path, "{method: random, trials: 4}"))  # random needs no extra


def visited(res) -> list[int]:
    return [r["point"] for r in res.rows]


def test_random_search_is_seeded_and_spends_exactly_its_budget(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: random, trials: 5, seed: 7}"))
    a = run_sweep(spec, str(tmp_path / "a"), SerialExecutor)
    b = run_sweep(spec, str(tmp_path / "b"), SerialExecutor)
    assert visited(a) == visited(b) and len(visited(a)) == 5
    assert a.search.evaluated == a.ran == 5 and a.skipped == 0
    assert [r["status"] for r in a.rows] == ["ok"] * 5
    other = load_spec(space_spec(tmp_path, "{method: random, trials: 5, seed: 8}", "o.yaml"))
    assert visited(run_sweep(other, str(tmp_path / "c"), SerialExecutor)) != visited(a)


def test_reused_points_do_not_consume_the_budget(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    first = run_sweep(load_spec(space_spec(tmp_path, "{method: random, trials: 3, seed: 1}")),
                      out, SerialExecutor)
    again = run_sweep(load_spec(space_spec(tmp_path, "{method: random, trials: 5, seed: 1}")),
                      out, SerialExecutor)
    # the same seed draws the same first three points: found on disk, they cost nothing
    assert visited(first) == sorted(RandomStrategy(18, 3, 1).ask(3))
    assert again.skipped == 3 and again.ran == 5 and again.search.evaluated == 5
    assert set(visited(first)) < set(visited(again)) and len(visited(again)) == 8


def test_random_search_stops_when_the_space_is_exhausted(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: random, trials: 100}"))
    res = run_sweep(spec, str(tmp_path / "out"), SerialExecutor)
    assert sorted(visited(res)) == list(range(18)) and res.ran == 18


optuna = pytest.importorskip("optuna")


def test_sweep_cli_runs_a_search_and_says_what_it_cost(tmp_path: Path, capsys) -> None:
    spec = space_spec(tmp_path, "{method: tpe, trials: 4, seed: 1}")
    out = tmp_path / "out"
    assert sweep_main([spec, "--out", str(out), "--executor", "serial", "--quiet"]) == 0
    text = capsys.readouterr()
    assert "tpe search, 4 trials over a space of 18 points (seed 1)" in text.err
    assert "search tpe: 4 of 4 trials simulated over a space of 18 points; 0 reused" in text.out
    assert "optimizer" in text.out and "ms per suggestion" in text.out
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 4


def test_the_example_search_spec_loads() -> None:
    spec = load_spec(str(ROOT / "examples" / "sweeps" / "router_search.yaml"))
    assert (spec.search.method, spec.search.trials, space_size(spec)) == ("tpe", 40, 180)
    assert spec.capacity is not None and spec.capacity.candidates == "pareto"


def test_a_failing_point_is_recorded_and_uses_budget(tmp_path: Path) -> None:
    """request_rate null leaves the synthetic workload without an arrival law: that point fails
    when it runs; the search records it and goes on (a model is told a failed trial: see
    test_constraints_and_failures_reach_the_study)."""
    p = tmp_path / "spec.yaml"
    p.write_text("""base: {input_tokens: 512, output_tokens: 16, request_count: 20}
axes:
  request_rate: [null, 10.0, 20.0, 40.0]
  num_workers: [1, 2]
search: {method: random, trials: 8, seed: 0}
""")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor)
    failed = [r for r in res.rows if r["status"] == "failed"]
    assert len(res.rows) == 8 and res.search.evaluated == 8  # the whole space, failures too
    assert len(failed) == 2 and all("exactly one of --request-rate" in r["error"]
                                    for r in failed)
    assert res.failed == 2 and all(r["rank"] is None for r in failed)


def test_a_search_point_the_factory_rejects_is_a_failed_row(tmp_path: Path) -> None:
    """A search checks its first point up front and the others as they are proposed (a big
    space is not listed): a rejected one is a failed point with the factory's message."""
    p = tmp_path / "spec.yaml"
    p.write_text(f"base: {{trace: {TINY}}}\naxes:\n  num_workers: [1, 0, 2]\n"
                 "search: {method: random, trials: 3}\n")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor)
    bad = next(r for r in res.rows if r["num_workers"] == 0)
    assert bad["status"] == "failed" and "num_workers" in bad["error"] and bad["command"] is None
    assert res.failed == 1 and res.search.evaluated == 3
    assert [r["status"] for r in res.rows if r["num_workers"] != 0] == ["ok", "ok"]


def test_tpe_is_deterministic_per_seed_and_respects_the_budget(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: tpe, trials: 8, seed: 3}"))
    a = run_sweep(spec, str(tmp_path / "a"), SerialExecutor)
    b = run_sweep(spec, str(tmp_path / "b"), SerialExecutor)
    assert visited(a) == visited(b)
    assert a.ran == a.search.evaluated == 8 == len(visited(a))
    assert a.search.optimizer_s > 0


def test_batches_of_jobs_give_the_same_points_in_any_completion_order(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: nsga2, trials: 6, seed: 2}"))

    class Reversed(SerialExecutor):
        """Two slots; finishes the newest task first."""
        slots = 2

        def next_outcome(self):
            from dynosim.sweep.evaluate import evaluate

            return evaluate(self._queue.pop(), self.workloads)

    pool = run_sweep(spec, str(tmp_path / "p"), lambda: LocalPoolExecutor(2))
    rev = run_sweep(spec, str(tmp_path / "r"), Reversed)
    assert visited(pool) == visited(rev) and pool.ran == 6


def test_constraints_and_failures_reach_the_study(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: tpe, trials: 3, objective: rank}",
                                constraints="{p90_ttft_ms: 400, gpus: {max: 2}}"))
    s = OptunaStrategy(spec, 3, 0, "tpe")
    a, b, c = s.ask(3)
    s.tell(a, {"output_throughput_tok_s": 10.0, "p90_ttft_ms": 200.0, "gpus": 3.0}, False)
    s.tell(b, {"output_throughput_tok_s": 20.0, "p90_ttft_ms": 600.0, "gpus": 1.0}, False)
    s.tell(c, None, False)  # the point failed
    trials = s._study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert trials[0].constraints == pytest.approx({"p90_ttft_ms": -0.5, "gpus": 0.5})
    assert trials[1].constraints == pytest.approx({"p90_ttft_ms": 0.5, "gpus": -0.5})
    assert trials[0].values == [10.0] and s.evaluated == 3
    assert s.ask(2) == []  # budget spent


def test_repeat_suggestions_cost_no_budget(tmp_path: Path) -> None:
    spec = load_spec(space_spec(tmp_path, "{method: tpe, trials: 30}"))
    s = OptunaStrategy(spec, 30, 0, "tpe")
    seen = []
    while True:
        asked = s.ask(1)
        if not asked:
            break
        seen += asked
        s.tell(asked[0], {"output_throughput_tok_s": float(asked[0]), "p90_ttft_ms": 1.0},
               False)
    # 18 distinct points exist: the search stops there, repeats answered from memory
    assert sorted(seen) == list(range(18)) and s.evaluated == 18


def test_a_zip_sweep_is_one_parameter_over_its_rows(tmp_path: Path) -> None:
    p = tmp_path / "zip.yaml"
    p.write_text(f"""base: {{trace: {TINY}}}
axes:
  num_workers: [1, 2, 3, 4]
  topology: [agg:1, agg:2, disagg:1:1, disagg:2:2]
combine: zip
search: {{method: nsga2, trials: 4}}
""")
    spec = load_spec(str(p))
    s = OptunaStrategy(spec, 4, 0, "nsga2")
    seen = []
    while len(seen) < 4:
        (i,) = s.ask(1)
        seen.append(i)
        s.tell(i, {"output_tok_s_per_gpu": 1.0 + i, "output_tok_s_per_user": 4.0 - i}, False)
    assert sorted(seen) == [0, 1, 2, 3] and s.ask(1) == []


def even_trace(path: Path) -> str:
    """50 one-token requests, one every 200 ms: with one sequence at a time and a 100 ms
    prefill, a replay `s` times faster keeps up while 200/s >= 100 ms."""
    with open(path, "w") as f:
        for k in range(50):
            f.write(json.dumps({"timestamp": k * 200, "input_length": 100, "output_length": 1,
                                "hash_ids": [1000 + k]}) + "\n")
    return str(path)


def test_capacity_bisection_finds_the_derived_load(tmp_path: Path) -> None:
    engine = {"engine": {"timing_model": {"type": "fixed", "prefill_ms": 100, "decode_ms": 5},
                         "max_num_seqs": 1}}
    p = tmp_path / "cap.yaml"
    p.write_text(f"""base:
  trace: {even_trace(tmp_path / "even.jsonl")}
  extra_engine_args: {json.dumps(engine)}
axes:
  num_workers: [1, 2]
constraints: {{p90_ttft_ms: 105}}
capacity: {{load: arrival_speedup_ratio, low: 1, high: 8, tolerance: 0.01, steps: 12}}
""")
    res = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor)
    # W round-robin workers each serve every W-th request, one every 200*W/s ms, in 100 ms:
    # up to s = 2W nobody waits (p90 TTFT 100 ms, feasible). Beyond, each queued request
    # waits 100 - 200W/s ms longer than the one before; at s = 2W * 1.005 that is 0.5 ms, and
    # the p90 request has >= 20 requests queued ahead of it on its worker: >= 10 ms > 5 ms.
    for workers in (1, 2):
        b = res.capacity[workers - 1]
        assert 2 * workers - 0.01 <= b.capacity <= 2 * workers * 1.005
        assert b.bad is not None and b.capacity < b.bad and b.bad - b.capacity <= 0.01
        assert len(b.probes) <= 12
    row = res.rows[0]
    assert row["capacity"] == res.capacity[0].capacity
    # 50 requests from the first arrival to the last one's 100 ms prefill, at that speed-up
    assert row["capacity_rps"] == pytest.approx(50_000 / (49 * 200 / row["capacity"] + 100),
                                                rel=1e-3)
    assert "tolerance 0.01" in row["capacity_note"]
    page = render_sweep_html(res)
    assert 'id="panel-capacity"' in page and "probe missed" in page
    # the probes are ordinary stored points: a rerun simulates nothing
    again = run_sweep(load_spec(str(p)), str(tmp_path / "out"), SerialExecutor)
    assert again.ran == 0 and again.rows[1]["capacity"] == res.rows[1]["capacity"]


def test_bisection_range_edges() -> None:
    low = Bisection(1.0, 4.0, 0.1, 8)
    low.tell(low.next_load(), False, None)
    assert low.done and low.capacity is None and "lowest load" in low.note()
    high = Bisection(1.0, 4.0, 0.1, 8)
    high.tell(high.next_load(), True, None)
    assert high.next_load() == 4.0
    high.tell(4.0, True, None)
    assert high.done and high.capacity == 4.0 and "capacity >= 4" in high.note()
    budget = Bisection(1.0, 4.0, 0.001, 3)
    for ok in (True, False, True):
        budget.tell(budget.next_load(), ok, None)
    assert budget.done and budget.capacity == 2.5 and "step budget (3) spent" in budget.note()


def test_capacity_spec_errors(tmp_path: Path) -> None:
    def spec(cap: str, constraints: str = "constraints: {p90_ttft_ms: 100}\n") -> str:
        p = tmp_path / "c.yaml"
        p.write_text(f"base: {{trace: {TINY}}}\naxes:\n  speed: {{path: {axis},"
                     f" values: [1, 2]}}\n{constraints}capacity: {cap}\n")
        return str(p)
    axis = "arrival_speedup_ratio"
    assert "axis 'speed' already sets arrival_speedup_ratio" in error_of(
        spec("{load: arrival_speedup_ratio, low: 1, high: 2, tolerance: 0.1}"))
    axis = "seed"
    assert "capacity needs 'tolerance'" in error_of(
        spec("{load: arrival_speedup_ratio, low: 1, high: 2}"))
    assert "field 'capacity.high': must be > low (2), got 1" in error_of(
        spec("{load: arrival_speedup_ratio, low: 2, high: 1, tolerance: 0.1}"))
    assert "request_rate needs a synthetic workload" in error_of(
        spec("{load: request_rate, low: 1, high: 2, tolerance: 0.1}"))
    assert "give some" in error_of(
        spec("{load: arrival_speedup_ratio, low: 1, high: 2, tolerance: 0.1}", ""))
