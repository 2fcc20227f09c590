"""The live view of a built replay: `dynosim.cli` builds it (so bad input fails the same way as
a headless run, before the screen opens) and hands it here."""
from __future__ import annotations

import sys

from dynosim.replay import Replay


def run_tui(replay: Replay, *, report_json: str | None = None,
            report_jsonl: str | None = None) -> int:
    """Run the app on `replay`; its exports also write --report-json/--report-jsonl."""
    # Imported here: the headless path never pays for Textual.
    from tui.app import DynosimApp
    from tui.main_screen import ExportSettings

    app = DynosimApp(replay, warnings=tuple(replay.warnings()),
                     export=ExportSettings(report_json=report_json, report_jsonl=report_jsonl))
    app.run()
    # Textual restores the terminal and prints the traceback of a crash itself.
    if app.return_code:
        print("dynosim-tui: error: the live view stopped on an internal error (above); "
              "no report was written", file=sys.stderr)
        return app.return_code
    return 0
