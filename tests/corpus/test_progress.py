"""The stderr progress bar of long corpus jobs."""

from __future__ import annotations

import io

from harness.corpus.progress import progress


def test_a_log_gets_about_one_line_per_tenth_and_a_final_line() -> None:
    out = io.StringIO()
    assert list(progress(range(95), "annotate demo", stream=out)) == list(range(95))
    lines = out.getvalue().splitlines()
    assert 9 <= len(lines) <= 12
    assert lines[-1].startswith("annotate demo [" + "#" * 30 + "] 95/95")


def test_a_terminal_gets_one_line_redrawn_in_place() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    list(progress(["a", "b", "c"], "tts", stream=out))
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "3/3" in text.rsplit("\r", 1)[1]


def test_an_empty_job_draws_nothing() -> None:
    out = io.StringIO()
    assert list(progress([], "nothing", stream=out)) == []
    assert out.getvalue() == ""
