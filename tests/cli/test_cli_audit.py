"""What a new user meets first when following the README: the version, usage errors, the
help text, flags that would be ignored, config files in YAML.
"""
from __future__ import annotations

import json
import os
import shlex
from importlib import metadata
from pathlib import Path

import pytest

from dynosim.cli import check_flags_apply, given_flags, main, make_parser, options_from_args
from dynosim.replay import RunOptions
from dynosim.sweep.command import command_line
from helpers import TINY

ERR = "dynosim-tui: error: "


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"dynosim-tui {metadata.version('dynosim-tui')}"


@pytest.mark.parametrize("argv, prog, fragment", [
    ([TINY, "--num-workers", "abc"], "dynosim-tui", "argument --num-workers: invalid int value"),
    ([TINY, "--no-such-flag"], "dynosim-tui", "unrecognized arguments: --no-such-flag"),
    (["sweep"], "dynosim-tui sweep", "the following arguments are required: SPEC|TRACE"),
    (["sweep", "x.yaml", "--jobs", "two"], "dynosim-tui sweep", "argument --jobs"),
])
def test_a_usage_error_is_one_line(argv: list[str], prog: str, fragment: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err  # not the whole usage block first
    assert lines[0].startswith(f"{prog}: error: ") and fragment in lines[0]
    assert lines[0].endswith(f"(see {prog} --help)")
    assert os.listdir(tmp_path) == []


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--sla-ttft-ms", "--sla-itl-ms", "--sla-e2e-ms"):
        block = out.split(f"  {flag} {flag.lstrip('-').replace('-', '_').upper()}", 1)[1]
        assert block.split("\n", 1)[1].startswith("                        "), flag  # has help
    # The disaggregated example is two lines that can be pasted, not one run-together line.
    assert "--decode-engine-args '{}' \\\n      --num-prefill-workers 2" in out


DISAGG = ["--prefill-engine-args", "{}", "--decode-engine-args", "{}"]
SYNTH = ["--input-tokens", "64", "--output-tokens", "4", "--request-count", "4",
         "--request-rate", "2"]


@pytest.mark.parametrize("argv, message", [
    ([TINY, "--num-prefill-workers", "2"],
     "--num-prefill-workers: only applies to a disaggregated run (with --prefill-engine-args "
     "and --decode-engine-args)"),
    ([TINY, "--num-decode-workers=3"], "--num-decode-workers: only applies to a disaggregated"),
    ([TINY, *DISAGG, "--num-workers", "4"],
     "--num-workers: applies to aggregated runs; a disaggregated run takes "
     "--num-prefill-workers and --num-decode-workers"),
    ([TINY, "--request-rate", "5"], "--request-rate: applies to a synthetic workload"),
    ([TINY, "--arrival-seed", "7"], "--arrival-seed: applies to a synthetic workload"),
    ([TINY, "--turns-per-session", "3"], "--turns-per-session: applies to a synthetic workload"),
    ([*SYNTH, "--trace-block-size", "64"],
     "--trace-block-size: applies to a trace file, not to a synthetic workload"),
    ([TINY, "--kv-event-lag-ms", "5"],
     "--kv-event-lag-ms: only applies with --router-mode kv_router"),
])
def test_a_flag_the_run_would_ignore_is_refused(cli, tmp_path: Path, argv: list[str],
                                                message: str) -> None:
    rc, out, err = cli(*argv)
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERR + message), err
    assert os.listdir(tmp_path) == []


def test_flags_that_apply_still_run(cli, tmp_path: Path) -> None:
    rc, _, err = cli(TINY, *DISAGG, "--num-prefill-workers", "2", "--num-decode-workers", "1",
                     "--router-mode", "kv_router", "--kv-event-lag-ms", "5",
                     "--report-json", "r.json")
    assert rc == 0, err
    rc, _, err = cli(*SYNTH, "--arrival-seed", "3", "--turns-per-session", "2",
                     "--report-json", "s.json")
    assert rc == 0, err


def test_a_sweep_command_line_leaves_out_what_the_run_ignores() -> None:
    o = RunOptions(trace=TINY, num_workers=2, prefill_engine_args="{}", decode_engine_args="{}",
                   num_prefill_workers=2, arrival_seed=7)
    cmd = command_line(o)
    assert "--num-workers" not in cmd and "--arrival-seed" not in cmd
    assert "--num-prefill-workers 2" in cmd
    # and the command is one the CLI accepts
    argv = shlex.split(cmd)[1:]
    parser = make_parser()
    check_flags_apply(options_from_args(parser.parse_args(argv)), given_flags(parser, argv))


