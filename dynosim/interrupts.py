"""SIGTERM (timeout, Slurm, Kubernetes, systemd) stops a headless run or sweep as Ctrl-C does.

`Terminated` subclasses KeyboardInterrupt, so every clean-up and every stop written for Ctrl-C
(staged files removed, a sweep's executor cancelled and its tables written) runs for SIGTERM
too, while the exit status still tells them apart: 130 Ctrl-C, 143 SIGTERM."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated (in the main thread only: an embedding
    application's own threads keep their handlers)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_status(terminated: bool) -> int:
    return 143 if terminated else 130


def stop_words(terminated: bool) -> str:
    return "terminated (SIGTERM)" if terminated else "interrupted"
