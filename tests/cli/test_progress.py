from __future__ import annotations

import io

from dynosim.progress import Progress


def test_progress_draws_after_delay_and_ends_with_newline() -> None:
    out = io.StringIO()
    bar = Progress(200, enabled=True, stream=out, delay_s=0.0)
    bar.update(50, 12_000.0)
    bar.close()
    text = out.getvalue()
    assert "25.0%" in text and "50/200 requests" in text and "sim 12.0s" in text
    assert text.endswith("\n")


def test_progress_is_silent_for_short_runs_and_when_disabled() -> None:
    out = io.StringIO()
    bar = Progress(10, enabled=True, stream=out, delay_s=60.0)
    bar.update(5, 1.0)
    bar.close()
    assert out.getvalue() == ""
    out2 = io.StringIO()
    bar2 = Progress(10, enabled=False, stream=out2, delay_s=0.0)
    bar2.update(5, 1.0)
    bar2.close()
    assert out2.getvalue() == ""


def test_progress_defaults_to_off_when_not_a_terminal() -> None:
    assert Progress(10, stream=io.StringIO()).enabled is False
