"""The live sweep view: a header (counts, elapsed, ETA), the table of points with their status
and key metrics (★ = Pareto frontier), the chart beside it, and the keys that steer the sweep.

The sweep runs in a worker thread (`run_sweep` with this screen's observer and control): the
observer only queues events (and assembles the ranked rows off the UI thread); a timer folds
them into a `SweepState` and redraws a few times a second. Enter on a finished point opens
it in the normal replay view, re-simulated from its options by the same factory."""
from __future__ import annotations

import collections
import threading
import time
import webbrowser
import os
from typing import Any, Callable, Final

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Static

from dynosim.sweep.cli import LiveSweep
from dynosim.sweep.table import _fmt as fmt_cell  # the terminal summary's number format
from dynosim.sweep.events import CANCELLED, DONE, FAILED, INFEASIBLE, NOT_RUN, QUEUED, \
    REUSED, RUNNING, SKIPPED, PointFinished, SweepControl, SweepEnded, SweepEvent, SweepState, \
    fmt_seconds, status_label
from tui.footer import QuietFooter
from tui.sweep_chart import SweepChart

REFRESH_S: Final = 0.25
STATUS_WIDTH: Final = 40  # the status column's width; longer errors are cut (results.csv has them)
STATUS_STYLE = {QUEUED: "dim", RUNNING: "cyan", DONE: "green", INFEASIBLE: "yellow",
                FAILED: "bold red", CANCELLED: "magenta", SKIPPED: "magenta", REUSED: "green",
                NOT_RUN: "dim"}
FINISHED = (DONE, INFEASIBLE, REUSED)
SUBTITLE = "⏎ replays a finished point"
# Metric names as column headers, shortened (results.csv keeps the names): at 120 columns the
# full names pushed the constrained metrics out of sight, behind a horizontal scroll.
_LABEL_PARTS = (("_throughput_tok_s", "_tok/s"), ("output_", "out_"), ("tok_s", "tok/s"),
                ("_per_", "/"))


def column_label(name: str) -> str:
    for old, new in _LABEL_PARTS:
        name = name.replace(old, new)
    return name


def status_text(st: Any) -> Text:
    s = st.status
    if s == RUNNING:
        label = f"running {st.fraction:.0%} @{st.sim_ms / 1000:,.0f}s"
    else:
        label = status_label(s, st.reused, st.error)
    if len(label) > STATUS_WIDTH:
        label = label[:STATUS_WIDTH - 1] + "…"
    return Text(label, style=STATUS_STYLE.get(s, ""), no_wrap=True)


