"""Modal screens: the key help (`?`), quit confirmation, and the end-of-trace export offer."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_ROWS = (
    ("space", "pause / resume"),
    ("n", "step one engine instant (pauses)"),
    ("d", "run to the next planner decision and pause"),
    ("+ / -", "faster / slower (1x, 10x, 100x, ..., max)"),
    ("r", "real time (1x)"),
    ("m", "max speed"),
    ("e", "export the report of the run so far"),
    ("↑ ↓ PgUp PgDn", "scroll the worker table"),
    ("?", "this help"),
    ("q", "quit (asks while the run is unfinished)"),
)

DIALOG_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: auto; max-width: 90%; height: auto; padding: 1 2;
    border: thick $accent; background: $surface;
}}
{name} > Vertical > Static {{ width: auto; }}
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="HelpScreen")
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in HELP_ROWS:
            table.add_row(key, what)
        with Vertical():
            yield Static(Text("dynosim-tui keys", style="bold"))
            yield Static(table)
            yield Static(Text("\nPlots: p50 (green) and p90 (yellow) over a sliding window\n"
                              "of simulated time. Esc closes this help.", style="dim"))


class ConfirmQuit(ModalScreen[bool]):
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmQuit")
    BINDINGS = [Binding("y,q", "answer(True)", "Quit"), Binding("n,escape", "answer(False)",
                                                                  "Stay")]

    def __init__(self, progress_pct: float) -> None:
        super().__init__()
        self.progress_pct = progress_pct

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text.assemble(
                ("The replay is unfinished ", "bold"), (f"({self.progress_pct:.1f}% done).\n"),
                "Quit without its report?  ", ("y", "bold cyan"), " quit  ",
                ("n", "bold cyan"), " stay"))

    def action_answer(self, quit_: bool) -> None:
        self.dismiss(quit_)


class FinishedDialog(ModalScreen[str]):
    """Offered once when the trace is done: dismissed with "export", "quit" or "close"."""

    DEFAULT_CSS = DIALOG_CSS.format(name="FinishedDialog")
    BINDINGS = [Binding("e,enter", "answer('export')", "Export"),
                Binding("q", "answer('quit')", "Quit"),
                Binding("escape,c", "answer('close')", "Close")]

    def __init__(self, summary: Text) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Replay finished", style="bold green"))
            yield Static(self.summary)
            yield Static(Text.assemble("\n", ("e", "bold cyan"), " export the report  ",
                                       ("esc", "bold cyan"), " close  ", ("q", "bold cyan"),
                                       " quit"))

    def action_answer(self, choice: str) -> None:
        self.dismiss(choice)
