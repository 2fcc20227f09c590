"""Load a YAML or JSON document keeping the line of every value, so errors name file:line:field.

PyYAML's node tree carries marks; we build plain Python values from it and record the 1-based
line of each value under its path (a tuple of keys and indices). Duplicate keys are an error
(PyYAML would silently keep the last one)."""
from __future__ import annotations

from typing import Any

import yaml

from dynosim.inputs.errors import InputError

Path = tuple[Any, ...]


class Located:
    """A loaded document plus where each of its values was written."""

    def __init__(self, value: Any, lines: dict[Path, int], source: str) -> None:
        self.value = value
        self.lines = lines
        self.source = source

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, path: Path, message: str) -> InputError:
        field = ".".join(str(k) for k in path) if path else None
        return InputError(message, source=self.source, line=self.line(path), field=field)


def _build(node: yaml.Node, path: Path, lines: dict[Path, int], source: str,
           ctor: yaml.constructor.SafeConstructor) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = ctor.construct_object(knode, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise InputError("mapping keys must be plain scalars", source=source,
                                 line=knode.start_mark.line + 1)
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise InputError(f"duplicate key '{key}'", source=source,
                                 line=knode.start_mark.line + 1,
                                 field=".".join(str(k) for k in (*path, key)))
            out[key] = _build(vnode, (*path, key), lines, source, ctor)
            lines[(*path, key)] = knode.start_mark.line + 1  # where the key is written
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, (*path, i), lines, source, ctor) for i, v in enumerate(node.value)]
    return ctor.construct_object(node, deep=True)


def load_located(text: str, source: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"invalid YAML/JSON: {e.problem or e.context}", source=source,
                         line=line) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML/JSON: {e}", source=source) from None
    if node is None:
        raise InputError("the sweep spec is empty", source=source)
    lines: dict[Path, int] = {}
    ctor = yaml.constructor.SafeConstructor()
    try:
        value = _build(node, (), lines, source, ctor)
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        raise InputError(f"invalid value: {e.problem}", source=source,
                         line=mark.line + 1 if mark else None) from None
    return Located(value, lines, source)


def read_located(path: str) -> Located:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise InputError("sweep spec not found", source=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a sweep spec file", source=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the sweep spec: {e}", source=path) from None
    return load_located(text, path)
