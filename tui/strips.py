"""Styled runs -> Textual strips, for the Line-API widgets (plots, worker table): drawing
segments directly skips Rich's text layout, which dominated redraw cost at max speed."""
from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

Run = tuple[str, str]  # (characters, Rich style definition)


class StripMaker:
    """Caches parsed styles on top of one base style (the widget's colours)."""

    def __init__(self, base: Style) -> None:
        self.base = base
        self._styles: dict[str, Style] = {}

    def style(self, name: str) -> Style:
        st = self._styles.get(name)
        if st is None:
            st = self.base + Style.parse(name) if name else self.base
            self._styles[name] = st
        return st

    def strip(self, runs: Sequence[Run], width: int, pad: Style | None = None) -> Strip:
        """The runs as one strip of exactly `width` cells, padded in `pad` (default: base)."""
        segs = [Segment(text, self.style(name)) for text, name in runs if text]
        return Strip(segs).adjust_cell_length(width, self.base if pad is None else pad)


class PaintStrips:
    """A Line-API widget's StripMaker, on the widget's current style. `Widget.rich_style` walks
    the styles of every ancestor, so the widget reads it once per paint (`begin_paint()` from
    its render_lines), not once per line; the parsed styles live as long as that style does."""

    def __init__(self, widget: Widget) -> None:
        self._widget = widget
        self._maker: StripMaker | None = None

    def begin_paint(self) -> None:
        base = self._widget.rich_style
        if self._maker is None or self._maker.base != base:
            self._maker = StripMaker(base)

    @property
    def maker(self) -> StripMaker:
        """For render_line (a line drawn outside a paint still gets the current style)."""
        if self._maker is None:
            self.begin_paint()
        assert self._maker is not None
        return self._maker
