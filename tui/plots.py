"""The three live plots: rolling TTFT, rolling ITL (p50/p90 over a window of simulated time) and
the worker count. Each is drawn at its own size by `chart.chart_rows`; the screen feeds new
data a few times a second and a plot redraws only when fed or resized."""
from __future__ import annotations

from collections.abc import Sequence

from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from tui.chart import Line, Rule, chart_rows, fmt_duration
from tui.series import LatencySeries, Quantiles, WorkerCounts
from tui.strips import StripMaker

P50_STYLE, P90_STYLE = "green", "yellow"
SLA_STYLE, SCALE_STYLE = "red", "magenta"
ACTIVE_STYLE, STARTING_STYLE, DRAINING_STYLE = "green", "cyan", "magenta"


class PlotView(Widget):
    """A titled chart; not focusable, so it never takes the app's keys."""

    DEFAULT_CSS = """
    PlotView { width: 1fr; height: 1fr; min-width: 20; }
    """
    can_focus = False

    def __init__(self, title: str, legend: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = title
        self.border_subtitle = legend
        self._lines: Sequence[Line] = ()
        self._rules: Sequence[Rule] = ()
        self._x_max = 1.0
        self._y_floor = 0.0
        self._strips: list[Strip] | None = None
        self._strips_size = Size(0, 0)

    def plot(self, lines: Sequence[Line], x_max: float, rules: Sequence[Rule] = (),
             y_floor: float = 0.0) -> None:
        self._lines, self._rules, self._x_max, self._y_floor = lines, rules, x_max, y_floor
        self._strips = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        size = self.content_size
        if self._strips is None or self._strips_size != size:
            self._strips = self._draw(size)
            self._strips_size = size
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(size.width, self.rich_style)

    def _draw(self, size: Size) -> list[Strip]:
        rows = chart_rows(size.width, size.height, self._lines, max(self._x_max, 1000.0),
                          self._rules, y_floor=self._y_floor)
        maker = StripMaker(self.rich_style)
        return [maker.strip(row, size.width) for row in rows]


def latency_lines(q: Quantiles) -> list[Line]:
    return [Line(q.t_ms, q.p90, P90_STYLE), Line(q.t_ms, q.p50, P50_STYLE)]


def rules_for(sla_ms: float | None, scale_times: Sequence[float]) -> list[Rule]:
    rules = [Rule(t, SCALE_STYLE, vertical=True) for t in scale_times]
    if sla_ms is not None:
        rules.append(Rule(sla_ms, SLA_STYLE))
    return rules


def legend(with_sla: bool, with_scale: bool) -> str:
    parts = [f"[{P50_STYLE}]━ p50[/]", f"[{P90_STYLE}]━ p90[/]"]
    if with_sla:
        parts.append(f"[{SLA_STYLE}]┄ SLA[/]")
    if with_scale:
        parts.append(f"[{SCALE_STYLE}]┆ scale[/]")
    return " ".join(parts)


def worker_lines(counts: WorkerCounts, until_ms: float) -> list[Line]:
    lines = []
    for series, style in ((counts.draining, DRAINING_STYLE), (counts.starting, STARTING_STYLE),
                          (counts.active, ACTIVE_STYLE)):
        if series is counts.active or any(series):
            xs, ys = counts.steps(series, until_ms)
            lines.append(Line(xs, ys, style))
    return lines


def window_title(metric: str, series: LatencySeries) -> str:
    return f"{metric} ms · {fmt_duration(series.effective_window_ms)} window"
