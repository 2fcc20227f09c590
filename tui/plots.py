"""The three live plots: rolling TTFT, rolling ITL (p50/p90 over a window of simulated time) and
the worker count, drawn with plotext (6.x) at each widget's own size.

plotext keeps one figure per process (`plotext.figure`); `plot_rows` clears it, builds one plot
and reads it back within a single synchronous call, so the three widgets never see each other's
state. Its output (ANSI text) is turned into styled runs for Textual strips: backgrounds are
dropped (the widget's own shows through) and the uncoloured frame and tick labels are dimmed.
The screen feeds new data a few times a second; a plot redraws only when fed or resized.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotext as plt
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from tui.series import LatencySeries, Quantiles, WorkerCounts
from tui.strips import Run, StripMaker

P50_STYLE, P90_STYLE = "green", "yellow"
SLA_STYLE, SCALE_STYLE = "red", "magenta"
ACTIVE_STYLE, STARTING_STYLE, DRAINING_STYLE = "green", "cyan", "magenta"
AXIS_STYLE = "dim"  # the frame and tick labels (plotext draws them uncoloured)
# Plot colours are named as Rich/ANSI colours (the legends use the same names); plotext gets the
# ANSI palette index, which it writes back as `38;5;N`, i.e. the same terminal colour.
ANSI_INDEX = {"black": 0, "red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5,
              "cyan": 6, "white": 7}
MIN_WIDTH, MIN_HEIGHT = 12, 4  # below this a plot shows nothing


@dataclass(frozen=True)
class Line:
    """A polyline; a None y breaks it (e.g. an empty window)."""

    xs: Sequence[float]
    ys: Sequence[float | None]
    style: str  # a key of ANSI_INDEX


@dataclass(frozen=True)
class Rule:
    """A dotted horizontal (at y) or vertical (at x) line across the plot area."""

    at: float
    style: str  # a key of ANSI_INDEX
    vertical: bool = False


# ---- axis labels --------------------------------------------------------------------------------
def fmt_value(v: float) -> str:
    """Compact axis label: 0.25, 3.5, 42, 350, 1.2k, 15k, 1.5M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 1e3:
        return f"{v / 1e3:.2g}k" if a < 9950 else f"{v / 1e3:.0f}k"
    if a >= 10 or v == 0:
        return f"{v:.0f}"
    return f"{v:.2g}"


