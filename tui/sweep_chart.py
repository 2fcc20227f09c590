"""The sweep screen's chart, drawn with plotext at the widget's size from the ranked rows.

- one axis: each shown metric against the axis (the constraint metrics with their bound as a
  red dotted SLA line, then the objective), one small plot per metric, stacked;
- more axes: the Pareto scatter of the two frontier metrics, the frontier joined (yellow),
  other feasible points dim, infeasible ones red.
Non-numeric axis values (topologies) are placed at their grid positions."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotext as plt
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from dynosim.sweep.spec import SweepSpec
from tui.plots import MIN_HEIGHT, MIN_WIDTH, ansi_runs, blank_figure, fmt_value, \
    nice_ceiling, pixel
from tui.strips import Run, StripMaker

FRONT_STYLE, FEASIBLE_STYLE, INFEASIBLE_STYLE, SLA_STYLE, LINE_STYLE = (
    "yellow", "white", "red", "red", "cyan")
MIN_PANEL_ROWS = 6
FIT_MARGIN = 0.08  # a fitted axis extends this share of the data's span beyond each end


@dataclass(frozen=True)
class Panel:
    title: str
    xs: list[float]
    ys: list[float]
    styles: list[str]  # one per point
    x_ticks: list[float]
    x_labels: list[str]
    hline: float | None = None  # the SLA bound
    joined: list[int] | None = None  # indices of xs/ys joined by a line, in order
    join_style: str = LINE_STYLE
    # y from 0 (a metric against the axis, read as a share of its SLA) or fitted to the data
    # (the Pareto scatter: its points differ by a few percent, squashed flat from 0)
    fit_y: bool = False


def fitted_range(values: Sequence[float]) -> tuple[float, float]:
    """The data's range with FIT_MARGIN of its span on each side (a single value: +-10% of
    it, or +-1 at 0)."""
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        span = abs(hi) * 0.2 / (2 * FIT_MARGIN) if hi else 1.0 / FIT_MARGIN
    return lo - FIT_MARGIN * span, hi + FIT_MARGIN * span


def y_range(p: Panel) -> tuple[float, float]:
    ys = list(p.ys) + ([p.hline] if p.hline is not None else [])
    if p.fit_y and ys:
        return fitted_range(ys)
    y_hi = max(ys) if ys else 1.0
    return min(0.0, min(ys)) if ys else 0.0, nice_ceiling(y_hi * 1.05) if y_hi > 0 else 1.0


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """fmt_value's compact labels, with more digits when a narrow (fitted) range would make
    two of them read the same."""
    labels = [fmt_value(t) for t in ticks]
    digits = 3
    while len(set(labels)) < len(set(ticks)) and digits <= 8:
        labels = [_sig(t, digits) for t in ticks]
        digits += 1
    return labels


def _sig(v: float, digits: int) -> str:
    a = abs(v)
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{v / scale:.{digits}g}{suffix}"
    return f"{v:.{digits}g}"


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def metrics_1d(spec: SweepSpec) -> list[tuple[str, float | None]]:
    """(metric, SLA bound or None): the constraint metrics first, then the objective."""
    out: list[tuple[str, float | None]] = []
    for c in spec.constraints:
        if c.metric not in (m for m, _ in out):
            out.append((c.metric, c.bound if c.kind == "max" else None))
    if spec.rank.metric not in (m for m, _ in out):
        out.append((spec.rank.metric, None))
    return out


def _style(row: dict[str, Any]) -> str:
    if row["feasible"] is False:
        return INFEASIBLE_STYLE
    return FRONT_STYLE if row["pareto"] else FEASIBLE_STYLE


def panels(spec: SweepSpec, rows: Sequence[dict[str, Any]], height: int) -> list[Panel]:
    done = [r for r in rows if r["status"] == "ok"]
    if not rows:
        return []
    if len(spec.axes) == 1:
        axis = spec.axes[0].name
        values = [r[axis] for r in rows]
        numeric = all(_num(v) is not None for v in values)
        if numeric:
            pos = {i: float(v) for i, v in enumerate(values)}
            lo, hi = min(pos.values()), max(pos.values())
            ticks = [lo, (lo + hi) / 2, hi] if hi > lo else [lo]
            labels = [fmt_value(t) for t in ticks]
        else:
            pos = {i: float(i) for i in range(len(values))}
            step = max(1, math.ceil(len(values) / 4))
            ticks = [float(i) for i in range(0, len(values), step)]
            labels = [str(values[int(t)]) for t in ticks]
        out = []
        wanted = metrics_1d(spec)
        room = max(1, height // MIN_PANEL_ROWS)
        for metric, bound in wanted[:room]:
            pts = [(pos[i], _num(r[metric]), _style(r)) for i, r in enumerate(rows)
                   if r["status"] == "ok" and _num(r[metric]) is not None]
            pts.sort(key=lambda p: p[0])
            out.append(Panel(metric, [p[0] for p in pts], [p[1] for p in pts if p[1] is not None],
                             [p[2] for p in pts], ticks, labels, bound,
                             list(range(len(pts)))))
        return out
    xm, ym = spec.pareto[0].metric, spec.pareto[1].metric
    pts2 = [(_num(r[xm]), _num(r[ym]), r) for r in done]
    keep = [(x, y, r) for x, y, r in pts2 if x is not None and y is not None]
    xs = [float(x) for x, _, _ in keep if x is not None]
    ys = [float(y) for _, y, _ in keep if y is not None]
    front = sorted((i for i, (_, _, r) in enumerate(keep) if r["pareto"]), key=lambda i: xs[i])
    if xs:
        lo, hi = min(xs), max(xs)
        ticks = [lo, (lo + hi) / 2, hi] if hi > lo else [lo]
    else:
        ticks = [0.0]
    return [Panel(f"{ym} vs {xm}", xs, ys, [_style(r) for _, _, r in keep], ticks,
                  tick_labels(ticks), None, front, FRONT_STYLE, fit_y=True)]


def build_panel(width: int, height: int, p: Panel) -> str:
    """One panel as plotext's ANSI text, exactly width x height cells (the shared figure is
    cleared first, so the result depends on the arguments only)."""
    y_lo, y_hi = y_range(p)
    x_lo = min(p.x_ticks)
    x_hi = max(p.x_ticks)
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1.0, x_hi + 1.0
    pad = (x_hi - x_lo) * 0.04
    fig = blank_figure(width, height)
    y_ticks = [y_lo, (y_lo + y_hi) / 2, y_hi] if height >= 7 else [y_lo, y_hi]
    fig.ruler("y").lim(y_lo, y_hi)
    fig.ruler("y").ticks(y_ticks, tick_labels(y_ticks))
    fig.ruler("x").lim(x_lo - pad, x_hi + pad)
    fig.ruler("x").ticks(p.x_ticks, p.x_labels)
    if p.hline is not None:
        fig.line(p.hline, "horizontal", pixel=pixel(SLA_STYLE), style="dotted")
    if p.joined and len(p.joined) > 1:
        sig = fig.signal([p.xs[i] for i in p.joined], [p.ys[i] for i in p.joined],
                         marker=plt.marker("braille", pixel=pixel(p.join_style))).lines()
        fig.draw(sig)
    for style, symbol in ((FEASIBLE_STYLE, "•"), (INFEASIBLE_STYLE, "✗"), (FRONT_STYLE, "◆")):
        idx = [i for i, s in enumerate(p.styles) if s == style]
        if idx:
            fig.draw(fig.signal([p.xs[i] for i in idx], [p.ys[i] for i in idx],
                                marker=plt.marker(symbol, pixel=pixel(style))))
    return str(fig.build().string())


def chart_rows(width: int, height: int, ps: Sequence[Panel]) -> list[list[Run]]:
    """The panels stacked, each with a title row, as rows of (text, style) runs."""
    if not ps or width < MIN_WIDTH:
        return []
    each = height // len(ps)
    rows: list[list[Run]] = []
    for k, p in enumerate(ps):
        h = each if k < len(ps) - 1 else height - each * (len(ps) - 1)
        rows.append([(p.title[:width], "bold")])
        if h - 1 < MIN_HEIGHT:
            rows.extend([] for _ in range(h - 1))
            continue
        body = ansi_runs(build_panel(width, h - 1, p))[:h - 1]
        rows.extend(body + [[] for _ in range(h - 1 - len(body))])
    return rows


def chart_text(width: int, height: int, ps: Sequence[Panel]) -> str:
    """The chart as plain text (tests and captures)."""
    return "\n".join("".join(t for t, _ in row) for row in chart_rows(width, height, ps))


class SweepChart(Widget):
    """The chart beside the sweep table; not focusable."""

    DEFAULT_CSS = "SweepChart { width: 1fr; height: 1fr; min-width: 24; }"
    can_focus = False

    def __init__(self, spec: SweepSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self._rows: Sequence[dict[str, Any]] = ()
        self._strips: list[Strip] | None = None
        self._strips_size = Size(0, 0)

    def show(self, rows: Sequence[dict[str, Any]]) -> None:
        self._rows = rows
        self._strips = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        size = self.content_size
        if self._strips is None or self._strips_size != size:
            maker = StripMaker(self.rich_style)
            ps = panels(self.spec, self._rows, size.height)
            self._strips = [maker.strip(r, size.width)
                            for r in chart_rows(size.width, size.height, ps)]
            self._strips_size = size
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(size.width, self.rich_style)
