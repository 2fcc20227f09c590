"""The two header lines: run state, speed, simulated clock, trace progress, request counts and
workers by state. Only simulated quantities are shown (no wall clock), so snapshots are stable."""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from tui.pacing import speed_label


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


def progress_bar(done: int, arrived: int, total: int, width: int) -> Text:
    """Finished requests solid, arrived-but-unfinished shaded, the rest of the trace light."""
    bar = Text()
    if width <= 0:
        return bar
    total = max(total, 1)
    n_done = min(width, round(done / total * width))
    n_arr = min(width - n_done, round(max(arrived - done, 0) / total * width))
    bar.append("█" * n_done, "green")
    bar.append("▓" * n_arr, "yellow")
    bar.append("░" * (width - n_done - n_arr), "grey35")
    return bar


def state_badge(st: RunStatus) -> Text:
    if st.finished:
        return Text(" ■ DONE ", style="bold black on green")
    if st.paused:
        return Text(" ⏸ PAUSED ", style="bold black on yellow")
    return Text(" ▶ RUNNING ", style="bold black on cyan")


def _pair(label: str, value: str, value_style: str = "bold") -> Text:
    return Text.assemble((label, "dim"), (value, value_style))


def render_status(st: RunStatus, width: int) -> Text:
    sep = Text(" │ ", style="dim")
    speed = Text(f" {speed_label(st.speed)}", style="bold")
    if st.lagging:
        speed.append(" (behind)", style="yellow")
    workers = Text.assemble(
        ("workers ", "dim"), (str(st.active), "bold green"), (" active ", "dim"),
        (str(st.starting), "bold cyan"), (" starting ", "dim"),
        (str(st.draining), "bold magenta"), (" draining", "dim"))
    line1 = Text.assemble(state_badge(st), speed, sep, _pair("sim ", fmt_clock(st.clock_ms)),
                          sep, workers)
    if st.backend:
        line1.append_text(Text.assemble(sep, _pair("backend ", st.backend)))
    if st.router_hit_rate >= 0.0:
        line1.append_text(Text.assemble(sep, _pair("kv hit ", f"{100 * st.router_hit_rate:.0f}%")))
    if st.transfers >= 0:
        line1.append_text(Text.assemble(sep, _pair("transfers ", str(st.transfers))))
    finished = st.completed + st.rejected
    pct = Text(f" {100.0 * finished / max(st.total, 1):5.1f}%", style="bold")
    counts = Text.assemble(
        _pair("arrived ", f"{st.arrived}/{st.total}"), _pair("  running ", str(st.in_flight)),
        _pair("  done ", str(st.completed), "bold green"),
        _pair("  rejected ", str(st.rejected), "bold red" if st.rejected else "bold"))
    fixed = len("trace ") + len(pct) + len(sep) + len(counts)
    bar_w = max(6, min(40, width - fixed))
    line2 = Text.assemble(("trace ", "dim"), progress_bar(finished, st.arrived, st.total, bar_w),
                          pct, sep, counts)
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append_text(line1)
    out.append("\n")
    out.append_text(line2)
    return out


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._status: RunStatus | None = None

    def show(self, status: RunStatus) -> None:
        if status != self._status:
            self._status = status
            self.refresh()

    def render(self) -> Text:
        if self._status is None:
            return Text("")
        return render_status(self._status, self.content_size.width)
