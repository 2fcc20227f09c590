"""A small line-chart renderer: braille dots (2x4 per cell) into a Rich `Text`. Pure and
deterministic, so the plots are cheap to redraw and stable in snapshot tests."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

# Braille dot bits by (row 0..3, column 0..1) inside one character cell.
_DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_BRAILLE = 0x2800
AXIS_STYLE = "dim"
Run = tuple[str, str]  # (characters, Rich style definition)


@dataclass(frozen=True)
class Line:
    """A polyline; a None y breaks it (e.g. an empty window)."""

    xs: Sequence[float]
    ys: Sequence[float | None]
    style: str


@dataclass(frozen=True)
class Rule:
    """A dotted horizontal (at y) or vertical (at x) line across the plot area."""

    at: float
    style: str
    vertical: bool = False


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


class _Canvas:
    def __init__(self, cols: int, rows: int) -> None:
        self.cols = cols
        self.rows = rows
        self.bits = [[0] * cols for _ in range(rows)]
        self.style: list[list[str | None]] = [[None] * cols for _ in range(rows)]

    def dot(self, px: int, py: int, style: str) -> None:
        """py counts from the top, in dots."""
        if 0 <= px < self.cols * 2 and 0 <= py < self.rows * 4:
            r, c = py // 4, px // 2
            self.bits[r][c] |= _DOT[py % 4][px % 2]
            self.style[r][c] = style

    def segment(self, x0: int, y0: int, x1: int, y1: int, style: str) -> None:
        """Dots from (x0, y0) to (x1, y1); the start dot is the previous segment's end."""
        dx, dy = x1 - x0, y1 - y0
        n = max(abs(dx), abs(dy))
        for i in range(1, n + 1):
            self.dot(x0 + (dx * i + (n >> 1)) // n, y0 + (dy * i + (n >> 1)) // n, style)

    def row_runs(self, r: int) -> list[Run]:
        """One row as runs of equally styled characters (few segments to draw)."""
        out: list[Run] = []
        bits, styles = self.bits[r], self.style[r]
        run: list[str] = []
        run_style = ""
        for c in range(self.cols):
            style = (styles[c] or "") if bits[c] else ""
            if style != run_style and run:
                out.append(("".join(run), run_style))
                run = []
            run_style = style
            run.append(chr(_BRAILLE + bits[c]) if bits[c] else " ")
        if run:
            out.append(("".join(run), run_style))
        return out


def render_chart(width: int, height: int, lines: Sequence[Line], x_max: float,
                 rules: Sequence[Rule] = (), x_min: float = 0.0, y_floor: float = 0.0) -> Text:
    """The chart of `chart_rows` as one Rich Text (for tests and text captures)."""
    out = Text(no_wrap=True, overflow="crop")
    for i, row in enumerate(chart_rows(width, height, lines, x_max, rules, x_min, y_floor)):
        if i:
            out.append("\n")
        for text, style in row:
            out.append(text, style)
    return out


def chart_rows(width: int, height: int, lines: Sequence[Line], x_max: float,
               rules: Sequence[Rule] = (), x_min: float = 0.0,
               y_floor: float = 0.0) -> list[list[Run]]:
    """Render lines on [x_min, x_max] x [0, nice max] into width x height cells, with a left
    y axis (max, middle, 0) and a bottom x axis (x_min, middle, x_max as durations). Returns
    one list of (text, style) runs per row."""
    if width < 12 or height < 3:
        return []
    y_hi = y_floor
    for ln in lines:
        for y in ln.ys:
            if y is not None and y > y_hi:
                y_hi = y
    for rule in rules:
        if not rule.vertical and rule.at > y_hi:
            y_hi = rule.at
    y_hi = nice_ceiling(y_hi * 1.05) if y_hi > 0 else 1.0
    labels = [fmt_value(y_hi), fmt_value(y_hi / 2), "0"]
    lw = max(len(s) for s in labels)
    cols = width - lw - 1
    rows = height - 1
    canvas = _Canvas(cols, rows)
    span_x = max(x_max - x_min, 1e-9)
    px_w, py_h = cols * 2 - 1, rows * 4 - 1

    def px(x: float) -> int:
        return round((x - x_min) / span_x * px_w)

    def py(y: float) -> int:
        return py_h - round(min(max(y, 0.0), y_hi) / y_hi * py_h)

    for rule in rules:  # rules first: data drawn later wins the cell colour
        if rule.vertical:
            if x_min <= rule.at <= x_max:
                col = px(rule.at)
                for dot_y in range(0, py_h + 1, 2):
                    canvas.dot(col, dot_y, rule.style)
        else:
            row = py(rule.at)
            for dot_x in range(0, px_w + 1, 3):
                canvas.dot(dot_x, row, rule.style)
    for ln in lines:
        prev: tuple[int, int] | None = None
        for x, y in zip(ln.xs, ln.ys):
            if y is None:
                prev = None
                continue
            pt = (px(x), py(y))
            if pt == prev:  # dense series: many samples share a dot
                continue
            if prev is None:
                canvas.dot(pt[0], pt[1], ln.style)
            else:
                canvas.segment(prev[0], prev[1], pt[0], pt[1], ln.style)
            prev = pt

    mid_row = (rows - 1) // 2
    out: list[list[Run]] = []
    for r in range(rows):
        label = labels[0] if r == 0 else labels[1] if r == mid_row and rows >= 5 else (
            labels[2] if r == rows - 1 else "")
        out.append([(label.rjust(lw) + ("┤" if label else "│"), AXIS_STYLE),
                    *canvas.row_runs(r)])
    left, mid, right = fmt_duration(x_min), fmt_duration((x_min + x_max) / 2), fmt_duration(x_max)
    axis = [" "] * cols
    for pos, s in ((0, left), ((cols - len(mid)) // 2, mid), (cols - len(right), right)):
        if 0 <= pos and pos + len(s) <= cols and all(ch == " " for ch in axis[max(pos - 1, 0):
                                                                           pos + len(s) + 1]):
            axis[pos:pos + len(s)] = list(s)
    out.append([(" " * lw + "└" + "".join(axis), AXIS_STYLE)])
    return out
