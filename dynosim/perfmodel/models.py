"""Model architectures the roofline knows by name, and HuggingFace `config.json` loading.

Numbers are the public `config.json` values of each checkpoint. A name is matched
case-insensitively against the canonical id and its aliases; a path to a local directory (or to
its `config.json`) is read instead. Nothing is downloaded.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

from dynosim.perfmodel.dtypes import gemm_dtype, kv_dtype


@dataclass(frozen=True)
class ModelArch:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int  # dense MLP width (unused when every layer is MoE)
    vocab: int
    tied_embeddings: bool = False
    weight_dtype: str = "bf16"  # linear layers: bf16 | fp8 | fp8_block | fp4 | int4_wo
    kv_dtype: str = "bf16"  # default KV cache dtype of the checkpoint: bf16 | fp8
    head_dtype: str = "bf16"  # lm_head (ModelOpt/Qwen FP8 checkpoints keep it in BF16)
    n_experts: int = 0  # routed experts per MoE layer (0 = dense)
    top_k: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0  # shared-expert MLP width per MoE layer (0 = none)
    aliases: tuple[str, ...] = ()

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    def attn_params(self) -> float:
        """Q, K, V and O projection parameters of one layer."""
        d, hd = self.hidden, self.head_dim
        return float(d * self.heads * hd * 2 + d * self.kv_heads * hd * 2)

    def params(self) -> float:
        """Total parameter count (embeddings and lm_head included once each unless tied)."""
        per_layer = self.attn_params() + 2 * self.hidden
        if self.is_moe:
            per_layer += (self.n_experts * 3 * self.hidden * self.moe_intermediate
                          + self.hidden * self.n_experts
                          + 3 * self.hidden * self.shared_intermediate)
        else:
            per_layer += 3 * self.hidden * self.intermediate
        emb = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * per_layer + emb + self.hidden


def _llama(name: str, layers: int, hidden: int, heads: int, inter: int, *, kv_heads: int = 8,
           head_dim: int = 128, tied: bool = False, aliases: tuple[str, ...] = (),
           fp8: bool = False) -> ModelArch:
    return ModelArch(name, layers, hidden, heads, kv_heads, head_dim, inter, 128256,
                     tied_embeddings=tied, weight_dtype="fp8" if fp8 else "bf16",
                     kv_dtype="fp8" if fp8 else "bf16", aliases=aliases)


def _qwen3(name: str, layers: int, hidden: int, heads: int, inter: int, *, kv_heads: int = 8,
           tied: bool = False, fp8: bool = False, experts: int = 0, moe_inter: int = 0,
           aliases: tuple[str, ...] = ()) -> ModelArch:
    # Qwen's FP8 checkpoints are block-scaled (128x128). Like aiconfigurator (and vLLM when the
    # checkpoint is served with an FP8 KV cache) their KV cache defaults to FP8.
    return ModelArch(name, layers, hidden, heads, kv_heads, 128, inter, 151936,
                     tied_embeddings=tied, weight_dtype="fp8_block" if fp8 else "bf16",
                     kv_dtype="fp8" if fp8 else "bf16",
                     n_experts=experts, top_k=8 if experts else 0, moe_intermediate=moe_inter,
                     aliases=aliases)


def _both_llama(base: str, nv: str, layers: int, hidden: int, heads: int, inter: int,
                **kw: Any) -> list[ModelArch]:
    size = base.split("-")[-1]  # "8B"
    ver = base.split("-")[1]  # "3.1"
    bf16 = _llama(f"meta-llama/Llama-{ver}-{size}-Instruct", layers, hidden, heads, inter,
                  aliases=(f"meta-llama/Llama-{ver}-{size}", f"meta-llama/Meta-Llama-{ver}-{size}",
                           f"meta-llama/Meta-Llama-{ver}-{size}-Instruct"), **kw)
    out = [bf16]
    if nv:
        out.append(_llama(nv, layers, hidden, heads, inter, fp8=True,
                          aliases=(f"meta-llama/Llama-{ver}-{size}-Instruct-FP8",), **kw))
    return out


def _both_qwen(size: str, layers: int, hidden: int, heads: int, inter: int,
               **kw: Any) -> list[ModelArch]:
    return [_qwen3(f"Qwen/Qwen3-{size}", layers, hidden, heads, inter, **kw),
            _qwen3(f"Qwen/Qwen3-{size}-FP8", layers, hidden, heads, inter, fp8=True, **kw)]


_CATALOG: list[ModelArch] = [
    *_both_llama("Llama-3.1-8B", "nvidia/Llama-3.1-8B-Instruct-FP8", 32, 4096, 32, 14336),
    *_both_llama("Llama-3.1-70B", "nvidia/Llama-3.1-70B-Instruct-FP8", 80, 8192, 64, 28672),
    *_both_llama("Llama-3.1-405B", "nvidia/Llama-3.1-405B-Instruct-FP8", 126, 16384, 128, 53248),
    *_both_llama("Llama-3.3-70B", "nvidia/Llama-3.3-70B-Instruct-FP8", 80, 8192, 64, 28672),
    *_both_llama("Llama-3.2-1B", "", 16, 2048, 32, 8192, head_dim=64, tied=True),
    *_both_llama("Llama-3.2-3B", "", 28, 3072, 24, 8192, tied=True),
    *_both_qwen("0.6B", 28, 1024, 16, 3072, tied=True),
    *_both_qwen("1.7B", 28, 2048, 16, 6144, tied=True),
    *_both_qwen("4B", 36, 2560, 32, 9728, tied=True),
    *_both_qwen("8B", 36, 4096, 32, 12288),
    *_both_qwen("14B", 40, 5120, 40, 17408),
    *_both_qwen("32B", 64, 5120, 64, 25600),
    *_both_qwen("30B-A3B", 48, 2048, 32, 6144, kv_heads=4, experts=128, moe_inter=768),
    *_both_qwen("235B-A22B", 94, 4096, 64, 12288, kv_heads=4, experts=128, moe_inter=1536),
]

_BY_NAME: dict[str, ModelArch] = {}
for _m in _CATALOG:
    for _n in (_m.name, *_m.aliases):
        _BY_NAME[_n.lower()] = _m


def known_models() -> list[str]:
    return [m.name for m in _CATALOG]


class UnknownModel(ValueError):
    pass


def find_model(name_or_path: str) -> ModelArch:
    """A catalog model by name (or alias), or a local HuggingFace-style config."""
    key = name_or_path.strip()
    if os.path.isdir(key) or (os.path.isfile(key) and key.endswith(".json")):
        return load_hf_config(key)
    m = _BY_NAME.get(key.lower())
    if m is not None:
        return m
    listed = ", ".join(known_models())
    raise UnknownModel(f"unknown model {name_or_path!r} (not a known name nor a local directory "
                       f"with a config.json); known models: {listed}")


def _get(cfg: dict[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if n in cfg and cfg[n] is not None:
            return cfg[n]
    return default


def load_hf_config(path: str) -> ModelArch:
    """Architecture from a HuggingFace `config.json` (directory or file). An
    `hf_quant_config.json` beside it (ModelOpt) or a `quantization_config` entry sets the
    weight and KV dtypes."""
    cfg_file = os.path.join(path, "config.json") if os.path.isdir(path) else path
    directory = os.path.dirname(os.path.abspath(cfg_file))
    try:
        with open(cfg_file, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise UnknownModel(f"cannot read model config {cfg_file!r}: {e}") from None
    if not isinstance(cfg, dict):
        raise UnknownModel(f"model config {cfg_file!r} is not a JSON object")
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers
        cfg = {**cfg, **cfg["text_config"]}
    try:
        layers = int(_get(cfg, "num_hidden_layers", "n_layer", "num_layers"))
        hidden = int(_get(cfg, "hidden_size", "n_embd", "d_model"))
        heads = int(_get(cfg, "num_attention_heads", "n_head"))
        kv_heads = int(_get(cfg, "num_key_value_heads", default=heads))
        head_dim = int(_get(cfg, "head_dim", default=hidden // heads))
        vocab = int(_get(cfg, "vocab_size"))
        inter = int(_get(cfg, "intermediate_size", "ffn_dim", default=4 * hidden))
    except (TypeError, ValueError):
        raise UnknownModel(
            f"model config {cfg_file!r} lacks num_hidden_layers, hidden_size, "
            f"num_attention_heads or vocab_size") from None
    experts = int(_get(cfg, "num_experts", "num_local_experts", "n_routed_experts", default=0))
    top_k = int(_get(cfg, "num_experts_per_tok", "moe_top_k", default=0)) if experts else 0
    moe_inter = int(_get(cfg, "moe_intermediate_size", default=inter)) if experts else 0
    shared = int(_get(cfg, "shared_expert_intermediate_size", default=0)) if experts else 0
    w_dtype, k_dtype = "bf16", "bf16"
    qc = cfg.get("quantization_config")
    if isinstance(qc, dict):
        method = str(qc.get("quant_method", "")).lower()
        if "fp8" in method or str(qc.get("quant_algo", "")).lower().startswith("fp8"):
            w_dtype = "fp8_block" if qc.get("weight_block_size") else "fp8"
        elif "fp4" in method or "nvfp4" in str(qc.get("quant_algo", "")).lower():
            w_dtype = "fp4"
        kv = qc.get("kv_cache_quant_algo") or qc.get("kv_cache_scheme")
        if isinstance(kv, str) and "fp8" in kv.lower():
            k_dtype = "fp8"
    hq = os.path.join(directory, "hf_quant_config.json")
    if os.path.isfile(hq):
        try:
            with open(hq, encoding="utf-8") as f:
                q = json.load(f).get("quantization", {})
        except (OSError, ValueError, AttributeError):
            q = {}
        algo = str(q.get("quant_algo") or "").upper()
        if algo.startswith("FP8"):
            w_dtype = "fp8_block" if "BLOCK" in algo else "fp8"
        elif "FP4" in algo:
            w_dtype = "fp4"
        if "FP8" in str(q.get("kv_cache_quant_algo") or "").upper():
            k_dtype = "fp8"
    name = str(_get(cfg, "_name_or_path", default="")) or os.path.basename(directory)
    return ModelArch(name=name or cfg_file, layers=layers, hidden=hidden, heads=heads,
                     kv_heads=kv_heads, head_dim=head_dim, intermediate=inter, vocab=vocab,
                     tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                     weight_dtype=gemm_dtype(w_dtype), kv_dtype=kv_dtype(k_dtype),
                     n_experts=experts, top_k=top_k, moe_intermediate=moe_inter,
                     shared_intermediate=shared)


def with_dtypes(m: ModelArch, weight: str | None, kv: str | None) -> ModelArch:
    """The same architecture with overridden weight/KV dtypes (None keeps the checkpoint's)."""
    w = gemm_dtype(weight) if weight else m.weight_dtype
    k = kv_dtype(kv) if kv else m.kv_dtype
    if w == m.weight_dtype and k == m.kv_dtype:
        return m
    return replace(m, weight_dtype=w, kv_dtype=k)
