"""End to end through `dynosim.cli.main` (in-process): outputs, exit codes, one-line input errors,
determinism, and that an interrupted run leaves no temp or truncated files behind."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import dynosim.outputs.report as report_mod
from helpers import ROOT, SYNTH, TINY, WALL_KEYS
from dynosim.cli import main
from dynosim.replay import Replay

TITLE = "NVIDIA AIPerf | LLM Metrics"
ERROR_PREFIX = "dynosim-tui: error: "


def tree(root: Path) -> set[str]:
    """Every file and directory under root, relative (hidden temp files included)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def leftovers(root: Path) -> list[str]:
    """Temp files of the atomic writers (hidden `.name.*.tmp` or `name.tmpPID`)."""
    return [p for p in tree(root) if Path(p).name.startswith(".") or ".tmp" in Path(p).name]


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def strip_wall(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in WALL_KEYS}


# ---- normal runs ------------------------------------------------------------------------------

def test_export_and_report_files(cli, tmp_path: Path) -> None:
    rc, out, err = cli(TINY, "--export", "out", "--report-json", "r.json",
                       "--report-jsonl", "r.jsonl")
    assert rc == 0, err
    assert err == ""
    assert TITLE in out
    assert "Exported to: out" in out
    assert "Saved full report to: r.json" in out
    assert "Request Count (requests)" in out

    outdir = tmp_path / "out"
    assert sorted(p.name for p in outdir.iterdir()) == [
        "report.html", "report.json", "requests.jsonl", "requests.parquet", "summary.txt",
        "worker_samples.parquet"]
    assert leftovers(tmp_path) == []

    rep = load_json(outdir / "report.json")
    assert rep["num_requests"] == 16
    assert rep["completed_requests"] == 16
    assert list(rep)[-1] == "dynosim"  # reference keys first, our section last
    dyn = rep["dynosim"]
    assert isinstance(dyn["schema_version"], int) and dyn["schema_version"] >= 1
    assert dyn["finished"] is True
    assert dyn["unfinished_requests"] == 0
    assert dyn["num_workers"] == 1
    assert dyn["options"]["trace"] == TINY
    assert dyn["engine_args"]["engine"]["worker_type"] == "aggregated"
    assert load_json(tmp_path / "r.json") == rep  # one report, two places

    rows = load_jsonl(outdir / "requests.jsonl")
    assert len(rows) == 16
    assert all(isinstance(r, dict) for r in rows)
    assert load_jsonl(tmp_path / "r.jsonl") == rows

    frame = pl.read_parquet(outdir / "requests.parquet")
    assert frame.height == 16

    summary = (outdir / "summary.txt").read_text()
    assert TITLE in summary
    assert summary.strip() in out  # the file is the table that was printed


def test_default_report_lands_in_cwd(cli, tmp_path: Path) -> None:
    rc, out, err = cli(TINY)
    assert rc == 0, err
    files = sorted(tree(tmp_path))
    assert len(files) == 1 and re.fullmatch(r"dynosim_replay_report_\d{8}_\d{6}\.json", files[0])
    assert f"Saved full report to: {files[0]}" in out
    assert "Exported to" not in out
    assert load_json(tmp_path / files[0])["completed_requests"] == 16


def test_export_alone_writes_no_default_report(cli, tmp_path: Path) -> None:
    rc, out, err = cli(TINY, "--export", "deep/er/out")
    assert rc == 0, err
    assert "Saved full report to" not in out
    assert not list(tmp_path.glob("dynosim_replay_report_*"))
    assert (tmp_path / "deep/er/out/report.json").is_file()


def test_synthetic_run(cli, tmp_path: Path) -> None:
    rc, out, err = cli("--input-tokens", "100", "--output-tokens", "5", "--request-count", "20",
                       "--arrival-interval-ms", "10", "--report-json", "r.json")
    assert rc == 0, err
    assert TITLE in out
    rep = load_json(tmp_path / "r.json")
    assert rep["num_requests"] == rep["completed_requests"] == 20
    assert rep["total_input_tokens"] == 20 * 100
    assert rep["total_output_tokens"] == 20 * 5
    assert rep["dynosim"]["options"]["trace"] is None


def test_max_sim_time_cuts_the_run(cli, tmp_path: Path) -> None:
    rc, out, err = cli(TINY, "--max-sim-time-seconds", "3", "--report-json", "r.json")
    assert rc == 0, err
    rep = load_json(tmp_path / "r.json")
    dyn = rep["dynosim"]
    assert rep["num_requests"] == 16
    assert 0 < rep["completed_requests"] < 16
    assert dyn["sim_time_ms"] <= 3000.0
    assert rep["duration_ms"] <= 3000.0
    assert dyn["unfinished_requests"] == 16 - rep["completed_requests"] - dyn["rejected_requests"]
    assert dyn["unfinished_requests"] > 0


def test_max_sim_time_report_says_unfinished(cli, tmp_path: Path) -> None:
    rc, _, err = cli(TINY, "--max-sim-time-seconds", "3", "--report-json", "r.json")
    assert rc == 0, err
    assert load_json(tmp_path / "r.json")["dynosim"]["finished"] is False


def test_same_inputs_same_report(cli, tmp_path: Path) -> None:
    args = (TINY, "--num-workers", "2", "--extra-engine-args",
            '{"engine": {"num_gpu_blocks": 150}}')  # with rejections and a preemption
    assert cli(*args, "--export", "a")[0] == 0
    assert cli(*args, "--export", "b")[0] == 0
    ra, rb = load_json(tmp_path / "a/report.json"), load_json(tmp_path / "b/report.json")
    assert ra["dynosim"]["rejected_requests"] > 0 and ra["dynosim"]["preemptions"] > 0
    assert set(ra) == set(rb)
    assert strip_wall(ra) == strip_wall(rb)
    for name in ("requests.jsonl", "summary.txt"):
        if name == "summary.txt":  # the table shows the wall time
            a = [x for x in (tmp_path / "a" / name).read_text().splitlines() if "Wall" not in x]
            b = [x for x in (tmp_path / "b" / name).read_text().splitlines() if "Wall" not in x]
        else:
            a = (tmp_path / "a" / name).read_text().splitlines()
            b = (tmp_path / "b" / name).read_text().splitlines()
        assert a == b, name
    assert pl.read_parquet(tmp_path / "a/requests.parquet").equals(
        pl.read_parquet(tmp_path / "b/requests.parquet"))


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--export" in out
    assert "--extra-engine-args" in out
    assert "usage: dynosim-tui" in out


# ---- engine-arg warnings and the aggregated-only check -------------------------------------

def test_ignored_engine_args_warn_once_each(cli, tmp_path: Path) -> None:
    args = json.dumps({"engine": {"emit_kv_events": True, "kv_transfer_bandwidth": 64},
                       "gpu_memory_utilization": 0.9})
    rc, out, err = cli(TINY, "--extra-engine-args", args, "--report-json", "r.json")
    assert rc == 0, err
    assert TITLE in out
    assert sorted(err.splitlines()) == sorted(
        f"dynosim-tui: warning: --extra-engine-args: '{k}' is accepted but has no effect in "
        "this version"
        for k in ("engine.emit_kv_events", "engine.kv_transfer_bandwidth",
                  "gpu_memory_utilization"))


def test_engine_args_at_defaults_do_not_warn(cli) -> None:
    rc, _, err = cli(TINY, "--extra-engine-args",
                     '{"engine": {"emit_kv_events": false, "block_size": 64}}',
                     "--report-json", "r.json")
    assert rc == 0
    assert err == ""


# ---- bad input: exit 2, one line on stderr, nothing written --------------------------------

GOOD_LINE = '{"timestamp": 0, "input_length": 600, "output_length": 4, "hash_ids": [1, 2]}'

