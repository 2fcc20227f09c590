"""Shared test helpers: repository paths, the bundled traces, golden data and small builders.

Test modules import these by name (`from helpers import TINY`); fixtures live in conftest.py.
"""
from __future__ import annotations

import asyncio
import functools
import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    from engine.config import EngineConfig
    from engine.metrics import MetricColumns

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
GOLDEN = TESTS / "golden"  # outputs we must reproduce (made by the reference)
DATA = TESTS / "data"  # inputs the tests read (perf grids, extracted reference runs)
TRACES = ROOT / "traces"
TINY = str(TRACES / "mooncake_tiny.jsonl")
SYNTH = str(TRACES / "synthetic_trace.jsonl")
MULTITURN = str(TRACES / "multiturn.jsonl")



def long_trace(folder: Path, copies: int = 8) -> str:
    """The synthetic trace played `copies` times back to back, each copy with its own block ids:
    seconds of engine work for tests that must catch a point while it runs (the bundled
    trace alone finishes in a fraction of a second with the compiled engine)."""
    rows = [json.loads(line) for line in Path(SYNTH).read_text().splitlines() if line.strip()]
    span = max(r["timestamp"] for r in rows) + 1.0
    stride = 1 + max(h for r in rows for h in r["hash_ids"])
    path = folder / f"synthetic_x{copies}.jsonl"
    with open(path, "w") as f:
        for k in range(copies):
            for r in rows:
                f.write(json.dumps(dict(r, timestamp=r["timestamp"] + k * span,
                                        hash_ids=[h + k * stride for h in r["hash_ids"]]))
                        + "\n")
    return str(path)


# Summary keys measured on the wall clock: they differ from run to run, so comparisons skip them.
WALL_KEYS = frozenset({"wall_time_ms", "processed_tokens_per_s", "processed_output_tokens_per_s"})


def aio(fn: Callable[..., Awaitable[None]], timeout_s: float = 90.0) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no async pytest plugin needed), failing
    rather than hanging if the app stops answering."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout=timeout_s))

    return wrapper


PLANNER_RUNS = GOLDEN / "planner"  # Dynamo 1.4.2's planner runs, as the reference wrote them


def planner_reference(run: str) -> dict[str, Any]:
    """One reference planner run read from its raw files: the planner config, the
    scaling-event lines of its stdout summary, the log's metadata and every snapshot."""
    run_dir = PLANNER_RUNS / run
    cfg = json.loads((run_dir / "run_config.json").read_text())
    events = [line.rstrip("\n") for line in (run_dir / "stdout_summary.txt").read_text()
              .splitlines() if line.startswith("  t=")]
    (log,) = sorted(run_dir.glob("*.log.jsonl.gz"))
    with gzip.open(log, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    report = json.loads((run_dir / "report.json").read_text())
    return {
        "run": run,
        "planner_config": cfg["planner_config"],
        "engine_args": cfg.get("aic_engine_args", {}),
        "event_lines": events,
        "report_gpu_hours": report.get("gpu_hours"),
        "metadata": rows[0],
        "snapshots": rows[1:],
    }


def golden_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((GOLDEN / "cases.json").read_text())
    return cases


def fixed_timing(prefill_ms: float = 100.0, decode_ms: float = 10.0) -> "EngineConfig":
    """The reference's verified toy timing: every prefill pass 100 ms, every decode pass 10 ms."""
    from engine.config import TIMING_FIXED, EngineConfig

    c = EngineConfig()
    c.timing_kind = TIMING_FIXED
    c.fixed_prefill_ms = prefill_ms
    c.fixed_decode_ms = decode_ms
    return c


def cols_for(records: list[dict[str, Any]], idx: list[int]) -> "MetricColumns":
    """MetricColumns (completion order) from reference records mapped to workload indices."""
    from engine.metrics import STATUS_COMPLETED, STATUS_REJECTED, MetricColumns

    c = MetricColumns()

    def opt(v: float | None) -> float:
        return -1.0 if v is None else v

    for i, r in sorted(zip(idx, records), key=lambda t: t[1]["terminal_time_ms"]):
        c.req.append(i)
        c.worker.append(r["decode_worker_idx"])
        c.status.append(STATUS_COMPLETED if r["terminal_status"] == "completed" else STATUS_REJECTED)
        c.arrival_ms.append(r["arrival_time_ms"])
        c.first_admit_ms.append(opt(r["first_admit_ms"]))
        c.first_token_ms.append(opt(r["first_token_ms"]))
        c.second_token_ms.append(
            r["first_token_ms"] + r["ttst_ms"] if r["ttst_ms"] is not None else -1.0
        )
        c.last_token_ms.append(opt(r["last_token_ms"]))
        c.terminal_ms.append(r["terminal_time_ms"])
        c.input_length.append(r["input_length"])
        c.requested_output.append(r["requested_output_length"])
        c.output_tokens.append(r["output_length"])
        c.reused_tokens.append(r["reused_input_tokens"])
        hist = r["admission_history"]
        c.first_reused_tokens.append(hist[0]["reused_input_tokens"] if hist else 0)
        c.admissions.append(r["admission_count"])
    return c
