"""The terminal summary: the ranked points with their axis values, the objective, the frontier
metrics and each constraint's metric; '*' marks the Pareto set; then the best feasible point and
the command line that reproduces it as a single run."""
from __future__ import annotations

from typing import Any

from dynosim.sweep.events import row_status, status_label
from dynosim.sweep.runner import SweepResult


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "-"
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 10 or v == int(v):
            return f"{v:.1f}" if v != int(v) else f"{int(v)}"
        return f"{v:.3g}"
    return str(v)


def summary_columns(res: SweepResult) -> list[str]:
    spec = res.spec
    cols = [a.name for a in spec.axes]
    for m in (spec.rank.metric, *(o.metric for o in spec.pareto),
              *(c.metric for c in spec.constraints), "gpus", "gpu_hours"):
        if m not in cols:
            cols.append(m)
    if spec.capacity is not None:
        cols += ["capacity", "capacity_rps"]
    return cols


def search_line(res: SweepResult) -> str | None:
    """How the points were chosen, what it cost (None for a grid)."""
    s = res.search
    if s is None or s.method == "grid":
        return None
    per = s.optimizer_s / max(1, s.evaluated + s.repeats)
    line = (f"search {s.method}: {s.evaluated} of {s.trials} trials simulated over a space of "
            f"{s.space} points; {res.skipped} reused from disk")
    if s.method in ("tpe", "nsga2"):
        line += (f", {s.repeats} repeat suggestions answered from memory; optimizer "
                 f"{per * 1000:.1f} ms per suggestion")
    return line


def format_summary(res: SweepResult, max_rows: int = 25) -> str:
    spec = res.spec
    cols = summary_columns(res)
    by_index = {r["point"]: r for r in res.rows}
    order = list(res.ranked) + [r["point"] for r in res.rows if r["rank"] is None]
    header = ["rank", "P", "status", *cols, "penalty", "violated"]
    goal = {spec.rank.metric: f" ({spec.rank.goal})"}
    body = []
    for idx in order[:max_rows]:
        r = by_index[idx]
        if r["status"] != "ok":
            tail = ["-", (r["error"] or "")[:60]]
        else:
            tail = [_fmt(r["penalty"]), r["violations"] or ""]
        status = status_label(row_status(r, idx in res.reused), idx in res.reused)
        body.append([_fmt(r["rank"]), "*" if r["pareto"] else "", status,
                     *(_fmt(r.get(c)) for c in cols), *tail])
    widths = [max(len(h) + len(goal.get(h, "")), *(len(row[i]) for row in body))
              if body else len(h) for i, h in enumerate(header)]
    lines = []
    title = (f"sweep '{spec.name}': {len(res.rows)} points, ranked by {spec.rank.metric} "
             f"({spec.rank.goal}); * = Pareto set of {spec.pareto[0].metric} "
             f"({spec.pareto[0].goal}) vs {spec.pareto[1].metric} ({spec.pareto[1].goal})")
    lines.append(title)
    if spec.constraints:
        lines.append("constraints: " + ", ".join(c.describe() for c in spec.constraints))
    head = [(h + goal.get(h, "")) for h in header]
    text_cols = (2, len(header) - 1)  # status and violated read left to right

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in text_cols else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines.append(line(head))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(line(row) for row in body)
    if len(order) > max_rows:
        lines.append(f"... {len(order) - max_rows} more rows in results.csv")
    counts = {s: sum(1 for r in res.rows if r["status"] == s) for s in ("ok", "failed",
                                                                         "pending")}
    feasible = sum(1 for r in res.rows if r["feasible"])
    reused_infeasible = sum(1 for r in res.rows
                            if r["point"] in res.reused and r["feasible"] is False)
    lines.append(f"{counts['ok']} finished ({feasible} feasible), {counts['failed']} failed, "
                 f"{counts['pending']} not run; {res.skipped} reused from an earlier run"
                 + (f" ({reused_infeasible} of them infeasible)" if reused_infeasible else ""))
    search = search_line(res)
    if search is not None:
        lines.append(search)
    if spec.capacity is not None:
        lines.append(f"capacity = highest {spec.capacity.load} meeting every constraint "
                     f"(bisection, tolerance {spec.capacity.tolerance:g}); capacity_rps = "
                     "request throughput there")
    if res.best is not None:
        b = by_index[res.best]
        vals = ", ".join(f"{a.name}={b[a.name]}" for a in spec.axes)
        lines.append(f"best feasible point: #{res.best} ({vals}): {spec.rank.metric} = "
                     f"{_fmt(b[spec.rank.metric])}")
        lines.append(f"  reproduce: {b['command']}")
    elif counts["ok"]:
        lines.append("no point meets every constraint; the least violating comes first")
    return "\n".join(lines)
