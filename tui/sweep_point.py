"""A finished sweep point in the normal replay view: re-simulated from its options by the same
factory (`build_replay`), so it is the run the sweep measured, with its planner panel and the
d / space / n keys. Esc (or q) goes back to the sweep."""
from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from dynosim.inputs.errors import InputError
from dynosim.replay import build_replay
from dynosim.sweep.cli import LiveSweep
from dynosim.sweep.runner import point_at
from tui.runner import PacedRunner
from tui.main_screen import ExportSettings, MainScreen
from tui.pacing import PaceClock


class PointScreen(MainScreen):
    """MainScreen on one sweep point; leaving returns to the sweep instead of quitting."""

    BINDINGS = [Binding("escape", "back", "Back", priority=True)]

    def __init__(self, title: str, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.point_title = title

    def on_mount(self) -> None:
        # Textual calls every class's on_mount along the MRO: MainScreen's runs on its own
        # (calling it here too started the engine loop twice, the first never awaited).
        self.notify(f"{self.point_title}: Esc goes back to the sweep.", timeout=6)

    def action_back(self) -> None:
        if self._exporting:  # the export's files land first (written atomically)
            self.notify("Writing the export; Esc again once it is done.")
            return
        self.app.pop_screen()

    def action_quit(self) -> None:
        self.action_back()


def open_point(app: App[None], job: LiveSweep, index: int) -> None:
    try:
        point = job.points[index] if job.points is not None else point_at(job.spec, index)
        replay = build_replay(point.options)
    except InputError as exc:  # e.g. the trace was moved since the sweep ran
        app.notify(f"Point #{index} cannot be rebuilt: {exc}", severity="error", timeout=10)
        return
    vals = ", ".join(f"{k}={v}" for k, v in point.values.items())
    driver = PacedRunner(replay, PaceClock(speed=1.0))
    app.push_screen(PointScreen(f"Point #{index} ({vals})", driver,
                                ExportSettings(base_dir=job.out), tuple(replay.warnings()),
                                autoplay=True))
