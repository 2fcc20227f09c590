"""The planner panel: the log of scaling events and, for the selected one, why it was taken.
Mounted only when the replay has a planner in the loop (see planner_view)."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.planner_view import PlannerView
from tui.status_bar import fmt_clock


class PlannerPanel(Vertical):
    DEFAULT_CSS = """
    PlannerPanel { width: 44; }
    PlannerPanel > DataTable { height: 1fr; }
    PlannerPanel > #why { height: auto; min-height: 3; max-height: 50%; padding: 0 1; }
    """

    def __init__(self, planner: PlannerView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.planner = planner
        self._shown = 0

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(cursor_type="row", id="events")
        table.add_columns("time", "component", "from→to", "reason")
        yield table
        yield Static(id="why")

    def on_mount(self) -> None:
        self.border_title = "Planner"

    def update_events(self) -> None:
        events = self.planner.scale_events
        table = self.query_one("#events", DataTable)
        for ev in events[self._shown:]:
            table.add_row(fmt_clock(ev.t_ms), ev.component, f"{ev.from_count}→{ev.to_count}",
                          ev.reason)
        self._shown = len(events)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.query_one("#why", Static).update(Text(self.planner.explain(event.cursor_row)))
