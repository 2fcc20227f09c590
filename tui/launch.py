"""`dynosim-tui TRACE ...` without --export/--headless: the replay is built exactly as the
headless run builds it (so bad input fails the same way, before the screen opens), then the
live view runs it."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Sequence

from dynosim.replay import Replay


def plan_tui(args: argparse.Namespace, inputs: Sequence[tuple[str, str | None]]) -> None:
    """The output check of a live run, before anything is built (OutputError propagates)."""
    from tui.export import check_tui_outputs

    check_tui_outputs(args.report_json, args.report_jsonl, inputs)


def run_tui(args: argparse.Namespace, replay: Replay,
            inputs: Sequence[tuple[str, str | None]] = ()) -> int:
    # Imported here: the headless path never pays for Textual.
    from tui.app import DynosimApp
    from tui.main_screen import ExportSettings

    app = DynosimApp(replay, warnings=tuple(replay.warnings()),
                     export=ExportSettings(report_json=args.report_json,
                                           report_jsonl=args.report_jsonl,
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
