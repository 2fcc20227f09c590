"""The command-line parser both commands use: argparse, with a usage error on one line.

argparse's own `error()` prints the whole usage block before the message; a mistyped value
(`--num-workers abc`) then buries the one line that says what is wrong. Here it is one line
on stderr, exit status 2, like every other input error.
"""
from __future__ import annotations

import argparse
from importlib import metadata
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        one_line = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {one_line} (see {self.prog} --help)\n")


def package_version() -> str:
    """The installed distribution's version; a source tree that was never installed says so."""
    try:
        return metadata.version("dynosim-tui")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