class SweepScreen(Screen[None]):
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause", priority=True),
        Binding("x", "skip", "Skip/cancel", priority=True),
        Binding("s", "sort", "Sort", priority=True),
        Binding("f", "frontier", "Frontier", priority=True),
        Binding("enter", "open_point", "Open", show=True),
        Binding("o", "open_report", "HTML", priority=True),
        Binding("q,ctrl+c", "quit", "Quit", key_display="q", priority=True),
    ]
    DEFAULT_CSS = """
    SweepScreen #sweep-header { height: auto; max-height: 3; background: $boost;
                                padding: 0 1; }
    SweepScreen #sweep-body { height: 1fr; }
    SweepScreen #points { width: 3fr; border: round $primary 40%; }
    SweepScreen #points:focus { border: round $primary; }
    SweepScreen SweepChart { width: 2fr; border: round $secondary 40%; }
    """

    def __init__(self, job: LiveSweep, *, clock: Callable[[], float] = time.monotonic,
                 start_paused: bool = False) -> None:
        super().__init__()
        self.job = job
        self.spec = job.spec
        self.control = SweepControl()
        if start_paused:
            self.control.pause()
        self.state = SweepState(clock=clock)
        self._events: collections.deque[SweepEvent] = collections.deque()
        self._lock = threading.Lock()
        self.header = Static(id="sweep-header")
        self.table: DataTable[Any] = DataTable(id="points", cursor_type="cell",
                                               zebra_stripes=False)
        self.chart = SweepChart(job.spec, id="chart")
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.frontier_only = False
        self.html_path: str | None = None
        self.html_error: str | None = None
        self.stopping = False
        self.sweep_started = False
        self.ended_shown = False  # the end of the sweep has been drawn and announced
        self.sweep_ended = threading.Event()  # set when run_sweep has returned (or raised)
        self.columns = self._columns()
        self._dirty = True

    def _columns(self) -> list[str]:
        spec = self.spec
        cols = [a.name for a in spec.axes]
        for m in (spec.rank.metric, *(o.metric for o in spec.pareto),
                  *(c.metric for c in spec.constraints), "gpus"):
            if m not in cols:
                cols.append(m)
        axes = len(spec.axes)
        return ["#", "★", *cols[:axes], "status", "rank", *cols[axes:]]

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield self.header
        with Horizontal(id="sweep-body"):
            yield self.table
            yield self.chart
        yield QuietFooter()

    def on_mount(self) -> None:
        for c in self.columns:
            self.table.add_column(c if c in {a.name for a in self.spec.axes}
                                  else column_label(c), key=c)
        self.table.border_title = "Points"
        self.table.border_subtitle = SUBTITLE
        self.chart.border_title = ("Metrics vs " + self.spec.axes[0].name
                                   if len(self.spec.axes) == 1 else "Pareto frontier")
        self.chart.border_subtitle = ("[yellow]◆ frontier[/] [white]• feasible[/] "
                                      "[red]✗ infeasible[/]"
                                      + (" [red]┄ SLA[/]" if len(self.spec.axes) == 1 else ""))
        self.table.focus()
        self.set_interval(REFRESH_S, self.refresh_view)
        self._run()

    def on_unmount(self) -> None:
        # however the app ends, the sweep thread must not keep dispatching (nor hold the exit)
        self.control.stop()

    # ---- the sweep (worker thread) ------------------------------------------------------------
    def observe(self, ev: SweepEvent) -> None:
        """Called on the sweep's thread: assemble the rows there, queue for the UI."""
        if isinstance(ev, PointFinished):
            ev.table()  # computed and cached here, not on the UI thread
        with self._lock:
            self._events.append(ev)

    @work(thread=True, exclusive=True, group="sweep", exit_on_error=False)
    def _run(self) -> None:
        from dynosim.sweep.runner import run_sweep

        job = self.job
        self.sweep_started = True
        try:
            res = run_sweep(job.spec, job.out, job.make_executor, force=job.force,
                            keep_html=job.keep_html, observer=self.observe,
                            control=self.control, points=job.points,
                            point_timeout_s=job.point_timeout_s)
            if job.html:
                from dynosim.sweep.html import write_sweep_html

                try:
                    self.html_path = write_sweep_html(res, job.out)
                except Exception as exc:  # the tables are written; say why the report is not
                    self.html_error = " ".join(str(exc).split())
        except Exception as exc:
            self.html_error = f"the sweep stopped: {type(exc).__name__}: {exc}"
            raise
        finally:
            self.sweep_ended.set()
            self.app.call_from_thread(self._sweep_done)

    def _sweep_done(self) -> None:
        self.ended_shown = True
        self.refresh_view()
        if self.stopping:
            self.app.exit()
            return
        if self.html_path:
            self.notify(f"Sweep finished. HTML report: {self.html_path} (o opens it)",
                        title="Sweep", timeout=15)
        elif self.html_error:
            self.notify(self.html_error, severity="error", timeout=15)

    # ---- drawing ------------------------------------------------------------------------------
    def drain(self) -> bool:
        with self._lock:
            evs = list(self._events)
            self._events.clear()
        for ev in evs:
            self.state.apply(ev)
        return bool(evs)

    def refresh_view(self) -> None:
        changed = self.drain()
        if changed or self._dirty:
            self._dirty = False
            self._fill_table()
            if self.state.table is not None:
                self.chart.show(self.state.table.rows)
        self.header.update(self.header_text())

    def header_text(self) -> Text:
        s, spec = self.state, self.spec
        if s.result is not None:
            phase = ("STOPPED", "bold yellow") if s.result.interrupted else ("FINISHED",
                                                                             "bold green")
        elif self.control.paused:
            phase = ("PAUSED", "bold yellow")
        else:
            phase = ("RUNNING", "bold cyan")
        done = s.count(DONE, INFEASIBLE, REUSED)
        t = Text.assemble(phase, f" '{spec.name}' · ", (f"{done}/{len(s.points)} finished",
                                                         "green"), " · ",
                          (f"{s.count(INFEASIBLE)} infeasible", "yellow"), " · ",
                          (f"{s.count(RUNNING)} running", "cyan"), " · ",
                          f"{s.count(QUEUED)} queued · ", (f"{s.count(FAILED)} failed", "red"))
        if s.reused_count():
            t.append(f" · {s.reused_count()} reused")
        second = f"\nelapsed {fmt_seconds(s.elapsed_s())} · eta {fmt_seconds(s.eta_s())}"
        if self.frontier_only:
            second += " · frontier only"
        if self.sort_column:
            second += f" · sorted by {self.sort_column}{' ↓' if self.sort_reverse else ' ↑'}"
        second += f" · {self.job.executor_name} executor · results in {self.job.out}"
        if self.html_path:
            second += f" · report {self.html_path} (o opens)"
        t.append(second, style="dim")
        return t

    def visible_rows(self) -> list[dict[str, Any]]:
        s = self.state
        if s.table is None:
            return []
        rows = list(s.table.rows)
        if self.frontier_only:
            rows = [r for r in rows if r["pareto"]]
        col = self.sort_column
        if col is not None:
            def key(r: dict[str, Any]) -> tuple[int, Any]:
                v = self._value(r, col)
                if v is None or v == "-":
                    return (1, 0)
                return (0, v if isinstance(v, (int, float)) else str(v))
            present = [r for r in rows if key(r)[0] == 0]
            missing = [r for r in rows if key(r)[0] == 1]
            rows = sorted(present, key=key, reverse=self.sort_reverse) + missing
        return rows

    def _value(self, r: dict[str, Any], col: str) -> Any:
        if col == "#":
            return r["point"]
        if col == "★":
            return 0 if r["pareto"] else 1
        if col == "status":
            return self.state.points[r["point"]].status
        return r.get(col)

    def _fill_table(self) -> None:
        table = self.table
        keep = None
        if table.row_count:
            try:
                keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            except Exception:
                keep = None
        col = table.cursor_coordinate.column
        table.clear()
        for r in self.visible_rows():
            st = self.state.points[r["point"]]
            finished = st.status in FINISHED
            cells: list[Any] = [str(r["point"]), Text("★", style="bold yellow")
                                if r["pareto"] and finished else ""]
            cells += [fmt_cell(r.get(a.name)) for a in self.spec.axes]
            cells += [status_text(st), fmt_cell(r["rank"]) if finished else ""]
            cells += [fmt_cell(r.get(c)) if finished else ""
                      for c in self.columns[len(self.spec.axes) + 4:]]
            table.add_row(*cells, key=str(r["point"]))
        if keep is not None:
            try:
                table.move_cursor(row=table.get_row_index(keep), column=col)
            except Exception:
                pass
        # say so when columns are out of sight (the cursor keys scroll to them)
        hidden = table.virtual_size.width > table.scrollable_content_region.width > 0
        subtitle = "⏎ replays a point · → more columns" if hidden else SUBTITLE
        if table.border_subtitle != subtitle:
            table.border_subtitle = subtitle

    # ---- keys ---------------------------------------------------------------------------------
    def selected_point(self) -> int | None:
        table = self.table
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    def action_toggle_pause(self) -> None:
        if self.state.result is not None:
            self.notify("The sweep is over.")
            return
        if self.control.paused:
            self.control.resume()
            self.notify("Dispatching resumed.")
        else:
            self.control.pause()
            self.notify("Dispatching paused: running points finish, no new ones start.")
        self.refresh_view()

    def action_skip(self) -> None:
        idx = self.selected_point()
        if idx is None:
            return
        st = self.state.points[idx].status
        if st == QUEUED:
            self.control.skip(idx)
            self.notify(f"Point #{idx} skipped (a rerun runs it).")
        elif st == RUNNING:
            self.control.skip(idx)
            self.notify(f"Cancelling point #{idx} (a rerun runs it).")
        else:
            self.notify(f"Point #{idx} is {st}: only queued or running points can be "
                        "skipped or cancelled.", severity="warning")

    def action_sort(self) -> None:
        col = self.columns[self.table.cursor_coordinate.column]
        if self.sort_column == col:
            if self.sort_reverse:
                self.sort_column, self.sort_reverse = None, False  # third press: grid order
            else:
                self.sort_reverse = True
        else:
            self.sort_column, self.sort_reverse = col, False
        self._dirty = True
        self.refresh_view()

    def action_frontier(self) -> None:
        self.frontier_only = not self.frontier_only
        self._dirty = True
        self.refresh_view()

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_open_point()

    def action_open_point(self) -> None:
        idx = self.selected_point()
        if idx is None:
            return
        st = self.state.points[idx].status
        if st not in FINISHED:
            self.notify(f"Point #{idx} is {st}: only a finished point opens in the replay "
                        "view.", severity="warning")
            return
        from tui.sweep_point import open_point

        open_point(self.app, self.job, idx)

    def action_open_report(self) -> None:
        if not self.html_path:
            self.notify("The HTML sweep report is written when the sweep ends."
                        if self.job.html else "No HTML report (--no-html).")
            return
        opened = webbrowser.open(f"file://{os.path.abspath(self.html_path)}")
        self.notify(f"Opened {self.html_path}" if opened else
                    f"No browser here: the report is {self.html_path}", timeout=10)

    def action_quit(self) -> None:
        if self.state.result is not None:
            self.app.exit()
            return
        self.stopping = True
        self.control.stop()
        self.notify("Stopping: finished points are saved; the tables are being written...")
