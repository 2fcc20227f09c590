"""Scripted smoke test in a real terminal: tmux runs `dynosim-tui` on the bundled trace, we
press keys and read the captured screen. Skipped when tmux is not installed."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import dynosim
import tui
from helpers import TINY

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (needed to drive a real terminal)")
CRASH = ("import sys; import tui.driver as d\n"
         "def boom(self, budget_s): raise RuntimeError('injected crash for the smoke test')\n"
         "d.EngineDriver.tick = boom\n"
         "from dynosim.cli import main; sys.exit(main(sys.argv[1:]))")


class Term:
    def __init__(self, name: str) -> None:
        self.name = name

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], check=True, capture_output=True,
                              text=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.tmux("send-keys", "-t", self.name, k)
            time.sleep(0.15)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text in shown:
                return shown
            if time.monotonic() > end:
                raise AssertionError(f"{text!r} never appeared; screen:\n{shown}")
            time.sleep(0.1)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Term]:
    t = Term(f"dynosim-smoke-{uuid.uuid4().hex[:8]}")
    yield t
    subprocess.run(["tmux", "kill-session", "-t", t.name], capture_output=True)


def start(term: Term, cwd: Path, python_args: str) -> None:
    # The packages under test, wherever they are imported from (installed or source tree).
    path = os.pathsep.join({str(Path(dynosim.__file__).parent.parent),
                            str(Path(tui.__file__).parent.parent)})
    cmd = (f"cd {shlex.quote(str(cwd))} && PYTHONPATH={shlex.quote(path)} "
           f"{shlex.quote(sys.executable)} {python_args}; echo EXIT=$?; sleep 30")
    for attempt in range(3):
        try:
            term.tmux("new-session", "-d", "-s", term.name, "-x", "100", "-y", "30",
                      "-e", "TERM=xterm-256color", cmd)
            return
        except subprocess.CalledProcessError as exc:
            # the previous test's kill-session can leave the tmux server exiting just as this
            # one connects ("server exited unexpectedly"): try again once it has gone
            if attempt == 2 or "server exited" not in (exc.stderr or ""):
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_keys_on_the_bundled_trace(term: Term, tmp_path: Path) -> None:
    start(term, tmp_path, f"-m dynosim.cli {shlex.quote(TINY)} --num-workers 2")
    term.wait_for("RUNNING")
    assert "Workers" in term.screen() and "TTFT" in term.screen()
    term.keys("Space")
    term.wait_for("PAUSED")
    term.keys("n", "+")
    term.wait_for(" 10x ")
    term.keys("?")
    term.wait_for("dynosim-tui keys")
    term.keys("Escape", "d")
    term.wait_for("No planner")
    term.keys("m", "Space")
    shown = term.wait_for("Replay finished")
    assert "16 of 16 requests completed" in shown
    term.keys("e")
    term.wait_for("Exported the report to")
    [out] = [p for p in tmp_path.iterdir() if p.name.startswith("dynosim_export_")]
    assert {p.name for p in out.iterdir()} == {"report.json", "requests.jsonl",
                                               "requests.parquet", "summary.txt",
                                               "report.html", "worker_samples.parquet"}
    term.keys("q")
    term.wait_for("EXIT=0")


def test_quit_asks_then_leaves_a_clean_terminal(term: Term, tmp_path: Path) -> None:
    start(term, tmp_path, f"-m dynosim.cli {shlex.quote(TINY)}")
    term.wait_for("RUNNING")
    term.keys("q")
    term.wait_for("unfinished")
    term.keys("y")
    shown = term.wait_for("EXIT=0")
    assert "RUNNING" not in shown  # back on the normal screen


def test_input_error_is_reported_before_the_app_opens(term: Term, tmp_path: Path) -> None:
    start(term, tmp_path, "-m dynosim.cli missing.jsonl")
    shown = term.wait_for("EXIT=2")
    assert "dynosim-tui: error: " in shown and "missing.jsonl" in shown


def test_a_crash_restores_the_terminal_and_prints_the_error(term: Term, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    start(term, tmp_path, f"{shlex.quote(str(script))} {shlex.quote(TINY)}")
    shown = term.wait_for("EXIT=1")
    assert "injected crash for the smoke test" in shown
    assert "the live view stopped on an internal error" in shown


SWEEP_SPEC = """name: smoke
base: {trace: TRACE}
axes: {num_workers: [1, 2, 3, 4]}
constraints: {p90_ttft_ms: 1500}
"""


@pytest.mark.slow
def test_sweep_screen_as_a_user_drives_it(term: Term, tmp_path: Path) -> None:
    # The live sweep in a real terminal: points land, Enter replays one, Esc comes back,
    # q leaves the ranked table on the terminal; the results are on disk.
    (tmp_path / "spec.yaml").write_text(SWEEP_SPEC.replace("TRACE", TINY))
    start(term, tmp_path, "-m dynosim.cli sweep spec.yaml --out out --jobs 2")
    shown = term.wait_for("FINISHED", timeout=90)
    assert "4/4 finished · 2 infeasible" in shown and "infeasible: p90_ttft_ms" in shown
    assert "Metrics vs num_workers" in shown
    term.keys("Down", "Down", "Enter")
    term.wait_for("RUNNING")  # the replay view of point #2
    term.keys("Escape")
    term.wait_for("FINISHED")
    term.keys("f")
    term.wait_for("frontier only")
    term.keys("q")
    shown = term.wait_for("EXIT=0")
    assert "best feasible point: #3" in shown and "reproduce: dynosim-tui" in shown
    assert (tmp_path / "out" / "results.csv").exists()
    assert (tmp_path / "out" / "sweep.html").exists()

