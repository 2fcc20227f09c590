"""The sweep report: one self-contained HTML file (plotly.js inlined, no network).

One numeric axis: each metric against it (TTFT avg/p90, ITL avg/p90, both GPU-hours figures,
scaling events) with the SLA lines and the cliff (the first point whose p90 TTFT or ITL crosses
its SLA). Always: the Pareto scatter of the two frontier metrics (frontier joined, dominated
points faded, infeasible marked, hover shows the point's parameters), small multiples of the
ranked objective per axis, and the ranked table."""
from __future__ import annotations

import html
from typing import Any

from dynosim.sweep.results import ResultStore
from dynosim.sweep.runner import SweepResult
from dynosim.sweep.table import _fmt, summary_columns

CSS = """body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#222}
.header{background:#1f2937;color:#fff;padding:14px 22px}.header h1{margin:0 0 6px;font-size:20px}
.header div{font-size:13px;opacity:.9}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px;
padding:12px}
.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;min-width:0;
overflow-x:auto}
.wide{grid-column:1/-1}h2{font-size:16px;margin:12px 16px 0}
table{border-collapse:collapse;font-size:12px;margin:8px}td,th{border:1px solid #ddd;
padding:3px 6px;text-align:right}th{background:#eef}tr.pareto td{font-weight:600}
tr.infeasible td{color:#999}code{font-size:12px;word-break:break-all}"""

SLA_METRICS = {"ttft": "p90_ttft_ms", "itl": "p90_itl_ms"}


def _sla(res: SweepResult, metric: str) -> float | None:
    for c in res.spec.constraints:
        if c.metric == metric and c.kind == "max":
            return c.bound
    return None


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def find_cliff(res: SweepResult) -> dict[str, Any] | None:
    """The first point (in axis order) whose p90 TTFT or p90 ITL crosses its SLA."""
    if len(res.spec.axes) != 1:
        return None
    axis = res.spec.axes[0].name
    rows = sorted((r for r in res.rows if r["status"] == "ok"), key=lambda r: r[axis])
    for r in rows:
        for metric in SLA_METRICS.values():
            bound = _sla(res, metric)
            v = r.get(metric)
            if bound is not None and v is not None and v > bound:
                return {"point": r["point"], "value": r[axis], "metric": metric}
    return None


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def fig(self, fig: Any, div_id: str, title: str, wide: bool = False) -> None:
        fig.update_layout(title={"text": title, "font": {"size": 14}}, height=340,
                          margin={"l": 60, "r": 20, "t": 40, "b": 45},
                          template="plotly_white", legend={"orientation": "h", "y": -0.2})
        body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           default_width="100%", default_height="340px",
                           config={"displaylogo": False, "responsive": True})
        self.parts.append(f'<div class="panel{" wide" if wide else ""}">{body}</div>')


def _one_axis_panels(page: _Page, res: SweepResult) -> None:
    import plotly.graph_objects as go

    axis = res.spec.axes[0].name
    rows = sorted((r for r in res.rows if r["status"] == "ok"), key=lambda r: r[axis])
    xs = [r[axis] for r in rows]
    cliff = find_cliff(res)
    panels = [
        ("panel-ttft", "TTFT (ms)", [("mean_ttft_ms", "avg"), ("p90_ttft_ms", "p90")],
         _sla(res, "p90_ttft_ms")),
        ("panel-itl", "ITL (ms)", [("mean_itl_ms", "avg"), ("p90_itl_ms", "p90")],
         _sla(res, "p90_itl_ms")),
        ("panel-gpu-hours", "GPU-hours", [("gpu_hours", "worker lifetime"),
                                          ("gpu_hours_planner", "planner (active replicas)")],
         None),
        ("panel-scaling-events", "Scaling events", [("scaling_events", "events")], None),
    ]
    for div_id, title, series, sla in panels:
        fig = go.Figure()
        for key, label in series:
            fig.add_trace(go.Scatter(x=xs, y=[r.get(key) for r in rows], mode="lines+markers",
                                     name=label))
        if sla is not None:
            fig.add_hline(y=sla, line_dash="dash", line_color="#c0392b",
                          annotation_text=f"SLA {sla:g} ms", annotation_position="top left")
        if cliff is not None:
            fig.add_vline(x=cliff["value"], line_dash="dot", line_color="#e67e22",
                          annotation_text=f"cliff: {axis}={cliff['value']}",
                          annotation_position="top right")
        fig.update_xaxes(title_text=axis)
        page.fig(fig, div_id, f"{title} vs {axis}")


def _hover(res: SweepResult, r: dict[str, Any]) -> str:
    parts = [f"point #{r['point']}"]
    parts += [f"{a.name}={r[a.name]}" for a in res.spec.axes]
    for c in summary_columns(res):
        if c not in {a.name for a in res.spec.axes}:
            parts.append(f"{c}={_fmt(r.get(c))}")
    if r.get("violations"):
        parts.append(f"violated: {r['violations']}")
    return "<br>".join(html.escape(p) for p in parts)


