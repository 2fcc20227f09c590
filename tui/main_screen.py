"""The live view: status header, worker table, plots, planner panel (when there is a planner).

The engine runs on this screen's event loop in bounded slices (see `_pump`): no thread touches
the engine, so every view reads a consistent state. Views redraw on their own cadence (a few
times a second) from cheap snapshots and decimated series, never per engine event.
"""
from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Final

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.worker import Worker

from dynosim.outputs.report import Report
from engine.pool import POOL_AGG, STATE_ACTIVE, STATE_DRAINING, STATE_STARTING
from tui.dialogs import ConfirmQuit, FinishedDialog, HelpScreen
from tui.runner import PacedRunner
from tui.export import default_export_dir, export_report
from tui.footer import QuietFooter
from tui.messages import ExportDone, ExportFailed
from tui.pacing import MAX_SPEED, faster, slower
from tui.planner_panel import PlannerPanel
from tui.plots import PlotView, latency_lines, legend, rules_for, window_title, worker_lines
from tui.series import LatencySeries, WorkerCounts
from tui.status_bar import RunStatus, StatusBar, fmt_clock
from tui.worker_table import WorkerTable

# Wall-time budgets (seconds). Paced runs tick at PACED_TICK_S. At max speed the engine runs
# until the next header frame is due (at least ENGINE_SLICE_MIN_S, at most ENGINE_SLICE_MAX_S, so
# a key waits at most that long), then the event loop gets its turns (input, timers, repaint).
ENGINE_SLICE_MIN_S: Final = 0.005
ENGINE_SLICE_MAX_S: Final = 0.04
# Textual paints refreshed widgets on its screen-update timer (60 Hz grid): after a redraw the
# next slice lasts one timer period, so the paint lands then rather than a long slice later.
PAINT_WAIT_S: Final = 1 / 60
PACED_TICK_S: Final = 1 / 30
PACED_BUDGET_S: Final = 0.025
# Redraw cadences: the header is the "frame" (>= 10/s); tables and plots cost more.
STATUS_EVERY_S: Final = 0.066  # checked once per tick, so up to a tick late: >= 10/s
STATUS_EVERY_MAX_S: Final = 0.08  # at max speed (slices end when it is due): ~12/s
TABLE_EVERY_S: Final = 0.2
PLOTS_EVERY_S: Final = 0.35
# At max speed every millisecond of drawing is a millisecond the engine does not run: the table
# and plots redraw less often, and the plots (plotext: tens of ms for the three) at most so
# often that drawing them (and reading the metrics they plot) takes PLOTS_MAX_SHARE of the wall
# time, however slow the machine.
TABLE_EVERY_MAX_S: Final = 0.5
PLOTS_EVERY_MAX_S: Final = 1.0
PLOTS_MAX_SHARE: Final = 0.02
PLOTS_EVERY_LONGEST_S: Final = 3.0
# Event-loop turns given back after a max-speed slice that redrew something: a repaint needs a
# few hops (idle -> update timer -> compositor), one turn each; other slices give back one turn
# (input, timers, a paint that came due).
YIELD_TURNS: Final = 3


@dataclass
class ExportSettings:
    base_dir: str = "."
    report_json: str | None = None  # also written on export, as the headless run would
    report_jsonl: str | None = None
    inputs: tuple[tuple[str, str | None], ...] = ()  # the run's input files (never overwritten)


