"""One reader for the flags that take "inline JSON or a path" (--extra-engine-args, the pool
engine args, --router-config, --planner-config; each reads YAML files too).

A value starting with '{' or '[' is inline JSON; anything else is a file path. Files are read
as UTF-8 (a leading byte-order mark is accepted). With `yaml=True` a .yaml/.yml file is YAML
(PyYAML's safe loader), a .json file JSON, and any other name JSON first, then YAML. Duplicate
keys are an error in both. Every problem is one `InputError` line naming the flag or the file,
and the line where the decoder can tell it.
"""
from __future__ import annotations

import json
from typing import Any

import yaml

from dynosim.inputs.errors import InputError, json_kind, show_value


def read_mapping(value: str, flag: str, *, yaml_files: bool = False) -> tuple[dict[str, Any], str]:
    """(the decoded object, the source to name in later errors: `flag`, or the file path)."""
    obj, source = read_value(value, flag, yaml_files=yaml_files)
    if not isinstance(obj, dict):
        json_only = not yaml_files or source == flag or source.lower().endswith(".json")
        kind = "JSON" if json_only else "JSON/YAML"
        raise InputError(f"expected a {kind} object, got {json_kind(obj)} {show_value(obj)}",
                         source=source)
    return obj, source


def read_value(value: str, flag: str, *, yaml_files: bool = False) -> tuple[Any, str]:
    """Like `read_mapping`, without the check that the top level is an object."""
    text = value.strip()
    what = "a .json/.yaml file" if yaml_files else "a JSON file"
    if not text:
        raise InputError(f"expected inline JSON or the path of {what}, got an empty string",
                         source=flag)
    if text.startswith(("{", "[")):
        return decode_json(text, flag), flag
    body = read_text(value, flag, f"the value must be inline JSON starting with '{{' or the "
                                  f"path of {what}")
    lower = value.lower()
    if yaml_files and lower.endswith((".yaml", ".yml")):
        return decode_yaml(body, value), value
    if not yaml_files or lower.endswith(".json"):
        return decode_json(body, value), value
    try:  # an unknown extension: JSON first, then YAML (as the reference)
        return decode_json(body, value), value
    except InputError:
        return decode_yaml(body, value), value


def with_field_line(exc: InputError, source: str, flag: str) -> InputError:
    """`exc` with the line where its field is written, when `source` is a file (not the inline
    value of `flag`) and `exc` names the field but no line: file:line:field, like a trace."""
    if source == flag or exc.source != source or exc.line is not None or not exc.field:
        return exc
    try:
        with open(source, "rb") as f:
            text = f.read().decode("utf-8-sig")
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # JSON is (almost always) YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return exc
    if "\n" not in text.strip():  # a one-line file: the line says nothing (as decode_json)
        return exc
    line = None
    for key in exc.field.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.value == key:
                line, node = knode.start_mark.line + 1, vnode
                break
        else:
            break
    if line is None:
        return exc
    return InputError(exc.message, source=source, line=line, field=exc.field)


def read_text(path: str, flag: str, hint: str) -> str:
    """A file's UTF-8 text; a missing file is named with `flag` and `hint` says what to give."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"cannot read {path!r}: no such file ({hint})", source=flag) from None
    except IsADirectoryError:
        raise InputError(f"cannot read {path!r}: is a directory", source=flag) from None
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}", source=flag) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=path) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = v
    return out


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        line = exc.lineno if "\n" in text.strip() else None
        where = f" at column {exc.colno}" if line is not None else f" at character {exc.pos}"
        raise InputError(f"invalid JSON: {exc.msg}{where}", source=source, line=line) from None
    except _Duplicate as exc:
        raise InputError("key given twice", source=source, field=exc.key) from None
    except ValueError as exc:
        raise InputError(f"invalid JSON: {exc}", source=source) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives one key twice."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise InputError("key given twice", source=loader.name,
                             line=key_node.start_mark.line + 1, field=str(key))
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)


def decode_yaml(text: str, source: str) -> Any:
    try:  # the reader checks every character up front (a NUL, a control character...)
        loader = _UniqueKeyLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InputError(f"invalid YAML: character #x{exc.character:04x} is not allowed",
                         source=source, line=line) from None
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark
        why = exc.problem or "cannot parse"
        if exc.context:
            why = f"{why} ({exc.context})"
        raise InputError(f"invalid YAML: {why}", source=source,
                         line=mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()
