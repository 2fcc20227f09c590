"""Per-request records (spec §10.2) and the atomic report writers."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import polars as pl
import pytest

from dynosim.outputs.records import (
    FLAT_SCHEMA,
    iter_request_records,
    per_request_records,
    records_frame,
    request_uuid,
)
from dynosim.outputs.writers import write_json_atomic, write_jsonl_atomic, write_parquet_atomic
from engine.metrics import STATUS_COMPLETED, STATUS_REJECTED, MetricColumns
from engine.workload import Workload

from helpers import GOLDEN, TINY, cols_for



def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tiny_workload() -> Workload:
    wl = Workload(512)
    rows = load_jsonl(Path(TINY))
    t0 = min(r["timestamp"] for r in rows)
    for r in rows:
        wl.add(float(r["timestamp"] - t0), 0.0, r["input_length"], r["output_length"], r["hash_ids"], -1, 0)
    return wl


@pytest.mark.parametrize("name", ["tiny_w1", "tiny_maxlen_w1"])
def test_records_match_reference(name: str) -> None:
    wl = tiny_workload()
    ref = load_jsonl(GOLDEN / f"{name}.per_request.jsonl")
    by_shape = {(wl.input_length[i], wl.output_length[i]): i for i in range(len(wl))}
    assert len(by_shape) == len(wl)  # (isl, osl) identifies each tiny request
    idx = [by_shape[(r["input_length"], r["requested_output_length"])] for r in ref]
    ours = per_request_records(cols_for(ref, idx), wl)
    assert len(ours) == len(ref)
    mine = {int(o["uuid"][-12:], 16): o for o in ours}
    for i, r in zip(idx, ref):
        o = mine[i]
        assert list(o) == list(r)  # same fields, same order
        assert o["uuid"] == request_uuid(i)
        for k in r:
            if k != "uuid":
                assert o[k] == r[k] and type(o[k]) is type(r[k]), (name, i, k, o[k], r[k])
    if name == "tiny_maxlen_w1":
        rejected = [o for o in ours if o["terminal_status"] == "rejected"]
        assert len(rejected) == 8
        assert all(o["admission_history"] == [] and o["first_admit_ms"] is None for o in rejected)


def test_records_sorted_by_arrival_then_uuid() -> None:
    wl = tiny_workload()
    ref = load_jsonl(GOLDEN / "tiny_w1.per_request.jsonl")
    by_shape = {(wl.input_length[i], wl.output_length[i]): i for i in range(len(wl))}
    idx = [by_shape[(r["input_length"], r["requested_output_length"])] for r in ref]
    ours = per_request_records(cols_for(ref, idx), wl)
    keys = [(o["arrival_time_ms"], o["uuid"]) for o in ours]
    assert keys == sorted(keys)
    # Equal arrivals fall back to workload (file) order thanks to the index-derived uuid.
    zero = [int(o["uuid"][-12:], 16) for o in ours if o["arrival_time_ms"] == 0.0]
    assert zero == sorted(zero) and len(zero) == 15


def _one_turn(c: MetricColumns, idx: int, *, arrival: float, out: int, admissions: int = 1,
              status: int = STATUS_COMPLETED, worker: int = 0) -> None:
    c.req.append(idx)
    c.worker.append(worker)
    c.status.append(status)
    c.arrival_ms.append(arrival)
    done = status == STATUS_COMPLETED
    c.first_admit_ms.append(arrival + 1.0 if done else -1.0)
    c.first_token_ms.append(arrival + 2.0 if done and out >= 1 else -1.0)
    c.second_token_ms.append(arrival + 3.0 if done and out >= 2 else -1.0)
    c.last_token_ms.append(arrival + 1.0 + out if done and out >= 1 else -1.0)
    c.terminal_ms.append(arrival + 1.0 + out if done else arrival + 0.5)
    c.input_length.append(64)
    c.requested_output.append(out)
    c.output_tokens.append(out if done else 0)
    c.reused_tokens.append(32 if admissions > 1 else 0)
    c.first_reused_tokens.append(0)
    c.admissions.append(admissions if done else 0)


def test_sessions_readmissions_and_one_token_rows() -> None:
    wl = Workload(512)
    wl.session_names.append("sess-a")
    wl.add(0.0, 0.0, 64, 5, [1], 0, 0)  # idx 0: sess-a turn 0
    wl.add(0.0, 0.0, 64, 1, [2], -1, 0)  # idx 1: single-turn row in a session trace
    wl.add(0.0, 100.0, 64, 5, [1, 3], 0, 1)  # idx 2: sess-a turn 1
    wl.next_turn[0] = 2
    c = MetricColumns()
    _one_turn(c, 1, arrival=0.0, out=1, worker=1)
    _one_turn(c, 0, arrival=0.0, out=5, admissions=3)
    _one_turn(c, 2, arrival=110.0, out=5)
    recs = per_request_records(c, wl)
    assert [(r["session_id"], r["turn_index"]) for r in recs] == [
        ("sess-a", 0), ("request_2", 0), ("sess-a", 1),
    ]
    r0, r1, _ = recs
    assert r0["admission_count"] == 3 and r0["readmission_count"] == 2
    assert [h["is_readmission"] for h in r0["admission_history"]] == [False, True, True]
    assert [h["admission_ordinal"] for h in r0["admission_history"]] == [0, 1, 2]
    assert r0["admission_history"][0]["at_ms"] == 1.0
    assert r0["admission_history"][1]["at_ms"] is None  # readmission times are not recorded
    assert r0["itl_ms"] == (6.0 - 2.0) / 4 and r0["ttst_ms"] == 1.0
    assert r1["ttst_ms"] is None and r1["itl_ms"] is None and r1["ttft_ms"] == 2.0
    assert r1["e2e_latency_ms"] == 2.0
    assert r1["routing_history"][0]["logical_worker_id"] == 1
    json.dumps(recs)

    # Traces without any session_id leave both fields null.
    wl2 = Workload(512)
    wl2.add(0.0, 0.0, 64, 1, [1], -1, 0)
    c2 = MetricColumns()
    _one_turn(c2, 0, arrival=0.0, out=1)
    (only,) = per_request_records(c2, wl2)
    assert only["session_id"] is None and only["turn_index"] is None


def test_records_frame_is_flat_and_consistent() -> None:
    wl = Workload(512)
    for _ in range(3):
        wl.add(0.0, 0.0, 64, 4, [1], -1, 0)
    c = MetricColumns()
    _one_turn(c, 2, arrival=5.0, out=4)
    _one_turn(c, 0, arrival=1.0, out=4, status=STATUS_REJECTED)
    _one_turn(c, 1, arrival=1.0, out=4)
    frame = records_frame(c, wl)
    assert frame.columns == list(FLAT_SCHEMA)
    assert "routing_history" not in frame.columns and "admission_history" not in frame.columns
    assert all(not isinstance(dt, (pl.List, pl.Struct)) for dt in frame.dtypes)
    recs = per_request_records(c, wl)
    assert frame.to_dicts() == [{k: r[k] for k in FLAT_SCHEMA} for r in recs]
    assert frame["terminal_status"].to_list() == ["rejected", "completed", "completed"]
    assert frame["ttft_ms"].null_count() == 1


# --- writers -----------------------------------------------------------------------------------


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def test_write_json_keeps_key_order(tmp_path: Path) -> None:
    obj = {"zeta": 1, "alpha": [1.5, None], "mid": {"b": 2, "a": 1}}
    target = tmp_path / "sub" / "report.json"
    write_json_atomic(target, obj)
    text = target.read_text()
    assert text == json.dumps(obj, indent=2) + "\n"
    assert list(json.loads(text)) == ["zeta", "alpha", "mid"]
    assert _leftovers(target.parent) == []
    assert (target.stat().st_mode & 0o777) != 0o600  # not the private mkstemp mode


def test_write_jsonl_and_parquet_roundtrip(tmp_path: Path) -> None:
    rows = [{"a": i, "b": [i, None], "c": "x" * i} for i in range(5)]
    assert write_jsonl_atomic(tmp_path / "r.jsonl", iter(rows)) == 5
    assert load_jsonl(tmp_path / "r.jsonl") == rows
    frame = pl.DataFrame({"x": [1, 2, None], "y": [0.5, None, 2.0], "s": ["a", None, "c"]})
    write_parquet_atomic(tmp_path / "r.parquet", frame)
    assert pl.read_parquet(tmp_path / "r.parquet").equals(frame)
    assert _leftovers(tmp_path) == []


def _failing_rows(exc: BaseException) -> Iterator[dict[str, int]]:
    for i in range(1000):
        if i == 500:
            raise exc
        yield {"i": i}


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_interrupted_jsonl_leaves_no_target(tmp_path: Path, exc: BaseException) -> None:
    target = tmp_path / "out" / "records.jsonl"
    with pytest.raises(type(exc)):
        write_jsonl_atomic(target, _failing_rows(exc))
    assert not target.exists()
    assert os.listdir(tmp_path) == []  # the folder it created for the file is gone too


def test_interrupted_write_preserves_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    write_jsonl_atomic(target, [{"old": True}])
    with pytest.raises(KeyboardInterrupt):
        write_jsonl_atomic(target, _failing_rows(KeyboardInterrupt()))
    assert load_jsonl(target) == [{"old": True}]
    assert _leftovers(tmp_path) == []


def test_unserialisable_json_leaves_no_target(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert not target.exists() and os.listdir(tmp_path) == []


def test_failed_parquet_leaves_no_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"x": list(range(10))})

    def explode(self: pl.DataFrame, fh: Any, *a: Any, **k: Any) -> None:
        fh.write(b"PAR1partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_parquet", explode)
    target = tmp_path / "r.parquet"
    with pytest.raises(KeyboardInterrupt):
        write_parquet_atomic(target, frame)
    assert not target.exists() and os.listdir(tmp_path) == []


def test_streamed_records_roundtrip_through_jsonl(tmp_path: Path) -> None:
    wl = tiny_workload()
    ref = load_jsonl(GOLDEN / "tiny_maxlen_w1.per_request.jsonl")
    by_shape = {(wl.input_length[i], wl.output_length[i]): i for i in range(len(wl))}
    cols = cols_for(ref, [by_shape[(r["input_length"], r["requested_output_length"])] for r in ref])
    target = tmp_path / "per_request.jsonl"
    assert write_jsonl_atomic(target, iter_request_records(cols, wl)) == 16
    back = load_jsonl(target)
    assert back == per_request_records(cols, wl)
    assert [list(r) for r in back] == [list(r) for r in ref]  # key order survives the encoder


def test_jsonl_bad_row_and_nan(tmp_path: Path) -> None:
    target = tmp_path / "r.jsonl"
    with pytest.raises(TypeError):
        write_jsonl_atomic(target, [{"ok": 1}, {"bad": object()}])
    assert not target.exists() and os.listdir(tmp_path) == []
    write_jsonl_atomic(target, [{"x": float("nan")}])
    assert load_jsonl(target) == [{"x": None}]  # strict JSON, unlike json.dumps' NaN
