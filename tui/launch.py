"""The live view of a built replay: `dynosim.cli` builds it (so bad input fails the same way as
a headless run, before the screen opens) and hands it here."""
from __future__ import annotations

import signal
import sys
from typing import Any, Sequence

from dynosim.replay import Replay


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
