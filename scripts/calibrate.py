#!/usr/bin/env python3
"""Regenerate the roofline coefficient sets (dynosim/perfmodel/calibrated.py).

The reference step times are aiconfigurator-core grids stored as CSV tables in
tests/data/perf (they double as the test fixtures):

  aic_multi_config_vllm0.24.0.csv (+ prefix tables)   the vLLM sets
  aic_grid_<backend><version>.csv                     per-backend grids written by
                                                      scripts/aic_grid.py (SGLang, TRT-LLM)

  --from-tables DIR   fit the tables in DIR (default: tests/data/perf)
  --from-aic          first re-query aiconfigurator-core for the per-backend grids
                      (GRID_CONFIGS plus any --config), rewriting the aic_grid_*.csv tables,
                      then fit. aiconfigurator-core (~590 MB) need not be in this venv:
                      --aic-python names any Python that has it (a scratch venv).

Each configuration is fitted separately (dynosim/perfmodel/fit.py). Sets whose fit misses
aiconfigurator by more than --rough-above (15 %) anywhere on the grid are still written, marked
"rough": the engine uses them but warns with their error.

Examples:
  .venv/bin/python scripts/calibrate.py                      # refit from the shipped tables
  .venv/bin/python scripts/calibrate.py --dry-run --markdown # print the fit errors (README table)
  python3.11 -m venv /tmp/aic && /tmp/aic/bin/pip install aiconfigurator-core==0.12.0
  .venv/bin/python scripts/calibrate.py --from-aic --aic-python /tmp/aic/bin/python \
      --config sglang:h200_sxm:Qwen/Qwen3-8B:1               # re-query, add a configuration
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

import aic_grid  # noqa: E402  (imports nothing heavy: aiconfigurator is loaded in a subprocess)
from dynosim.perfmodel import fit as F  # noqa: E402
from dynosim.perfmodel.build import resolve  # noqa: E402
from dynosim.perfmodel.coeffs import find_calibrated  # noqa: E402

OUT = ROOT / "dynosim" / "perfmodel" / "calibrated.py"
TABLES = ROOT / "tests" / "data" / "perf"
MULTI = "aic_multi_config_vllm0.24.0.csv"
# Extra grids (prefix-cached prefill) per configuration, in the tables directory.
EXTRA = {
    ("h200_sxm", "nvidia/Llama-3.1-8B-Instruct-FP8", 1):
        ["aic_prefill_prefix_llama31-8b-fp8_h200_vllm0.24.0_tp1.csv"],
}
AIC_VERSION = "aiconfigurator-core 0.12.0"
BACKEND_VERSION = aic_grid.BACKEND_VERSION
BACKEND_ORDER = ("vllm", "sglang", "trtllm")
# A shipped set stays unless the refit's max error is lower by more than this (a rerun on
# another machine differs in the last digits; the data should not churn for that).
KEEP_WITHIN = 0.001


@dataclass(frozen=True)
class Config:
    system: str
    model: str
    tp: int
    backend: str = "vllm"


# The per-backend grids queried by --from-aic (the vLLM sets come from the multi-config table).
# Listed: the configurations whose fit stays within 10 % of aiconfigurator everywhere. Tried and
# left out (11-18 %): SGLang 70B-FP8 TP2 on H200, TRT-LLM 70B-FP8 TP8, Qwen3-30B-A3B in BF16.
_BOTH_GPUS = ("h200_sxm", "h100_sxm")
_COMMON = (("nvidia/Llama-3.1-8B-Instruct-FP8", 1), ("nvidia/Llama-3.1-8B-Instruct-FP8", 2),
           ("meta-llama/Llama-3.1-8B-Instruct", 1), ("nvidia/Llama-3.1-70B-Instruct-FP8", 4),
           ("Qwen/Qwen3-8B", 1), ("Qwen/Qwen3-32B-FP8", 1), ("Qwen/Qwen3-32B", 2),
           ("Qwen/Qwen3-30B-A3B-FP8", 1))
GRID_CONFIGS = tuple(
    [Config(s, m, tp, "sglang") for s in _BOTH_GPUS for m, tp in _COMMON]
    + [Config("h100_sxm", "nvidia/Llama-3.1-70B-Instruct-FP8", 2, "sglang")]
    + [Config(s, "nvidia/Llama-3.1-70B-Instruct-FP8", 8, "sglang") for s in _BOTH_GPUS]
    + [Config(s, m, tp, "trtllm") for s in _BOTH_GPUS for m, tp in _COMMON]
    + [Config(s, "nvidia/Llama-3.1-70B-Instruct-FP8", 2, "trtllm") for s in _BOTH_GPUS])


def grid_file(backend: str) -> str:
    return f"aic_grid_{backend}{BACKEND_VERSION[backend]}.csv"


@dataclass(frozen=True)
class Grid:
    points: list[F.Point]
    fmha: str | None  # attention dtype aiconfigurator resolved (None: not recorded, vLLM bf16)
    table: str


def table_grids(tables: Path) -> dict[Config, Grid]:
    out: dict[Config, Grid] = {}
    for (system, label, tp), pts in F.multi_config_points(tables / MULTI).items():
        model = F.TABLE_MODELS[label][0]
        extra: list[F.Point] = []
        for name in EXTRA.get((system, model, tp), []):
            extra += [p for p in F.prefix_points(tables / name) if p.prefix > 0]
        out[Config(system, model, tp)] = Grid(pts + extra, None, MULTI)
    for path in sorted(tables.glob("aic_grid_*.csv")):  # a per-backend grid wins
        for key, pts in F.grid_points(path).items():
            out[Config(key.system, key.model, key.tp, key.backend)] = Grid(pts, key.fmha,
                                                                           path.name)
    return out


def query_aic(python: str, configs: list[Config], tables: Path) -> None:
    """Rewrite the aic_grid_<backend>.csv tables by running scripts/aic_grid.py in `python`."""
    for backend in BACKEND_ORDER:
        mine = [c for c in configs if c.backend == backend]
        if not mine:
            continue
        cmd = [python, str(ROOT / "scripts" / "aic_grid.py"), "--out",
               str(tables / grid_file(backend))]
        cmd += [f"{c.backend}:{c.system}:{c.model}:{c.tp}" for c in mine]
        print(f"querying aiconfigurator ({python}): {len(mine)} {backend} configurations",
              file=sys.stderr)
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"scripts/aic_grid.py failed for {backend} (is aiconfigurator-core "
                     f"installed in {python}? see --aic-python)")


def parse_config(text: str) -> Config:
    parts = text.split(":")
    if len(parts) == 4 and parts[0] in BACKEND_VERSION:
        return Config(parts[1], parts[2], int(parts[3]), parts[0])
    raise argparse.ArgumentTypeError(
        f"expected BACKEND:SYSTEM:MODEL:TP (BACKEND one of {', '.join(BACKEND_VERSION)}), "
        f"got {text!r}")


def render(rows: list[dict[str, object]], source: str) -> str:
    lines = [
        "# Over 450 lines on purpose: generated data (the fitted coefficient sets), no logic.",
        '"""Roofline coefficient sets fitted to aiconfigurator step times.',
        "",
        "Generated by scripts/calibrate.py -- do not edit by hand. The reference data come from",
        "NVIDIA aiconfigurator-core (Apache-2.0); the coefficients are fitted by this project.",
        '"""',
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        f"SOURCE = {source!r}",
        "SETS: list[dict[str, Any]] = [",
    ]
    for r in rows:
        cdict: dict[str, float] = r["coeffs"]  # type: ignore[assignment]
        coeffs = ", ".join(f"{k!r}: {v:.6g}" for k, v in cdict.items())
        lines.append("    {")
        for k in ("system", "model", "backend", "backend_version", "tp", "gemm_dtype",
                  "kv_dtype", "fmha_dtype", "quality"):
            lines.append(f"        {k!r}: {r[k]!r},")
        lines.append(f"        'max_rel_err': {r['max_rel_err']:.4f}, "
                     f"'rms_rel_err': {r['rms_rel_err']:.4f}, "
                     f"'median_rel_err': {r['median_rel_err']:.4f}, 'points': {r['points']},")
        lines.append(f"        'coeffs': {{{coeffs}}},")
        lines.append("    },")
    lines.append("]")
    return "\n".join(lines) + "\n"


