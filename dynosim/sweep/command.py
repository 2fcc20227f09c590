"""The single-run command line that reproduces a sweep point: `dynosim-tui TRACE --flag ...`
(flags the CLI maps one to one onto RunOptions; settings at their default, and those the run
does not use, which the CLI would refuse, are left out)."""
from __future__ import annotations

import shlex

from dynosim.replay import RunOptions, ignored_settings

_DEFAULTS = RunOptions()


def command_line(o: RunOptions, prog: str = "dynosim-tui") -> str:
    words = [prog]
    if o.trace is not None:
        words.append(o.trace)
    ignored = ignored_settings(o)
    for name in o.__struct_fields__:
        if name == "trace" or name in ignored:
            continue
        value = getattr(o, name)
        if value is None or value == getattr(_DEFAULTS, name):
            continue
        words += ["--" + name.replace("_", "-"), str(value)]
    return " ".join(shlex.quote(w) for w in words)
