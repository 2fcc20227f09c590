"""The TUI's pure parts: pacing, chunk sizing, rolling series, the plotext plot renderer, and
the engine driver under a fake wall clock (no Textual app involved)."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest

from helpers import SYNTH, TINY, aio
from dynosim.replay import RunOptions, build_replay
from tui.runner import PacedRunner
from tui.pacing import MAX_SPEED, SPEEDS, ChunkSizer, PaceClock, faster, slower, speed_label
import tui.plots as plots
from tui.plots import (AXIS_STYLE, Line, Rule, ansi_runs, fmt_duration, fmt_value, legend,
                        nice_ceiling, render_plot, thin_run, unbroken_runs)
from tui.series import LatencySeries, WorkerCounts, nearest_rank
from tui.status_bar import fmt_clock



# ---- pacing -------------------------------------------------------------------------------------
def test_speed_ladder() -> None:
    assert [speed_label(s) for s in SPEEDS] == ["1x", "10x", "100x", "1000x", "10000x", "max"]
    assert faster(1.0) == 10.0 and faster(10000.0) == MAX_SPEED and faster(MAX_SPEED) == MAX_SPEED
    assert slower(MAX_SPEED) == 10000.0 and slower(10.0) == 1.0 and slower(1.0) == 1.0


def test_clock_is_anchored_not_accumulated() -> None:
    clock = PaceClock(speed=1.0)
    clock.resume(wall=100.0, sim_ms=500.0)
    # Jittery ticks do not matter: the target depends only on the wall time asked about.
    rng = random.Random(1)
    wall = 100.0
    for _ in range(5000):
        wall += rng.uniform(0.001, 0.05)
        clock.target_ms(wall)
    assert clock.target_ms(wall) == pytest.approx(500.0 + (wall - 100.0) * 1000.0, abs=1e-6)
    clock.set_speed(10.0, wall, clock.target_ms(wall))
    base = clock.target_ms(wall)
    assert clock.target_ms(wall + 2.0) == pytest.approx(base + 20_000.0)
    clock.pause()
    assert clock.target_ms(wall + 50.0) == base
    clock.set_speed(MAX_SPEED, wall, base)
    clock.resume(wall, base)
    assert math.isinf(clock.target_ms(wall))


def test_chunk_sizer_converges_to_budget() -> None:
    sizer = ChunkSizer(budget_s=0.02, steps=1)  # 20 ms chunks
    for _ in range(40):
        sizer.observe(sizer.steps, sizer.steps * 10e-6)  # 10 us per instant
    assert sizer.steps == pytest.approx(2000, rel=0.05)
    sizer.observe(sizer.steps, sizer.steps * 1e-3)  # suddenly 100x dearer: halves at most
    assert sizer.steps >= 900


def test_chunk_sizer_growth_is_capped() -> None:
    # Nearly free instants (a replay's quiet start) must not grow chunks without bound: the
    # next busy stretch would then run one huge chunk past every frame and key.
    sizer = ChunkSizer()
    for _ in range(40):
        sizer.observe(sizer.steps, sizer.steps * 0.2e-6)
    assert sizer.steps == sizer.max_steps <= 4096


# ---- series -------------------------------------------------------------------------------------
@dataclass
class Rows:
    status: list[int] = field(default_factory=list)
    arrival_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    last_token_ms: list[float] = field(default_factory=list)
    terminal_ms: list[float] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)

    def add(self, arrival: float, ttft: float, itl: float, n_out: int, status: int = 0) -> None:
        first = arrival + ttft
        last = first + itl * (n_out - 1)
        self.status.append(status)
        self.arrival_ms.append(arrival)
        self.first_token_ms.append(first)
        self.last_token_ms.append(last)
        self.terminal_ms.append(last)
        self.output_tokens.append(n_out)


def make_rows(n: int, seed: int = 3) -> Rows:
    rng = random.Random(seed)
    rows = Rows()
    t = 0.0
    for _ in range(n):
        t += rng.expovariate(1 / 50.0)
        rows.add(t, rng.uniform(10, 500), rng.uniform(5, 40), rng.randint(1, 60))
    order = sorted(range(n), key=lambda i: rows.terminal_ms[i])
    return Rows(*[[getattr(rows, f)[i] for i in order] for f in (
        "status", "arrival_ms", "first_token_ms", "last_token_ms", "terminal_ms",
        "output_tokens")])


def test_nearest_rank() -> None:
    vals = [float(v) for v in range(1, 11)]
    assert nearest_rank(vals, 50) == 5 and nearest_rank(vals, 90) == 9
    assert nearest_rank([7.0], 90) == 7.0


def test_latency_window_values() -> None:
    rows = Rows()
    for i in range(10):  # one request finishing every 100 ms, ttft = 10 * (i + 1)
        rows.add(arrival=i * 100.0, ttft=10.0 * (i + 1), itl=0.0, n_out=1)
    s = LatencySeries(window_ms=500.0, base_period_ms=250.0)
    s.ingest(rows, 1000.0)
    assert s.ttft.t_ms == [250.0, 500.0, 750.0, 1000.0]
    # At t=1000 the window (500, 1000] holds ttfts 60..100 (terminal 560..1000)... nearest rank.
    window = sorted(rows.first_token_ms[i] - rows.arrival_ms[i] for i in range(10)
                    if 500.0 < rows.terminal_ms[i] <= 1000.0)
    assert s.ttft.p50[-1] == nearest_rank(window, 50)
    assert s.ttft.p90[-1] == nearest_rank(window, 90)
    assert s.itl.p50 == [None] * 4  # single-token requests have no ITL


def test_series_do_not_depend_on_refresh_cadence() -> None:
    """Sampling on a simulated-time grid: many small ingests == one big ingest."""
    rows = make_rows(3000)
    end = rows.terminal_ms[-1]
    one = LatencySeries(max_points=100)
    one.ingest(rows, end)
    many = LatencySeries(max_points=100)
    rng = random.Random(7)
    t = 0.0
    partial = Rows()
    i = 0
    while t < end:
        t = min(end, t + rng.uniform(1.0, 5000.0))
        while i < len(rows.terminal_ms) and rows.terminal_ms[i] <= t:
            for f in ("status", "arrival_ms", "first_token_ms", "last_token_ms", "terminal_ms",
                      "output_tokens"):
                getattr(partial, f).append(getattr(rows, f)[i])
            i += 1
        many.ingest(partial, t)
    assert many.stride == one.stride
    assert len(one.ttft.t_ms) <= 100
    for a, b in ((one.ttft, many.ttft), (one.itl, many.itl)):
        assert a.t_ms == b.t_ms and a.p50 == b.p50 and a.p90 == b.p90


def test_rejected_rows_are_skipped() -> None:
    rows = Rows()
    rows.add(0.0, 50.0, 10.0, 5)
    rows.add(0.0, 999.0, 10.0, 5, status=1)
    s = LatencySeries(window_ms=1000.0)
    s.ingest(rows, 1000.0)
    assert s.ttft.p90[-1] == 50.0


def test_worker_counts_record_changes_only() -> None:
    wc = WorkerCounts()
    assert wc.record(0.0, 0, 4, 0)
    assert not wc.record(100.0, 0, 4, 0)
    assert wc.record(200.0, 1, 4, 0)
    xs, ys = wc.steps(wc.starting, 500.0)
    assert xs == [0.0, 200.0, 200.0, 500.0] and ys == [0.0, 0.0, 1.0, 1.0]


# ---- plots (plotext) ---------------------------------------------------------------------------
def sawtooth() -> tuple[list[float], list[float | None]]:
    xs = [float(i) for i in range(0, 10_001, 100)]
    ys: list[float | None] = [50.0 + (i % 7) * 10 for i in range(len(xs))]
    ys[30:40] = [None] * 10  # an empty window: the line breaks
    return xs, ys


def cells(text: str, style: str) -> str:
    """The characters of `text` drawn in `style`."""
    return "".join(text.plain[s.start:s.end] for s in text.spans if str(s.style) == style)


def test_plot_dimensions_axes_and_markers() -> None:
    xs, ys = sawtooth()
    for width, height in ((40, 12), (24, 7), (80, 30)):
        text = render_plot(width, height, [Line(xs, ys, "green")], 10_000.0)
        lines = text.plain.split("\n")
        assert len(lines) == height and all(len(ln) == width for ln in lines), (width, height)
        assert lines[0].lstrip().startswith("150┤")  # nice ceiling of max 110 x 1.05
        assert lines[-3].lstrip().startswith("0┤") and lines[-2].lstrip().startswith("└")
        assert lines[-1].split() == ["0s", "5.0s", "10s"]  # x_min, middle, x_max as durations
        if height >= 12:
            assert any(ln.lstrip().startswith("75┤") for ln in lines)  # the middle y label
        data = cells(text, "color(2)")  # the line, in green (ANSI 2), drawn with braille dots
        assert data and all(0x2800 < ord(ch) <= 0x28FF for ch in data.replace(" ", ""))
        frame = cells(text, AXIS_STYLE)  # the uncoloured frame and labels are dimmed
        assert "┤" in frame and "└" in frame and "s" in frame
    assert render_plot(11, 12, [Line(xs, ys, "green")], 10_000.0).plain == ""  # too narrow
    assert render_plot(40, 3, [Line(xs, ys, "green")], 10_000.0).plain == ""  # too low


def test_plot_rules_sla_and_scale_events() -> None:
    xs, ys = sawtooth()
    plain = render_plot(40, 12, [Line(xs, ys, "green")], 10_000.0).plain
    assert "┈" not in plain and "┊" not in plain
    text = render_plot(40, 12, [Line(xs, ys, "green")], 10_000.0,
                       [Rule(120.0, "red"), Rule(5000.0, "magenta", vertical=True),
                        Rule(20_000.0, "magenta", vertical=True)])  # past x_max: not drawn
    lines = text.plain.split("\n")
    sla = [ln for ln in lines if ln.count("┈") > 10]
    assert len(sla) == 1
    assert "┈" in cells(text, "color(1)")  # the SLA line, dotted red
    assert cells(text, "color(5)").count("┊") >= 5  # one dotted magenta scale line
    assert all(ln.count("┊") <= 1 for ln in lines)
    # The SLA raises the y range when it is above the data.
    high = render_plot(40, 12, [Line(xs, ys, "green")], 10_000.0, [Rule(400.0, "red")])
    assert high.plain.split("\n")[0].lstrip().startswith("500┤")


def test_plot_is_deterministic_and_independent() -> None:
    """Each plot starts from a cleared plotext figure: the same input gives the same output,
    whatever was plotted before (the three widgets share plotext's figure)."""
    xs, ys = sawtooth()
    args = (40, 12, [Line(xs, ys, "green"), Line(xs, [1.0] * len(xs), "yellow")], 10_000.0,
            [Rule(100.0, "red")])
    first = render_plot(*args)
    render_plot(60, 20, [Line([0.0, 1.0], [5.0, 3.0], "cyan")], 2.0,
                [Rule(0.5, "magenta", vertical=True)], y_floor=10.0)
    again = render_plot(*args)
    assert again.plain == first.plain and again.spans == first.spans
    assert render_plot(40, 12, [], 10_000.0).plain.split("\n")[0].lstrip().startswith("1┤")


def test_unbroken_runs_and_ansi_runs() -> None:
    assert unbroken_runs([0, 1, 2, 3, 4, 5], [1.0, None, None, 2.0, 3.0, None]) == [
        [(0, 1.0)], [(3, 2.0), (4, 3.0)]]
    assert unbroken_runs([0, 1], [None, None]) == []
    rows = ansi_runs("\x1b[0m 5┤\x1b[0m\x1b[38;5;2m\x1b[48;5;15m⠉⠉\x1b[0m\x1b[0m \x1b[0m\n"
                     "\x1b[2m└\x1b[38;5;1m┈\x1b[0m\n")
    assert rows == [[(" 5┤", AXIS_STYLE), ("⠉⠉", "color(2)"), (" ", AXIS_STYLE)],
                    [("└", AXIS_STYLE), ("┈", "dim color(1)")]]


def test_thin_run_keeps_what_the_columns_can_show() -> None:
    run = [(float(i), float((i * 37) % 101)) for i in range(1000)]
    thin = thin_run(run, 0.0, 1000.0, 20)
    assert len(thin) <= 2 * 20 + 2
    assert thin[0] == run[0] and thin[-1] == run[-1]  # where it starts and its current value
    assert [x for x, _ in thin] == sorted(x for x, _ in thin)
    for col in range(20):  # each column's extremes survive (spikes must stay visible)
        ys = [y for x, y in run if int(x / 50) == col]
        kept = [y for x, y in thin if int(x / 50) == col]
        assert max(kept) == max(ys) and min(kept) == min(ys)
    short = run[:30]
    assert thin_run(short, 0.0, 1000.0, 20) is short  # nothing to gain


def test_thinned_plot_marks_the_same_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    # A noisy series as the plot draws it (thinned) and drawn from every point: the same
    # cells carry a mark (braille detail inside a cell may differ), and the same axis labels.
    xs = [float(i) for i in range(2000)]
    ys = [float((i * 7919) % 97) for i in range(2000)]
    lines = [Line(xs, ys, "green")]
    thin = render_plot(30, 10, lines, 2000.0).plain
    monkeypatch.setattr(plots, "thin_run", lambda run, *a: run)
    full = render_plot(30, 10, lines, 2000.0).plain

    def marked(text: str) -> list[list[bool]]:
        return [[0x2800 < ord(c) <= 0x28FF for c in row] for row in text.split("\n")]

    assert marked(thin) == marked(full)
    assert [r[:5] for r in thin.split("\n")] == [r[:5] for r in full.split("\n")]


def test_formatters() -> None:
    assert [fmt_value(v) for v in (0, 0.25, 3.5, 42, 350, 1200, 15000, 1.5e6)] == [
        "0", "0.25", "3.5", "42", "350", "1.2k", "15k", "1.5M"]
    assert [fmt_duration(ms) for ms in (0, 850, 6400, 95_000, 1_020_000, 5.4e6)] == [
        "0s", "850ms", "6.4s", "95s", "17m", "90m"]
    assert nice_ceiling(4.2) == 5 and nice_ceiling(1234) == 1500 and nice_ceiling(0) == 1
    assert fmt_clock(3_723_004.4) == "1:02:03.004"


# ---- driver -------------------------------------------------------------------------------------
class FakeWall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_real_time_pacing_has_no_drift() -> None:
    """A minute at 1x under jittery ticks lands on exactly one simulated minute."""
    wall = FakeWall()
    d = PacedRunner(build_replay(RunOptions(trace=SYNTH, num_workers=4)), wall=wall)
    d.play()
    rng = random.Random(5)
    while wall.t < 60.0:
        wall.t += rng.uniform(0.02, 0.06)
        d.tick(budget_s=1.0)  # the fake wall does not move inside a tick: never engine-bound
        assert d.sim.now <= d.clock_ms + 1e-9  # never ahead of the clock
        assert d.sim.peek() > d.clock_ms  # every due instant was run
    assert d.clock_ms == pytest.approx(wall.t * 1000.0, abs=1e-6)


def test_driver_step_pause_speed_and_finish() -> None:
    wall = FakeWall()
    d = PacedRunner(build_replay(RunOptions(trace=TINY, num_workers=2)), wall=wall)
    assert not d.running and d.clock_ms == 0.0
    assert d.step() and d.sim.snapshot().arrived > 0 and d.clock.paused
    t1 = d.clock_ms
    d.play()
    wall.t += 0.5
    d.tick(1.0)
    assert d.clock_ms == pytest.approx(t1 + 500.0)
    d.set_speed(10.0)
    wall.t += 0.1
    d.tick(1.0)
    assert d.clock_ms == pytest.approx(t1 + 1500.0)
    d.set_speed(MAX_SPEED)
    while d.running:
        d.tick(1.0)
    assert d.finished and d.clock.paused and d.clock_ms == d.sim.now
    assert not d.step()
    assert not d.next_decision()  # no planner


def test_border_label_markup_uses_colours_textual_parses() -> None:
    # A colour Textual cannot parse is silently dropped from the label, and costs a slow
    # "did you mean" search on every redraw of the border.
    import re

    from textual.color import Color

    from tui.worker_table import KV_LEGEND

    labels = [KV_LEGEND, legend(True, True), "[green]━ active[/] [cyan]━ starting[/]"]
    tags = {t for label in labels for t in re.findall(r"\[([^\]/]+)\]", label)}
    assert tags
    for tag in tags:
        for word in tag.split():
            if word not in {"bold", "dim", "italic", "underline", "reverse", "strike"}:
                Color.parse(word)  # raises ColorParseError for e.g. "grey35"


def test_header_names_a_non_default_backend() -> None:
    from tui.status_bar import RunStatus, render_status
    base = dict(clock_ms=0.0, speed=1.0, paused=False, finished=False, lagging=False, total=1,
                arrived=0, in_flight=0, completed=0, rejected=0, starting=0, active=1,
                draining=0)
    assert "backend sglang" in render_status(RunStatus(**base, backend="sglang"), 200).plain
    assert "backend" not in render_status(RunStatus(**base), 200).plain


def test_header_lines_are_cut_with_an_ellipsis() -> None:
    from tui.status_bar import ellipsize
    runs = [("abc", "x"), ("▶de", "y")]  # ▶ is one cell
    assert ellipsize(runs, 6) == runs
    assert ellipsize(runs, 5) == [("abc", "x"), ("▶", "y"), ("…", "y")]
    assert ellipsize(runs, 3) == [("ab", "x"), ("…", "x")]


@aio
async def test_header_lines_on_screen_are_its_text() -> None:
    # The status bar draws its runs straight into strips; what it shows must be render()'s
    # text, cut with an ellipsis where the terminal is narrower than a line.
    from tui.app import DynosimApp

    for width in (160, 60):
        app = DynosimApp(build_replay(RunOptions(trace=TINY, num_workers=4)), paused=True)
        async with app.run_test(size=(width, 24)) as pilot:
            await pilot.pause()
            bar = app.main_screen.status
            shown = [bar.render_line(y).text for y in (0, 1)]
            want = bar.render().plain.split("\n")
            inner = bar.content_size.width
            assert inner == width - 2  # padding 0 1
            for got, line in zip(shown, want, strict=True):
                if len(line) <= inner:
                    assert got == line.ljust(inner)
                else:
                    assert got == line[: inner - 1] + "…"
            cut = any(len(line) > inner for line in want)
            assert cut == (width == 60)


@aio
async def test_line_widgets_repaint_in_a_changed_style() -> None:
    # The status bar and the worker table read their style once per paint (PaintStrips):
    # parsed styles are reused while it stands, and a changed style (a theme, a CSS class)
    # reaches the next paint's lines instead of the cached one.
    from rich.color import Color
    from tui.app import DynosimApp

    app = DynosimApp(build_replay(RunOptions(trace=TINY, num_workers=4)), paused=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        screen = app.main_screen
        for widget, line in ((screen.status, 0), (screen.worker_table, 1)):
            maker = widget._paint.maker
            widget.refresh()
            await pilot.pause()
            assert widget._paint.maker is maker  # same style: same parsed styles
            widget.styles.background = "#123456"
            await pilot.pause()
            assert widget._paint.maker is not maker
            pad = list(widget.render_line(line))[-1].style
            assert pad is not None and pad.bgcolor == Color.parse("#123456")
