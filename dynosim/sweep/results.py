"""The sweep's output directory.

    DIR/points/<hash>.json         each finished point's JSON report (the CLI's --report-json,
                                   plus a "sweep" section: axis values, hash, wall time)
    DIR/points/<hash>.failed.json  a failed point: its one-line error and options
    DIR/points/<hash>.html         its HTML report (--keep-html only)
    DIR/results.parquet, .csv      one row per point of the grid (see `ROW_COLUMNS`)
    DIR/sweep.html                 the sweep report

A point's file is its result: a rerun skips points whose hash has one. Every file is written
atomically, so an interrupted sweep leaves complete files only. The directories are made with
the first file, so a sweep that fails before anything finishes (a Ray head that does not
answer, say) leaves nothing behind."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import polars as pl

from dynosim.sweep.evaluate import PointOutcome
from dynosim.outputs.writers import StagedFiles, dump_parquet, dump_text, write_json_atomic, \
    write_text_atomic

# Columns after the axis values and before the metrics, then the run's bookkeeping.
LEAD_COLUMNS = ("point", "status", "feasible", "penalty", "violations", "rank", "pareto")
TAIL_COLUMNS = ("wall_s", "worker_rss_mb", "worker", "error", "config_hash", "command")


class ResultStore:
    def __init__(self, out_dir: str) -> None:
        self.out = Path(out_dir)
        self.points = self.out / "points"

    def prepare(self) -> None:
        """Make the directories (each write does, first)."""
        self.points.mkdir(parents=True, exist_ok=True)

    def report_path(self, config_hash: str) -> Path:
        return self.points / f"{config_hash}.json"

    def failed_path(self, config_hash: str) -> Path:
        return self.points / f"{config_hash}.failed.json"

    def html_path(self, config_hash: str) -> Path:
        return self.points / f"{config_hash}.html"

    def load(self, config_hash: str) -> dict[str, Any] | None:
        """A finished point's stored report, or None (absent or unreadable: run it again)."""
        p = self.report_path(config_hash)
        try:
            with open(p, encoding="utf-8") as f:
                obj = json.load(f)
        except (OSError, ValueError):
            return None
        return obj if isinstance(obj, dict) and "dynosim" in obj else None

    def save(self, outcome: PointOutcome, sweep_meta: dict[str, Any]) -> None:
        h = outcome.config_hash
        self.prepare()
        if outcome.status == "ok":
            assert outcome.report is not None
            if outcome.html is not None:
                write_text_atomic(self.html_path(h), outcome.html)
            write_json_atomic(self.report_path(h), {**outcome.report, "sweep": sweep_meta})
            try:
                self.failed_path(h).unlink()
            except FileNotFoundError:
                pass
        else:
            write_json_atomic(self.failed_path(h), {"error": outcome.error, "sweep": sweep_meta})

    def write_tables(self, rows: list[dict[str, Any]]) -> list[str]:
        frame = rows_frame(rows)
        self.out.mkdir(parents=True, exist_ok=True)
        with StagedFiles() as staged:  # both tables appear together, complete, or not at all
            with staged.open(self.out / "results.parquet") as fh:
                dump_parquet(fh, frame)
            with staged.open(self.out / "results.csv") as fh:
                dump_text(fh, _csv(frame))
            return staged.commit()

    def write_html(self, html: str) -> str:
        path = self.out / "sweep.html"
        self.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, html)
        return str(path)


def rows_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    rows = list(rows)
    return pl.DataFrame(rows, infer_schema_length=None, nan_to_null=True)


def _csv(frame: pl.DataFrame) -> str:
    return frame.write_csv()


def remove_stale(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
