"""A JUnit XML file of the SLO verdicts, for CI systems that show test results.

The common (Ant/Jenkins) shape: a `<testsuites>` root holding one `<testsuite>` (name, tests,
failures, errors, skipped, time, timestamp) with the run's `<properties>` (run id, target without
credentials, the run's settings; never argv, the environment or anything named like a key) and
one `<testcase>` per gate. A passing case carries its measured value in `<system-out>`; a failing
one a `<failure message=...>`. Numbers are rounded (2 decimals, 4 significant digits below 1).
tests/load/junit.xsd is the schema the test validates against.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterable
from xml.sax.saxutils import escape, quoteattr

from harness.trace import redact_url

SETTINGS = ("dialect", "format", "corpus", "scenarios", "scenario_params", "turns", "users", "spawn_rate", "run_time",
            "chunk_ms", "rtf", "turn_timeout_s", "pacing_limit_ms", "slos", "shape", "settings", "git")
_SECRET_NAME = re.compile(r"key|token|secret|password|auth|argv|env", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])")


def number(value: Any) -> str:
    """A measured value for humans and CI: 459.39608089999996 -> 459.4, 0.0123456 -> 0.01235."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1:
        return f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return f"{float(value):.4g}"


def run_seconds(run: dict[str, Any]) -> float:
    """The run's duration: measured when run.json has it, else its -t/--run-time, else 0."""
    for key in ("duration_s", "elapsed_s"):
        if isinstance(run.get(key), (int, float)):
            return float(run[key])
    if isinstance(run.get("started_wall_s"), (int, float)) and isinstance(run.get("ended_wall_s"), (int, float)):
        return max(0.0, float(run["ended_wall_s"]) - float(run["started_wall_s"]))
    text = str(run.get("run_time") or "")
    factors = {"h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(amount) * factors[unit] for amount, unit in _DURATION.findall(text))


def _timestamp(run: dict[str, Any]) -> str:
    """xs:dateTime without a zone (the Ant schema's form), UTC: when the run started, else finished."""
    for key in ("started_at", "finished_at"):
        text = run.get(key)
        if isinstance(text, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", text):
            return text[:19]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def _flat(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if not _SECRET_NAME.search(str(key)):
                yield from _flat(f"{prefix}.{key}", inner)
    elif isinstance(value, (list, tuple)):
        yield prefix, ", ".join(str(v) for v in value)
    elif value is not None:
        text = str(value)
        yield prefix, redact_url(text) if re.match(r"^(wss?|https?)://", text) else number(value)


def properties(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) of the run id, the target (credentials removed) and the settings that shape a run."""
    props = [("run_id", str(run.get("run_id"))), ("target", redact_url(str(run.get("target") or "")))]
    for key in SETTINGS:
        if key in run:
            props.extend(_flat(key, run[key]))
    if isinstance(run.get("simulator"), dict):
        props.extend(_flat("simulator", run["simulator"]))
    return props


def _case(result: dict[str, Any]) -> str:
    name = quoteattr(str(result["expr"]))
    value = number(result.get("value"))
    bound = f" ({result['note']})" if result.get("note") else ""
    if result["passed"]:
        text = f"value {value}{bound} satisfies {result['expr']}"
        body = f"<system-out>{escape(text)}</system-out>"
    else:
        detail = f"value {value}{bound} does not satisfy {result['expr']}"
        body = f"<failure message={quoteattr(detail)} type=\"slo\">{escape(detail)}</failure>"
    return f'    <testcase classname="harness.slo" name={name} time="0">{body}</testcase>'


def junit_xml(run_id: str, results: list[dict[str, Any]], run: dict[str, Any] | None = None) -> str:
    run = {"run_id": run_id, **(run or {})}
    failures = sum(1 for r in results if not r["passed"])
    seconds = number(round(run_seconds(run), 3))
    props = "".join(f"\n      <property name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in properties(run))
    suite = (f'  <testsuite name={quoteattr("harness run " + run_id)} tests="{len(results)}" failures="{failures}" '
             f'errors="0" skipped="0" time="{seconds}" timestamp="{_timestamp(run)}">\n'
             f"    <properties>{props}\n    </properties>\n" + "\n".join(_case(r) for r in results) + "\n  </testsuite>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name={quoteattr("harness " + run_id)} '
            f'tests="{len(results)}" failures="{failures}" errors="0" time="{seconds}">\n{suite}\n</testsuites>\n')


def write_junit(path: Path, run_id: str, results: list[dict[str, Any]], run: dict[str, Any] | None = None) -> None:
    path.write_text(junit_xml(run_id, results, run), encoding="utf-8")
