"""Where a run meets the file system, the machine's memory and signals (issue 11): outputs that
never clobber special files, output problems found before the run, signals that clean up, no
request dropped silently, and the smaller cases of item 6.

Device nodes are `mknod` copies in a temp dir (we run as root in CI). Read-only and full file
systems are tmpfs mounts in the test's own mount namespace (`unshare -m`), permission cases run
the CLI with every capability dropped (`setpriv`), so root's override does not apply; each
skips with the reason when the machine cannot do it.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import dynosim.outputs.writers as writers_mod
from dynosim.replay import Replay
from helpers import TINY

ERR = "dynosim-tui: error: "
PLANNER = {"mode": "agg", "optimization_target": "sla", "ttft_ms": 1500, "itl_ms": 50}
LINE = '{"timestamp": %d, "input_length": %d, "output_length": %d, "hash_ids": %s}'


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record whether the simulation started (output problems must be found before it)."""
    calls: list[int] = []
    real = Replay.advance

    def advance(self: Replay, max_steps: int) -> bool:
        calls.append(max_steps)
        return real(self, max_steps)

    monkeypatch.setattr(Replay, "advance", advance)
    return calls


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERR), err
    assert "Traceback" not in err
    return lines[0][len(ERR):]


def mknod_char(path: Path, major: int, minor: int) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    return path


def sub(*args: str, cwd: Path, wrap: list[str] | None = None, **kw: Any
        ) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dynosim.cli", *args]
    return subprocess.run((wrap or []) + cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=240, **kw)


