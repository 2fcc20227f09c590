"""Messages posted from worker threads to the main screen (`post_message` is thread-safe)."""
from __future__ import annotations

from textual.message import Message


class ExportDone(Message):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class ExportFailed(Message):
    def __init__(self, path: str, error: str) -> None:
        super().__init__()
        self.path = path
        self.error = error
