"""The HTML report, session timelines, the run directory's turn tables and run comparison.

The only package that imports pandas and plotly (DESIGN.md section 2); it reads run directories
(docs/contracts.md section 6) and never live Locust state.
"""

from harness.report.compare import compare_runs
from harness.report.errors import ReportInputError
from harness.report.report import build_report
from harness.report.timeline import render_session_timeline
from harness.report.turn_table import TURN_COLUMNS, read_turns, write_turn_tables

__all__ = [
    "ReportInputError", "TURN_COLUMNS", "build_report", "compare_runs", "read_turns", "render_session_timeline",
    "write_turn_tables",
]
