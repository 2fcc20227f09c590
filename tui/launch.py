"""`dynosim-tui TRACE ...` without --export/--headless: build the replay exactly as the headless
run does (so bad input fails the same way, before the screen opens), then run the live view."""
from __future__ import annotations

import argparse
import sys

from dynosim.replay import build_replay


def run_tui(args: argparse.Namespace) -> int:
    # Imported here: the headless path never pays for Textual.
    from dynosim.cli import options_from_args
    from tui.app import DynosimApp
    from tui.main_screen import ExportSettings

    replay = build_replay(options_from_args(args))  # InputError propagates to cli.main
    app = DynosimApp(replay, warnings=tuple(replay.warnings()),
                     export=ExportSettings(report_json=args.report_json,
                                           report_jsonl=args.report_jsonl))
    app.run()
    # Textual restores the terminal and prints the traceback of a crash itself.
    if app.return_code:
        print("dynosim-tui: error: the live view stopped on an internal error (above); "
              "no report was written", file=sys.stderr)
        return app.return_code
    return 0