# (id, files to create, argv, substrings the error line must contain)
BAD_INPUTS: list[tuple[str, dict[str, str], list[str], list[str]]] = [
    ("empty_file", {"t.jsonl": ""}, ["t.jsonl"], ["t.jsonl: ", "no requests"]),
    ("blank_lines", {"t.jsonl": "\n  \n\n"}, ["t.jsonl"], ["t.jsonl: ", "no requests"]),
    ("non_json_line", {"t.jsonl": f"{GOOD_LINE}\n\n{GOOD_LINE}\nnot json\n{GOOD_LINE}\n"},
     ["t.jsonl"], ["t.jsonl:4: ", "invalid JSON"]),
    ("not_an_object", {"t.jsonl": f"{GOOD_LINE}\n[1, 2]\n"}, ["t.jsonl"],
     ["t.jsonl:2: ", "expected a JSON object"]),
    ("missing_output_length",
     {"t.jsonl": f'{GOOD_LINE}\n{{"timestamp": 5, "input_length": 10, "hash_ids": [3]}}\n'},
     ["t.jsonl"], ["t.jsonl:2: ", "field 'output_length'", "missing"]),
    ("output_length_wrong_type",
     {"t.jsonl": '{"timestamp": 0, "input_length": 10, "output_length": "abc", "hash_ids": [1]}'},
     ["t.jsonl"], ["t.jsonl:1: ", "field 'output_length'", "non-negative integer", '"abc"']),
    ("hash_ids_wrong_type",
     {"t.jsonl": f'{GOOD_LINE}\n{GOOD_LINE}\n'
                 '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": "1,2"}'},
     ["t.jsonl"], ["t.jsonl:3: ", "field 'hash_ids'", "list"]),
    ("timestamp_wrong_type",
     {"t.jsonl": '{"timestamp": "soon", "input_length": 10, "output_length": 1, "hash_ids": [1]}'},
     ["t.jsonl"], ["t.jsonl:1: ", "field 'timestamp'"]),
    ("zero_input_length",
     {"t.jsonl": '{"timestamp": 0, "input_length": 0, "output_length": 3, "hash_ids": [1]}'},
     ["t.jsonl"], ["t.jsonl:1: ", "field 'input_length'", "positive"]),
    ("input_length_beyond_hash_ids",
     {"t.jsonl": '{"timestamp": 0, "input_length": 1025, "output_length": 3, "hash_ids": [1, 2]}'},
     ["t.jsonl"], ["t.jsonl:1: ", "field 'input_length'", "1025", "2 hash_ids", "1024"]),
    ("input_length_beyond_small_trace_blocks",
     {"t.jsonl": '{"timestamp": 0, "input_length": 600, "output_length": 3, "hash_ids": [1, 2]}'},
     ["t.jsonl", "--trace-block-size", "256"], ["t.jsonl:1: ", "field 'input_length'", "512"]),
    ("unknown_engine_key_nested", {}, [TINY, "--extra-engine-args", '{"engine": {"bogus": 1}}'],
     ["--extra-engine-args: ", "field 'engine.bogus'", "unknown key", "valid keys: ",
      "num_gpu_blocks", "block_size"]),
    ("unknown_engine_key_flat", {}, [TINY, "--extra-engine-args", '{"bogus": 1}'],
     ["--extra-engine-args: ", "field 'bogus'", "unknown key", "valid keys: ", "num_gpu_blocks"]),
    ("unknown_engine_key_in_file", {"ea.json": '{"engine": {"num_gpu_blockz": 8}}'},
     [TINY, "--extra-engine-args", "ea.json"],
     ["ea.json: ", "field 'engine.num_gpu_blockz'", "valid keys: ", "num_gpu_blocks"]),
    ("engine_arg_wrong_type", {}, [TINY, "--extra-engine-args", '{"engine": {"block_size": "x"}}'],
     ["--extra-engine-args: ", "field 'engine.block_size'", "positive integer"]),
    ("engine_args_invalid_json", {}, [TINY, "--extra-engine-args", '{"engine": '],
     ["--extra-engine-args: ", "invalid JSON"]),
    ("nonexistent_trace", {}, ["nope.jsonl"], ["nope.jsonl: ", "not found"]),
    ("trace_is_a_directory", {"d/x": ""}, ["d"], ["d: ", "directory"]),
    ("nonexistent_engine_args_file", {}, [TINY, "--extra-engine-args", "missing.json"],
     ["--extra-engine-args: ", "missing.json", "no such file"]),
    ("zero_workers", {}, [TINY, "--num-workers", "0"], ["--num-workers", ">= 1", "got 0"]),
    ("negative_workers", {}, [TINY, "--num-workers", "-3"], ["--num-workers", "got -3"]),
    ("unknown_router", {}, [TINY, "--router-mode", "random"], ["--router-mode", "round_robin"]),
    ("negative_router_temperature", {},
     [TINY, "--router-mode", "kv_router", "--router-config", '{"router_temperature": -1}'],
     ["--router-config", "router_temperature", ">= 0", "got -1"]),
    ("unknown_router_key", {},
     [TINY, "--router-mode", "kv_router", "--router-config", '{"temprature": 0.5}'],
     ["--router-config", "temprature", "unknown key", "router_temperature"]),
    ("router_config_without_kv_router", {},
     [TINY, "--router-config", '{"router_temperature": 0.5}'],
     ["--router-config", "kv_router"]),
    ("zero_block_size_kv_router", {},
     [TINY, "--router-mode", "kv_router", "--extra-engine-args", '{"engine": {"block_size": 0}}'],
     ["--extra-engine-args", "block_size"]),
    ("disagg_missing_decode_args", {}, [TINY, "--prefill-engine-args", "{}"],
     ["--decode-engine-args", "both"]),
    ("disagg_missing_prefill_args", {}, [TINY, "--decode-engine-args", "{}"],
     ["--prefill-engine-args", "both"]),
    ("disagg_with_extra_engine_args", {},
     [TINY, "--prefill-engine-args", "{}", "--decode-engine-args", "{}",
      "--extra-engine-args", "{}"], ["--extra-engine-args", "aggregated"]),
    ("disagg_wrong_worker_type", {},
     [TINY, "--prefill-engine-args", '{"engine": {"worker_type": "decode"}}',
      "--decode-engine-args", "{}"], ["--prefill-engine-args", "worker_type", "prefill"]),
    ("disagg_zero_decode_workers", {},
     [TINY, "--prefill-engine-args", "{}", "--decode-engine-args", "{}",
      "--num-decode-workers", "0"], ["--num-decode-workers", ">= 1"]),
    ("trace_and_synthetic", {}, [TINY, "--input-tokens", "100"], ["trace", "not both"]),
    ("synthetic_incomplete", {}, ["--input-tokens", "100", "--output-tokens", "5"],
     ["--request-count"]),
    ("synthetic_without_arrivals", {},
     ["--input-tokens", "100", "--output-tokens", "5", "--request-count", "3"],
     ["--request-rate", "--arrival-interval-ms"]),
    ("prefill_worker_type", {},
     [TINY, "--extra-engine-args", '{"engine": {"worker_type": "prefill"}}'],
     ["--extra-engine-args: ", "field 'engine.worker_type'", "prefill",
      "give the pools with --prefill-engine-args/--decode-engine-args"]),
    ("legacy_is_decode", {}, [TINY, "--extra-engine-args", '{"is_decode": true}'],
     ["--extra-engine-args: ", "field 'worker_type'", "decode",
      "give the pools with --prefill-engine-args/--decode-engine-args"]),
    ("disagg_mixed_backends", {},
     [TINY, "--prefill-engine-args", '{"engine": {"backend": "sglang", "block_size": 64}}',
      "--decode-engine-args", '{"engine": {"backend": "vllm"}}'],
     ["--decode-engine-args: ", "field 'engine.backend'", 'match the prefill pool\'s ("sglang")']),
    ("unsupported_backend", {}, [TINY, "--extra-engine-args",
                                 '{"engine": {"backend": "sglang", "aic_nextn": 2}}'],
     ["--extra-engine-args: ", "field 'engine.aic_nextn'", "not supported yet"]),
]

