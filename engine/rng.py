"""A small seeded generator (SplitMix64) owned by one simulation: no global state, and the
same seed gives the same draws on every platform and in compiled or interpreted mode."""
from __future__ import annotations

from typing import Final, final

MASK64: Final = (1 << 64) - 1
GOLDEN: Final = 0x9E3779B97F4A7C15


@final
class SplitMix64:
    state: int

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next_u64(self) -> int:
        self.state = (self.state + GOLDEN) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """A float in [0, 1)."""
        return float(self.next_u64() >> 11) * (1.0 / 9007199254740992.0)

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return int(self.uniform() * n)
