"""The Textual app of `dynosim-tui sweep`: the sweep screen, and point replays pushed on it."""
from __future__ import annotations

import time
from typing import Callable

from textual.app import App
from textual.screen import Screen

from dynosim.sweep.cli import LiveSweep
from tui.sweep_screen import SweepScreen


class SweepApp(App[None]):
    CSS_PATH = "app.tcss"  # the replay view's look (points open in it)
    TITLE = "dynosim-tui sweep"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, job: LiveSweep, *, clock: Callable[[], float] = time.monotonic,
                 start_paused: bool = False) -> None:
        super().__init__()
        self.job = job
        # held here: the launcher reads the outcome after the app has closed its screens
        self.sweep_screen = SweepScreen(job, clock=clock, start_paused=start_paused)

    def get_default_screen(self) -> Screen[None]:
        return self.sweep_screen