class MainScreen(Screen[None]):
    BINDINGS = [
        # priority: no focused widget (the worker table) may take the run controls.
        Binding("space", "toggle_pause", "Pause", key_display="␣", priority=True),
        Binding("n", "step", "Step", priority=True),
        Binding("d", "next_decision", "Decide", priority=True),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", priority=True,
                group=Binding.Group("Speed", compact=True)),
        Binding("minus", "slower", "Slower", key_display="-", priority=True,
                group=Binding.Group("Speed", compact=True)),
        Binding("r", "real_time", "1x", priority=True),
        Binding("m", "max_speed", "Max", priority=True),
        Binding("e", "export", "Export", priority=True),
        Binding("question_mark", "help", "Help", key_display="?", priority=True),
        Binding("q", "quit", "Quit", priority=True),
    ]

    def __init__(self, driver: PacedRunner, export: ExportSettings,
                 warnings: tuple[str, ...] = (), autoplay: bool = True) -> None:
        super().__init__()
        self.driver = driver
        self.autoplay = autoplay
        self.export_settings = export
        self.warnings = warnings
        self.latency = LatencySeries()
        self.worker_counts = WorkerCounts()
        self._last_status = self._last_table = self._last_plots = -1e9
        self._plots_prep_s = 0.0
        self._redrawn = False  # a view was refreshed and has not been given its paint turns yet
        self._wake = asyncio.Event()
        self._exporting = False
        self._resume_after_export = False
        self._quit_after_export = False
        self._finish_announced = False
        self._pump_worker: Worker[None] | None = None
        self._report: tuple[float, Report] | None = None  # cached by engine wall time
        # The views, held directly: the engine loop updates them without DOM queries (and
        # harmlessly while the screen is being torn down).
        self.status = StatusBar(id="status")
        self.worker_table = WorkerTable(id="workers")
        backend = driver.replay.backend()
        self._backend = "" if backend == "vllm" else backend  # the header names other backends
        self.ttft_plot = PlotView(window_title("TTFT", self.latency),
                                  legend(self._sla(True) is not None, False), id="ttft")
        self.itl_plot = PlotView(window_title("ITL", self.latency),
                                 legend(self._sla(False) is not None, False), id="itl")
        self.count_plot = PlotView("Workers", "[green]━ active[/] [cyan]━ starting[/]",
                                   id="worker-count")
        planner = driver.planner
        self.planner_panel = PlannerPanel(planner, id="planner") if planner is not None else None

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield self.status
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield self.worker_table
                with Horizontal(id="plots"):
                    yield self.ttft_plot
                    yield self.itl_plot
                    yield self.count_plot
            if self.planner_panel is not None:
                yield self.planner_panel
        yield QuietFooter()

    def _sla(self, ttft: bool) -> float | None:
        """SLA lines: the planner's targets when there is one, else the report's --sla-* flags."""
        planner = self.driver.planner
        if planner is not None:
            return planner.sla_ttft_ms if ttft else planner.sla_itl_ms
        o = self.driver.replay.options
        return o.sla_ttft_ms if ttft else o.sla_itl_ms

    def on_unmount(self) -> None:
        if self._pump_worker is not None:
            self._pump_worker.cancel()
        gc.unfreeze()  # collectable again (tests and benches open many apps in one process)

    def on_mount(self) -> None:
        # The KV bar counts SGLang pages or vLLM/TRT-LLM blocks: the title says which.
        if self.driver.replay.backend() != "vllm":
            self.worker_table.border_title = f"Workers (KV in {self.driver.replay.kv_unit()})"
        for w in self.warnings:
            self.notify(w, severity="warning", timeout=8)
        if self.autoplay:
            self.driver.play()
        self.refresh_views(force=True)
        # The replay's and the app's start-up objects (the trace, the engine, the widgets) live
        # as long as the run: out of the cyclic collector's scans, whose full passes over them
        # took ~80 ms inside the first engine slices (a frame and any key missed).
        gc.freeze()
        # The coroutine function, not a coroutine: a worker cancelled before its task starts
        # then leaves no coroutine behind that was never awaited.
        self._pump_worker = self.run_worker(self._pump, name="engine", group="engine",
                                            exclusive=True)

    # ---- the engine loop ----------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def _pump(self) -> None:
        driver = self.driver
        while True:
            if not driver.running or self._exporting:
                self.refresh_views(force=True)
                self._announce_finish()
                await self._wake.wait()
                self._wake.clear()
                continue
            t0 = time.perf_counter()
            if driver.clock.is_max:
                # After a redraw (by the last slice or a key's action) a short slice, then the
                # turns the paint needs, so it lands within a timer period, not a slice later.
                paint_wait = self._redrawn
                self._redrawn = False
                due = self._last_status + STATUS_EVERY_MAX_S - t0
                driver.tick(PAINT_WAIT_S if paint_wait
                            else min(ENGINE_SLICE_MAX_S, max(ENGINE_SLICE_MIN_S, due)))
                self.refresh_views()
                for _ in range(YIELD_TURNS if paint_wait or self._redrawn else 1):
                    await asyncio.sleep(0)  # input, timers, repaint
            else:
                driver.tick(PACED_BUDGET_S)
                self.refresh_views()
                await asyncio.sleep(max(0.0, PACED_TICK_S - (time.perf_counter() - t0)))

    def refresh_views(self, force: bool = False) -> bool:
        """Redraw what is due (everything when forced); True when anything was."""
        now = time.perf_counter()
        driver = self.driver
        snap = None
        flat_out = driver.clock.is_max and driver.running
        drew = force
        if force or now - self._last_status >= (STATUS_EVERY_MAX_S if flat_out
                                                else STATUS_EVERY_S):
            self._last_status = now
            snap = driver.sim.snapshot()
            by_state = [0, 0, 0, 0]
            for w in snap.workers:
                by_state[w.state] += 1
            self.worker_counts.record(driver.clock_ms, by_state[STATE_STARTING],
                                      by_state[STATE_ACTIVE], by_state[STATE_DRAINING])
            self.status.show(RunStatus(
                clock_ms=driver.clock_ms, speed=driver.clock.speed, paused=driver.clock.paused,
                finished=driver.finished, lagging=driver.lagging and driver.running,
                total=snap.total_requests, arrived=snap.arrived, in_flight=snap.in_flight,
                completed=snap.completed, rejected=snap.rejected,
                starting=by_state[STATE_STARTING], active=by_state[STATE_ACTIVE],
                draining=by_state[STATE_DRAINING],
                router_hit_rate=snap.router_hit_rate,  # -1: no KV router
                transfers=(snap.transfers_in_flight
                           if any(w.kind != POOL_AGG for w in snap.workers) else -1),
                backend=self._backend))
            drew = True
        if force or now - self._last_table >= (TABLE_EVERY_MAX_S if flat_out else TABLE_EVERY_S):
            self._last_table = now
            snap = snap or driver.sim.snapshot()
            self.worker_table.update_workers(snap.workers)
            drew = True
        if force or now - self._last_plots >= self._plots_every(flat_out):
            self._last_plots = now
            self._refresh_plots()
            drew = True
        self._redrawn = self._redrawn or drew
        return drew

    def _plots_every(self, flat_out: bool) -> float:
        if not flat_out:
            return PLOTS_EVERY_S
        drawn = (self._plots_prep_s + self.ttft_plot.last_draw_s + self.itl_plot.last_draw_s
                 + self.count_plot.last_draw_s)
        return min(PLOTS_EVERY_LONGEST_S, max(PLOTS_EVERY_MAX_S, drawn / PLOTS_MAX_SHARE))

    def _refresh_plots(self) -> None:
        t0 = time.perf_counter()
        clock = self.driver.clock_ms
        self.latency.ingest(self.driver.sim.metrics, clock)
        planner = self.driver.planner
        scale_times = [ev.t_ms for ev in planner.scale_events] if planner is not None else []
        with self.app.batch_update():
            for view, name, q, sla in ((self.ttft_plot, "TTFT", self.latency.ttft,
                                        self._sla(True)),
                                       (self.itl_plot, "ITL", self.latency.itl,
                                        self._sla(False))):
                view.border_title = window_title(name, self.latency)
                view.border_subtitle = legend(sla is not None, bool(scale_times))
                view.plot(latency_lines(q), clock, rules_for(sla, scale_times))
            self.count_plot.plot(worker_lines(self.worker_counts, clock), clock,
                                 rules_for(None, scale_times), y_floor=1.0)
            if self.planner_panel is not None:
                self.planner_panel.update_events()
        self._plots_prep_s = time.perf_counter() - t0  # reading the metrics, building the lines

    def _announce_finish(self) -> None:
        if not self.driver.finished or self._finish_announced:
            return
        self._finish_announced = True
        s = self.report().summary
        lines = Text(f"{s['completed_requests']} of {s['num_requests']} requests completed in "
                     f"{fmt_clock(self.driver.clock_ms)} of simulated time.\n")
        for metric, name in (("ttft", "TTFT"), ("itl", "ITL")):
            p50, p90 = s.get(f"median_{metric}_ms"), s.get(f"p90_{metric}_ms")
            if p50 is not None and p90 is not None:
                lines.append(f"\n{name:<5} p50 {p50:.1f} ms · p90 {p90:.1f} ms")

        def answered(choice: str | None) -> None:
            if choice == "export":
                self.action_export()
            elif choice == "quit":
                self.action_quit()

        self.app.push_screen(FinishedDialog(lines), answered)

    def report(self) -> Report:
        replay = self.driver.replay
        if self._report is None or self._report[0] != replay.engine_wall_ms:
            self._report = (replay.engine_wall_ms, replay.report())
        return self._report[1]

    def seek(self, t_ms: float) -> None:
        """Run to simulated time t_ms and pause there (snapshot tests start from this)."""
        self.driver.pause()
        self.driver.seek(t_ms)
        self._after_control()

    # ---- actions ------------------------------------------------------------------------------
    def _after_control(self) -> None:
        self.wake()
        self.refresh_views(force=True)

    def _after_speed_change(self) -> None:
        # The engine state is unchanged: only the header (which shows the speed and the run
        # state) redraws now; the table and plots keep their cadence (a forced plot redraw
        # costs ~15 ms of replay).
        self.wake()
        self._last_status = -1e9
        self.refresh_views()

    def _held_for_export(self) -> bool:
        """The engine must not move while an export reads its metric columns."""
        if self._exporting:
            self.notify("Writing the export; the run holds still until it is done.")
        return self._exporting

    def action_toggle_pause(self) -> None:
        d = self.driver
        if self._exporting:  # resume (or not) once the files are written
            self._resume_after_export = not self._resume_after_export
            return
        if d.finished:
            self.notify("The replay is finished: e exports its report, q quits.")
            return
        # The engine state is unchanged: the header redraws now, and pausing redraws the rest
        # (see _pump). A paused run's views show its state (they redraw whenever it moves), so
        # on play their cadence starts now instead of with a redraw of the same state.
        if d.running:
            d.pause()
        else:
            d.play()
            self._last_table = self._last_plots = time.perf_counter()
        self._after_speed_change()

    def action_step(self) -> None:
        if self._held_for_export():
            return
        if not self.driver.step():
            self.notify("The replay is finished: nothing left to step.")
        self._after_control()

    def action_next_decision(self) -> None:
        if self.driver.planner is None:
            self.notify("No planner in this run: there is no decision to run to.",
                        severity="warning")
            return
        if self._held_for_export():
            return
        self.driver.next_decision()
        self._after_control()

    def _set_speed(self, speed: float) -> None:
        self.driver.set_speed(speed)
        self._after_speed_change()

    def action_faster(self) -> None:
        self._set_speed(faster(self.driver.clock.speed))

    def action_slower(self) -> None:
        self._set_speed(slower(self.driver.clock.speed))

    def action_real_time(self) -> None:
        self._set_speed(1.0)

    def action_max_speed(self) -> None:
        self._set_speed(MAX_SPEED)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit(self) -> None:
        if self._exporting:  # let the files land first (they are written atomically)
            self._quit_after_export = True
            self.notify("Quitting once the export is written...")
            return
        if self.driver.finished:
            self.app.exit()
            return
        done = self.driver.sim.completed + self.driver.sim.rejected
        pct = 100.0 * done / max(len(self.driver.replay.workload), 1)

        def answered(quit_: bool | None) -> None:
            if quit_:
                self.app.exit()

        self.app.push_screen(ConfirmQuit(pct), answered)

    def action_export(self) -> None:
        if self._exporting:
            self.notify("An export is already being written.")
            return
        # The engine holds still while the files are written from this report, so the
        # per-request records match its summary.
        self._exporting = True
        self._resume_after_export = self.driver.running
        self.driver.pause()
        settings = self.export_settings
        self._write_export(self.report(), default_export_dir(settings.base_dir), settings)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _write_export(self, report: Report, path: str, settings: ExportSettings) -> None:
        try:
            # with a planner, also its page and log in its report_output_dir, as headless
            export_report(report, path, settings.report_json, settings.report_jsonl,
                          settings.inputs, self.driver.replay.planner_config)
        except Exception as exc:  # shown to the user; the run goes on
            self.post_message(ExportFailed(path, str(exc)))
        else:
            self.post_message(ExportDone(path))

    def _export_ended(self) -> None:
        self._exporting = False
        if self._quit_after_export:
            self.app.exit()
            return
        if self._resume_after_export:
            self.driver.play()
        self._after_control()

    def on_export_done(self, message: ExportDone) -> None:
        self.notify(f"Exported the report to {message.path}/", title="Export", timeout=8)
        self._export_ended()

    def on_export_failed(self, message: ExportFailed) -> None:
        self.notify(f"Export to {message.path} failed: {message.error}", severity="error",
                    timeout=12)
        self._export_ended()
