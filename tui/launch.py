"""The live view of a built replay: `dynosim.cli` builds it (so bad input fails the same way as
a headless run, before the screen opens) and hands it here."""
from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any, Sequence

from dynosim.replay import Replay

if TYPE_CHECKING:
    from dynosim.sweep.cli import LiveSweep


def run_tui(replay: Replay, *, report_json: str | None = None,
            report_jsonl: str | None = None,
            inputs: Sequence[tuple[str, str | None]] = ()) -> int:
    """Run the app on `replay`; its exports also write --report-json/--report-jsonl (and
    never overwrite one of the run's `inputs`). SIGTERM closes the app, exit status 143."""
    # Imported here: the headless path never pays for Textual.
    from tui.app import DynosimApp
    from tui.main_screen import ExportSettings

    app = DynosimApp(replay, warnings=tuple(replay.warnings()),
                     export=ExportSettings(report_json=report_json, report_jsonl=report_jsonl,
                                           inputs=tuple(inputs)))
    terminated: list[bool] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        # Let Textual restore the terminal: ask the app to leave instead of raising here.
        terminated.append(True)
        app.exit(return_code=143)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        app.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        print("dynosim-tui: terminated (SIGTERM); exports already written are complete, "
              "nothing else was written", file=sys.stderr)
        return 143
    # Textual restores the terminal and prints the traceback of a crash itself.
    if app.return_code:
        print("dynosim-tui: error: the live view stopped on an internal error (above); "
              "no report was written", file=sys.stderr)
        return app.return_code
    return 0


def run_sweep_tui(job: LiveSweep) -> int:
    """The live sweep screen for `dynosim-tui sweep` in a terminal. Leaves the ranked table on
    the terminal afterwards, as the headless sweep prints it. Exit status as headless: 0 done,
    1 some points failed, 130 stopped early (q, Ctrl-C; 143 SIGTERM; what finished is saved)."""
    import dataclasses
    from multiprocessing import resource_tracker

    from dynosim.sweep.table import format_summary
    from tui.sweep_app import SweepApp

    # Before Textual takes the terminal: the executor (Ray starts or joins its cluster here, on
    # the main thread, and a missing extra fails before the screen opens), and multiprocessing's
    # resource tracker, which hands its children this process's real stderr.
    try:
        executor = job.make_executor()
    except RuntimeError as exc:
        print(f"dynosim-tui sweep: error: {exc}", file=sys.stderr)
        return 2
    resource_tracker.ensure_running()
    app = SweepApp(dataclasses.replace(job, make_executor=lambda: executor))

    terminated: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        app.sweep_screen.action_quit()  # stops the sweep; the app leaves once it has

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        app.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        screen = app.sweep_screen
        if screen.sweep_started:  # the app crashed mid-sweep: stop the sweep cleanly
            screen.control.stop()
            screen.sweep_ended.wait()
    if app.return_code:
        print("dynosim-tui sweep: error: the live view stopped on an internal error (above); "
              "finished points are saved, rerun the same command to resume", file=sys.stderr)
        return app.return_code
    res = screen.state.result
    if res is None:
        print("dynosim-tui sweep: error: the sweep stopped before writing its tables"
              + (f": {screen.html_error}" if screen.html_error else ""), file=sys.stderr)
        return 1
    print(format_summary(res, 25))
    print("results: " + ", ".join(res.files + ([screen.html_path] if screen.html_path else [])))
    if res.interrupted:
        what = "terminated (SIGTERM)" if terminated else "stopped"
        print(f"dynosim-tui sweep: {what}: {res.ran} point(s) finished in this run are "
              "saved; rerun the same command to resume", file=sys.stderr)
        return 143 if terminated else 130
    return 1 if res.failed else 0
