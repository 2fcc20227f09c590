"""`with paused_gc():` for bulk work that allocates millions of small objects and no cycles
(parsing a trace, building per-request records): the cyclic GC would only rescan the growing
lists over and over (about 40% of a trace parse)."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
