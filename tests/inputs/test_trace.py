"""Mooncake trace ingestion: field semantics, sessions, normalisation, validation messages."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dynosim.inputs.errors import InputError
from helpers import ROOT
from dynosim.inputs.trace import load_mooncake

SHARED_TINY = ROOT.parent / "shared" / "traces" / "mooncake_tiny.jsonl"


def write(tmp_path: Path, rows: list, name: str = "t.jsonl") -> str:
    """Rows may be dicts (dumped as JSON) or raw strings (written verbatim)."""
    p = tmp_path / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(p)


def req(ts=0, il=100, ol=5, ids=(1,), **extra):
    row = {"timestamp": ts, "input_length": il, "output_length": ol, "hash_ids": list(ids)}
    row.update(extra)
    return row


def load_error(path: str, **kw) -> InputError:
    with pytest.raises(InputError) as ei:
        load_mooncake(path, **kw)
    return ei.value


# ---------------------------------------------------------------------------------------------
# Field semantics


def test_basic_row_and_hash_layout(tmp_path):
    wl = load_mooncake(write(tmp_path, [req(0, 1000, 7, (4, 5)), req(10, 3, 0, (4,))]))
    assert len(wl) == 2
    assert wl.input_length == [1000, 3]
    assert wl.output_length == [7, 0]  # output_length 0 is allowed
    assert wl.hash_ids == [4, 5, 4]
    assert wl.hash_start == [0, 2, 3]
    assert wl.arrival_ms == [0.0, 10.0]
    assert wl.delay_ms == [0.0, 0.0]
    assert wl.trace_block_size == 512
    assert wl.unique_prompts is False


def test_input_length_defaults_to_full_blocks(tmp_path):
    rows = [{"timestamp": 0, "output_length": 1, "hash_ids": [1, 2, 3]},
            {"timestamp": 0, "input_length": None, "output_length": 1, "hash_ids": [9]}]
    p = write(tmp_path, rows)
    assert load_mooncake(p).input_length == [3 * 512, 512]
    assert load_mooncake(p, trace_block_size=16).input_length == [48, 16]


def test_aliases(tmp_path):
    rows = [
        {"created_time": 100, "input_tokens": 50, "output_tokens": 4, "hash_ids": [1],
         "session_id": "s"},
        {"created_time": 900, "input_tokens": 60, "output_tokens": 3, "hash_ids": [1, 2],
         "session_id": "s", "delay_ms": 7.5},
        {"created_time": 950, "input_tokens": 70, "output_tokens": 2, "hash_ids": [1, 2],
         "session_id": "s"},
    ]
    wl = load_mooncake(write(tmp_path, rows))
    assert wl.input_length == [50, 60, 70]
    assert wl.output_length == [4, 3, 2]
    assert wl.delay_ms == [0.0, 7.5, 50.0]  # explicit delay_ms, then timestamp difference
    assert wl.arrival_ms == [0.0, 0.0, 0.0]


def test_known_optional_and_unknown_fields_are_tolerated(tmp_path):
    row = req(0, request_id="r1", output_token_ids=[1, 2, 3, 4, 5], priority=-2,
              strict_priority=1, policy_class="gold", some_future_column={"x": [1]})
    wl = load_mooncake(write(tmp_path, [row]))
    assert wl.output_length == [5]


def test_python_types_are_exact(tmp_path):
    rows = [req(3, ids=(1,)), req(7.5, ids=(2,), session_id=5), req(9, ids=(3,), session_id=5)]
    wl = load_mooncake(write(tmp_path, rows), arrival_speedup_ratio=2)
    for col in (wl.arrival_ms, wl.delay_ms):
        assert all(type(x) is float for x in col)
    for col in (wl.input_length, wl.output_length, wl.hash_ids, wl.hash_start, wl.session,
                wl.turn, wl.next_turn):
        assert all(type(x) is int for x in col)
    assert all(type(x) is str for x in wl.session_names)


# ---------------------------------------------------------------------------------------------
# Sessions, delays, normalisation, speedup


def test_rows_without_session_are_single_turn(tmp_path):
    rows = [req(5), req(5, session_id=""), req(6, session_id=None)]
    wl = load_mooncake(write(tmp_path, rows))
    assert wl.session == [-1, -1, -1]
    assert wl.turn == [0, 0, 0]
    assert wl.next_turn == [-1, -1, -1]
    assert wl.session_names == []
    assert wl.first_turns() == [0, 1, 2]


def test_session_delay_semantics(tmp_path):
    rows = [
        req(1000, session_id="a"),                 # line 1: a turn 0
        req(2000),                                 # line 2: single
        req(6000, session_id="a"),                 # line 3: a turn 1, delay 5000 from ts
        req(1500, session_id="b"),                 # line 4: b turn 0
        req(7000, session_id="a", delay=123.5),    # line 5: explicit delay wins
        {"input_length": 10, "output_length": 1, "hash_ids": [1], "session_id": "a"},  # no ts -> 0
        req(1600, session_id="b"),                 # line 7: b turn 1, delay 100
    ]
    wl = load_mooncake(write(tmp_path, rows))
    assert wl.session_names == ["a", "b"]
    assert wl.session == [0, -1, 0, 1, 0, 0, 1]
    assert wl.turn == [0, 0, 1, 0, 2, 3, 1]
    assert wl.next_turn == [2, -1, 4, 6, 5, -1, -1]
    assert wl.delay_ms == [0.0, 0.0, 5000.0, 0.0, 123.5, 0.0, 100.0]
    # normalised by the minimum first-turn timestamp (1000); later turns carry no arrival
    assert wl.arrival_ms == [0.0, 1000.0, 0.0, 500.0, 0.0, 0.0, 0.0]
    assert wl.first_turns() == [0, 1, 3]


def test_null_delay_means_derive_from_timestamps(tmp_path):
    rows = [req(0, session_id="a"), req(30, session_id="a", delay=None)]
    assert load_mooncake(write(tmp_path, rows)).delay_ms == [0.0, 30.0]


def test_integer_session_ids(tmp_path):
    rows = [req(0, session_id=7), req(50, session_id=7), req(60, session_id="8")]
    wl = load_mooncake(write(tmp_path, rows))
    assert wl.session_names == ["7", "8"]
    assert wl.session == [0, 0, 1]
    assert wl.delay_ms == [0.0, 50.0, 0.0]


def test_normalisation_uses_first_turns_only(tmp_path):
    # A later turn's timestamp (9000) never sets the origin; the single row at 500 does.
    rows = [req(1000, session_id="a"), req(500), req(9000, session_id="a")]
    wl = load_mooncake(write(tmp_path, rows))
    assert wl.arrival_ms == [500.0, 0.0, 0.0]
    assert wl.delay_ms == [0.0, 0.0, 8000.0]


def test_negative_and_fractional_timestamps_are_normalised(tmp_path):
    wl = load_mooncake(write(tmp_path, [req(-100.5), req(100)]))
    assert wl.arrival_ms == [0.0, 200.5]


def test_arrival_speedup_divides_arrivals_and_delays(tmp_path):
    # Reference check: with r=4 an arrival at 1000 ms becomes 250 and a 5000 ms delay 1250.
    rows = [req(0), req(1000, session_id="s"), req(6000, session_id="s"),
            req(9000, session_id="s", delay=800)]
    wl = load_mooncake(write(tmp_path, rows), arrival_speedup_ratio=4.0)
    assert wl.arrival_ms == [0.0, 250.0, 0.0, 0.0]
    assert wl.delay_ms == [0.0, 0.0, 1250.0, 200.0]
    slow = load_mooncake(write(tmp_path, rows), arrival_speedup_ratio=0.5)
    assert slow.arrival_ms[1] == 2000.0 and slow.delay_ms[2] == 10000.0


def test_blank_lines_skipped_and_line_numbers_count_them(tmp_path):
    p = write(tmp_path, ["", json.dumps(req(0)), "   ", "\t", json.dumps(req(1)) + "\r",
                         "{oops"])
    err = load_error(p)
    assert str(err).startswith(f"{p}:6: ")
    p2 = write(tmp_path, ["", json.dumps(req(0)), "   ", json.dumps(req(1)) + "\r", ""], "b.jsonl")
    assert len(load_mooncake(p2)) == 2


def test_utf8_bom_is_tolerated(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(req(0)).encode() + b"\n")
    assert len(load_mooncake(str(p))) == 1


def test_closed_loop_allows_missing_first_turn_timestamps(tmp_path):
    rows = [{"input_length": 10, "output_length": 1, "hash_ids": [1]},
            req(400), req(300, session_id="a"),
            {"input_length": 10, "output_length": 1, "hash_ids": [1], "session_id": "b"}]
    p = write(tmp_path, rows)
    err = load_error(p)
    assert err.line == 1 and err.field == "timestamp"
    wl = load_mooncake(p, closed_loop=True)
    assert wl.arrival_ms == [0.0, 100.0, 0.0, 0.0]


def test_shared_tiny_trace_loads():
    if not SHARED_TINY.exists():
        pytest.skip("shared traces not present")
    wl = load_mooncake(str(SHARED_TINY))
    assert len(wl) == 16
    assert wl.input_length[0] == 6755 and wl.output_length[0] == 500
    assert wl.hash_start[1] == 14
    assert all(s == -1 for s in wl.session)


# ---------------------------------------------------------------------------------------------
# Validation: every message names file, 1-based line and field.

R = '"timestamp": 0, "input_length": 100, "output_length": 5'

ERROR_CASES = [
    # (lines, bad line, field, fragment of message)
    (["{" + R + ', "hash_ids": [1]}', "{not json"], 2, None, "invalid JSON"),
    (["[1, 2]"], 1, None, "expected a JSON object, got array"),
    (['"just a string"'], 1, None, "expected a JSON object, got string"),
    (['{"timestamp": 0, "input_length": 100, "hash_ids": [1]}'], 1, "output_length", "missing"),
    (['{"timestamp": 0, "output_length": null, "hash_ids": [1]}'], 1, "output_length", "missing"),
    (['{"timestamp": 0, "input_length": 100, "output_length": "abc", "hash_ids": [1]}'], 1,
     "output_length", 'expected a non-negative integer, got "abc"'),
    (['{"timestamp": 0, "input_length": 100, "output_length": -1, "hash_ids": [1]}'], 1,
     "output_length", "got -1"),
    (['{"timestamp": 0, "input_length": 100, "output_length": true, "hash_ids": [1]}'], 1,
     "output_length", "got true"),
    (['{"timestamp": 0, "input_length": 100.0, "output_length": 5, "hash_ids": [1]}'], 1,
     "input_length", "got 100.0"),
    (['{"timestamp": 0, "input_length": false, "output_length": 5, "hash_ids": [1]}'], 1,
     "input_length", "got false"),
    (["{" + R + "}"], 1, "hash_ids", "missing"),
    (["{" + R + ', "hash_ids": []}'], 1, "hash_ids", "non-empty"),
    (["{" + R + ', "hash_ids": [1, -2]}'], 1, "hash_ids", "non-negative"),
    (["{" + R + ', "hash_ids": ["a"]}'], 1, "hash_ids", "non-negative"),
    (["{" + R + ', "hash_ids": 3}'], 1, "hash_ids", "got 3"),
    (['{"timestamp": 0, "input_length": 0, "output_length": 5, "hash_ids": [1]}'], 1,
     "input_length", "positive"),
    (['{"timestamp": 0, "input_length": -4, "output_length": 5, "hash_ids": [1]}'], 1,
     "input_length", "got -4"),
    (['{"timestamp": 0, "input_length": 1025, "output_length": 5, "hash_ids": [1, 2]}'], 1,
     "input_length", "1025 exceeds"),
    (['{"timestamp": "0", "input_length": 1, "output_length": 5, "hash_ids": [1]}'], 1,
     "timestamp", 'got "0"'),
    (['{"timestamp": true, "input_length": 1, "output_length": 5, "hash_ids": [1]}'], 1,
     "timestamp", "got true"),
    (['{"input_length": 1, "output_length": 5, "hash_ids": [1]}'], 1, "timestamp", "missing"),
    (['{"timestamp": 0, "created_time": 1, "input_length": 1, "output_length": 5, '
      '"hash_ids": [1]}'], 1, "timestamp", "alias 'created_time'"),
    (['{"timestamp": 0, "input_length": 1, "input_tokens": 1, "output_length": 5, '
      '"hash_ids": [1]}'], 1, "input_length", "alias 'input_tokens'"),
    (["{" + R + ', "hash_ids": [1], "delay": 5}'], 1, "delay", "first turn"),
    (["{" + R + ', "hash_ids": [1], "session_id": "a", "delay": 5}'], 1, "delay", "first turn"),
    (["{" + R + ', "hash_ids": [1], "session_id": "a"}',
      "{" + R + ', "hash_ids": [1], "session_id": "a", "delay": -5}'], 2, "delay", "got -5"),
    (["{" + R + ', "hash_ids": [1], "session_id": "a"}',
      "{" + R + ', "hash_ids": [1], "session_id": "a", "delay_ms": "5"}'], 2, "delay_ms", '"5"'),
    (["{" + R + ', "hash_ids": [1], "session_id": "a"}',
      "{" + R + ', "hash_ids": [1], "session_id": "a", "delay": 1e400}'], 2, "delay",
     "out of range"),
    (['{"timestamp": 50, "input_length": 1, "output_length": 5, "hash_ids": [1], '
      '"session_id": "a"}',
      '{"timestamp": 10, "input_length": 1, "output_length": 5, "hash_ids": [1], '
      '"session_id": "a"}'], 2, "timestamp", "earlier than the previous turn"),
    (['{"timestamp": 50, "input_length": 1, "output_length": 5, "hash_ids": [1], '
      '"session_id": "a"}',
      '{"input_length": 1, "output_length": 5, "hash_ids": [1], "session_id": "a"}',
      '{"timestamp": 70, "input_length": 1, "output_length": 5, "hash_ids": [1], '
      '"session_id": "a"}'], 3, "timestamp", "previous turn (line 3) has no timestamp"),
    (["{" + R + ', "hash_ids": [1], "session_id": 1.5}'], 1, "session_id", "got 1.5"),
    (["{" + R + ', "hash_ids": [1], "session_id": ["a"]}'], 1, "session_id", "string or integer"),
    (["{" + R + ', "hash_ids": [1], "request_id": 5}'], 1, "request_id", "expected a string"),
    (["{" + R + ', "hash_ids": [1], "priority": 1.5}'], 1, "priority", "integer"),
    (["{" + R + ', "hash_ids": [1], "strict_priority": true}'], 1, "strict_priority", "got true"),
    (["{" + R + ', "hash_ids": [1], "policy_class": 3}'], 1, "policy_class", "string"),
    (["{" + R + ', "hash_ids": [1], "output_token_ids": [1, 2]}'], 1, "output_token_ids",
     "has 2 tokens but output_length is 5"),
    (["{" + R + ', "hash_ids": [1]} trailing'], 1, None, "invalid JSON"),
]


@pytest.mark.parametrize("lines, bad_line, field, fragment", ERROR_CASES)
def test_errors_name_file_line_and_field(tmp_path, lines, bad_line, field, fragment):
    p = write(tmp_path, ["{" + R + ', "hash_ids": [9]}', *lines])  # a good line first
    err = load_error(p)
    line = bad_line + 1
    assert err.source == p and err.line == line and err.field == field
    text = str(err)
    assert "\n" not in text
    prefix = f"{p}:{line}: " + (f"field '{field}': " if field else "")
    assert text.startswith(prefix), text
    assert fragment in text, text


def test_example_message_format(tmp_path):
    p = write(tmp_path, [req(0)] * 16 + ['{"timestamp": 0, "output_length": "abc", '
                                           '"hash_ids": [1]}'])
    assert str(load_error(p)) == (
        f"{p}:17: field 'output_length': expected a non-negative integer, got \"abc\"")


def test_missing_file(tmp_path):
    p = str(tmp_path / "nope.jsonl")
    err = load_error(p)
    assert str(err).startswith(p + ": ") and "not found" in str(err)


def test_directory(tmp_path):
    err = load_error(str(tmp_path))
    assert str(err).startswith(str(tmp_path) + ": ") and "directory" in str(err)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    p = write(tmp_path, [req(0)])
    os.chmod(p, 0)
    assert "permission" in str(load_error(p))


@pytest.mark.parametrize("content", ["", "\n\n", "  \n\t\n"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "e.jsonl"
    p.write_text(content)
    err = load_error(str(p))
    assert str(err).startswith(f"{p}: ") and "no requests" in str(err)


@pytest.mark.parametrize("ratio", [0, -1.0, float("inf"), float("nan"), True, "2"])
def test_bad_arrival_speedup_ratio(tmp_path, ratio):
    err = load_error(write(tmp_path, [req(0)]), arrival_speedup_ratio=ratio)
    assert err.field == "arrival_speedup_ratio"


@pytest.mark.parametrize("bs", [0, -512, 1.5, True])
def test_bad_trace_block_size(tmp_path, bs):
    assert load_error(write(tmp_path, [req(0)]), trace_block_size=bs).field == "trace_block_size"


def test_parse_speed_50k_lines(tmp_path):
    """The fast path must stay fast: 50k lines x 30 block ids well under a second on a dev box
    (the bound here is loose for slow CI machines)."""
    p = tmp_path / "big.jsonl"
    ids = ", ".join(str(i) for i in range(30))
    with open(p, "w") as f:
        for i in range(50_000):
            sess = f', "session_id": "s{i % 997}"' if i % 7 == 0 else ""
            f.write(f'{{"timestamp": {i}, "input_length": 15000, "output_length": 100, '
                    f'"hash_ids": [{ids}]{sess}}}\n')
    t0 = time.perf_counter()
    wl = load_mooncake(str(p))
    elapsed = time.perf_counter() - t0
    assert len(wl) == 50_000 and len(wl.hash_ids) == 1_500_000
    assert elapsed < 3.0, elapsed
