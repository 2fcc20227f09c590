#!/usr/bin/env python3
"""Query aiconfigurator-core for step-time grids and write them as a CSV table.

Run it with a Python that has `aiconfigurator-core` installed (a scratch venv is enough: this
script imports nothing of dynosim). scripts/calibrate.py --from-aic calls it and fits the
coefficients to what it writes; the tables it writes are also the test fixtures in
tests/data/perf/ (aic_grid_<backend><version>.csv).

  /path/to/aicvenv/bin/python scripts/aic_grid.py --out grid.csv \\
      sglang:h200_sxm:nvidia/Llama-3.1-8B-Instruct-FP8:1 trtllm:h100_sxm:Qwen/Qwen3-30B-A3B-FP8:1

Each configuration gets the grid of the shipped vLLM tables: prefill at batch 1 and 128..32k
tokens, prefill of 128..8k new tokens after 1k/4k/16k cached ones, batched prefill, and one decode
step at batch 1..256 x context 1k/4k/16k (calls as the reference mocker makes them:
predict_prefill_latency(batch, isl incl. prefix, prefix), predict_decode_latency(batch, ctx, 2)).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# The 'current' database slots of aiconfigurator-core 0.12 (other strings are rejected by it).
BACKEND_VERSION = {"vllm": "0.24.0", "sglang": "0.5.14", "trtllm": "1.3.0rc20"}

PREFILL_ISL = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
PREFIX_NEW = (128, 512, 1024, 2048, 4096, 8192)
PREFIX_LEN = (1024, 4096, 16384)
BATCHED_PREFILL = ((4, 512), (8, 1024), (16, 256))  # (batch, tokens each), no prefix
DECODE_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DECODE_CTX = (1024, 4096, 16384)

# Catalog names -> what aiconfigurator is given. Checkpoints it does not bundle get a local
# stand-in directory: a bundled config.json plus an hf_quant_config.json (nothing downloaded).
BUNDLED = {
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Meta-Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B",
    "nvidia/Llama-3.1-70B-Instruct-FP8": "nvidia/Llama-3.1-70B-Instruct-FP8",
}
STAND_INS = {
    "nvidia/Llama-3.1-8B-Instruct-FP8": (
        "meta-llama--Meta-Llama-3.1-8B_config.json",
        {"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}}),
}
COLUMNS = ("backend", "backend_version", "system", "model", "tp", "gemm", "kv", "fmha", "phase",
           "batch", "isl", "prefix", "context", "aic_ms")


def _import() -> tuple[Any, Any, tuple[Any, Any]]:
    try:
        import aiconfigurator_core
        from aiconfigurator_core.sdk.engine import EngineHandle, build_model_config, get_model
    except ImportError as e:
        sys.exit(f"aic_grid.py needs aiconfigurator-core in this Python ({sys.executable}): {e}")
    return aiconfigurator_core, EngineHandle, (build_model_config, get_model)


def aic_model_path(model: str, scratch: Path) -> str:
    if model in STAND_INS:
        core, _, _ = _import()
        config_name, quant = STAND_INS[model]
        src = Path(core.__file__).parent / "model_configs" / config_name
        d = scratch / model.replace("/", "--")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, d / "config.json")
        (d / "hf_quant_config.json").write_text(json.dumps(quant))
        return str(d)
    return BUNDLED.get(model, model)


def resolved_quant(path: str, backend: str, tp: int) -> tuple[str, str, str]:
    """The GEMM, KV-cache and FMHA modes aiconfigurator infers for this checkpoint/backend."""
    _, _, (build_model_config, get_model) = _import()
    mc = build_model_config(
        tp_size=tp, pp_size=1, attention_dp_size=1, moe_tp_size=1, moe_ep_size=1,
        gemm_quant_mode=None, kvcache_quant_mode=None, fmha_quant_mode=None,
        moe_quant_mode=None, comm_quant_mode=None, forward_model=None, attention_backend=None)
    cfg = get_model(path, mc, backend).config
    gemm, kv, fmha = (str(getattr(cfg, k)).split(".")[-1]
                      for k in ("gemm_quant_mode", "kvcache_quant_mode", "fmha_quant_mode"))
    return gemm, kv, fmha


def grid(backend: str, system: str, model: str, tp: int, scratch: Path) -> list[dict[str, object]]:
    core, handle_cls, _ = _import()
    version = BACKEND_VERSION[backend]
    path = aic_model_path(model, scratch)
    handle = handle_cls.compile(path, system, backend, backend_version=version, tp_size=tp)
    eng = core.AicEngine.from_spec(handle.spec_bytes, None)
    gemm, kv, fmha = resolved_quant(path, backend, tp)
    base = {"backend": backend, "backend_version": version, "system": system, "model": model,
            "tp": tp, "gemm": gemm, "kv": kv, "fmha": fmha}
    rows: list[dict[str, object]] = []

    def prefill(batch: int, isl: int, prefix: int) -> None:
        ms = float(eng.predict_prefill_latency(batch, isl, prefix))
        rows.append({**base, "phase": "prefill", "batch": batch, "isl": isl, "prefix": prefix,
                     "context": 0, "aic_ms": f"{ms:.4f}"})

    for isl in PREFILL_ISL:
        prefill(1, isl, 0)
    for new in PREFIX_NEW:
        for pre in PREFIX_LEN:
            prefill(1, new + pre, pre)
    for batch, isl in BATCHED_PREFILL:
        prefill(batch, isl, 0)
    for b in DECODE_BATCH:
        for ctx in DECODE_CTX:
            ms = float(eng.predict_decode_latency(b, ctx, 2))
            rows.append({**base, "phase": "decode", "batch": b, "isl": 0, "prefix": 0,
                         "context": ctx, "aic_ms": f"{ms:.4f}"})
    return rows


def parse(text: str) -> tuple[str, str, str, int]:
    parts = text.split(":")
    if len(parts) != 4 or parts[0] not in BACKEND_VERSION or not parts[3].isdigit():
        raise argparse.ArgumentTypeError(
            f"expected BACKEND:SYSTEM:MODEL:TP with BACKEND one of "
            f"{', '.join(BACKEND_VERSION)}, got {text!r}")
    return parts[0], parts[1], parts[2], int(parts[3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="+", type=parse, metavar="BACKEND:SYSTEM:MODEL:TP")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    core, _, _ = _import()
    version = getattr(core, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v
        version = _v("aiconfigurator-core")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend, system, model, tp in a.configs:
            print(f"aiconfigurator: {backend} {system} {model} TP{tp}", file=sys.stderr)
            rows += grid(backend, system, model, tp, Path(tmp))
    tmp_out = a.out.with_name(a.out.name + ".tmp")
    with open(tmp_out, "w", newline="", encoding="utf-8") as f:
        f.write(f"# source: NVIDIA aiconfigurator-core {version} (PyPI, Apache-2.0), compiled "
                f"Rust engine (AicEngine), default database mode; measured kernel tables + AIC "
                f"op composition, no framework/scheduler overhead\n")
        f.write(f"# generated: {datetime.date.today()} by scripts/aic_grid.py (offline, CPU "
                f"only); gemm/kv/fmha = the quant modes aiconfigurator resolved\n")
        f.write("# prefill: predict_prefill_latency(batch, isl incl. prefix, prefix); decode: "
                "predict_decode_latency(batch, context, osl=2) = one step at `context` KV tokens "
                "per sequence\n")
        f.write("# nvidia/Llama-3.1-8B-Instruct-FP8 is not bundled: a local stand-in (bundled "
                "meta-llama/Meta-Llama-3.1-8B config.json + hf_quant_config FP8/FP8 KV)\n")
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp_out, a.out)
    print(f"wrote {len(rows)} points to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
