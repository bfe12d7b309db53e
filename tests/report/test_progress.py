"""Progress of report and compare: plain lines in a CI log, one live line on a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

from harness.report import build_report
from harness.report.progress import Progress
from harness.report.synthetic import make_synthetic_run


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_step_is_its_own_plain_line() -> None:
    log = io.StringIO()
    progress = Progress("report", stream=log)
    progress.step("building figures ...")
    progress.done("wrote x")
    lines = log.getvalue().splitlines()
    assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines] == ["report: building figures ...",
                                                                       "report: wrote x"]
    assert "\r" not in log.getvalue() and "\033" not in log.getvalue()


def test_on_a_terminal_the_line_is_redrawn_in_place_and_ends_once() -> None:
    tty = Terminal()
    progress = Progress("compare", stream=tty)
    progress.step("a ...")
    progress.step("b ...")
    progress.done("done")
    text = tty.getvalue()
    assert text.count("\r\033[K") == 3 and text.count("\n") == 1 and text.endswith("\n")
    assert text.rsplit("\r\033[K", 1)[1].startswith("compare: done")


def test_building_a_report_says_what_it_is_doing(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=200, seed=41, incident_traces=1)
    log = io.StringIO()
    build_report(run_dir, progress=Progress("report", stream=log))
    text = log.getvalue()
    assert "report: building figures of 200 turns ..." in text and "timelines of the slowest turns" in text
    assert re.search(r"report: .*report\.html \(\d+ timelines built\)", text)