OUTPUT_FLAGS = ["--export", "out", "--report-json", "r.json", "--report-jsonl", "r.jsonl"]


@pytest.mark.parametrize("with_outputs", [False, True], ids=["default_outputs", "all_outputs"])
@pytest.mark.parametrize("files,argv,expected", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(cli, tmp_path: Path, files: dict[str, str], argv: list[str],
                   expected: list[str], with_outputs: bool) -> None:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    before = tree(tmp_path)
    rc, out, err = cli(*argv, *(OUTPUT_FLAGS if with_outputs else []))
    assert rc == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    line = lines[0]
    assert line.startswith(ERROR_PREFIX), line
    for s in expected:
        assert s in line, f"{s!r} not in {line!r}"
    assert "Traceback" not in err
    assert out == ""  # no table for a run that never started
    assert tree(tmp_path) == before  # nothing written, not even a directory


def test_unreadable_trace(cli, tmp_path: Path) -> None:
    import os

    p = tmp_path / "secret.jsonl"
    p.write_text(GOOD_LINE + "\n")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running with privileges that read anything")
        rc, out, err = cli("secret.jsonl")
    finally:
        p.chmod(0o644)
    assert rc == 2
    assert err.startswith(ERROR_PREFIX + "secret.jsonl: ") and err.count("\n") == 1
    assert "permission denied" in err
    assert tree(tmp_path) == {"secret.jsonl"}


# ---- interruption: exit 130, no temp or truncated files ----------------------------------------

def test_interrupt_during_the_run_writes_nothing(cli, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def advance(self: Replay, max_steps: int) -> bool:
        calls.append(max_steps)
        raise KeyboardInterrupt

    monkeypatch.setattr(Replay, "advance", advance)
    rc, out, err = cli(TINY, *OUTPUT_FLAGS)
    assert rc == 130
    assert calls
    assert err.splitlines() == ["dynosim-tui: interrupted; no report written"]
    assert tree(tmp_path) == set()


def test_interrupt_while_building_records(cli, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_mod, "records_table", boom)
    rc, out, err = cli(TINY, *OUTPUT_FLAGS)
    assert rc == 130
    assert "interrupted" in err
    assert leftovers(tmp_path) == []
    # Files the run did not get to are absent, not empty or truncated.
    for name in ("r.jsonl", "out/requests.jsonl", "out/requests.parquet", "out/summary.txt"):
        assert not (tmp_path / name).exists(), name
    # Whatever exists is complete.
    assert not (tmp_path / "r.json").exists()  # outputs appear together or not at all


def test_interrupt_mid_jsonl_stream(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pl.DataFrame.write_ndjson

    def partial(self: pl.DataFrame, fh: Any, *args: Any, **kw: Any) -> None:
        real(self.head(5), fh)  # some rows reach the temp file, then ^C
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_ndjson", partial)
    rc, _, err = cli(TINY, "--report-jsonl", "r.jsonl")
    assert rc == 130
    assert "interrupted" in err
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "r.jsonl").exists()


def test_interrupt_mid_parquet_write(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def write_parquet(self: pl.DataFrame, fh: Any, *args: Any, **kw: Any) -> None:
        fh.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_parquet)
    rc, _, err = cli(TINY, "--export", "out")
    assert rc == 130
    assert "interrupted" in err
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "out/requests.parquet").exists()
    assert not (tmp_path / "out/summary.txt").exists()
    assert not (tmp_path / "out/requests.jsonl").exists()  # all or nothing
    assert not (tmp_path / "out/report.json").exists()  # all or nothing


def test_interrupt_keeps_the_previous_file(cli, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r.jsonl").write_text("old\n")

    def boom(*args: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_mod, "records_table", boom)
    rc, _, _ = cli(TINY, "--report-json", "r.json", "--report-jsonl", "r.jsonl")
    assert rc == 130
    assert (tmp_path / "r.jsonl").read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_interrupt_while_writing_leaves_no_report_at_all(cli, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_mod, "records_table", boom)
    rc, _, err = cli(TINY, "--export", "out")
    assert rc == 130
    assert "no report written" in err
    assert [p for p in tree(tmp_path) if Path(p).suffix] == []


def test_stranded_requests_are_reported(cli, tmp_path: Path) -> None:
    # 170 blocks: a preempted request outgrows the whole cache and blocks its queue for good.
    rc, _, err = cli(TINY, "--extra-engine-args", '{"engine": {"num_gpu_blocks": 170}}',
                     "--report-json", "r.json")
    assert rc == 1, err  # the replay could not finish; the report is still written
    dyn = load_json(tmp_path / "r.json")["dynosim"]
    assert dyn["stranded_requests"] > 0
    assert dyn["finished"] is False
    assert "could never be scheduled" in err


def test_a_disagg_run_stuck_on_its_decode_pool_exits_1(cli, tmp_path: Path) -> None:
    """1P2D with 90-block pools: hand-offs the decode pool can never hold strand their
    requests. The reference stops with an error on this run; we write the report, say how
    many were stranded and exit 1, so a script cannot take it for a finished replay."""
    (tmp_path / "t.jsonl").write_text("".join(Path(SYNTH).read_text().splitlines(True)[:400]))
    pre = '{"engine": {"worker_type": "prefill", "num_gpu_blocks": 90}}'
    dec = '{"engine": {"worker_type": "decode", "num_gpu_blocks": 90}}'
    rc, _, err = cli("t.jsonl", "--prefill-engine-args", pre, "--decode-engine-args", dec,
                     "--num-prefill-workers", "1", "--num-decode-workers", "2",
                     "--report-json", "r.json")
    assert rc == 1, err
    dyn = load_json(tmp_path / "r.json")["dynosim"]
    assert dyn["stranded_requests"] > 0 and dyn["finished"] is False
    assert f"{dyn['stranded_requests']} request(s) could never be scheduled" in err
    from dynosim.sweep.metrics import point_metrics  # a sweep's row shows it too
    assert point_metrics(load_json(tmp_path / "r.json"))["stranded_requests"] == \
        dyn["stranded_requests"]