def _can(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod and mounts need root")


def in_tmpfs(mount: Path, options: str) -> list[str]:
    """A wrapper running the command with a tmpfs at `mount` in a private mount namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private tmpfs mount")
    if not _can(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]):
        pytest.skip("mount namespaces are not available here")
    script = f'mount -t tmpfs -o {options} tmpfs "{mount}" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh"]


def without_caps() -> list[str]:
    """Run as root without CAP_DAC_OVERRIDE, so file permissions apply as to anyone."""
    if os.geteuid() != 0:
        return []  # already unprivileged: chmod alone is enough
    if not _can(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "true"]):
        pytest.skip("setpriv cannot drop capabilities here")
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]


# ---- 1. special files are written to, never replaced --------------------------------------------

@needs_root
def test_dev_null_stays_a_device(cli, tmp_path: Path) -> None:
    null = mknod_char(tmp_path / "null", 1, 3)
    rc, out, err = cli(TINY, "--report-json", str(null), "--report-jsonl", str(null))
    assert rc == 0, err
    assert stat.S_ISCHR(null.stat().st_mode)
    assert files(tmp_path) == {"null"}


@needs_root
def test_dev_full_reports_enospc_and_writes_nothing(cli, tmp_path: Path) -> None:
    full = mknod_char(tmp_path / "full", 1, 7)
    rc, out, err = cli(TINY, "--report-json", str(full), "--report-jsonl", "r.jsonl")
    assert rc == 2
    assert one_error(err) == f"{full}: No space left on device"
    assert stat.S_ISCHR(full.stat().st_mode)
    assert files(tmp_path) == {"full"}  # the other output is not left behind either


def test_a_symlink_to_stdout_is_written_through(tmp_path: Path) -> None:
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    p = sub(TINY, "--report-jsonl", str(link), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    records = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert len(records) == 16 and all("uuid" in r for r in records)


def test_dev_stdout_redirected_to_a_file_keeps_the_table(tmp_path: Path) -> None:
    # stdout is a regular file here: the records are appended through our own descriptor,
    # not written over the table from offset 0, and the file is not replaced.
    # (A link to /dev/stdout, so that a regression could only ever replace the link.)
    out = tmp_path / "out.txt"
    link = tmp_path / "so"
    link.symlink_to("/dev/stdout")
    with open(out, "w") as fh:
        p = subprocess.run([sys.executable, "-m", "dynosim.cli", TINY, "--report-json",
                            str(link)], cwd=tmp_path, stdout=fh, stderr=subprocess.PIPE,
                           text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert text.index("NVIDIA AIPerf") < text.index('"mean_ttft_ms"')
    assert f"Saved full report to: {link}" in text
    start = text.index("{\n")
    assert json.loads(text[start:text.index("\n}\n", start) + 2])["completed_requests"] == 16
    assert sorted(os.listdir(tmp_path)) == ["out.txt", "so"] and link.is_symlink()


def test_a_fifo_is_streamed(cli, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    rc, out, err = cli(TINY, "--report-json", str(fifo))
    reader.join(30)
    assert rc == 0, err
    assert json.loads(got[0])["completed_requests"] == 16
    assert stat.S_ISFIFO(fifo.stat().st_mode)


# ---- 2. output problems are found before the run, as one line -----------------------------------

@pytest.mark.parametrize("setup, argv, reason", [
    (lambda d: (d / "taken").write_text("x"), ["--export", "taken"],
     "taken: exists and is not a directory (--export takes a folder)"),
    (lambda d: (d / "f").write_text("x"), ["--report-json", "f/r.json"],
     "f/r.json: {d}/f is not a directory"),
    (lambda d: (d / "f").write_text("x"), ["--export", "f/sub"],
     "f/sub: {d}/f is not a directory"),
    (lambda d: (d / "adir").mkdir(), ["--report-json", "adir"], "adir: is a directory"),
    (lambda d: (d / "out" / "report.json").mkdir(parents=True), ["--export", "out"],
     "out/report.json: is a directory"),
    (lambda d: None, ["--report-json", "r.json", "--report-jsonl", "r.json"],
     "r.json: is the output of both --report-json and --report-jsonl; give each its own path"),
    (lambda d: None, ["--report-json", "out/report.json", "--export", "out"],
     "out/report.json: is the output of both --report-json and --export (report.json); give "
     "each its own path"),
    (lambda d: None, ["--report-json", "x" * 300 + ".json"],
     "x" * 300 + ".json: File name too long (305 bytes, the file system allows 255)"),
    (lambda d: None, ["--export", "y" * 300],
     "y" * 300 + ": File name too long (300 bytes, the file system allows 255)"),
    (lambda d: (d / "out").mkdir() or (d / "out" / "notes.txt").write_text("mine"),
     ["--export", "out"], "out: the folder holds files that are not from a dynosim export "
     "(notes.txt); give a new or empty folder"),
    (lambda d: None, ["--report-json", ""], "--report-json: the path is empty"),
], ids=["export-is-a-file", "parent-is-a-file", "export-parent-is-a-file", "target-is-a-dir",
        "export-file-is-a-dir", "same-path-twice", "same-as-an-export-file", "name-too-long",
        "export-name-too-long", "foreign-export-folder", "empty-path"])
def test_bad_output_locations(cli, tmp_path: Path, no_run: list[int], setup: Any,
                              argv: list[str], reason: str) -> None:
    setup(tmp_path)
    before = files(tmp_path)
    rc, out, err = cli(TINY, *argv)
    assert rc == 2
    assert one_error(err) == reason.format(d=tmp_path)
    assert no_run == []  # found before a single engine step
    assert files(tmp_path) == before and out == ""


@needs_root
def test_a_socket_or_a_disk_is_refused(cli, tmp_path: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "sock"))
    try:
        rc, _, err = cli(TINY, "--report-json", "sock")
        assert rc == 2 and one_error(err) == "sock: is a socket, not a file"
    finally:
        s.close()
    os.mknod(tmp_path / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 200))  # a loop device
    rc, _, err = cli(TINY, "--report-jsonl", "disk")
    assert rc == 2
    assert one_error(err) == "disk: is a block device (a disk); refusing to write a report onto it"


def test_an_output_may_not_overwrite_an_input(cli, tmp_path: Path, no_run: list[int]) -> None:
    trace = tmp_path / "t.jsonl"
    shutil.copy(TINY, trace)
    args = tmp_path / "args.json"
    args.write_text('{"engine": {"num_gpu_blocks": 4096}}')
    before = trace.read_bytes()
    rc, _, err = cli(str(trace), "--report-jsonl", "t.jsonl")
    assert rc == 2
    assert one_error(err) == "t.jsonl: is the input trace of this run; choose another output path"
    rc, _, err = cli(str(trace), "--extra-engine-args", "args.json", "--report-json", "args.json")
    assert rc == 2 and "is the --extra-engine-args file of this run" in err
    assert trace.read_bytes() == before and no_run == []


def test_planner_report_dir_that_is_a_file_writes_nothing(cli, tmp_path: Path,
                                                          no_run: list[int]) -> None:
    (tmp_path / "blocker").write_text("x")
    cfg = {**PLANNER, "report_output_dir": "blocker", "report_filename": "p.html"}
    rc, out, err = cli(TINY, "--planner-config", json.dumps(cfg), "--report-json", "r.json")
    assert rc == 2
    assert one_error(err) == f"blocker/p.html: {tmp_path}/blocker is not a directory"
    assert files(tmp_path) == {"blocker"} and no_run == []  # not even r.json


def test_planner_outputs_join_the_same_all_or_nothing_set(cli, tmp_path: Path) -> None:
    cfg = {**PLANNER, "report_output_dir": "pr", "report_filename": "p.html"}
    rc, out, err = cli(TINY, "--planner-config", json.dumps(cfg), "--report-json", "r.json",
                       "--export", "out")
    assert rc == 0, err
    assert {"pr/p.html", "pr/p.log.jsonl.gz", "r.json", "out/planner.log.jsonl.gz"} <= files(tmp_path)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert len(set(modes.values())) == 1, modes  # the planner log is not private (0600)
    assert (tmp_path / "pr" / "p.log.jsonl.gz").stat().st_mode & 0o777 == modes["report.json"]


def test_read_only_file_system(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    p = sub(TINY, "--export", str(ro / "out"), cwd=tmp_path, wrap=in_tmpfs(ro, "ro,size=1m"))
    assert p.returncode == 2, p.stderr
    assert one_error(p.stderr) == f"{ro}/out: Read-only file system ({ro})"
    assert p.stdout == ""


def test_disk_full_while_writing_leaves_nothing(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    # 64 KiB: room for report.json, not for the 4.8 MB HTML report
    script = f'mount -t tmpfs -o size=64k tmpfs "{small}" && "$@"; rc=$?; ls -A "{small}"; exit $rc'
    in_tmpfs(small, "size=64k")  # skips where mounts are unavailable
    wrap = ["unshare", "-m", "sh", "-c", script, "sh"]
    p = sub(TINY, "--export", str(small / "out"), cwd=tmp_path, wrap=wrap)
    assert p.returncode == 2, p.stderr
    assert one_error(p.stderr).endswith(": No space left on device")
    listing = [ln for ln in p.stdout.splitlines() if not ln.startswith(("NVIDIA", "┏", "┃", "┡",
                                                                       "└", "Wall", "Prefix",
                                                                       "First"))]
    assert listing == []  # the folder it created and every staged file are gone


def test_permission_denied_before_the_run(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        p = sub(TINY, "--report-json", str(locked / "r.json"), cwd=tmp_path, wrap=without_caps())
        assert p.returncode == 2, p.stderr
        assert one_error(p.stderr) == (f"{locked}/r.json: Permission denied: cannot write in "
                                       f"{locked}")
        # the default report name in an unwritable current folder
        p = sub(TINY, cwd=locked, wrap=without_caps())
        assert p.returncode == 2, p.stderr
        msg = one_error(p.stderr)
        assert msg.startswith("dynosim_replay_report_") and msg.endswith(
            f": Permission denied: cannot write in {locked}")
        assert os.listdir(locked) == [] and p.stdout == ""
    finally:
        locked.chmod(0o755)


def test_os_error_during_the_write_is_one_line(cli, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def eio(fh: Any, frame: Any) -> int:
        raise OSError(5, "Input/output error")

    import dynosim.outputs.files as files_mod
    monkeypatch.setattr(files_mod, "dump_ndjson", eio)
    rc, _, err = cli(TINY, "--report-json", "r.json", "--report-jsonl", "r.jsonl")
    assert rc == 2
    assert one_error(err) == "r.jsonl: Input/output error"
    assert files(tmp_path) == set()


# ---- 4. requests that can never be served are reported --------------------------------------------

@pytest.mark.parametrize("engine, reason", [
    ({"num_gpu_blocks": 1}, "the prompt needs more KV cache than a worker has (num_gpu_blocks 1 "
                            "x block_size 64 = 64 tokens)"),
    ({"max_model_len": 1}, "the prompt is not shorter than max_model_len (1 tokens)"),
])
def test_every_request_rejected(cli, tmp_path: Path, engine: dict[str, int], reason: str) -> None:
    rc, out, err = cli(TINY, "--extra-engine-args", json.dumps({"engine": engine}),
                       "--report-json", "r.json")
    assert rc == 1  # documented: nothing was served
    warnings = err.splitlines()
    assert warnings[0] == (f"dynosim-tui: warning: 16 request(s) rejected: {reason} ({TINY} "
                           "lines 1, 2, 3, 4, 5 and 11 more); the report counts them as rejected")
    assert "every request (16) was rejected" in warnings[-1]
    assert "Rejected Count (requests)" in out and "16.00" in out
    assert json.loads((tmp_path / "r.json").read_text())["dynosim"]["rejected_requests"] == 16


def test_some_requests_rejected_names_their_lines(cli, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    rows = [LINE % (i * 100, 100, 10, f"[{i}]") for i in range(6)]
    rows[3] = LINE % (300, 5000, 10, json.dumps(list(range(100, 110))))
    trace.write_text("\n".join(rows[:2]) + "\n\n" + "\n".join(rows[2:]) + "\n")  # a blank line 3
    rc, out, err = cli(str(trace), "--extra-engine-args", '{"engine": {"num_gpu_blocks": 10}}',
                       "--report-json", "r.json")
    assert rc == 0, err
    assert err == (f"dynosim-tui: warning: 1 request(s) rejected: the prompt needs more KV cache "
                   f"than a worker has (num_gpu_blocks 10 x block_size 64 = 640 tokens) ({trace} "
                   "line 5); the report counts them as rejected\n")
    assert "Rejected Count (requests)" in out


def test_output_length_bound_and_warning(cli, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(LINE % (0, 10, 5, "[1]") + "\n" + LINE % (1, 10, 2**31, "[2]") + "\n")
    rc, _, err = cli(str(trace))
    assert rc == 2
    assert one_error(err) == (f"{trace}:2: field 'output_length': must be at most 2147483647 "
                              "tokens, got 2147483648")
    trace.write_text(LINE % (0, 10, 5, "[1]") + "\n" + LINE % (1, 10, 2_000_000, "[2]") + "\n")
    rc, _, err = cli(str(trace), "--max-sim-time-seconds", "0.001", "--report-json", "r.json")
    assert rc == 0
    assert (f"dynosim-tui: warning: {trace}:2: field 'output_length': 1 request(s) ask for more "
            "than 1,000,000 output tokens (up to 2,000,000)") in err


# ---- 3 (input side). memory refused up front ------------------------------------------------------

def test_impossible_request_count_is_refused_at_once(cli, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    rc, _, err = cli("--input-tokens", "10", "--output-tokens", "10", "--request-count",
                     str(10**10), "--request-rate", "1")
    assert rc == 2 and time.perf_counter() - t0 < 30
    msg = one_error(err)
    assert msg.startswith("--request-count: 10000000000 requests need about ")
    assert "of memory in all; this machine has " in msg


def test_too_many_workers_for_the_memory_left(cli, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import dynosim.inputs.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 200 * 2**20)  # a 200 MB machine
    rc, _, err = cli(TINY, "--num-workers", "100000")
    assert rc == 2
    assert one_error(err).startswith("--num-workers: 100000 workers need about ")
    rc, _, err = cli(TINY, "--num-workers", "4", "--report-json", "r.json")
    assert rc == 0, err  # an ordinary run fits


# ---- 5. signals and pipes ----------------------------------------------------------------------------

def test_sigterm_while_writing_cleans_up(cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import dynosim.outputs.files as files_mod

    real = files_mod.dump_ndjson

    def term_midway(fh: Any, frame: Any) -> int:
        fh.write(b'{"half": ')
        os.kill(os.getpid(), signal.SIGTERM)  # as `timeout`, Slurm or Kubernetes would
        return real(fh, frame)

    monkeypatch.setattr(files_mod, "dump_ndjson", term_midway)
    rc, _, err = cli(TINY, "--report-json", "r.json", "--export", "out")
    assert rc == 143
    assert err.splitlines()[-1] == "dynosim-tui: terminated (SIGTERM); no report written"
    assert files(tmp_path) == set()  # no staged file, no half folder


@pytest.mark.slow
def test_sigterm_during_a_real_run(tmp_path: Path) -> None:
    proc = subprocess.Popen(  # a run of minutes, stopped after 3 s
        [sys.executable, "-m", "dynosim.cli", "--input-tokens", "200", "--output-tokens", "4000",
         "--request-count", "20000", "--request-rate", "50", "--export", "out"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "dynosim-tui: terminated (SIGTERM); no report written"
    assert os.listdir(tmp_path) == []


def test_leftovers_of_crashed_runs_are_removed(cli, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    dead = tmp_path / "out" / ".report.json.dynosim-999999999-1.tmp"  # no such pid
    dead.write_text("half")
    alive = tmp_path / "out" / f".report.json.dynosim-{os.getppid()}-1.tmp"
    alive.write_text("someone else's, in progress")
    old = time.time() - 3600
    os.utime(dead, (old, old))
    os.utime(alive, (old, old))
    rc, _, err = cli(TINY, "--export", "out")
    assert rc == 0, err
    names = set(os.listdir(tmp_path / "out"))
    assert dead.name not in names and alive.name in names


def test_broken_pipe_is_quiet_and_files_are_written(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dynosim.cli", TINY, "--report-json",
                             "r.json"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert first.startswith(b"NVIDIA AIPerf")
    assert err == "" and proc.returncode == 0
    assert json.loads((tmp_path / "r.json").read_text())["completed_requests"] == 16


def test_broken_pipe_on_a_streamed_report(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dynosim.cli", TINY, "--report-jsonl",
                             "/dev/stdout", "--report-json", "r.json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert "Traceback" not in err and proc.returncode == 0, err
    assert (tmp_path / "r.json").is_file()


def test_sigint_during_start_up(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dynosim.cli", TINY], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until the heavy libraries are being loaded, then interrupt.
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
        except OSError:
            break
        if "numpy" in maps or "polars" in maps:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "dynosim-tui: interrupted; no report written"
    assert os.listdir(tmp_path) == []


# ---- 6. the smaller ones -------------------------------------------------------------------------

def test_default_report_names_are_unique(cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import dynosim.outputs.plan as plan_mod

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "Frozen":
            return cls(2026, 12, 3, 10, 0, 0)

    monkeypatch.setattr(plan_mod._dt, "datetime", Frozen)
    outs = [cli(TINY)[1] for _ in range(3)]
    assert sorted(os.listdir(tmp_path)) == [
        "dynosim_replay_report_20261203_100000-2.json",
        "dynosim_replay_report_20261203_100000-3.json",
        "dynosim_replay_report_20261203_100000.json"]
    assert "Saved full report to: dynosim_replay_report_20261203_100000-3.json" in outs[2]


def test_default_name_taken_between_plan_and_commit(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    with writers_mod.StagedFiles() as staged:
        with staged.open(target, exclusive=True) as fh:
            fh.write(b"new")
        target.write_text("another run got here first")
        assert staged.commit() == [str(tmp_path / "r-2.json")]
    assert target.read_text() == "another run got here first"
    assert (tmp_path / "r-2.json").read_text() == "new"


def test_report_jsonl_alone_writes_no_default_json(cli, tmp_path: Path) -> None:
    rc, out, err = cli(TINY, "--report-jsonl", "r.jsonl")
    assert rc == 0, err
    assert os.listdir(tmp_path) == ["r.jsonl"] and "Saved full report" not in out


def test_an_export_folder_holds_one_run(cli, tmp_path: Path) -> None:
    cfg = {**PLANNER, "report_output_dir": "pr"}
    rc, _, err = cli(TINY, "--planner-config", json.dumps(cfg), "--export", "out")
    assert rc == 0, err
    assert (tmp_path / "out" / "planner.log.jsonl.gz").exists()
    rc, _, err = cli(TINY, "--export", "out")  # again, without the planner
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == [
        "report.html", "report.json", "requests.jsonl", "requests.parquet", "summary.txt",
        "worker_samples.parquet"]


def test_compressed_trace_is_read(cli, tmp_path: Path) -> None:
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(Path(TINY).read_bytes()))
    rc, _, err = cli(str(gz), "--report-json", "a.json")
    assert rc == 0, err
    rc, _, err = cli(TINY, "--report-json", "b.json")
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["completed_requests"] == 16 and a["mean_ttft_ms"] == b["mean_ttft_ms"]


def test_binary_file_is_named_as_such(cli, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_bytes(b'{"timestamp": 0}\n\x7fELF\x02\x01\x01\x00\x00\x00')
    rc, _, err = cli("x.jsonl")
    assert rc == 2
    assert one_error(err) == ("x.jsonl:2: is a binary file (a NUL byte at offset 24), not a "
                              "JSONL trace")


SYNTH = ["--input-tokens", "10", "--output-tokens", "5", "--request-count", "3"]


@pytest.mark.parametrize("argv, message", [
    (SYNTH + ["--request-rate", "nan"], "--request-rate: must be a finite number > 0, got nan"),
    (SYNTH + ["--request-rate", "inf"], "--request-rate: must be a finite number > 0, got inf"),
    (SYNTH + ["--request-rate", "-1"], "--request-rate: must be a finite number > 0, got -1.0"),
    (SYNTH + ["--request-rate", "1", "--inter-turn-delay-ms", "-5"],
     "--inter-turn-delay-ms: must be a finite number >= 0, got -5.0"),
    (SYNTH + ["--request-rate", "1", "--turns-per-session", "0"],
     "--turns-per-session: must be an integer >= 1, got 0"),
    (SYNTH + ["--request-rate", "1", "--arrival-seed", "-1"],
     "--arrival-seed: must be a non-negative integer, got -1"),
    ([TINY, "--seed", "-1"], "--seed: must be a non-negative integer, got -1"),
    ([TINY, "--sla-ttft-ms", "inf"], "--sla-ttft-ms: must be a finite number > 0, got inf"),
    ([TINY, "--trace-block-size", "0"], "--trace-block-size: must be an integer >= 1, got 0"),
])
def test_flag_errors_name_the_flag(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    rc, _, err = cli(*argv)
    assert rc == 2
    assert one_error(err) == message
    assert os.listdir(tmp_path) == []
