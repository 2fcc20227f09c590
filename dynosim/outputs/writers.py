"""Writing report files so that a run's outputs appear complete and together, or not at all.

`StagedFiles` is the one way files are written. Each output is first written to a hidden
staging file beside its target (same file system, so the final rename is atomic), fsynced,
and only `commit()` puts them all in place. Leaving the `with` block before that (an error,
Ctrl-C, SIGTERM) removes every staged file and every folder it created.

A target that exists and is not a regular file (a character device such as /dev/null, a FIFO,
or the terminal or pipe behind /dev/stdout) cannot be renamed over: its bytes are staged in
an anonymous temporary file and streamed into it at commit, and a write error there (ENOSPC
on /dev/full, ...) is reported like any other. Which targets are which is decided up front by
`dynosim.outputs.plan`.

Staging names carry the writer's pid (`.<name>.dynosim-<pid>-<n>.tmp`): a later run writing
to the same folder removes those of processes that no longer exist (a crash, SIGKILL).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import time
from contextlib import contextmanager
from typing import IO, Any, Callable, Iterable, Iterator

import msgspec
import polars as pl

STAGE_SUFFIX = ".tmp"
_STAGED_RE = re.compile(r"^\..*\.dynosim-(\d+)-\d+\.tmp$")
# A staging file of a dead process younger than this is left alone: its pid may belong to
# another pid namespace writing to a shared folder right now.
_LEFTOVER_AGE_S = 300.0
_BLOCKED = {signal.SIGINT, signal.SIGTERM}


class OutputError(Exception):
    """A report could not be written: `<path>: <reason>`, one line, nothing partial left."""

    def __init__(self, path: str | os.PathLike[str], reason: str,
                 errno_: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.errno = errno_
        super().__init__(f"{self.path}: {reason}")


def os_reason(exc: OSError) -> str:
    """The OS's words for an error ("No space left on device"), without errno or paths."""
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, it is someone else's
        return True
    return True


