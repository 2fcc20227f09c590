"""How the workers are arranged and routed: aggregated or disaggregated prefill/decode pools,
round-robin or KV-aware routing, KV transfer between the pools."""
from __future__ import annotations

from typing import Final, final

from engine.config import EngineConfig
from engine.kvrouter import KvRouterConfig

ROUTER_ROUND_ROBIN: Final = 0
ROUTER_KV: Final = 1

TRANSFER_FULL_PROMPT: Final = 0
TRANSFER_DESTINATION_MISSING: Final = 1


@final
class Topology:
    disaggregated: bool
    num_workers: int  # aggregated
    agg_cfg: EngineConfig  # aggregated workers' engine config
    prefill_cfg: EngineConfig
    decode_cfg: EngineConfig
    num_prefill: int
    num_decode: int
    router_mode: int  # ROUTER_*
    router_cfg: KvRouterConfig
    seed: int
    kv_event_lag_ms: float
    # KV hand-off from prefill to decode: delay = tokens * bytes_per_token / (GB/s * 1e9) s
    transfer_bandwidth_gbps: float  # <= 0: no delay
    transfer_bytes_per_token: float  # <= 0: no delay
    transfer_mode: int  # TRANSFER_*

    def __init__(self, num_workers: int, agg_cfg: EngineConfig | None = None) -> None:
        self.disaggregated = False
        self.num_workers = num_workers
        self.agg_cfg = agg_cfg if agg_cfg is not None else EngineConfig()
        self.prefill_cfg = EngineConfig()
        self.decode_cfg = EngineConfig()
        self.num_prefill = 0
        self.num_decode = 0
        self.router_mode = ROUTER_ROUND_ROBIN
        self.router_cfg = KvRouterConfig()
        self.seed = 0
        self.kv_event_lag_ms = 0.0
        self.transfer_bandwidth_gbps = 0.0
        self.transfer_bytes_per_token = 0.0
        self.transfer_mode = TRANSFER_FULL_PROMPT
