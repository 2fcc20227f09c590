"""The two header lines: run state, speed, simulated clock, trace progress, request counts and
workers by state. Only simulated quantities are shown (no wall clock), so snapshots are stable."""
from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from tui.pacing import speed_label
from tui.strips import PaintStrips, Run


@dataclass(frozen=True)
class RunStatus:
    clock_ms: float
    speed: float
    paused: bool
    finished: bool
    lagging: bool
    total: int
    arrived: int
    in_flight: int
    completed: int
    rejected: int
    starting: int
    active: int
    draining: int
    router_hit_rate: float = -1.0  # kv_router only (share of routed blocks found cached)
    transfers: int = -1  # disaggregated only (KV hand-offs in flight)
    backend: str = ""  # scheduler family (engine.backend)


def fmt_clock(ms: float) -> str:
    """Simulated time as H:MM:SS.mmm."""
    total_ms = int(round(ms))
    s, milli = divmod(total_ms, 1000)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}.{milli:03d}"


def progress_bar(done: int, arrived: int, total: int, width: int) -> list[Run]:
    """Finished requests solid, arrived-but-unfinished shaded, the rest of the trace light."""
    if width <= 0:
        return []
    total = max(total, 1)
    n_done = min(width, round(done / total * width))
    n_arr = min(width - n_done, round(max(arrived - done, 0) / total * width))
    return [("█" * n_done, "green"), ("▓" * n_arr, "yellow"),
            ("░" * (width - n_done - n_arr), "grey35")]


def state_badge(st: RunStatus) -> Run:
    if st.finished:
        return (" ■ DONE ", "bold black on green")
    if st.paused:
        return (" ⏸ PAUSED ", "bold black on yellow")
    return (" ▶ RUNNING ", "bold black on cyan")


def _pair(label: str, value: str, value_style: str = "bold") -> list[Run]:
    return [(label, "dim"), (value, value_style)]


SEP: Run = (" │ ", "dim")


def status_runs(st: RunStatus, width: int) -> list[list[Run]]:
    """The two header lines as (characters, Rich style) runs; the trace bar fills what the
    second line leaves of `width` (6 to 40 cells)."""
    line1: list[Run] = [state_badge(st), (f" {speed_label(st.speed)}", "bold")]
    if st.lagging:
        line1.append((" (behind)", "bold yellow"))
    line1 += [SEP, *_pair("sim ", fmt_clock(st.clock_ms)), SEP,
              ("workers ", "dim"), (str(st.active), "bold green"), (" active ", "dim"),
              (str(st.starting), "bold cyan"), (" starting ", "dim"),
              (str(st.draining), "bold magenta"), (" draining", "dim")]
    if st.backend:
        line1 += [SEP, *_pair("backend ", st.backend)]
    if st.router_hit_rate >= 0.0:
        line1 += [SEP, *_pair("kv hit ", f"{100 * st.router_hit_rate:.0f}%")]
    if st.transfers >= 0:
        line1 += [SEP, *_pair("transfers ", str(st.transfers))]
    finished = st.completed + st.rejected
    pct: Run = (f" {100.0 * finished / max(st.total, 1):5.1f}%", "bold")
    counts = [*_pair("arrived ", f"{st.arrived}/{st.total}"),
              *_pair("  running ", str(st.in_flight)),
              *_pair("  done ", str(st.completed), "bold green"),
              *_pair("  rejected ", str(st.rejected), "bold red" if st.rejected else "bold")]
    fixed = len("trace ") + len(pct[0]) + len(SEP[0]) + sum(len(t) for t, _ in counts)
    bar_w = max(6, min(40, width - fixed))
    line2 = [("trace ", "dim"), *progress_bar(finished, st.arrived, st.total, bar_w), pct, SEP,
             *counts]
    return [line1, line2]


def render_status(st: RunStatus, width: int) -> Text:
    """The header as one Rich Text (what `StatusBar` draws, for tests and text captures)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(status_runs(st, width)):
        if i:
            out.append("\n")
        for text, style in line:
            out.append(text, style)
    return out


def ellipsize(runs: list[Run], width: int) -> list[Run]:
    """Runs cut to `width` cells, the last kept cell an ellipsis when anything was cut."""
    if sum(cell_len(t) for t, _ in runs) <= width:
        return runs
    out: list[Run] = []
    room = width - 1
    style = ""
    for text, style in runs:
        n = cell_len(text)
        if n > room:
            out.append((set_cell_size(text, room), style))
            break
        out.append((text, style))
        room -= n
    out.append(("…", style))
    return [r for r in out if r[0]]


class StatusBar(Widget):
    """Line-API widget: the two lines are drawn as styled runs straight into strips (made once
    per status change), not through Textual's text layout, which cost several ms a frame at
    max speed. `render()` gives the same lines as one Rich Text (for tests and captures)."""

    DEFAULT_CSS = """
    StatusBar { height: 2; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._status: RunStatus | None = None
        self._paint = PaintStrips(self)
        self._strips: list[Strip] = []
        self._strips_key: tuple[object, ...] | None = None

    def show(self, status: RunStatus) -> None:
        if status != self._status:
            self._status = status
            self.refresh()

    def render(self) -> Text:
        if self._status is None:
            return Text("")
        return render_status(self._status, self.content_size.width)

    def render_lines(self, crop: Region) -> list[Strip]:
        self._paint.begin_paint()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        maker = self._paint.maker
        key = (self._status, width, maker.base)
        if key != self._strips_key:
            self._strips_key = key
            rows = status_runs(self._status, width) if self._status is not None else []
            # Padding takes the background only, as Textual's text layout pads.
            pad = Style(bgcolor=maker.base.bgcolor)
            self._strips = [maker.strip(ellipsize(r, width), width, pad) for r in rows]
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, maker.base)