@pytest.mark.parametrize("flag, text, bad, message", [
    ("--router-config", "overlap_score_weight: 2.0\nrouter_temperature: 0.0\n",
     "overlap_score_weight: 1\nbogus: 2\n", "field 'bogus': unknown key; valid keys: "),
    ("--extra-engine-args", "engine:\n  num_gpu_blocks: 4096\n  block_size: 64\n",
     "engine:\n  block_size: x\n", "field 'engine.block_size': expected a positive integer"),
])
def test_router_and_engine_args_read_yaml_files(cli, tmp_path: Path, flag: str, text: str,
                                                bad: str, message: str) -> None:
    """Like --planner-config and sweep specs: a .yaml file is YAML, not "invalid JSON"."""
    extra = ["--router-mode", "kv_router"] if flag == "--router-config" else []
    (tmp_path / "in").mkdir()
    good = tmp_path / "in" / "good.yaml"
    good.write_text(text)
    rc, _, err = cli(TINY, *extra, flag, str(good), "--report-json", "r.json")
    assert rc == 0, err
    as_json = json.loads((tmp_path / "r.json").read_text())
    wrong = tmp_path / "in" / "bad.yaml"
    wrong.write_text(bad)
    rc, _, err = cli(TINY, *extra, flag, str(wrong), "--report-json", "r2.json")
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"{ERR}{wrong}:"), err
    assert message in err
    assert not (tmp_path / "r2.json").exists()
    if flag == "--router-config":
        assert as_json["dynosim"]["router_config"]["overlap_score_weight"] == 2.0
    else:
        assert as_json["dynosim"]["engine_args"]["engine"]["num_gpu_blocks"] == 4096


def test_a_trace_field_that_is_ignored_is_named(cli, tmp_path: Path) -> None:
    """Unknown trace fields are tolerated (Mooncake releases carry extra columns), but a
    misspelt `session_id` must not silently turn a session into independent requests."""
    trace = tmp_path / "t.jsonl"
    row = '{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]'
    trace.write_text(f"{row}}}\n{row}, \"sesion_id\": \"a\", \"x\": 2}}\n{row}, \"y\": 1}}\n")
    rc, _, err = cli(str(trace), "--report-json", "r.json")
    assert rc == 0
    assert err.splitlines() == [
        f"dynosim-tui: warning: {trace}:2: ignoring field(s) 'sesion_id', 'x', not trace "
        "fields (the first line with any; known: timestamp, created_time, input_length, "
        "input_tokens, output_length, output_tokens, hash_ids, session_id, delay, delay_ms, "
        "request_id, output_token_ids, priority, strict_priority, policy_class)"]
    assert json.loads((tmp_path / "r.json").read_text())["completed_requests"] == 3
    rc, _, err = cli(TINY, "--report-json", "r2.json")
    assert rc == 0 and err == ""


@pytest.mark.parametrize("flag, name, text, expected", [
    ("--extra-engine-args", "ea.json", '{\n  "engine": {\n    "block_size": "x"\n  }\n}\n',
     "ea.json:3: field 'engine.block_size': expected a positive integer, got \"x\""),
    ("--extra-engine-args", "ea.yaml", "engine:\n  max_num_seqs: 8\n  blok_size: 4\n",
     "ea.yaml:3: field 'engine.blok_size': unknown key; valid keys: "),
    ("--router-config", "rc.json", '{"overlap_score_weight": 1,\n "bogus": 2}\n',
     "rc.json:2: field 'bogus': unknown key; valid keys: "),
    ("--planner-config", "pc.yaml", "mode: agg\n\nttft_ms: fast\n",
     "pc.yaml:3: field 'ttft_ms': Expected `float`, got \"fast\""),
    ("--planner-config", "pc.json", '{"mode": "agg",\n "bogus": 1}',
     "pc.json:2: field 'bogus': unknown key; valid keys: "),
])
def test_a_bad_field_in_a_config_file_names_its_line(cli, tmp_path: Path, flag: str, name: str,
                                                     text: str, expected: str) -> None:
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / name
    path.write_text(text)
    extra = ["--router-mode", "kv_router"] if flag == "--router-config" else []
    rc, _, err = cli(TINY, *extra, flag, str(path), "--report-json", "r.json")
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"{ERR}{tmp_path}/in/{expected}"), err
    assert os.listdir(tmp_path) == ["in"]


def test_a_planner_type_error_shows_the_value_given(cli, tmp_path: Path) -> None:
    rc, _, err = cli(TINY, "--planner-config", '{"mode": "agg", "ttft_ms": "x"}')
    assert rc == 2
    assert err == f"{ERR}--planner-config: field 'ttft_ms': Expected `float`, got \"x\"\n"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc")
def test_a_virtual_file_system_is_not_called_full(cli, tmp_path: Path) -> None:
    if os.statvfs("/proc").f_flag & os.ST_RDONLY:
        pytest.skip("/proc is mounted read-only here (refused as such)")
    rc, _, err = cli(TINY, "--export", "/proc/dynosim_out")
    assert rc == 2
    assert err == (f"{ERR}/proc/dynosim_out: /proc is on a virtual file system (no storage, "
                   "like /proc or /sys): it cannot hold the run's files\n")
    assert not os.path.exists("/proc/dynosim_out") and os.listdir(tmp_path) == []


def test_a_top_level_engine_key_inside_engine_says_where_it_goes(cli, tmp_path: Path) -> None:
    rc, _, err = cli(TINY, "--extra-engine-args", '{"engine": {"startup_time": 30}}')
    assert rc == 2
    assert err.startswith(f"{ERR}--extra-engine-args: field 'engine.startup_time': unknown key "
                          'in "engine" (startup_time is a top-level key, beside it: '
                          '{"engine": {...}, "startup_time": ...}); valid keys: backend, ')
    assert os.listdir(tmp_path) == []
