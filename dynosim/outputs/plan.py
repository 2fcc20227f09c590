"""Plan a run's outputs before simulating: every location is checked up front, so a run is never
lost to a bad path after it has been computed.

`plan_outputs` resolves each requested file (`--report-json`, `--report-jsonl`, the files of
`--export DIR`, the planner's HTML report and log) to a `Target` and raises `OutputError`
(`<path>: <reason>`) when a location cannot work:

* the path names a directory, a socket or a block device (a disk);
* a parent is not a directory, or cannot be created; the folder is not writable, is on a
  read-only file system or on a full one; a name is longer than the file system allows;
* the target is one of the run's inputs (the trace, an engine-args or planner config file);
* two outputs land on the same file;
* an existing `--export` folder holds files that are not from an earlier export.

A target that exists and is not a regular file (/dev/null, a FIFO, a terminal, the pipe or file
behind /dev/stdout) is a *stream*: written in place at commit, never renamed over.
Both front ends use it: the headless CLI before the run, the TUI at start-up and again on
each export.
"""
from __future__ import annotations

import datetime as _dt
import os
import stat
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from dynosim.outputs.planner_log import snapshot_log_path
from dynosim.outputs.writers import STAGE_SUFFIX, OutputError, os_reason, stream_target
from planner.config import PlannerConfig

# The files `--export DIR` writes (the planner log only with a planner in the loop).
EXPORT_FILES: tuple[str, ...] = ("report.json", "requests.jsonl", "requests.parquet",
                                 "summary.txt", "worker_samples.parquet", "report.html")
EXPORT_PLANNER_LOG = "planner.log.jsonl.gz"


@dataclass(frozen=True)
class Target:
    path: str  # as the user gave it (shown in messages)
    real: str  # where the bytes go: absolute, symlinks resolved (streams: the path itself)
    what: str  # the flag or setting that named it
    stream: bool = False  # written in place at commit (a device, FIFO, our stdout)
    fd: int | None = None  # the stream is already open here (our stdout or stderr)
    exclusive: bool = False  # a generated default name: never replace an existing file
    key: tuple[int, int] | str = ""  # identity for the same-file check


@dataclass
class OutputPlan:
    report_json: Target | None = None
    report_jsonl: Target | None = None
    export_dir: str | None = None
    export: dict[str, Target] = field(default_factory=dict)  # file name -> target
    stale: list[str] = field(default_factory=list)  # earlier export files to remove
    planner_html: Target | None = None
    planner_log: Target | None = None

    def targets(self) -> list[Target]:
        out = [t for t in (self.report_json, self.report_jsonl) if t is not None]
        out += list(self.export.values())
        return out + [t for t in (self.planner_html, self.planner_log) if t is not None]


