"""One row per worker: pool, state, queue depths, a KV-cache bar (active vs cached-inactive vs
free blocks, or SGLang pages: held by requests vs unlocked in the radix tree vs free) and in-flight prefill tokens. A Line-API scroll view with a sticky header: it
scrolls when workers are many and redraws cheaply (only visible rows, no text layout)."""
from __future__ import annotations

from collections.abc import Sequence

from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.snapshot import WorkerSnapshot
from tui.strips import PaintStrips, Run

POOLS = ("agg", "prefill", "decode")  # engine.worker.POOL_*
STATES = ("starting", "active", "draining", "stopped")  # engine.worker.STATE_*
STATE_STYLES = ("cyan", "green", "magenta", "dim")
ACTIVE_STYLE, CACHED_STYLE, FREE_STYLE = "green", "blue", "grey35"
HEADER_STYLE = "bold"
# Border labels are Textual markup, which cannot parse Rich's "grey35" (it then searches for a
# suggestion on every redraw, ~3 ms): the free glyph takes the label's own colour.
KV_LEGEND = f"[{ACTIVE_STYLE}]█[/] active  [{CACHED_STYLE}]▓[/] cached  ░ free"

# (label, width, right-aligned); the KV column takes the width that is left.
COLUMNS = (("#", 4, True), ("pool", 7, False), ("state", 8, False), ("wait", 6, True),
           ("run", 6, True), ("KV cache", 0, False), ("prefill tok", 12, True))
KV_COL = 5
GAP = 2  # spaces between columns
PCT_W = 5  # " 100%" after the bar
MIN_BAR, MAX_BAR = 8, 60


def bar_width_for(table_width: int) -> int:
    fixed = sum(w for _, w, _ in COLUMNS) + GAP * (len(COLUMNS) - 1) + PCT_W + 1
    return max(MIN_BAR, min(MAX_BAR, table_width - fixed))


def kv_bar(active: int, inactive: int, total: int, width: int) -> list[Run]:
    """Active blocks solid, cached-but-inactive (reusable prefixes) shaded, free light."""
    total = max(total, 1)
    n_act = min(width, round(active / total * width))
    n_cached = min(width - n_act, round(inactive / total * width))
    pct_style = "bold red" if active * 10 >= total * 9 else "bold"
    return [("█" * n_act, ACTIVE_STYLE), ("▓" * n_cached, CACHED_STYLE),
            ("░" * (width - n_act - n_cached), FREE_STYLE),
            (f"{100.0 * active / total:4.0f}%", pct_style)]


def _cell(text: str, width: int, right: bool) -> str:
    text = text[:width]
    return text.rjust(width) if right else text.ljust(width)


def header_runs(bar_width: int) -> list[Run]:
    cells = []
    for i, (label, width, right) in enumerate(COLUMNS):
        cells.append(_cell(label, width or bar_width + PCT_W, right and i != KV_COL))
    return [((" " * GAP).join(cells), HEADER_STYLE)]


def worker_runs(w: WorkerSnapshot, bar_width: int) -> list[Run]:
    known = 0 <= w.state < len(STATES)
    values = (str(w.idx), POOLS[w.kind] if 0 <= w.kind < len(POOLS) else str(w.kind),
              STATES[w.state] if known else str(w.state), f"{w.waiting:,}", f"{w.running:,}")
    styles = ("dim", "", STATE_STYLES[w.state] if known else "", "", "")
    gap = (" " * GAP, "")
    runs: list[Run] = []
    for (label, width, right), value, style in zip(COLUMNS, values, styles):
        runs += [(_cell(value, width, right), style), gap]
    runs += kv_bar(w.active_blocks, w.inactive_blocks, w.total_blocks, bar_width)
    runs += [gap, (_cell(f"{w.prefill_tokens:,}", COLUMNS[-1][1], True), "")]
    return runs


class WorkerTable(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    WorkerTable { height: auto; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._workers: Sequence[WorkerSnapshot] = ()
        self._paint = PaintStrips(self)

    def on_mount(self) -> None:
        self.border_title = "Workers"
        self.border_subtitle = KV_LEGEND

    def update_workers(self, workers: Sequence[WorkerSnapshot]) -> None:
        self._workers = workers
        # +1: the header row, which render_line keeps on top whatever the scroll. Only the row
        # count sets the virtual size (rows are cut to the visible width, there is no horizontal
        # scroll): a width here would change after the first layout and force another one.
        size = Size(1, len(workers) + 1)
        if size != self.virtual_size:
            self.virtual_size = size
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._paint.begin_paint()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        bar = bar_width_for(width)
        maker = self._paint.maker
        if y == 0:
            return maker.strip(header_runs(bar), width)
        i = self.scroll_offset.y + y - 1
        if i >= len(self._workers):
            return Strip.blank(width, maker.base)
        return maker.strip(worker_runs(self._workers[i], bar), width)
