"""Optional provider: step times straight from aiconfigurator-core (`pip install
'dynosim-tui[aic]'`), memoized. Selected with `"aic_provider": "aiconfigurator"`.

Calls follow the reference mocker: prefill gets (batch, mean end position incl. cached prefix,
mean prefix), decode gets (batch, mean context, osl=2 = one step) and is clamped to >= 1 ms.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from dynosim.perfmodel.build import PerfModelError

EXTRA_HINT = "pip install 'dynosim-tui[aic]'"
# The 'current' database slots of aiconfigurator-core 0.12 (other strings are rejected by it).
DEFAULT_BACKEND_VERSIONS = {"vllm": "0.24.0", "sglang": "0.5.14", "trtllm": "1.3.0rc20"}
DECODE_FLOOR_MS = 1.0


def available() -> bool:
    try:
        import aiconfigurator_core  # noqa: F401
    except ImportError:
        return False
    return True


def _import_core() -> tuple[Any, Any]:
    try:
        import aiconfigurator_core
        from aiconfigurator_core.sdk.engine import EngineHandle
    except ImportError as e:
        raise PerfModelError(
            f'"aic_provider": "aiconfigurator" needs the optional aiconfigurator-core package '
            f"(the 'aic' extra: {EXTRA_HINT}); it is not importable here ({e}). Leave "
            f"aic_provider unset to use the built-in roofline.", "provider") from None
    return aiconfigurator_core, EngineHandle


class AicProvider:
    """One compiled aiconfigurator engine with memo tables for both phases."""

    def __init__(self, system: str, model_path: str, backend: str, backend_version: str | None,
                 tp: int, overrides: dict[str, Any]) -> None:
        core, handle_cls = _import_core()
        version = backend_version or DEFAULT_BACKEND_VERSIONS.get(backend)
        kwargs = {k: v for k, v in overrides.items() if v is not None}
        try:
            handle = handle_cls.compile(model_path, system, backend, backend_version=version,
                                        tp_size=tp, **kwargs)
        except Exception as e:  # its errors are not a stable API
            raise PerfModelError(
                f"aiconfigurator could not build {model_path!r} on {system} ({backend} "
                f"{version}, TP{tp}): {type(e).__name__}: {e}. Models it does not bundle are "
                f"fetched from HuggingFace; offline, pass a local directory with config.json "
                f"(and hf_quant_config.json) as aic_model_path", "model") from None
        engine: Any = handle
        try:  # the bare Rust engine is the fast path; the handle has the same methods
            engine = core.AicEngine.from_spec(handle.spec_bytes, None)
        except Exception:
            engine = handle
        self._engine = engine
        self._prefill: dict[tuple[int, int, int], float] = {}
        self._decode: dict[tuple[int, int], float] = {}
        self.description = f"aiconfigurator-core: {model_path} on {system} ({backend} {version}, TP{tp})"

    def prefill_ms(self, batch_n: int, sum_end: int, sum_start: int) -> float:
        mean_end = sum_end // batch_n
        mean_start = sum_start // batch_n
        if mean_end <= mean_start:
            return 0.0
        key = (batch_n, mean_end, mean_start)
        v = self._prefill.get(key)
        if v is None:
            v = float(self._engine.predict_prefill_latency(batch_n, mean_end, mean_start))
            self._prefill[key] = v
        return v

    def decode_ms(self, batch_n: int, sum_ctx: int) -> float:
        key = (batch_n, sum_ctx // batch_n)
        v = self._decode.get(key)
        if v is None:
            v = float(self._engine.predict_decode_latency(batch_n, key[1], 2))
            v = v if v > DECODE_FLOOR_MS else DECODE_FLOOR_MS
            self._decode[key] = v
        return v


@lru_cache(maxsize=16)
def provider(system: str, model_path: str, backend: str, backend_version: str | None, tp: int,
             overrides: tuple[tuple[str, Any], ...] = ()) -> AicProvider:
    """Memoized per configuration (compiling costs about a second)."""
    return AicProvider(system, model_path, backend, backend_version, tp, dict(overrides))
