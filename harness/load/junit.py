"""A JUnit XML file of the SLO verdicts, for CI systems that show test results."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr


def write_junit(path: Path, run_id: str, results: list[dict[str, Any]]) -> None:
    failures = sum(1 for r in results if not r["passed"])
    cases = []
    for r in results:
        name = quoteattr(r["expr"])
        detail = f"value {r['value']!r} does not satisfy {r['expr']}"
        body = "" if r["passed"] else f"<failure message={quoteattr(detail)}>{escape(detail)}</failure>"
        cases.append(f'  <testcase classname="slo" name={name}>{body}</testcase>')
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name={quoteattr("harness run " + run_id)} '
           f'tests="{len(results)}" failures="{failures}" errors="0">\n' + "\n".join(cases) + "\n</testsuite>\n")
    path.write_text(xml, encoding="utf-8")
