"""AIPerf-style table (spec §10.3) against output of the reference's format_report_table.

The golden texts were produced once by dynamo.replay.reporting.format_report_table (1.6.1) on
the inputs rebuilt below.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dynosim.outputs.table import format_report_table
from helpers import GOLDEN



def tiny_summary() -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((GOLDEN / "summary_tiny_ref.json").read_text())
    return summary


def variant_summary() -> dict[str, Any]:
    """Missing mean (row dropped), None cells, a wide number, big counts, a rounding edge."""
    v = tiny_summary()
    del v["mean_ttst_ms"]
    v["mean_itl_ms"] = None
    v["p99_output_token_throughput_per_user"] = None
    v["mean_e2e_latency_ms"] = 123456789.125
    v["output_throughput_tok_s"] = None
    v["completed_requests"] = 200000
    v["wall_time_ms"] = 1234567.891
    v["prefix_cache_reused_ratio"] = 0.005
    return v


def test_tiny_table_matches_reference() -> None:
    assert format_report_table(tiny_summary()) == (GOLDEN / "table_tiny.txt").read_text()


def test_variant_table_matches_reference() -> None:
    out = format_report_table(variant_summary())
    assert out == (GOLDEN / "table_variant.txt").read_text()
    assert "Time to Second Token" not in out
    assert "123,456,789.12" in out


def test_nearly_empty_summary_matches_reference() -> None:
    # Only the three scalar rows; trailer lines only for keys whose value is not None.
    out = format_report_table({"wall_time_ms": None, "prefix_cache_reused_ratio": 0.5})
    assert out == (GOLDEN / "table_empty.txt").read_text()
    assert out.endswith("\nPrefix Cache Reused Ratio: 0.50")
    assert "Wall Time" not in out


def test_layout_invariants() -> None:
    lines = format_report_table(tiny_summary()).split("\n")
    assert lines[0] == "NVIDIA AIPerf | LLM Metrics"
    table = lines[1:-3]
    widths = {len(line) for line in table}
    assert len(widths) == 1  # every box line has the same width
    assert table[0][0] == "┏" and table[-1][0] == "└"
    assert table[1].split("┃")[1:-1] == [
        " Metric                                             ",
        "      avg ",
        "      min ",
        "      max ",
        "      p99 ",
        "      p90 ",
        "      p75 ",
        "      std ",
    ]
    assert not format_report_table(tiny_summary()).endswith("\n")
