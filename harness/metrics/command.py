"""`harness metrics TRACE_DIR`: the per-turn table and the summary of a folder of traces, offline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.metrics.summary import conformance, summarize
from harness.metrics.turns import turns_from_trace
from harness.trace import iter_trace_files, read_trace

COLUMNS = (("session_id", 12), ("turn", 4), ("scenario", 14), ("status", 14), ("ttfa_ms", 8),
           ("vad_commit_ms", 13), ("vad_verdict", 11), ("cancel_ack_ms", 13), ("barge_in_ms", 11),
           ("incident", 24))


class MetricsInputError(ValueError):
    user_error = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace_dir", help="a folder of session traces (a run's traces/ directory)")
    parser.add_argument("--json", action="store_true", help="print the turn records and summary as JSON")


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.1f}"
    else:
        text = str(value)
    return text[:width].ljust(width)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.trace_dir)
    if not directory.is_dir():
        raise MetricsInputError(f"{directory}: not a folder of traces; pass a run's traces/ directory")
    rows: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    torn = 0
    for path in iter_trace_files(directory):
        trace = read_trace(path)
        torn += int(trace.torn_tail)
        rows.extend(turns_from_trace(trace))
        violations.extend(r for r in trace.records if r.get("rec") == "violation")
    if not rows and not torn:
        raise MetricsInputError(f"{directory}: no turns found in any *.jsonl trace; is this a traces/ folder?")
    summary = summarize(rows)
    summary["conformance"] = conformance(violations)
    if args.json:
        print(json.dumps({"turns": rows, "summary": summary}, default=str))
        return 0
    print(" ".join(name.ljust(width) for name, width in COLUMNS))
    for row in rows:
        print(" ".join(_cell(row.get(name), width) for name, width in COLUMNS))
    print()
    print(f"turns: {summary['turns']}" + (f"  ({torn} trace(s) with a torn last line skipped)" if torn else ""))
    print(f"{'metric':22} {'count':>6} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9} {'timeouts':>8}")
    for metric, stats in summary["metrics"].items():
        if stats["count"] or stats["timeouts"]:
            print(f"{metric:22} {stats['count']:>6} " + " ".join(
                _cell(stats[k], 9).rjust(9) for k in ("p50", "p95", "p99", "max")) + f" {stats['timeouts']:>8}")
    incidents = summary["incidents"]
    print(f"incidents: {incidents['total']} " + ", ".join(
        f"{cause}={v['count']}" for cause, v in incidents["by_cause"].items() if v["count"]))
    for rule, row in summary["conformance"].items():
        print(f"conformance: {rule} x{row['count']} ({row['side']}): " + " | ".join(map(str, row["examples"])))
    return 0
