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

import html
import json
import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from dynosim.outputs.report import Report

MAX_POINTS = 2000  # per trace, after decimation
HEATMAP_BINS = 400  # time bins of the per-worker heat maps
MAX_LINE_WORKERS = 16  # more engines than this: a heat map instead of one line per engine
MAX_EVENT_LINES = 200  # more scale events than this: markers instead of vertical lines

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


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _fmt_clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def _col(snaps: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """A snapshot field as float array, missing/None as NaN (plotly leaves a gap)."""
    out = np.full(len(snaps), np.nan)
    for i, s in enumerate(snaps):
        v = s.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
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


def replica_transitions(snaps: Sequence[dict[str, Any]]) -> int:
    """Changes in the recorded replica counts, prefill and decode together."""
    n = 0
    for key in ("num_prefill_replicas", "num_decode_replicas"):
        prev = None
        for s in snaps:
            v = s.get(key)
            if v is None:
                continue
            if prev is not None and v != prev:
                n += 1
            prev = v
    return n


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def figure(self, div_id: str, fig: Any, title: str, *, height: int = 320,
               wide: bool = False, x_title: str | None = "simulated time (s)") -> None:
        fig.update_layout(
            title={"text": title, "x": 0.5, "font": {"size": 14}}, height=height,
            margin={"l": 60, "r": 20, "t": 40, "b": 45}, template="plotly_white",
            legend={"orientation": "h", "y": -0.22, "font": {"size": 10}},
        )
        if not fig.data:
            fig.add_annotation(text="no data in this run", showarrow=False, x=0.5, y=0.5,
                               xref="paper", yref="paper", font={"color": "#888"})
        if x_title:
            fig.update_xaxes(title_text=x_title, title_font={"size": 11})
        body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           default_height=f"{height}px", default_width="100%",
                           config={"displaylogo": False, "responsive": True})
        cls = "panel wide" if wide else "panel"
        self.parts.append(f'<div class="{cls}" data-panel="{div_id}">{body}</div>')

    def raw(self, text: str) -> None:
        self.parts.append(text)


def _sla_line(fig: Any, y: float, label: str) -> None:
    fig.add_hline(y=y, line_dash="dash", line_color="red", annotation_text=label,
                  annotation_position="top right")


# ------------------------------------------------------------------------------ planner panels