def default_report_path(now: _dt.datetime | None = None, directory: str = "") -> str:
    """./dynosim_replay_report_<YYYYmmdd_HHMMSS>.json, or -2, -3... when that file exists (the
    final name is taken without ever replacing a file, see StagedFiles)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d_%H%M%S")
    base = os.path.join(directory, f"dynosim_replay_report_{stamp}")
    path, n = f"{base}.json", 2
    while os.path.lexists(path):
        path, n = f"{base}-{n}.json", n + 1
    return path


def _nearest_existing(path: str) -> tuple[str, list[str]]:
    """(the deepest existing ancestor of `path`, the components below it to create)."""
    missing: list[str] = []
    d = path
    while not os.path.lexists(d):
        parent, name = os.path.split(d)
        missing.append(name)
        if parent == d:
            break
        d = parent
    return d, list(reversed(missing))


def check_folder(shown: str, directory: str) -> None:
    """`directory` will hold a new file: it exists or can be created, and can be written."""
    base, missing = _nearest_existing(directory)
    try:
        st = os.stat(base)
    except OSError as exc:
        raise OutputError(shown, f"{base}: {os_reason(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(shown, f"{base} is not a directory")
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for name in missing:
        if len(os.fsencode(name)) > name_max:
            raise OutputError(shown, f"{os.strerror(36)} ({len(os.fsencode(name))} bytes, "
                                     f"the file system allows {name_max})")
    try:
        vfs: os.statvfs_result | None = os.statvfs(base)
    except OSError:
        vfs = None
    if vfs is not None and vfs.f_flag & os.ST_RDONLY:
        raise OutputError(shown, f"{os.strerror(30)} ({base})")
    where = "" if base == directory else " (to create folders in it)"
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(shown, f"{os.strerror(13)}: cannot write in {base}{where}")
    if vfs is not None and vfs.f_blocks == 0:  # /proc, /sys: no storage, not a full disk
        raise OutputError(shown, f"{base} is on a virtual file system (no storage, like /proc "
                                 "or /sys): it cannot hold the run's files")
    if vfs is not None and vfs.f_bavail == 0:
        raise OutputError(shown, f"{os.strerror(28)} ({base})")


def _check_name(shown: str, path: str) -> None:
    name = len(os.fsencode(os.path.basename(path)))
    base, _ = _nearest_existing(os.path.dirname(path))
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if name > name_max:
        raise OutputError(shown, f"{os.strerror(36)} ({name} bytes, the file system allows "
                                 f"{name_max})")


def plan_file(path: str, what: str, *, inputs: Sequence[tuple[str, os.stat_result]] = (),
              exclusive: bool = False) -> Target:
    """Check one output file location (see module doc); `inputs`: (name, stat) of the run's
    input files, which an output must not overwrite."""
    if not path:
        raise OutputError(what, "the path is empty")
    if path.endswith(os.sep) or os.path.basename(path) in (".", ".."):
        raise OutputError(path, "names a folder; give a file name")
    absolute = os.path.abspath(path)
    if len(os.fsencode(absolute)) >= 4096:
        raise OutputError(path, os.strerror(36))
    _check_name(path, absolute)
    try:
        st: os.stat_result | None = os.stat(absolute)
    except FileNotFoundError:
        st = None  # new (or a dangling symlink: created where it points)
    except NotADirectoryError:
        raise OutputError(path, f"{_first_non_dir(absolute)} is not a directory") from None
    except OSError as exc:
        raise OutputError(path, os_reason(exc)) from None
    if st is None:
        real = os.path.realpath(absolute)
        check_folder(path, os.path.dirname(real))
        return Target(path, real, what, exclusive=exclusive, key=real)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise OutputError(path, "is a directory")
    if stat.S_ISSOCK(mode):
        raise OutputError(path, "is a socket, not a file")
    if stat.S_ISBLK(mode):
        raise OutputError(path, "is a block device (a disk); refusing to write a report onto it")
    for name, ist in inputs:
        if (ist.st_dev, ist.st_ino) == (st.st_dev, st.st_ino) and stat.S_ISREG(mode):
            raise OutputError(path, f"is the {name} of this run; choose another output path")
    if not os.access(absolute, os.W_OK):
        raise OutputError(path, f"{os.strerror(13)} (the file is not writable)")
    real = os.path.realpath(absolute)
    stream, fd = stream_target(absolute)
    if stream:
        return Target(path, absolute, what, stream=True, fd=fd, key=(st.st_dev, st.st_ino))
    check_folder(path, os.path.dirname(real))
    return Target(path, real, what, exclusive=exclusive, key=real)


def _first_non_dir(path: str) -> str:
    """The first component of `path` that exists and is not a directory."""
    d = os.sep
    for part in path.strip(os.sep).split(os.sep):
        d = os.path.join(d, part)
        if os.path.lexists(d) and not os.path.isdir(d):
            return d
    return path


def input_files(paths: Iterable[tuple[str, str | None]]) -> list[tuple[str, os.stat_result]]:
    """(name, stat) of the inputs that are existing regular files (inline JSON is skipped)."""
    out: list[tuple[str, os.stat_result]] = []
    for name, p in paths:
        if not p or p.lstrip().startswith(("{", "[")):
            continue
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append((name, st))
    return out


def _plan_export(plan: OutputPlan, export_dir: str, names: Sequence[str], also: set[str],
                 inputs: Sequence[tuple[str, os.stat_result]]) -> None:
    if not export_dir:
        raise OutputError("--export", "the path is empty")
    absolute = os.path.abspath(export_dir)
    _check_name(export_dir, absolute)
    try:
        st = os.stat(absolute)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(export_dir, f"{_first_non_dir(absolute)} is not a directory") from None
    except OSError as exc:
        raise OutputError(export_dir, os_reason(exc)) from None
    stale: list[str] = []
    if st is None:
        check_folder(export_dir, absolute)
    elif not stat.S_ISDIR(st.st_mode):
        raise OutputError(export_dir, "exists and is not a directory (--export takes a folder)")
    else:
        check_folder(export_dir, absolute)
        try:
            entries = sorted(os.listdir(absolute))
        except OSError as exc:
            raise OutputError(export_dir, os_reason(exc)) from None
        known = set(EXPORT_FILES) | {EXPORT_PLANNER_LOG}
        foreign = [e for e in entries if e not in known and not _is_staging(e)
                   and os.path.realpath(os.path.join(absolute, e)) not in also]
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise OutputError(export_dir, f"the folder holds files that are not from a dynosim "
                                          f"export ({shown}); give a new or empty folder")
        stale = [os.path.join(absolute, e) for e in entries if e in known and e not in names]
    plan.export_dir = export_dir
    for name in names:
        plan.export[name] = plan_file(os.path.join(export_dir, name), f"--export ({name})",
                                      inputs=inputs)
    plan.stale = stale


def _is_staging(name: str) -> bool:
    return name.startswith(".") and name.endswith(STAGE_SUFFIX) and ".dynosim-" in name


def plan_outputs(*, report_json: str | None = None, report_jsonl: str | None = None,
                 export_dir: str | None = None, planner_log_in_export: bool = False,
                 planner_html: str | None = None, planner_log: str | None = None,
                 planner_what: str = "planner report_output_dir",
                 default_json: bool = False,
                 inputs: Sequence[tuple[str, str | None]] = ()) -> OutputPlan:
    """Every output of a run, checked (module doc). `default_json`: with no output named,
    the JSON report goes to a new `./dynosim_replay_report_<timestamp>.json`."""
    ins = input_files(inputs)
    plan = OutputPlan()
    if report_json is not None:
        plan.report_json = plan_file(report_json, "--report-json", inputs=ins)
    elif default_json and report_jsonl is None and export_dir is None:
        plan.report_json = plan_file(default_report_path(), "--report-json (default)",
                                     inputs=ins, exclusive=True)
    if report_jsonl is not None:
        plan.report_jsonl = plan_file(report_jsonl, "--report-jsonl", inputs=ins)
    if planner_html is not None:
        plan.planner_html = plan_file(planner_html, planner_what, inputs=ins)
    if planner_log is not None:
        plan.planner_log = plan_file(planner_log, planner_what, inputs=ins)
    if export_dir is not None:
        names = list(EXPORT_FILES) + ([EXPORT_PLANNER_LOG] if planner_log_in_export else [])
        also = {t.real for t in plan.targets()}
        _plan_export(plan, export_dir, names, also, ins)
    _check_distinct(plan.targets())
    return plan


@dataclass(frozen=True)
class PlannerFiles:
    """Where a planner run's diagnostics go, as the reference puts them."""

    html: str  # <report_output_dir>/<basename>.html
    log: str  # <report_output_dir>/<basename>.log.jsonl.gz


