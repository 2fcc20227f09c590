"""dynosim-tui's front door: build a replay from options, run it, get the report.

    import dynosim

    replay = dynosim.build_replay(dynosim.RunOptions(trace="traces/mooncake_tiny.jsonl",
                                                     num_workers=2))
    replay.run_to_end()
    report = replay.report()
    report.summary["mean_ttft_ms"]    # the reference's summary keys
    print(report.table())             # the terminal table; report.frame(): per-request polars

`RunOptions` takes the CLI's flags as fields (`dynosim-tui --help`); bad input raises
`InputError` (one line naming file, line and field) before anything runs. The simulator's own
packages `engine`, `planner` and `tui` install beside this one; importing dynosim checks that
those names resolve to them and not to a same-named file or folder earlier on `sys.path`.
"""
from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dynosim.inputs.errors import InputError
    from dynosim.outputs.report import Report
    from dynosim.replay import Replay, RunOptions, build_replay

__all__ = ["InputError", "Replay", "Report", "RunOptions", "build_replay"]

_HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check_siblings() -> None:
    for name in ("engine", "planner", "tui"):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:
            raise ImportError(f"dynosim: its '{name}' package is missing; reinstall dynosim-tui")
        if os.path.dirname(os.path.dirname(os.path.abspath(origin))) != _HOME:
            raise ImportError(
                f"dynosim: '{name}' resolves to {origin}, not to dynosim-tui's package in "
                f"{_HOME}: that file or folder shadows it (rename it, or run from another "
                "directory)")


_check_siblings()

# Loaded on first use, so importing a part of dynosim does not pull in the whole replay.
_LAZY = {"InputError": "dynosim.inputs.errors", "Replay": "dynosim.replay",
         "Report": "dynosim.outputs.report", "RunOptions": "dynosim.replay",
         "build_replay": "dynosim.replay"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dynosim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
