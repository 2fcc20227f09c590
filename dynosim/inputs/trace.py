"""Mooncake JSONL trace ingestion -> `engine.workload.Workload`.

One JSON object per line; blank lines are skipped. Fields (alias in brackets):

    timestamp [created_time]   ms, absolute; required on a session's first turn
    input_length [input_tokens] default len(hash_ids) * trace_block_size
    output_length [output_tokens] required, >= 0
    hash_ids                   required, non-empty list of non-negative ints (one per trace block)
    session_id                 optional str or int; rows sharing it form one multi-turn session
    delay [delay_ms]           optional think time before turn k > 0 (ms)
    request_id, output_token_ids, priority, strict_priority, policy_class: accepted, ignored.

Unknown fields are tolerated (real Mooncake releases carry extra columns), but not silently: a
note (a warning of the run) names the first line that has any and its unknown fields, so that a
misspelt `sesion_id` or `dealy` does not quietly change the workload.

Semantics: a row without a session id is its own single-turn session (`session == -1`). Turn k>0
of a session becomes ready `delay` ms after turn k-1 completes, where `delay` is the explicit
value, else the timestamp difference to the session's previous row, else 0. First-turn arrivals
are normalised so the earliest one is at 0; then first-turn arrivals and all delays are divided
by `arrival_speedup_ratio`.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Callable

import msgspec

from dynosim.gc_pause import paused_gc
from dynosim.inputs.checks import is_int as _is_int, is_num
from dynosim.inputs.errors import InputError, json_kind, show_value
from engine.workload import Workload

_U32_MAX = 2**32 - 1
_NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
# Block ids: only equality matters, so any non-negative integer is accepted (the reference takes
# u64; msgspec cannot bound at 2^64 and a per-row max() would cost ~15% of the parse).
_HashId = Annotated[int, msgspec.Meta(ge=0)]
_TokenId = Annotated[int, msgspec.Meta(ge=0, le=_U32_MAX)]


class _Row(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    """Fast-path shape of one trace line. `None` means absent or null (both: not given)."""

    timestamp: float | None = None
    created_time: float | None = None
    input_length: _NonNegInt | None = None
    input_tokens: _NonNegInt | None = None
    output_length: _NonNegInt | None = None
    output_tokens: _NonNegInt | None = None
    hash_ids: list[_HashId] | None = None
    session_id: str | int | None = None
    delay: float | None = None
    delay_ms: float | None = None
    request_id: str | None = None
    output_token_ids: list[_TokenId] | None = None
    priority: int | None = None
    strict_priority: Annotated[int, msgspec.Meta(ge=0, le=_U32_MAX)] | None = None
    policy_class: str | None = None


class _KnownRow(_Row, forbid_unknown_fields=True, gc=False):
    """The same shape, refusing unknown fields: tried first, so a trace without any costs
    nothing extra; after the first line with one, the tolerant decoder takes over."""


_ROW_DECODER = msgspec.json.Decoder(_Row)
_KNOWN_ROW_DECODER = msgspec.json.Decoder(_KnownRow)


def _unknown_fields_note(raw: bytes, source: str, lineno: int) -> str:
    obj = msgspec.json.decode(raw)
    unknown = [k for k in obj if k not in _Row.__struct_fields__]
    names = ", ".join(f"'{k}'" for k in unknown)
    return (f"{source}:{lineno}: ignoring field(s) {names}, not trace fields (the first line "
            f"with any; known: {', '.join(_Row.__struct_fields__)})")

def _is_num(v: Any) -> bool:
    return is_num(v) and math.isfinite(float(v))


def _int_in(lo: int, hi: int | None) -> Any:
    return lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi)


def _list_of(pred: Any) -> Any:
    return lambda v: isinstance(v, list) and all(pred(x) for x in v)


# (field, expected description, checker) used to explain a line the fast path rejected.
_FIELD_CHECKS: tuple[tuple[str, str, Any], ...] = (
    ("timestamp", "a finite number (ms)", _is_num),
    ("created_time", "a finite number (ms)", _is_num),
    ("input_length", "a non-negative integer", _int_in(0, None)),
    ("input_tokens", "a non-negative integer", _int_in(0, None)),
    ("output_length", "a non-negative integer", _int_in(0, None)),
    ("output_tokens", "a non-negative integer", _int_in(0, None)),
    ("hash_ids", "a list of non-negative integers", _list_of(_int_in(0, None))),
    ("session_id", "a string or integer", lambda v: isinstance(v, str) or _is_int(v)),
    ("delay", "a finite number (ms)", _is_num),
    ("delay_ms", "a finite number (ms)", _is_num),
    ("request_id", "a string", lambda v: isinstance(v, str)),
    ("output_token_ids", "a list of non-negative integers (< 2^32)",
     _list_of(_int_in(0, _U32_MAX))),
    ("priority", "an integer", _is_int),
    ("strict_priority", "a non-negative integer (< 2^32)", _int_in(0, _U32_MAX)),
    ("policy_class", "a string", lambda v: isinstance(v, str)),
)


def _explain_line(raw: bytes, source: str, lineno: int, fallback: str) -> InputError:
    """Build a precise error for a line that failed typed decoding."""
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:  # e.g. a number too large for a float: use the typed error
        return _from_msgspec(fallback, source, lineno)
    if not isinstance(obj, dict):
        return InputError(
            f"expected a JSON object, got {json_kind(obj)} {show_value(obj)}",
            source=source,
            line=lineno,
        )
    for name, expected, ok in _FIELD_CHECKS:
        if name in obj and obj[name] is not None and not ok(obj[name]):
            return InputError(
                f"expected {expected}, got {show_value(obj[name])}",
                source=source,
                line=lineno,
                field=name,
            )
    return _from_msgspec(fallback, source, lineno)


def _from_msgspec(message: str, source: str, lineno: int) -> InputError:
    """Turn msgspec's "Problem - at `$.field[3]`" into an InputError naming the field."""
    text, sep, path = message.rpartition(" - at `")
    if not sep or not path.startswith("$."):
        return InputError(message, source=source, line=lineno)
    field = path[2:].rstrip("`").split("[")[0].split(".")[0]
    return InputError(text[:1].lower() + text[1:], source=source, line=lineno, field=field)


