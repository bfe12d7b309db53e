"""The exit codes are one vocabulary: `harness.exit_codes.ExitCode`, the README's table, the report."""

from __future__ import annotations

import re
from pathlib import Path

from harness.exit_codes import FAILURE_TITLES, ExitCode

REPO = Path(__file__).resolve().parents[1]


def _readme_table_codes() -> set[int]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("| exit code | meaning |", 1)[1].split("\n\n", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}


def test_the_readme_table_documents_exactly_the_exit_codes_the_harness_uses() -> None:
    assert _readme_table_codes() == {int(code) for code in ExitCode}


def test_every_failing_exit_code_a_run_can_end_with_has_a_report_title() -> None:
    run_failures = set(ExitCode) - {ExitCode.OK, ExitCode.BAD_INPUT}   # bad input writes no run directory
    assert set(FAILURE_TITLES) == run_failures
    assert all(title and title[0].isupper() for title in FAILURE_TITLES.values())


def test_no_module_of_the_package_defines_exit_codes_of_its_own() -> None:
    own = re.compile(r"^\s*(EXIT_\w+)(\s*,\s*EXIT_\w+)*\s*=", flags=re.M)
    offenders = [str(path.relative_to(REPO)) for path in sorted((REPO / "harness").rglob("*.py"))
                 if own.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