def markdown_row(cfg: Config, setup_label: str, pts: list[F.Point], errs: list[float],
                 quality: str) -> str:
    pre = [abs(e) for e, p in zip(errs, pts) if p.phase == F.PREFILL]
    dec = [abs(e) for e, p in zip(errs, pts) if p.phase == F.DECODE]
    return (f"| {cfg.backend} {BACKEND_VERSION[cfg.backend]} | {cfg.system} | {setup_label} | "
            f"{cfg.tp} | {quality} | {len(pts)} | {100 * max(pre):.1f} / "
            f"{100 * statistics.median(pre):.1f} | {100 * max(dec):.1f} / "
            f"{100 * statistics.median(dec):.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-tables", type=Path, default=TABLES, metavar="DIR",
                    help="directory of the aiconfigurator tables (default: tests/data/perf)")
    ap.add_argument("--from-aic", action="store_true",
                    help="re-query aiconfigurator-core for the per-backend grids first")
    ap.add_argument("--aic-python", default=sys.executable, metavar="PY",
                    help="a Python with aiconfigurator-core installed (default: this one)")
    ap.add_argument("--config", type=parse_config, action="append", default=[],
                    help="BACKEND:SYSTEM:MODEL:TP to add to the queried grids (with --from-aic)")
    ap.add_argument("--rough-above", type=float, default=0.15)
    ap.add_argument("--refit-all", action="store_true",
                    help=f"replace every shipped set by its refit (default: only when the refit "
                         f"is better by more than {100 * KEEP_WITHIN:.1f}%% max error)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--dry-run", action="store_true",
                    help="print the fits, write nothing (not even the queried tables)")
    ap.add_argument("--markdown", action="store_true",
                    help="also print a README table (max / median error per phase, in %%)")
    a = ap.parse_args()
    if a.config and not a.from_aic:
        ap.error("--config needs --from-aic")

    tables: Path = a.from_tables
    if a.from_aic:
        if a.dry_run:  # query into a copy: a dry run writes nothing
            copy = Path(tempfile.mkdtemp(prefix="calibrate-"))
            shutil.copytree(tables, copy, dirs_exist_ok=True)
            tables = copy
        configs = list(GRID_CONFIGS) + [c for c in a.config if c not in GRID_CONFIGS]
        query_aic(a.aic_python, configs, tables)
    grids = table_grids(tables)
    if tables != a.from_tables:
        shutil.rmtree(tables)
    order = {b: i for i, b in enumerate(BACKEND_ORDER)}
    rows: list[dict[str, object]] = []
    table_rows: list[str] = []
    for cfg, grid in sorted(grids.items(), key=lambda kv: order[kv[0].backend]):
        pts = grid.points
        setup = resolve(cfg.system, cfg.model, cfg.backend, cfg.tp, coeffs="achievable")
        if grid.fmha is not None and (grid.fmha == "fp8") != (setup.fmha_dtype == "fp8"):
            sys.exit(f"{grid.table}: aiconfigurator ran {cfg} with {grid.fmha} attention but "
                     f"dynosim.perfmodel.build.default_fmha gives {setup.fmha_dtype}")
        r = F.fit(setup, pts)
        shipped = find_calibrated(setup.gpu.name, setup.model.name, cfg.backend, cfg.tp)
        if shipped is not None and not a.refit_all:
            err = F.rel_errors(setup, shipped.coeffs, pts)
            old = F.FitResult(shipped.coeffs, float(max(abs(err))),
                              float((err ** 2).mean() ** 0.5), len(pts))
            if old.max_rel_err <= r.max_rel_err + KEEP_WITHIN:
                r = old
        errs = [float(e) for e in F.rel_errors(setup, r.coeffs, pts)]
        median = statistics.median(abs(e) for e in errs)
        quality = "rough" if r.max_rel_err > a.rough_above else "calibrated"
        print(f"{cfg.system:9} {cfg.model:36} tp{cfg.tp} {cfg.backend:6} points {r.points:3} "
              f"max {r.max_rel_err:6.1%} median {median:6.1%} rms {r.rms_rel_err:6.1%} "
              f"{quality}")
        label = setup.model.name + (" (MoE)" if setup.model.is_moe else "")
        table_rows.append(markdown_row(cfg, label, pts, errs, quality))
        rows.append({
            "system": setup.gpu.name, "model": setup.model.name, "backend": cfg.backend,
            "backend_version": BACKEND_VERSION[cfg.backend], "tp": cfg.tp,
            "gemm_dtype": setup.model.weight_dtype, "kv_dtype": setup.model.kv_dtype,
            "fmha_dtype": setup.fmha_dtype, "quality": quality,
            "max_rel_err": r.max_rel_err, "rms_rel_err": r.rms_rel_err,
            "median_rel_err": median, "points": r.points, "coeffs": r.coeffs.as_dict(),
        })
    if a.markdown:
        print("\n| backend | GPU | model | TP | set | points | prefill max / median | "
              "decode max / median |\n|---|---|---|---|---|---|---|---|")
        print("\n".join(table_rows))
    if not a.dry_run:
        files = sorted({g.table for g in grids.values()})
        source = f"{AIC_VERSION} grids in tests/data/perf ({', '.join(files)} and prefix tables)"
        a.out.write_text(render(rows, source))
        print(f"wrote {len(rows)} sets to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
