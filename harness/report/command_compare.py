"""`harness compare RUN_A RUN_B`: side-by-side page, console table, exit 1 when B regressed.

For CI ("did this change make us slower"): run A is the baseline, B the candidate.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.exit_codes import ExitCode
from harness.report.compare import DEFAULT_MAX_REGRESSION_PCT, compare_runs, console_table
from harness.report.progress import Progress
from harness.report.stats import STAT_NAMES
from harness.report.turn_table import METRIC_COLUMNS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run directory")
    parser.add_argument("run_b", metavar="RUN_B", help="candidate run directory")
    parser.add_argument("--metric", default="ttfa_ms", choices=METRIC_COLUMNS, help="metric to judge (default ttfa_ms)")
    parser.add_argument("--stat", default="p95", choices=STAT_NAMES, help="statistic to judge (default p95)")
    parser.add_argument("--max-regression-ms", type=float, metavar="MS",
                        help="fail when B's statistic exceeds A's by more than MS milliseconds")
    parser.add_argument("--max-regression-pct", type=float, metavar="PCT",
                        help=f"fail when it exceeds A's by more than PCT percent (default {DEFAULT_MAX_REGRESSION_PCT:g} "
                             "when neither limit is given; with both, exceeding either fails)")
    parser.add_argument("--out", metavar="FILE", help="where to write the page (default RUN_B/compare.html)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.run_b) / "compare.html"
    regressed, deltas = compare_runs(args.run_a, args.run_b, out, metric=args.metric, stat=args.stat,
                                     max_regression_ms=args.max_regression_ms,
                                     max_regression_pct=args.max_regression_pct, progress=Progress("compare"))
    print(console_table(deltas))
    for warning in deltas.attrs.get("warnings") or []:
        print(f"WARNING: {warning}")
    print(deltas.attrs["verdict"])
    print(f"compare: {out}")
    return ExitCode.GATE_FAILED if regressed else ExitCode.OK