# Compressed traces are read transparently, recognised by their first bytes (Dynamo's own
# request traces are shipped as .jsonl.gz).
_COMPRESSED: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
)


def _decompress(data: bytes, kind: str, path: str) -> bytes:
    import bz2
    import gzip
    import lzma
    import zlib

    try:
        if kind == "gzip":
            return gzip.decompress(data)
        if kind == "bzip2":
            return bz2.decompress(data)
        return lzma.decompress(data)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as e:
        raise InputError(f"is a {kind} file that cannot be decompressed ({e})",
                         source=path) from None


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise InputError("is a directory, expected a trace file", source=path) from None
    except FileNotFoundError:
        raise InputError("trace file not found", source=path) from None
    except PermissionError:
        raise InputError("permission denied reading trace file", source=path) from None
    except OSError as e:
        raise InputError(f"cannot read trace file: {e.strerror or e}", source=path) from None
    for magic, kind in _COMPRESSED:
        if data.startswith(magic):
            data = _decompress(data, kind, path)
            break
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00", 0, 1 << 16)
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"is a binary file (a NUL byte at offset {nul}), not a JSONL trace",
                         source=path, line=line)
    return data


def trace_line_numbers(path: str, indices: list[int]) -> list[int]:
    """The 1-based file lines of the requests with these workload indices (request k is the
    k-th non-blank line, as `load_mooncake` reads them)."""
    wanted = set(indices)
    if not wanted:
        return []
    found: dict[int, int] = {}
    k = 0
    for lineno, raw in enumerate(_read_bytes(path).split(b"\n"), 1):
        if not raw.strip():
            continue
        if k in wanted:
            found[k] = lineno
            if len(found) == len(wanted):
                break
        k += 1
    return [found.get(i, 0) for i in indices]


def _pick(a: Any, b: Any, name_a: str, name_b: str, source: str, lineno: int) -> Any:
    """Resolve a field given under its name or its alias (both at once is an error)."""
    if b is None:
        return a
    if a is None:
        return b
    raise InputError(
        f"both '{name_a}' and its alias '{name_b}' are given; use one", source=source,
        line=lineno, field=name_a,
    )