def _pareto_panel(page: _Page, res: SweepResult) -> None:
    import plotly.graph_objects as go

    (ox, oy) = res.spec.pareto
    ok = [r for r in res.rows if r["status"] == "ok" and r.get(ox.metric) is not None
          and r.get(oy.metric) is not None]
    front = sorted((r for r in ok if r["pareto"]), key=lambda r: r[ox.metric])
    dominated = [r for r in ok if not r["pareto"] and r["feasible"]]
    infeasible = [r for r in ok if not r["pareto"] and not r["feasible"]]
    fig = go.Figure()
    for name, group, marker, mode in (
            ("Pareto frontier", front, {"size": 10, "color": "#2563eb"}, "lines+markers"),
            ("dominated", dominated, {"size": 8, "color": "#2563eb", "opacity": 0.3},
             "markers"),
            ("infeasible", infeasible, {"size": 9, "color": "#c0392b", "symbol": "x",
                                        "opacity": 0.6}, "markers")):
        fig.add_trace(go.Scatter(
            x=[r[ox.metric] for r in group], y=[r[oy.metric] for r in group], mode=mode,
            name=f"{name} ({len(group)})", marker=marker,
            text=[_hover(res, r) for r in group], hovertemplate="%{text}<extra></extra>"))
    fig.update_xaxes(title_text=f"{ox.metric} ({ox.goal})")
    fig.update_yaxes(title_text=f"{oy.metric} ({oy.goal})")
    page.fig(fig, "panel-pareto", f"Pareto: {ox.metric} vs {oy.metric}", wide=True)


def _small_multiples(page: _Page, res: SweepResult) -> None:
    import plotly.graph_objects as go

    metric = res.spec.rank.metric
    ok = [r for r in res.rows if r["status"] == "ok"]
    for i, axis in enumerate(res.spec.axes):
        fig = go.Figure()
        for name, group, color in (("feasible", [r for r in ok if r["feasible"]], "#2563eb"),
                                   ("infeasible", [r for r in ok if not r["feasible"]],
                                    "#c0392b")):
            fig.add_trace(go.Scatter(
                x=[r[axis.name] for r in group], y=[r.get(metric) for r in group],
                mode="markers", name=name, marker={"color": color, "size": 8},
                text=[_hover(res, r) for r in group], hovertemplate="%{text}<extra></extra>"))
        if not _numeric([r[axis.name] for r in ok]):
            fig.update_xaxes(type="category")
        fig.update_xaxes(title_text=axis.name)
        fig.update_yaxes(title_text=metric)
        page.fig(fig, f"panel-axis-{i}", f"{metric} by {axis.name}")


def _table(res: SweepResult) -> str:
    cols = summary_columns(res)
    by_index = {r["point"]: r for r in res.rows}
    order = list(res.ranked) + [r["point"] for r in res.rows if r["rank"] is None]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["rank", "Pareto", *cols, "penalty", "violated / error", "command"])
    body = []
    for idx in order:
        r = by_index[idx]
        cls = "pareto" if r["pareto"] else ("infeasible" if not r["feasible"] else "")
        tail = r["violations"] if r["status"] == "ok" else f"{r['status']}: {r['error'] or ''}"
        cells = [_fmt(r["rank"]), "*" if r["pareto"] else "", *(_fmt(r.get(c)) for c in cols),
                 _fmt(r["penalty"]), tail or ""]
        body.append(f'<tr class="{cls}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                    + f"<td><code>{html.escape(r['command'])}</code></td></tr>")
    return (f'<div class="panel wide" id="panel-table"><h2>Ranked points</h2><table><tr>{head}'
            f'</tr>{"".join(body)}</table></div>')


def render_sweep_html(res: SweepResult) -> str:
    from plotly.offline import get_plotlyjs

    spec = res.spec
    page = _Page()
    ok_rows = [r for r in res.rows if r["status"] == "ok"]
    if len(spec.axes) == 1 and ok_rows and _numeric([r[spec.axes[0].name] for r in ok_rows]):
        page.parts.append('<h2>Metrics against the axis</h2><div class="grid">')
        _one_axis_panels(page, res)
        page.parts.append("</div>")
    page.parts.append('<h2>Frontier and axes</h2><div class="grid">')
    _pareto_panel(page, res)
    _small_multiples(page, res)
    page.parts.append("</div>")
    page.parts.append('<div class="grid">' + _table(res) + "</div>")
    n_ok = len(ok_rows)
    head = [f"{len(res.rows)} points: {n_ok} finished "
            f"({sum(1 for r in res.rows if r['feasible'])} feasible), "
            f"{sum(1 for r in res.rows if r['status'] == 'failed')} failed",
            f"ranked by {spec.rank.metric} ({spec.rank.goal}); Pareto: {spec.pareto[0].metric} "
            f"vs {spec.pareto[1].metric}"]
    if spec.constraints:
        head.append("constraints: " + ", ".join(c.describe() for c in spec.constraints))
    cliff = find_cliff(res)
    if cliff is not None:
        head.append(f"cliff: {spec.axes[0].name} = {cliff['value']} (first point whose "
                    f"{cliff['metric']} crosses its SLA)")
    if res.best is not None:
        b = next(r for r in res.rows if r["point"] == res.best)
        head.append(f"best feasible: #{res.best}, {spec.rank.metric} = "
                    f"{_fmt(b[spec.rank.metric])}: {b['command']}")
    js = get_plotlyjs().replace("</script", "<\\/script")
    title = f"Sweep report: {spec.name}"
    head_html = "".join(f"<div>{html.escape(h)}</div>" for h in head)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n"
            f"<script type=\"text/javascript\">{js}</script>\n</head>\n<body>\n"
            f'<div class="header"><h1>{html.escape(title)}</h1>{head_html}</div>\n'
            + "\n".join(page.parts)
            + "\n<script>document.body.setAttribute('data-render-ms', "
            "String(Math.round(performance.now())));</script>\n</body>\n</html>\n")


def write_sweep_html(res: SweepResult, out_dir: str) -> str:
    """The sweep's HTML report, written atomically into out_dir; returns its path."""
    return ResultStore(out_dir).write_html(render_sweep_html(res))