def remove_stale_staging(directory: str | os.PathLike[str]) -> list[str]:
    """Delete staging files that crashed runs left in `directory`; returns their names."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _STAGED_RE.match(entry.name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < _LEFTOVER_AGE_S:
                continue
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            pass
    return removed


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Staged:
    __slots__ = ("target", "shown", "handle", "tmp_path", "stream", "fd", "exclusive")

    def __init__(self, target: str, shown: str, handle: IO[bytes], tmp_path: str | None,
                 stream: bool, fd: int | None, exclusive: bool) -> None:
        self.target = target  # where the bytes go (symlinks resolved)
        self.shown = shown  # the path as the user gave it, for messages and the result
        self.handle = handle
        self.tmp_path = tmp_path  # the named staging file (None for streams: anonymous)
        self.stream = stream
        self.fd = fd
        self.exclusive = exclusive


class StagedFiles:
    """Write several files so that they appear together or not at all (see module doc)."""

    _counter = 0

    def __init__(self) -> None:
        self._staged: list[_Staged] = []
        self._made_dirs: list[str] = []
        self._remove: list[str] = []
        self._cleaned: set[str] = set()
        self.broken_pipes: list[str] = []  # streams whose reader had gone (not an error)

    def _mkdirs(self, directory: str, shown: str) -> None:
        missing: list[str] = []
        d = directory
        while not os.path.isdir(d):
            missing.append(d)
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                if not os.path.isdir(d):
                    raise OutputError(d, "exists and is not a directory") from None
                continue
            except OSError as exc:
                raise OutputError(shown, os_reason(exc)) from None
            self._made_dirs.append(d)

    @contextmanager
    def open(self, target: str | os.PathLike[str], *, shown: str | None = None,
             stream: bool = False, fd: int | None = None,
             exclusive: bool = False) -> Iterator[IO[bytes]]:
        """A binary handle for `target`'s new content. `stream`: write into the existing
        special file at commit instead of renaming over it; `fd`: that file is already open
        as this descriptor (our stdout); `exclusive`: never replace an existing file.
        OS errors become `OutputError` naming `shown` (default: the target)."""
        real = os.path.abspath(os.fspath(target))
        name = shown if shown is not None else os.fspath(target)
        try:
            if stream:
                handle: IO[bytes] = tempfile.TemporaryFile()
                tmp_path = None
            else:
                directory = os.path.dirname(real)
                self._mkdirs(directory, name)
                if directory not in self._cleaned:
                    self._cleaned.add(directory)
                    remove_stale_staging(directory)
                StagedFiles._counter += 1
                base = os.path.basename(real)[:40]
                tmp_path = os.path.join(
                    directory, f".{base}.dynosim-{os.getpid()}-{StagedFiles._counter}{STAGE_SUFFIX}")
                raw = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                handle = os.fdopen(raw, "wb")
        except OSError as exc:
            raise OutputError(name, os_reason(exc), exc.errno) from None
        entry = _Staged(real, name, handle, tmp_path, stream, fd, exclusive)
        self._staged.append(entry)
        try:
            yield handle
            handle.flush()
            if not stream:
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(name, os_reason(exc), exc.errno) from None

    def remove_at_commit(self, path: str) -> None:
        """A file of an earlier run to delete when this one commits (a stale export file)."""
        self._remove.append(path)

    def commit(self, on_done: Callable[[], None] | None = None) -> list[str]:
        """Put every staged file in place; returns the final paths in staging order, as
        given (a default name taken meanwhile by another run moves on to the next `-N`).
        SIGINT and SIGTERM wait while the files are renamed; `on_done` runs before they are
        let through (so a caller can tell an interrupt after the commit from one before)."""
        staged = list(self._staged)
        # Streams first: they are the ones that can still fail (a full device), and they may
        # block (a FIFO without a reader), so signals stay deliverable meanwhile.
        for s in staged:
            if s.stream:
                self._stream_out(s)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            dirs: set[str] = set()
            for s in staged:
                if s.stream:
                    continue
                s.handle.close()
                assert s.tmp_path is not None
                try:
                    if s.exclusive:
                        s.target = self._place_exclusive(s.tmp_path, s.target)
                        if s.shown != s.target:
                            s.shown = os.path.join(os.path.dirname(s.shown),
                                                   os.path.basename(s.target))
                    else:
                        os.replace(s.tmp_path, s.target)
                except OSError as exc:
                    raise OutputError(s.shown, os_reason(exc), exc.errno) from None
                s.tmp_path = None
                dirs.add(os.path.dirname(s.target))
            for path in self._remove:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise OutputError(path, os_reason(exc), exc.errno) from None
            self._remove = []
            self._staged = []
            self._made_dirs = []
            for d in dirs:
                _fsync_dir(d)
            if on_done is not None:
                on_done()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return [s.shown for s in staged]

    @staticmethod
    def _place_exclusive(tmp_path: str, target: str) -> str:
        """Move the staged file to `target`, or to `stem-2.ext`, `stem-3.ext`... when that
        name exists: a hard link never replaces a file (a file system without hard links
        falls back to checking, then renaming)."""
        stem, ext = os.path.splitext(target)
        candidate, n = target, 2
        while True:
            try:
                os.link(tmp_path, candidate)
                os.unlink(tmp_path)
                return candidate
            except FileExistsError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise
                if not os.path.lexists(candidate):
                    os.replace(tmp_path, candidate)
                    return candidate
            candidate = f"{stem}-{n}{ext}"
            n += 1

    def _stream_out(self, s: _Staged) -> None:
        src = s.handle
        try:
            src.flush()
            src.seek(0)
            if s.fd is not None:
                if s.fd == 1:
                    import sys
                    sys.stdout.flush()
                out = os.fdopen(os.dup(s.fd), "wb")
            else:
                # No O_TRUNC and no O_CREAT: a device or FIFO is written, never replaced.
                out = os.fdopen(os.open(s.target, os.O_WRONLY | os.O_CLOEXEC), "wb")
            with out:
                shutil.copyfileobj(src, out, 1 << 20)
        except BrokenPipeError:
            # The reader left (`| head`): it wanted no more; not an error of the run.
            self.broken_pipes.append(s.shown)
        except OSError as exc:
            raise OutputError(s.shown, os_reason(exc), exc.errno) from None
        finally:
            src.close()

    def __enter__(self) -> "StagedFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self._staged:
            try:
                s.handle.close()
            except OSError:
                pass
            if s.tmp_path is not None:
                try:
                    os.unlink(s.tmp_path)
                except FileNotFoundError:
                    pass
        for d in reversed(self._made_dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self._staged = []
        self._made_dirs = []
        self._remove = []


# ---- what goes into a file ----------------------------------------------------------------------

def dump_json(fh: IO[bytes], obj: Any) -> None:
    """JSON with indent=2, keys in insertion order (keeps the reference summary order)."""
    fh.write(json.dumps(obj, indent=2, sort_keys=False, allow_nan=True).encode())
    fh.write(b"\n")


def dump_jsonl(fh: IO[bytes], rows: Iterable[Any]) -> int:
    """One compact JSON document per line (dict key order kept); returns the number of rows.

    Encoded with msgspec (about 6x faster than ``json.dumps`` on per-request records); NaN and
    infinities become ``null``.
    """
    encode = msgspec.json.Encoder().encode
    write = fh.write
    n = 0
    for row in rows:
        write(encode(row))
        write(b"\n")
        n += 1
    return n


def dump_parquet(fh: IO[bytes], frame: pl.DataFrame) -> None:
    frame.write_parquet(fh)


def dump_text(fh: IO[bytes], text: str) -> None:
    fh.write(text.encode("utf-8"))


# ---- one file at a time ------------------------------------------------------------------------

def stream_target(path: str) -> tuple[bool, int | None]:
    """(is `path` written in place rather than renamed over, the descriptor we already have
    it open as). In place: an existing non-regular file (device, FIFO, terminal), the file
    behind our stdout or stderr, anything reached through /proc or /dev (/dev/stdout...)."""
    try:
        st = os.stat(path)
    except OSError:
        return False, None
    fd = None
    for n in (1, 2):
        try:
            o = os.fstat(n)
        except OSError:
            continue
        if (o.st_dev, o.st_ino) == (st.st_dev, st.st_ino):
            fd = n
            break
    absolute = os.path.abspath(path)
    special = any(p.startswith(("/proc/", "/dev/"))
                  for p in (absolute, os.path.realpath(absolute)))
    return (not stat.S_ISREG(st.st_mode) or fd is not None or special), fd


def write_one(path: str | os.PathLike[str], dump: Callable[[IO[bytes]], Any]) -> Any:
    """Write one file with the same staging as a run's outputs (no up-front checks: use
    `outputs.plan` for those)."""
    shown = os.fspath(path)
    stream, fd = stream_target(shown)
    real = os.path.abspath(shown) if stream else os.path.realpath(shown)
    with StagedFiles() as staged:
        with staged.open(real, shown=shown, stream=stream, fd=fd) as fh:
            result = dump(fh)
        staged.commit()
    return result


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_one(path, lambda fh: dump_json(fh, obj))


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    n: int = write_one(path, lambda fh: dump_jsonl(fh, rows))
    return n


def write_parquet_atomic(path: str | os.PathLike[str], frame: pl.DataFrame) -> None:
    write_one(path, lambda fh: dump_parquet(fh, frame))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_one(path, lambda fh: dump_text(fh, text))

