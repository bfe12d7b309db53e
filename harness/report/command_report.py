"""`harness report RUN_DIR`: rebuild RUN_DIR/report.html (and its incident timelines) from the run's files."""

from __future__ import annotations

import argparse
import time

from harness.report.report import MAX_TIMELINES, build_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `harness run` (reports/<RUN_ID>)")
    parser.add_argument("--out", metavar="FILE", help="where to write the page (default RUN_DIR/report.html)")
    parser.add_argument("--max-timelines", type=int, default=MAX_TIMELINES, metavar="N",
                        help=f"build at most N incident timeline pages (default {MAX_TIMELINES})")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    path = build_report(args.run_dir, out_html=args.out, max_timelines=args.max_timelines)
    size_mb = path.stat().st_size / 1e6
    print(f"report: {path} ({size_mb:.1f} MB, {time.perf_counter() - started:.1f} s)")
    return 0