def fmt_duration(ms: float) -> str:
    """Simulated time as an x-axis label: 850ms, 6.4s, 95s, 17m, 1.5h."""
    s = ms / 1000.0
    if ms <= 0:
        return "0s"
    if s < 1:
        return f"{ms:.0f}ms"
    if s < 10:
        return f"{s:.1f}s"
    if s < 600:
        return f"{s:.0f}s"
    if s < 36000:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def nice_ceiling(v: float) -> float:
    """Smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10 x 10^k that is >= v (v > 0)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    exp = math.floor(math.log10(v))
    base = 10.0 ** exp
    for m in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if m * base >= v * (1 - 1e-12):
            return m * base
    return 10.0 * base


# ---- data -------------------------------------------------------------------------------------
def unbroken_runs(xs: Sequence[float],
                  ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """The polyline as its unbroken runs of (x, y) points: a None y ends a run."""
    runs: list[list[tuple[float, float]]] = []
    run: list[tuple[float, float]] = []
    for x, y in zip(xs, ys):
        if y is None:
            if run:
                runs.append(run)
                run = []
        else:
            run.append((x, y))
    if run:
        runs.append(run)
    return runs


def thin_run(run: list[tuple[float, float]], x_min: float, x_max: float,
             columns: int) -> list[tuple[float, float]]:
    """An unbroken run reduced to what `columns` dot columns can show: per column its
    lowest and highest point (in x order), plus the run's first and last point, so spikes and
    the current value survive. plotext's cost is per point, and a run can hold several times
    more points than the plot has columns."""
    n = len(run)
    if n <= 2 * columns or x_max <= x_min:
        return run
    scale = columns / (x_max - x_min)
    keep = {0, n - 1}
    i = 0
    while i < n:
        col = int((run[i][0] - x_min) * scale)
        lo = hi = i
        j = i + 1
        while j < n and int((run[j][0] - x_min) * scale) == col:
            y = run[j][1]
            if y < run[lo][1]:
                lo = j
            elif y > run[hi][1]:
                hi = j
            j += 1
        keep.add(lo)
        keep.add(hi)
        i = j
    return [run[k] for k in sorted(keep)]


# ---- plotext ------------------------------------------------------------------------------------
def pixel(style: str) -> object:
    """plotext's pixel in a Rich colour name's ANSI index."""
    return plt.pixel(foreground=ANSI_INDEX[style])


def blank_figure(width: int, height: int) -> Any:
    """The shared plotext figure, cleared, exactly width x height cells (a plot's size is the
    widget's, not the terminal's), no colours of its own, axes on the left and bottom only."""
    plt.terminal.limit(False, False)
    fig = plt.figure
    fig.clear()
    fig.theme("colorless")
    fig.plot_size(width, height)
    fig.axes(False, axis="x", side="upper")
    fig.axes(False, axis="y", side="right")
    return fig


def build_plot(width: int, height: int, lines: Sequence[Line], x_max: float,
               rules: Sequence[Rule] = (), x_min: float = 0.0, y_floor: float = 0.0) -> str:
    """One plot as plotext's ANSI text, exactly width x height cells: the lines on
    [x_min, x_max] x [0, nice max] with braille markers, a left y axis (0, middle, max) and a
    bottom x axis (x_min, middle, x_max as durations); rules as dotted lines. The shared
    plotext figure is cleared first, so the result depends on the arguments only."""
    y_hi = y_floor
    for ln in lines:
        for y in ln.ys:
            if y is not None and y > y_hi:
                y_hi = y
    for rule in rules:
        if not rule.vertical and rule.at > y_hi:
            y_hi = rule.at
    y_hi = nice_ceiling(y_hi * 1.05) if y_hi > 0 else 1.0

    fig = blank_figure(width, height)
    y_ticks = [0.0, y_hi / 2, y_hi] if height >= 7 else [0.0, y_hi]
    fig.ruler("y").lim(0.0, y_hi)
    fig.ruler("y").ticks(y_ticks, [fmt_value(v) for v in y_ticks])
    x_ticks = [x_min, (x_min + x_max) / 2, x_max]
    fig.ruler("x").lim(x_min, x_max)
    fig.ruler("x").ticks(x_ticks, [fmt_duration(v) for v in x_ticks])
    for rule in rules:
        if not rule.vertical:
            fig.line(rule.at, "horizontal", pixel=pixel(rule.style), style="dotted")
        elif x_min <= rule.at <= x_max:
            fig.line(rule.at, "vertical", pixel=pixel(rule.style), style="dotted")
    dots = 2 * width  # braille dot columns across the whole width: at least the plot area's
    for ln in lines:
        runs = [thin_run(run, x_min, x_max, dots) for run in unbroken_runs(ln.xs, ln.ys)]
        xs = [x for run in runs for x, _ in run]
        if not xs:
            continue
        ys = [y for run in runs for _, y in run]
        marker = plt.marker("braille", pixel=pixel(ln.style))
        sig = fig.signal(xs, ys, marker=marker).lines()
        start = 0
        for run in runs[:-1]:  # break the line between runs
            start += len(run)
            sig.line(start, False)
        fig.draw(sig)
    return str(fig.build().string())


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _style_name(fg: str | None, attrs: frozenset[str]) -> str:
    if fg is None:
        return " ".join(sorted(attrs | {AXIS_STYLE}))
    return " ".join([*sorted(attrs), fg])


_SGR_ATTRS = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 9: "strike", 7: "reverse"}


def _append_run(runs: list[Run], text: str, style: str) -> None:
    if runs and runs[-1][1] == style:  # plotext resets after every run: join equal neighbours
        runs[-1] = (runs[-1][0] + text, style)
    else:
        runs.append((text, style))


def ansi_runs(ansi: str) -> list[list[Run]]:
    """plotext's ANSI output as rows of (text, Rich style) runs: foreground colours and text
    attributes are kept, backgrounds dropped, and uncoloured text (frame, labels) dimmed."""
    rows: list[list[Run]] = []
    fg: str | None = None
    attrs: frozenset[str] = frozenset()
    for line in ansi.split("\n"):
        runs: list[Run] = []
        pos = 0
        for m in _SGR.finditer(line):
            if m.start() > pos:
                _append_run(runs, line[pos:m.start()], _style_name(fg, attrs))
            pos = m.end()
            codes = [int(c) if c else 0 for c in m.group(1).split(";")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, attrs = None, frozenset()
                elif c in _SGR_ATTRS:
                    attrs = attrs | {_SGR_ATTRS[c]}
                elif 30 <= c <= 37:
                    fg = f"color({c - 30})"
                elif 90 <= c <= 97:
                    fg = f"color({c - 82})"
                elif c == 39:
                    fg = None
                elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                    if c == 38:
                        fg = f"color({codes[i + 2]})"
                    i += 2
                elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                    if c == 38:
                        fg = f"rgb({codes[i + 2]},{codes[i + 3]},{codes[i + 4]})"
                    i += 4
                i += 1
        if pos < len(line):
            _append_run(runs, line[pos:], _style_name(fg, attrs))
        rows.append(runs)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def plot_rows(width: int, height: int, lines: Sequence[Line], x_max: float,
              rules: Sequence[Rule] = (), x_min: float = 0.0,
              y_floor: float = 0.0) -> list[list[Run]]:
    """`build_plot` as one list of (text, style) runs per row; nothing below 12 x 4 cells."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return []
    return ansi_runs(build_plot(width, height, lines, x_max, rules, x_min, y_floor))[:height]


def render_plot(width: int, height: int, lines: Sequence[Line], x_max: float,
                rules: Sequence[Rule] = (), x_min: float = 0.0, y_floor: float = 0.0) -> Text:
    """The plot of `plot_rows` as one Rich Text (for tests and text captures)."""
    out = Text(no_wrap=True, overflow="crop")
    for i, row in enumerate(plot_rows(width, height, lines, x_max, rules, x_min, y_floor)):
        if i:
            out.append("\n")
        for text, style in row:
            out.append(text, style)
    return out


# ---- the widget ---------------------------------------------------------------------------------
class PlotView(Widget):
    """A titled plot; not focusable, so it never takes the app's keys."""

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
        self.last_draw_s = 0.0  # wall time of the last redraw (the screen paces plots by it)

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
        t0 = time.perf_counter()
        rows = plot_rows(size.width, size.height, self._lines, max(self._x_max, 1000.0),
                         self._rules, y_floor=self._y_floor)
        maker = StripMaker(self.rich_style)
        strips = [maker.strip(row, size.width) for row in rows]
        self.last_draw_s = time.perf_counter() - t0
        return strips


# ---- what the screen plots ----------------------------------------------------------------------
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
