"""What a new user meets first when following the README: the version, usage errors, the
help text, flags that would be ignored, config files in YAML.
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest

from dynosim.cli import main
from helpers import TINY

ERR = "dynosim-tui: error: "


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"dynosim-tui {metadata.version('dynosim-tui')}"


@pytest.mark.parametrize("argv, prog, fragment", [
    ([TINY, "--num-workers", "abc"], "dynosim-tui", "argument --num-workers: invalid int value"),
    ([TINY, "--no-such-flag"], "dynosim-tui", "unrecognized arguments: --no-such-flag"),
    (["sweep"], "dynosim-tui sweep", "the following arguments are required: SPEC|TRACE"),
    (["sweep", "x.yaml", "--jobs", "two"], "dynosim-tui sweep", "argument --jobs"),
])
def test_a_usage_error_is_one_line(argv: list[str], prog: str, fragment: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err  # not the whole usage block first
    assert lines[0].startswith(f"{prog}: error: ") and fragment in lines[0]
    assert lines[0].endswith(f"(see {prog} --help)")
    assert os.listdir(tmp_path) == []


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--sla-ttft-ms", "--sla-itl-ms", "--sla-e2e-ms"):
        block = out.split(f"  {flag} {flag.lstrip('-').replace('-', '_').upper()}", 1)[1]
        assert block.split("\n", 1)[1].startswith("                        "), flag  # has help
    # The disaggregated example is two lines that can be pasted, not one run-together line.
    assert "--decode-engine-args '{}' \\\n      --num-prefill-workers 2" in out

