"""The Textual app: a thin shell around `MainScreen`, which owns the run."""
from __future__ import annotations

from textual.app import App
from textual.screen import Screen

from dynosim.replay import Replay
from tui.runner import PacedRunner
from tui.main_screen import ExportSettings, MainScreen
from tui.pacing import PaceClock

class DynosimApp(App[None]):
    CSS_PATH = "app.tcss"  # installed beside this module (package data)
    TITLE = "dynosim-tui"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, replay: Replay, *, speed: float = 1.0, paused: bool = False,
                 export: ExportSettings | None = None, warnings: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.driver = PacedRunner(replay, PaceClock(speed=speed))
        self._start_paused = paused
        self._export = export or ExportSettings()
        self._warnings = warnings

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(self.driver, self._export, self._warnings,
                          autoplay=not self._start_paused)

    @property
    def main_screen(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen
