# Over 450 lines on purpose: one document (page, run panels, planner panels), one pure render.
"""The self-contained HTML report (issue 6), rendered from the same `Report` value as the JSON.

* Planner runs: the reference's "Planner Diagnostics Report" header (time range, tick count,
  replica transitions, `GPU hours: x.xx` as plain text, SLA targets) and its panels
  (spec planner.md §9), with x axes in simulated seconds.
* Every run: the AIPerf summary table, TTFT/ITL over time (rolling p50/p90, scale events
  marked), per-worker queue depth and KV usage over time (the engine's 1 s samples; heat maps
  when there are many workers), a TTFT distribution, and the run's configuration.

Charts are plotly figures; plotly.js is inlined once, so the file opens with no network.
Long series are decimated to at most `MAX_POINTS` points per trace.
"""
from __future__ import annotations

import base64
import functools
import html
import json
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from planner.types import TickSnapshot

if TYPE_CHECKING:
    from dynosim.outputs.report import Report

MAX_POINTS = 2000  # per trace, after decimation
HEATMAP_BINS = 400  # time bins of the per-worker heat maps
MAX_LINE_WORKERS = 16  # more engines than this: a heat map instead of one line per engine
MAX_EVENT_LINES = 200  # more scale events than this: markers instead of vertical lines
PLOT_CONFIG = json.dumps({"displaylogo": False, "responsive": True})

PLANNER_PANELS = (
    "panel-replicas", "panel-request-rate", "panel-observed-ttft", "panel-observed-itl",
    "panel-estimated-ttft", "panel-estimated-itl", "panel-prefill-load", "panel-decode-load",
    "panel-engine-capacity", "panel-seq-lengths", "panel-load-decisions",
    "panel-throughput-decisions", "panel-gpu-hours",
)
RUN_PANELS = (
    "panel-latency-over-time", "panel-worker-queue", "panel-worker-kv", "panel-ttft-hist",
)
TEXT_PANELS = ("panel-summary", "panel-config")

REASON_COLORS = {
    "scale_up": "#2ca02c", "scale_down": "#1f77b4", "scale_down_capped_by_throughput": "#17becf",
    "scale_down_refused_consolidation": "#9467bd", "no_change": "#7f7f7f",
    "insufficient_data": "#bcbd22", "worker_count_mismatch": "#e377c2",
    "scaling_in_progress": "#8c564b", "no_fpm_data": "#ff7f0e", "disabled": "#c7c7c7",
    "scale": "#2ca02c", "set_lower_bound": "#1f77b4", "model_not_ready": "#bcbd22",
    "partner_not_ready": "#e377c2", "no_traffic_data": "#ff7f0e", "predict_failed": "#d62728",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 16px 24px; color: #1f2d3d; }
h1 { font-size: 20px; margin: 0 0 6px 0; } h2 { font-size: 16px; margin: 24px 0 6px 0; }
.header div { font-size: 13px; line-height: 1.5; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; }
.panel { min-height: 320px; } .wide { grid-column: 1 / span 2; }
pre { background: #f6f8fa; padding: 10px; font-size: 12px; overflow-x: auto; }
"""


def _fmt_clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}:{s % 60:02d}"


Number = Callable[[TickSnapshot], "float | int | None"]  # one snapshot field, typed
Reason = Callable[[TickSnapshot], "str | None"]


def _col(snaps: Sequence[TickSnapshot], field: Number) -> np.ndarray:
    """A snapshot field as float array, None as NaN (plotly leaves a gap)."""
    out = np.full(len(snaps), np.nan)
    for i, s in enumerate(snaps):
        v = field(s)
        if v is not None:
            out[i] = float(v)
    return out


def _has(a: np.ndarray) -> bool:
    return bool(np.isfinite(a).any())


def decimate(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_POINTS
             ) -> tuple[np.ndarray, ...]:
    """Every k-th point (plus the last) so a trace has at most `max_points` points."""
    n = len(x)
    if n <= max_points:
        return (x, *ys)
    idx = np.unique(np.append(np.linspace(0, n - 1, max_points).astype(np.int64), n - 1))
    return (x[idx], *(y[idx] for y in ys))


def replica_transitions(snaps: Sequence[TickSnapshot]) -> int:
    """Changes in the recorded replica counts, prefill and decode together."""
    n = 0
    fields: tuple[Number, Number] = (lambda s: s.num_prefill_replicas,
                                     lambda s: s.num_decode_replicas)
    for field in fields:
        prev = None
        for s in snaps:
            v = field(s)
            if v is None:
                continue
            if prev is not None and v != prev:
                n += 1
            prev = v
    return n


@functools.lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    """plotly's "plotly_white" template, read from plotly's package data (loading it through
    plotly.io builds graph objects and imports their validators: half a second)."""
    from importlib.resources import files

    template: dict[str, Any] = json.loads(
        files("plotly").joinpath("package_data/templates/plotly_white.json")
        .read_text(encoding="utf-8"))
    return template


def _typed_array(a: np.ndarray) -> Any:
    """A numeric array as a plotly.js typed-array spec (base64 of its little-endian bytes):
    about a third of the JSON text, and what plotly's own figures emit."""
    if a.size == 0 or a.dtype.kind not in "fiub":
        return a.tolist()
    if a.dtype.kind == "f" or a.dtype.kind == "b":
        a, code = a.astype("<f8", copy=False), "f8"
    elif a.min() >= -(2 ** 31) and a.max() < 2 ** 31:
        a, code = a.astype("<i4", copy=False), "i4"
    else:
        a, code = a.astype("<f8"), "f8"
    spec = {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}
    if a.ndim > 1:
        spec["shape"] = ", ".join(str(d) for d in a.shape)
    return spec


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class _Figure:
    """A plotly figure as plain dicts: traces, shapes and annotations are collected in lists
    and handed to plotly.js once. (Each `add_vline` on a graph-objects figure re-validates
    every shape already on it, which made the report quadratic in scaling events.)"""

    def __init__(self, layout: dict[str, Any] | None = None,
                 rows: Sequence[str] = ("",)) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = layout if layout is not None else {}
        self.shapes: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = list(self.layout.pop("annotations", []))
        self.rows = tuple(rows)  # axis suffixes: "" for x/y, "2" for x2/y2, ...

    def add(self, kind: str, row: int = 1, **props: Any) -> None:
        if row > 1:
            props["xaxis"], props["yaxis"] = f"x{self.rows[row - 1]}", f"y{self.rows[row - 1]}"
        props["type"] = kind
        self.data.append(props)

    def axis(self, name: str, **props: Any) -> None:
        self.layout.setdefault(name, {}).update(props)

    def _rows_with_data(self) -> list[str]:
        used = {t.get("yaxis", "y")[1:] for t in self.data}
        return [r for r in self.rows if r in used]

    def vline(self, x: float, line: dict[str, Any], label: str | None = None) -> None:
        """A vertical line over the full height of every subplot that has data."""
        for r in self._rows_with_data():
            self.shapes.append({"type": "line", "x0": x, "x1": x, "xref": f"x{r}",
                                "y0": 0, "y1": 1, "yref": f"y{r} domain", "line": line})
            if label:
                self.annotations.append({"text": label, "showarrow": False, "x": x,
                                         "xanchor": "left", "xref": f"x{r}", "y": 1,
                                         "yanchor": "top", "yref": f"y{r} domain"})

    def hline(self, y: float, line: dict[str, Any], label: str | None = None) -> None:
        """A horizontal line across every subplot that has data, labelled top right."""
        for r in self._rows_with_data():
            self.shapes.append({"type": "line", "x0": 0, "x1": 1, "xref": f"x{r} domain",
                                "y0": y, "y1": y, "yref": f"y{r}", "line": line})
            if label:
                self.annotations.append({"text": label, "showarrow": False, "x": 1,
                                         "xanchor": "right", "xref": f"x{r} domain", "y": y,
                                         "yanchor": "bottom", "yref": f"y{r}"})

    def to_dict(self) -> dict[str, Any]:
        layout = dict(self.layout)
        if self.shapes:
            layout["shapes"] = self.shapes
        if self.annotations:
            layout["annotations"] = self.annotations
        return {"data": self.data, "layout": layout}


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def figure(self, div_id: str, fig: _Figure, title: str, *, height: int = 320,
               wide: bool = False, x_title: str | None = "simulated time (s)") -> None:
        fig.layout.update(
            title={"text": title, "x": 0.5, "font": {"size": 14}}, height=height,
            margin={"l": 60, "r": 20, "t": 40, "b": 45}, template=_template(),
            legend={"orientation": "h", "y": -0.22, "font": {"size": 10}},
        )
        if not fig.data:
            fig.annotations.append({"text": "no data in this run", "showarrow": False,
                                    "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                                    "font": {"color": "#888"}})
        if x_title:
            fig.axis("xaxis", title={"text": x_title, "font": {"size": 11}})
        spec = fig.to_dict()
        for trace in spec["data"]:
            for k, v in trace.items():
                if isinstance(v, np.ndarray):
                    trace[k] = _typed_array(v)
        # The markup plotly's to_html emits for a div with include_plotlyjs=False (its JSON
        # encoder would import plotly's validators for nothing: the spec is plain already).
        data, layout = (json.dumps(spec[k], separators=(",", ":")).replace("</", "<\\/")
                        for k in ("data", "layout"))
        cls = "panel wide" if wide else "panel"
        self.parts.append(
            f'<div class="{cls}" data-panel="{div_id}"><div style="height:{height}px; '
            f'width:100%;"><div id="{div_id}" class="plotly-graph-div" style="height:100%; '
            f'width:100%;"></div><script>window.PLOTLYENV=window.PLOTLYENV || {{}};'
            f'if (document.getElementById("{div_id}")) {{Plotly.newPlot("{div_id}", {data}, '
            f'{layout}, {PLOT_CONFIG})}};</script></div></div>')

    def raw(self, text: str) -> None:
        self.parts.append(text)


def _sla_line(fig: _Figure, y: float, label: str) -> None:
    fig.hline(y, {"dash": "dash", "color": "red"}, label)


# ------------------------------------------------------------------------------ planner panels

def _planner_panels(page: _Page, report: Report) -> None:
    snaps = report.planner_snapshots
    t = _col(snaps, lambda s: s.timestamp_s)
    sla = report.planner_sla or (math.nan, math.nan)

    def line(fig: _Figure, field: Number, name: str, *, dash: str | None = None,
             mode: str = "lines+markers", shape: str = "linear", color: str | None = None) -> None:
        y = _col(snaps, field)
        if not _has(y):
            return
        x, y = decimate(t, y)
        fig.add("scatter", x=x, y=y, name=name, mode=mode, connectgaps=True,
                line=_drop_none({"dash": dash, "shape": shape, "color": color}),
                marker={"size": 4})

    # Replica counts
    fig = _Figure()
    line(fig, lambda s: s.num_prefill_replicas, "Prefill Replicas", shape="hv", color="#636efa")
    line(fig, lambda s: s.num_decode_replicas, "Decode Replicas", shape="hv", color="#ef553b")
    line(fig, lambda s: s.scale_to_prefill, "Recommended Prefill Replicas", mode="markers",
         color="#00cc96")
    line(fig, lambda s: s.scale_to_decode, "Recommended Decode Replicas", mode="markers",
         color="#00cc96")
    line(fig, lambda s: s.throughput_lower_bound_prefill, "Prefill TP Lower Bound", dash="dash",
         mode="lines", shape="hv", color="#636efa")
    line(fig, lambda s: s.throughput_lower_bound_decode, "Decode TP Lower Bound", dash="dash",
         mode="lines", shape="hv", color="#ef553b")
    page.figure("panel-replicas", fig, "Replica Counts")

    fig = _Figure()
    line(fig, lambda s: s.observed_requests_per_second, "Observed RPS", shape="hv", mode="lines")
    line(fig, lambda s: s.predicted_requests_per_second, "Predicted RPS", dash="dot", mode="lines")
    page.figure("panel-request-rate", fig, "Request Rate (Observed vs Predicted)")

    latency: tuple[tuple[str, Number, str, float], ...] = (
        ("panel-observed-ttft", lambda s: s.observed_ttft_ms, "Observed TTFT vs SLA", sla[0]),
        ("panel-observed-itl", lambda s: s.observed_itl_ms, "Observed ITL vs SLA", sla[1]),
        ("panel-estimated-ttft", lambda s: s.estimated_ttft_ms, "Estimated TTFT vs SLA", sla[0]),
        ("panel-estimated-itl", lambda s: s.estimated_itl_ms, "Estimated ITL vs SLA", sla[1]))
    for div, field, title, target in latency:
        fig = _Figure()
        name = title.split(" vs ")[0]
        line(fig, field, name, mode="lines" if name.startswith("Observed") else "lines+markers")
        if math.isfinite(target):
            _sla_line(fig, target, f"SLA ({target:g}ms)")
        fig.axis("yaxis", title={"text": "ms"})
        page.figure(div, fig, title)

    page.figure("panel-prefill-load",
                _engine_load_figure(t, [s.prefill_engines for s in snaps],
                                    lambda e: e.get("queued_prefill_tokens") or 0),
                "Prefill Engine Load (queued prefill tokens)")
    page.figure("panel-decode-load",
                _engine_load_figure(t, [s.decode_engines for s in snaps],
                                    lambda e: (e.get("queued_decode_kv_tokens") or 0)
                                    + (e.get("inflight_decode_kv_tokens") or 0)),
                "Decode Engine Load (queued + inflight decode KV tokens)")

    fig = _Figure()
    line(fig, lambda s: s.engine_rps_prefill, "Prefill Engine RPS")
    line(fig, lambda s: s.engine_rps_decode, "Decode Engine RPS")
    fig.axis("yaxis", title={"text": "req/s per engine"})
    page.figure("panel-engine-capacity", fig, "Engine Capacity (req/s)")

    fig = _Figure()
    line(fig, lambda s: s.observed_input_sequence_tokens, "Observed ISL", mode="lines", shape="hv")
    line(fig, lambda s: s.predicted_input_sequence_tokens, "Predicted ISL", dash="dot", mode="lines")
    line(fig, lambda s: s.observed_output_sequence_tokens, "Observed OSL", mode="lines", shape="hv")
    line(fig, lambda s: s.predicted_output_sequence_tokens, "Predicted OSL", dash="dot", mode="lines")
    fig.axis("yaxis", title={"text": "tokens"})
    page.figure("panel-seq-lengths", fig, "Sequence Lengths (Observed vs Predicted)")

    disagg = report.run.get("topology") == "disaggregated"
    page.figure("panel-load-decisions",
                _decision_figure(t, snaps, disagg, lambda s: s.load_decision_reason,
                                 lambda s: s.load_decision_reason_prefill,
                                 lambda s: s.load_decision_reason_decode),
                "Load Scaling Decisions")
    page.figure("panel-throughput-decisions",
                _decision_figure(t, snaps, disagg, lambda s: s.throughput_decision_reason,
                                 lambda s: s.throughput_decision_reason_prefill,
                                 lambda s: s.throughput_decision_reason_decode),
                "Throughput Scaling Decisions")

    fig = _Figure()
    line(fig, lambda s: s.gpu_hours, "Cumulative GPU Hours", color="#ff66ff")
    fig.axis("yaxis", title={"text": "GPU hours"})
    page.figure("panel-gpu-hours", fig, "Cumulative GPU Hours")


def _engine_load_figure(t: np.ndarray, engines: Sequence[list[dict[str, object]]],
                        value: Callable[[dict[str, Any]], float]) -> _Figure:
    """One line (or heat-map row) per engine of the FPM cache, one point per snapshot."""
    ids: list[str] = []
    for snap_engines in engines:
        for e in snap_engines:
            wid = f"{e.get('worker_id')}/{e.get('dp_rank', 0)}"
            if wid not in ids:
                ids.append(wid)
    grid = np.full((len(ids), len(engines)), np.nan)
    pos = {w: i for i, w in enumerate(ids)}
    for j, snap_engines in enumerate(engines):
        for e in snap_engines:
            grid[pos[f"{e.get('worker_id')}/{e.get('dp_rank', 0)}"], j] = float(value(e))
    fig = _Figure()
    if len(ids) > MAX_LINE_WORKERS:
        x, *rows = decimate(t, *grid)
        fig.add("heatmap", x=x, y=ids, colorscale="Viridis",
                colorbar={"title": {"text": "tokens"}}, z=np.array(rows))
        fig.axis("yaxis", title={"text": "engine"})
    else:
        for i, wid in enumerate(ids):
            x, y = decimate(t, grid[i])
            fig.add("scatter", x=x, y=y, name=f"engine {wid}", mode="lines+markers",
                    marker={"size": 3})
        fig.axis("yaxis", title={"text": "tokens"})
    return fig


def _decision_figure(t: np.ndarray, snaps: Sequence[TickSnapshot], disagg: bool,
                     both: Reason, prefill: Reason, decode: Reason) -> _Figure:
    """Colored reason markers: one track (agg), or prefill (y=1) and decode (y=0) tracks (a
    pool's own reason, else the shared one)."""
    tracks: list[tuple[Reason, float, str]] = (
        [(prefill, 1.0, "prefill"), (decode, 0.0, "decode")] if disagg else [(both, 1.0, "")])
    fig = _Figure()
    seen: set[str] = set()
    for field, y, label in tracks:
        by_reason: dict[str, list[float]] = {}
        for i, s in enumerate(snaps):
            r = field(s)
            if r is None and disagg:
                r = both(s)
            if r is not None and math.isfinite(t[i]):
                by_reason.setdefault(r, []).append(float(t[i]))
        for reason, xs in sorted(by_reason.items()):
            x = np.asarray(xs)
            (x,) = decimate(x)
            fig.add("scatter", x=x, y=np.full(len(x), y), mode="markers", name=reason,
                    legendgroup=reason, showlegend=reason not in seen,
                    marker=_drop_none({"symbol": "square", "size": 8,
                                       "color": REASON_COLORS.get(reason)}),
                    hovertemplate=f"{label} {reason}<br>t=%{{x}} s<extra></extra>")
            seen.add(reason)
    if disagg:
        fig.axis("yaxis", range=[-1, 2], tickvals=[0, 1], ticktext=["decode", "prefill"])
    else:
        fig.axis("yaxis", range=[0, 2], tickvals=[1], ticktext=[""])
    return fig


# ------------------------------------------------------------------------------ run panels

def _rolling(x: np.ndarray, y: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    import polars as pl

    s = pl.Series(y)
    p50 = s.rolling_quantile(0.5, window_size=window, min_samples=1).to_numpy()
    p90 = s.rolling_quantile(0.9, window_size=window, min_samples=1).to_numpy()
    return decimate(x, p50, p90)


def _scale_event_times(report: Report) -> list[tuple[float, str]]:
    planner = report.run.get("planner") or {}
    return [(float(e["time_s"]), f"{e['component']}: {e['from']}->{e['to']}")
            for e in planner.get("scaling_events") or []]


def _two_rows(titles: tuple[str, str], spacing: float) -> _Figure:
    """Two stacked subplots sharing the x axis (the layout plotly's make_subplots builds)."""
    top = (1.0 - spacing) / 2
    annotations = [{"text": text, "font": {"size": 16}, "showarrow": False, "x": 0.5,
                    "xanchor": "center", "xref": "paper", "y": y, "yanchor": "bottom",
                    "yref": "paper"} for text, y in zip(titles, (1.0, top))]
    return _Figure({
        "xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2",
                  "showticklabels": False},
        "yaxis": {"anchor": "x", "domain": [1.0 - top, 1.0]},
        "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0]},
        "yaxis2": {"anchor": "x2", "domain": [0.0, top]},
        "annotations": annotations}, rows=("", "2"))


def _latency_over_time(page: _Page, report: Report, frame: Any) -> None:
    fig = _two_rows(("TTFT (ms)", "ITL (ms)"), spacing=0.08)
    events = _scale_event_times(report)
    for row, col in ((1, "ttft_ms"), (2, "itl_ms")):
        if col not in frame.columns:
            continue
        sub = frame.select(["terminal_time_ms", col]).drop_nulls().sort("terminal_time_ms")
        if sub.height == 0:
            continue
        x = sub["terminal_time_ms"].to_numpy() / 1000.0
        y = sub[col].to_numpy().astype(float)
        window = max(10, min(500, sub.height // 50))
        xs, p50, p90 = _rolling(x, y, window)
        fig.add("scatter", row=row, x=xs, y=p50,
                name=f"{col[:-3].upper()} p50 (rolling {window})", mode="lines")
        fig.add("scatter", row=row, x=xs, y=p90,
                name=f"{col[:-3].upper()} p90 (rolling {window})", mode="lines",
                line={"dash": "dash"})
    if events:
        if len(events) <= MAX_EVENT_LINES:
            dotted = {"dash": "dot", "color": "#888", "width": 1}
            for t, _ in events:
                fig.vline(t, dotted)
        fig.add("scatter", row=1, x=[t for t, _ in events], y=[0.0] * len(events),
                mode="markers", name="scale event", text=[lbl for _, lbl in events],
                marker={"symbol": "triangle-up", "size": 9, "color": "#444"},
                hovertemplate="%{text}<br>t=%{x} s<extra></extra>")
    fig.axis("xaxis2", title={"text": "simulated time (s, by request completion)"})
    page.figure("panel-latency-over-time", fig,
                "TTFT and ITL over time (rolling p50/p90; scale events dotted)",
                height=520, wide=True, x_title=None)


def _worker_panels(page: _Page, report: Report) -> None:
    """Per-worker queue depth and KV usage over time, from the engine's fixed-interval samples
    (one line per worker, or a heat map when there are many workers)."""
    samples = report.samples_frame()
    t_all = samples["time_s"].to_numpy()
    times = np.unique(t_all)
    workers = np.unique(samples["worker"].to_numpy())
    ti = np.searchsorted(times, t_all)
    wi = np.searchsorted(workers, samples["worker"].to_numpy())
    labels = [f"worker {int(w)}" for w in workers]
    pools = dict(zip(samples["worker"].to_list(), samples["pool"].to_list()))
    if len(set(pools.values())) > 1:
        labels = [f"{pools[int(w)]} {int(w)}" for w in workers]
    for div, col, title, unit in (
            ("panel-worker-queue", "waiting", "Per-worker queue depth (waiting requests)",
             "requests"),
            ("panel-worker-kv", "kv_usage", "Per-worker KV cache usage (active blocks / total)",
             "KV usage")):
        grid = np.full((len(workers), len(times)), np.nan)
        grid[wi, ti] = samples[col].to_numpy().astype(float)
        fig = _Figure()
        if len(workers) > MAX_LINE_WORKERS:
            x, *rows = decimate(times, *grid, max_points=HEATMAP_BINS)
            fig.add("heatmap", x=x, y=labels, colorscale="Viridis",
                    colorbar={"title": {"text": unit}}, z=np.array(rows))
        else:
            for i, lbl in enumerate(labels):
                x, y = decimate(times, grid[i])
                fig.add("scatter", x=x, y=y, name=lbl, mode="lines", line={"shape": "hv"})
            fig.axis("yaxis", title={"text": unit})
        if col == "kv_usage" and len(workers) <= MAX_LINE_WORKERS:
            fig.axis("yaxis", range=[0, 1.05], tickformat=".0%")
        page.figure(div, fig, title)


def _ttft_hist(page: _Page, frame: Any) -> None:
    fig = _Figure()
    if "ttft_ms" in frame.columns:
        y = frame["ttft_ms"].drop_nulls().to_numpy().astype(float)
        y = y[np.isfinite(y)]
        if len(y):
            counts, edges = np.histogram(y, bins=60)
            fig.add("bar", x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                    name="requests", marker={"color": "#636efa"})
            for q, dash in ((50, "dot"), (90, "dash"), (99, "dashdot")):
                fig.vline(float(np.percentile(y, q)), {"dash": dash, "color": "#d62728"},
                          f"p{q}")
    fig.axis("yaxis", title={"text": "requests"})
    page.figure("panel-ttft-hist", fig, "TTFT distribution", x_title="TTFT (ms)")


# ------------------------------------------------------------------------------ the page

def header_lines(report: Report) -> list[str]:
    """The plain-text header lines (planner runs: the reference's; `GPU hours: x.xx`)."""
    if report.planner_sla is None:
        s = report.summary
        return [f"Simulated duration: {float(s.get('duration_ms') or 0.0) / 1000.0:.1f} s | "
                f"Requests: {s.get('num_requests', '')} | Topology: {report.run.get('topology')}"
                f" | Workers: {report.run.get('num_workers')}"
                f" | Backend: {report.run.get('backend', 'vllm')}",
                f"Lifetime GPU-hours (workers): {float(s.get('gpu_hours') or 0.0):.2f}"]
    snaps = report.planner_snapshots
    planner = report.run.get("planner") or {}
    ticks = int(planner.get("total_ticks", report.planner_ticks))
    ts = [x.timestamp_s for x in snaps]
    if ts:
        span = (f"Time range: {_fmt_clock(ts[0])} — {_fmt_clock(ts[-1])} simulated "
                f"({ts[0]:.1f} s — {ts[-1]:.1f} s, {ticks} ticks)")
    else:
        span = f"Time range: none ({ticks} ticks)"
    gpu_hours = float(planner.get("gpu_hours_planner") or 0.0)
    ttft, itl = report.planner_sla
    return [span,
            f"Replica transitions: {replica_transitions(snaps)} | GPU hours: {gpu_hours:.2f}",
            f"SLA targets: TTFT={ttft:g}ms, ITL={itl:g}ms"]


def render_html(report: Report) -> str:
    """The whole self-contained HTML document (a pure function of the report value)."""
    from plotly.offline import get_plotlyjs

    planner = report.planner_sla is not None
    title = "Planner Diagnostics Report" if planner else "Replay Run Report"
    frame = report.frame()

    page = _Page()
    if planner:
        page.raw('<h2>Planner diagnostics</h2><div class="grid">')
        _planner_panels(page, report)
        page.raw("</div>")
    page.raw('<h2>Run</h2><div class="grid">')
    page.raw('<div class="panel wide" id="panel-summary"><h2>Summary (AIPerf)</h2><pre>'
             + html.escape(report.table()) + "</pre></div>")
    _latency_over_time(page, report, frame)
    _worker_panels(page, report)
    _ttft_hist(page, frame)
    page.raw("</div>")
    config = json.dumps(report.run, indent=2, sort_keys=True, default=str)
    page.raw('<div id="panel-config"><h2>Run configuration</h2><pre>'
             + html.escape(config) + "</pre></div>")

    head = "".join(f"<div>{html.escape(line)}</div>" for line in header_lines(report))
    # "</script" cannot occur inside the bundle's script element
    js = get_plotlyjs().replace("</script", "<\\/script")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n<style>{CSS}</style>\n"
        f"<script type=\"text/javascript\">{js}</script>\n</head>\n<body>\n"
        f'<div class="header"><h1>{title}</h1>\n{head}\n</div>\n'
        + "\n".join(page.parts)
        # parse + render time of the whole page, read back by the headless-browser test
        + "\n<script>document.body.setAttribute('data-render-ms', "
        "String(Math.round(performance.now())));</script>\n</body>\n</html>\n"
    )