def planner_files(config: PlannerConfig, now: _dt.datetime | None = None) -> PlannerFiles:
    base = config.report_filename or (now or _dt.datetime.now(_dt.timezone.utc)).strftime(
        "planner_report_%Y%m%d_%H%M%S")
    html = os.path.join(config.report_output_dir,
                        base if base.endswith(".html") else f"{base}.html")
    return PlannerFiles(html=html, log=snapshot_log_path(config.report_output_dir, base))


def plan_run_outputs(*, report_json: str | None, report_jsonl: str | None,
                     export_dir: str | None, planner: PlannerConfig | None,
                     inputs: Sequence[tuple[str, str | None]],
                     default_json: bool = False) -> OutputPlan:
    """What a run writes, for both front ends (a headless run, each TUI export): the named
    reports, the export folder, and with a planner its HTML page and log in its
    report_output_dir, as the reference puts them."""
    pf = planner_files(planner) if planner is not None else None
    return plan_outputs(
        report_json=report_json, report_jsonl=report_jsonl, export_dir=export_dir,
        planner_log_in_export=planner is not None,
        planner_html=pf.html if pf is not None else None,
        planner_log=pf.log if pf is not None else None,
        default_json=default_json, inputs=inputs)


def plan_live_outputs(report_json: str | None, report_jsonl: str | None,
                      inputs: Sequence[tuple[str, str | None]], base_dir: str = ".",
                      planner: PlannerConfig | None = None) -> None:
    """The live view's check at start-up: what its exports will write (--report-json,
    --report-jsonl, a new folder in `base_dir`, the planner's page and log) can be written.
    Each export plans again (outputs.files.plan_run_outputs)."""
    plan_run_outputs(report_json=report_json, report_jsonl=report_jsonl, export_dir=None,
                     planner=planner, inputs=inputs)
    check_folder(base_dir, os.path.abspath(base_dir))


def _check_distinct(targets: Sequence[Target]) -> None:
    seen: dict[object, Target] = {}
    for t in targets:
        if t.stream:  # /dev/null twice, or stdout twice, is fine: written one after the other
            continue
        first = seen.get(t.key)
        if first is not None:
            raise OutputError(t.path, f"is the output of both {first.what} and {t.what}; "
                                      "give each its own path")
        seen[t.key] = t