def _planner_panels(page: _Page, report: Report) -> None:
    go = _go()
    snaps = report.planner_snapshots
    t = _col(snaps, "timestamp_s")
    sla = report.planner_sla or (math.nan, math.nan)

    def line(fig: Any, key: str, name: str, *, dash: str | None = None,
             mode: str = "lines+markers", shape: str = "linear", color: str | None = None) -> None:
        y = _col(snaps, key)
        if not _has(y):
            return
        x, y = decimate(t, y)
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode=mode, connectgaps=True,
                                 line={"dash": dash, "shape": shape, "color": color},
                                 marker={"size": 4}))

    # Replica counts
    fig = go.Figure()
    line(fig, "num_prefill_replicas", "Prefill Replicas", shape="hv", color="#636efa")
    line(fig, "num_decode_replicas", "Decode Replicas", shape="hv", color="#ef553b")
    line(fig, "scale_to_prefill", "Recommended Prefill Replicas", mode="markers",
         color="#00cc96")
    line(fig, "scale_to_decode", "Recommended Decode Replicas", mode="markers", color="#00cc96")
    line(fig, "throughput_lower_bound_prefill", "Prefill TP Lower Bound", dash="dash",
         mode="lines", shape="hv", color="#636efa")
    line(fig, "throughput_lower_bound_decode", "Decode TP Lower Bound", dash="dash",
         mode="lines", shape="hv", color="#ef553b")
    page.figure("panel-replicas", fig, "Replica Counts")

    fig = go.Figure()
    line(fig, "observed_requests_per_second", "Observed RPS", shape="hv", mode="lines")
    line(fig, "predicted_requests_per_second", "Predicted RPS", dash="dot", mode="lines")
    page.figure("panel-request-rate", fig, "Request Rate (Observed vs Predicted)")

    for div, key, title, target in (
            ("panel-observed-ttft", "observed_ttft_ms", "Observed TTFT vs SLA", sla[0]),
            ("panel-observed-itl", "observed_itl_ms", "Observed ITL vs SLA", sla[1]),
            ("panel-estimated-ttft", "estimated_ttft_ms", "Estimated TTFT vs SLA", sla[0]),
            ("panel-estimated-itl", "estimated_itl_ms", "Estimated ITL vs SLA", sla[1])):
        fig = go.Figure()
        name = title.split(" vs ")[0]
        line(fig, key, name, mode="lines" if key.startswith("observed") else "lines+markers")
        if math.isfinite(target):
            _sla_line(fig, target, f"SLA ({target:g}ms)")
        fig.update_yaxes(title_text="ms")
        page.figure(div, fig, title)

    for div, field, title, value in (
            ("panel-prefill-load", "prefill_engines", "Prefill Engine Load (queued prefill tokens)",
             lambda e: e.get("queued_prefill_tokens") or 0),
            ("panel-decode-load", "decode_engines",
             "Decode Engine Load (queued + inflight decode KV tokens)",
             lambda e: (e.get("queued_decode_kv_tokens") or 0)
             + (e.get("inflight_decode_kv_tokens") or 0))):
        page.figure(div, _engine_load_figure(t, snaps, field, value), title)

    fig = go.Figure()
    line(fig, "engine_rps_prefill", "Prefill Engine RPS")
    line(fig, "engine_rps_decode", "Decode Engine RPS")
    fig.update_yaxes(title_text="req/s per engine")
    page.figure("panel-engine-capacity", fig, "Engine Capacity (req/s)")

    fig = go.Figure()
    line(fig, "observed_input_sequence_tokens", "Observed ISL", mode="lines", shape="hv")
    line(fig, "predicted_input_sequence_tokens", "Predicted ISL", dash="dot", mode="lines")
    line(fig, "observed_output_sequence_tokens", "Observed OSL", mode="lines", shape="hv")
    line(fig, "predicted_output_sequence_tokens", "Predicted OSL", dash="dot", mode="lines")
    fig.update_yaxes(title_text="tokens")
    page.figure("panel-seq-lengths", fig, "Sequence Lengths (Observed vs Predicted)")

    disagg = report.run.get("topology") == "disaggregated"
    page.figure("panel-load-decisions",
                _decision_figure(t, snaps, "load_decision_reason", disagg),
                "Load Scaling Decisions")
    page.figure("panel-throughput-decisions",
                _decision_figure(t, snaps, "throughput_decision_reason", disagg),
                "Throughput Scaling Decisions")

    fig = go.Figure()
    line(fig, "gpu_hours", "Cumulative GPU Hours", color="#ff66ff")
    fig.update_yaxes(title_text="GPU hours")
    page.figure("panel-gpu-hours", fig, "Cumulative GPU Hours")


def _engine_load_figure(t: np.ndarray, snaps: Sequence[dict[str, Any]], field: str,
                        value: Any) -> Any:
    go = _go()
    ids: list[str] = []
    for s in snaps:
        for e in s.get(field) or []:
            wid = f"{e.get('worker_id')}/{e.get('dp_rank', 0)}"
            if wid not in ids:
                ids.append(wid)
    grid = np.full((len(ids), len(snaps)), np.nan)
    pos = {w: i for i, w in enumerate(ids)}
    for j, s in enumerate(snaps):
        for e in s.get(field) or []:
            grid[pos[f"{e.get('worker_id')}/{e.get('dp_rank', 0)}"], j] = float(value(e))
    fig = go.Figure()
    if len(ids) > MAX_LINE_WORKERS:
        x, *rows = decimate(t, *grid)
        fig.add_trace(go.Heatmap(x=x, y=ids, z=np.array(rows), colorscale="Viridis",
                                 colorbar={"title": "tokens"}))
        fig.update_yaxes(title_text="engine")
    else:
        for i, wid in enumerate(ids):
            x, y = decimate(t, grid[i])
            fig.add_trace(go.Scatter(x=x, y=y, name=f"engine {wid}", mode="lines+markers",
                                     marker={"size": 3}))
        fig.update_yaxes(title_text="tokens")
    return fig