def load_mooncake(
    path: str,
    *,
    trace_block_size: int = 512,
    arrival_speedup_ratio: float = 1.0,
    closed_loop: bool = False,
    notes: list[str] | None = None,
) -> Workload:
    """Parse a Mooncake JSONL trace into a `Workload` (requests in file order).

    `closed_loop=True` (replay_concurrency mode, where timestamps are ignored) lets first turns
    omit `timestamp`; their arrival is then 0. `notes` receives the warnings (unknown fields).
    Raises `InputError` naming file, 1-based line and field for any problem.
    """
    with paused_gc():
        return _load(path, trace_block_size, arrival_speedup_ratio, closed_loop,
                     notes if notes is not None else [])


def _load(
    path: str, trace_block_size: int, arrival_speedup_ratio: float, closed_loop: bool,
    notes: list[str],
) -> Workload:
    if not _is_int(trace_block_size) or trace_block_size <= 0:
        raise InputError(
            f"must be a positive integer, got {show_value(trace_block_size)}",
            field="trace_block_size",
        )
    if not _is_num(arrival_speedup_ratio) or arrival_speedup_ratio <= 0:
        raise InputError(
            f"must be a finite number > 0, got {show_value(arrival_speedup_ratio)}",
            field="arrival_speedup_ratio",
        )
    ratio = float(arrival_speedup_ratio)
    bs = int(trace_block_size)
    source = str(path)
    data = _read_bytes(path)

    wl = Workload(bs)
    decode: Callable[[bytes], _Row] = _KNOWN_ROW_DECODER.decode
    tolerant = False  # switched to the decoder that ignores unknown fields
    add = wl.add
    next_turn = wl.next_turn
    session_names = wl.session_names
    # session name -> [session index, index of last request, its timestamp or None, its line, turns]
    sessions: dict[str, list[Any]] = {}
    first_ts: list[float] = []  # raw timestamps of first turns that have one

    lines = data.split(b"\n")
    del data  # keep only one copy of the file's bytes alive

    for lineno, raw in enumerate(lines, 1):
        try:
            try:
                row = decode(raw)
            except msgspec.ValidationError:
                if tolerant:
                    raise
                row = _ROW_DECODER.decode(raw)  # fails again unless a field was unknown
                notes.append(_unknown_fields_note(raw, source, lineno))
                decode = _ROW_DECODER.decode
                tolerant = True
        except msgspec.ValidationError as e:
            raise _explain_line(raw, source, lineno, str(e)) from None
        except msgspec.DecodeError as e:
            if not raw.strip():
                continue
            raise InputError(f"invalid JSON ({e})", source=source, line=lineno) from None

        ts = row.timestamp
        if row.created_time is not None:
            ts = _pick(ts, row.created_time, "timestamp", "created_time", source, lineno)
        if ts is not None and not math.isfinite(ts):
            raise InputError(f"expected a finite number (ms), got {ts}", source=source,
                             line=lineno, field="timestamp")

        hash_ids = row.hash_ids
        if hash_ids is None:
            raise InputError("required field is missing", source=source, line=lineno,
                             field="hash_ids")
        if not hash_ids:
            raise InputError("must be a non-empty list of block ids", source=source,
                             line=lineno, field="hash_ids")
        capacity = len(hash_ids) * bs

        isl = row.input_length
        if row.input_tokens is not None:
            isl = _pick(isl, row.input_tokens, "input_length", "input_tokens", source, lineno)
        if isl is None:
            isl = capacity
        elif isl == 0:
            raise InputError("must be positive, got 0", source=source, line=lineno,
                             field="input_length")
        elif isl > capacity:
            raise InputError(
                f"{isl} exceeds the capacity of its {len(hash_ids)} hash_ids "
                f"({len(hash_ids)} x trace_block_size {bs} = {capacity} tokens)",
                source=source, line=lineno, field="input_length",
            )

        osl = row.output_length
        if row.output_tokens is not None:
            osl = _pick(osl, row.output_tokens, "output_length", "output_tokens", source, lineno)
        if osl is None:
            raise InputError("required field is missing", source=source, line=lineno,
                             field="output_length")
        if row.output_token_ids is not None and len(row.output_token_ids) != osl:
            raise InputError(
                f"has {len(row.output_token_ids)} tokens but output_length is {osl}",
                source=source, line=lineno, field="output_token_ids",
            )

        delay = row.delay
        if row.delay_ms is not None:
            delay = _pick(delay, row.delay_ms, "delay", "delay_ms", source, lineno)
        if delay is not None and (not math.isfinite(delay) or delay < 0):
            raise InputError(f"must be a finite number >= 0 (ms), got {delay}",
                             source=source, line=lineno, field="delay")

        sid = row.session_id
        if sid is not None and not isinstance(sid, str):
            sid = str(sid)
        if not sid:  # absent, null or "": an independent single-turn request
            if delay is not None:
                raise InputError(
                    "a delay is only allowed on later turns of a session (this row has no "
                    "session_id, so it is a first turn)",
                    source=source, line=lineno, field="delay",
                )
            if ts is None:
                if not closed_loop:
                    raise InputError(
                        "required field is missing (a first turn needs an arrival time unless "
                        "replaying in closed loop)", source=source, line=lineno, field="timestamp",
                    )
                arrival = math.nan  # closed loop: placed at 0 after normalisation
            else:
                arrival = ts
                first_ts.append(ts)
            add(arrival, 0.0, isl, osl, hash_ids, -1, 0)
            continue

        state = sessions.get(sid)
        if state is None:
            if delay is not None:
                raise InputError(
                    f"a delay is not allowed on the first turn of session {sid!r}",
                    source=source, line=lineno, field="delay",
                )
            if ts is None:
                if not closed_loop:
                    raise InputError(
                        f"required field is missing (first turn of session {sid!r} needs an "
                        "arrival time unless replaying in closed loop)",
                        source=source, line=lineno, field="timestamp",
                    )
                arrival = math.nan  # closed loop: placed at 0 after normalisation
            else:
                arrival = ts
                first_ts.append(ts)
            sidx = len(session_names)
            session_names.append(sid)
            idx = add(arrival, 0.0, isl, osl, hash_ids, sidx, 0)
            sessions[sid] = [sidx, idx, ts, lineno, 1]
            continue

        sidx, prev_idx, prev_ts, prev_line, nturns = state
        if delay is None:
            if ts is None:
                delay = 0.0
            elif prev_ts is None:
                raise InputError(
                    f"cannot derive the think time of session {sid!r}: its previous turn "
                    f"(line {prev_line}) has no timestamp; give 'delay' explicitly",
                    source=source, line=lineno, field="timestamp",
                )
            else:
                delay = ts - prev_ts
                if delay < 0:
                    raise InputError(
                        f"{show_value(ts)} is earlier than the previous turn of session {sid!r} "
                        f"(line {prev_line}, timestamp {show_value(prev_ts)}); give 'delay' "
                        "explicitly or fix the order",
                        source=source, line=lineno, field="timestamp",
                    )
        idx = add(0.0, float(delay), isl, osl, hash_ids, sidx, nturns)
        next_turn[prev_idx] = idx
        state[1] = idx
        state[2] = ts
        state[3] = lineno
        state[4] = nturns + 1

    n = len(wl)
    if n == 0:
        raise InputError("trace contains no requests (the file is empty or only blank lines)",
                         source=source)

    # Normalise first-turn arrivals to start at 0, then apply the arrival speedup.
    base = min(first_ts) if first_ts else 0.0
    turn = wl.turn
    arr = wl.arrival_ms
    if len(first_ts) != turn.count(0):  # closed loop with some first turns lacking a timestamp
        arr = [base if a != a else a for a in arr]  # NaN -> base, i.e. arrival 0
    if ratio == 1.0:
        wl.arrival_ms = [arr[i] - base if turn[i] == 0 else 0.0 for i in range(n)]
    else:
        wl.arrival_ms = [(arr[i] - base) / ratio if turn[i] == 0 else 0.0 for i in range(n)]
        wl.delay_ms = [d / ratio for d in wl.delay_ms]
    wl.trace_prefixes()  # with the parse: every replay of this workload shares the prompt trie
    return wl