def _decision_figure(t: np.ndarray, snaps: Sequence[dict[str, Any]], key: str,
                     disagg: bool) -> Any:
    """Colored reason markers: one track (agg), or prefill (y=1) and decode (y=0) tracks."""
    go = _go()
    tracks = ([(f"{key}_prefill", 1.0, "prefill"), (f"{key}_decode", 0.0, "decode")]
              if disagg else [(key, 1.0, "")])
    fig = go.Figure()
    seen: set[str] = set()
    for field, y, label in tracks:
        by_reason: dict[str, list[float]] = {}
        for i, s in enumerate(snaps):
            r = s.get(field)
            if r is None and disagg:
                r = s.get(key)
            if isinstance(r, str) and math.isfinite(t[i]):
                by_reason.setdefault(r, []).append(float(t[i]))
        for reason, xs in sorted(by_reason.items()):
            x = np.asarray(xs)
            (x,) = decimate(x)
            fig.add_trace(go.Scatter(
                x=x, y=np.full(len(x), y), mode="markers", name=reason,
                legendgroup=reason, showlegend=reason not in seen,
                marker={"symbol": "square", "size": 8, "color": REASON_COLORS.get(reason)},
                hovertemplate=f"{label} {reason}<br>t=%{{x}} s<extra></extra>"))
            seen.add(reason)
    if disagg:
        fig.update_yaxes(range=[-1, 2], tickvals=[0, 1], ticktext=["decode", "prefill"])
    else:
        fig.update_yaxes(range=[0, 2], tickvals=[1], ticktext=[""])
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


def _latency_over_time(page: _Page, report: Report, frame: Any) -> None:
    from plotly.subplots import make_subplots

    go = _go()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("TTFT (ms)", "ITL (ms)"))
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
        fig.add_trace(go.Scatter(x=xs, y=p50, name=f"{col[:-3].upper()} p50 (rolling {window})",
                                 mode="lines"), row=row, col=1)
        fig.add_trace(go.Scatter(x=xs, y=p90, name=f"{col[:-3].upper()} p90 (rolling {window})",
                                 mode="lines", line={"dash": "dash"}), row=row, col=1)
    if events:
        if len(events) <= MAX_EVENT_LINES:
            for t, _ in events:
                fig.add_vline(x=t, line_dash="dot", line_color="#888", line_width=1)
        fig.add_trace(go.Scatter(
            x=[t for t, _ in events], y=[0.0] * len(events), mode="markers",
            name="scale event", text=[lbl for _, lbl in events],
            marker={"symbol": "triangle-up", "size": 9, "color": "#444"},
            hovertemplate="%{text}<br>t=%{x} s<extra></extra>"), row=1, col=1)
    fig.update_xaxes(title_text="simulated time (s, by request completion)", row=2, col=1)
    page.figure("panel-latency-over-time", fig,
                "TTFT and ITL over time (rolling p50/p90; scale events dotted)",
                height=520, wide=True, x_title=None)


def _worker_panels(page: _Page, report: Report) -> None:
    """Per-worker queue depth and KV usage over time, from the engine's fixed-interval samples
    (one line per worker, or a heat map when there are many workers)."""
    go = _go()
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
        fig = go.Figure()
        if len(workers) > MAX_LINE_WORKERS:
            x, *rows = decimate(times, *grid, max_points=HEATMAP_BINS)
            fig.add_trace(go.Heatmap(x=x, y=labels, z=np.array(rows), colorscale="Viridis",
                                     colorbar={"title": unit}))
        else:
            for i, lbl in enumerate(labels):
                x, y = decimate(times, grid[i])
                fig.add_trace(go.Scatter(x=x, y=y, name=lbl, mode="lines",
                                         line={"shape": "hv"}))
            fig.update_yaxes(title_text=unit)
        if col == "kv_usage" and len(workers) <= MAX_LINE_WORKERS:
            fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
        page.figure(div, fig, title)


def _ttft_hist(page: _Page, frame: Any) -> None:
    go = _go()
    fig = go.Figure()
    if "ttft_ms" in frame.columns:
        y = frame["ttft_ms"].drop_nulls().to_numpy().astype(float)
        y = y[np.isfinite(y)]
        if len(y):
            counts, edges = np.histogram(y, bins=60)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts,
                                 width=np.diff(edges), name="requests",
                                 marker={"color": "#636efa"}))
            for q, dash in ((50, "dot"), (90, "dash"), (99, "dashdot")):
                fig.add_vline(x=float(np.percentile(y, q)), line_dash=dash, line_color="#d62728",
                              annotation_text=f"p{q}")
    fig.update_yaxes(title_text="requests")
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
    ts = [float(v) for v in (x.get("timestamp_s") for x in snaps)
          if isinstance(v, (int, float))]
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
