"""A Live run's files say so: summary.json groups by dialect, the report header names it, and
`harness compare` warns when a Live run is compared with a Realtime one. Small synthetic run
directories (harness.report.synthetic), in memory and on disk: no run, no browser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.metrics.summary import summarize
from harness.report.compare import compare_runs
from harness.report.report_sections import header_html
from harness.report.run_files import RunFiles
from harness.report.synthetic import make_synthetic_run, synthetic_records
from harness.report.turn_table import turns_frame, write_turn_tables

N_TURNS = 120


def _as_live(run_dir: Path, seed: int) -> list[dict[str, Any]]:
    """Turn a synthetic GA run directory into a Live one: its records, run.json and summary.json."""
    records = synthetic_records(N_TURNS, seed=seed)
    for row in records:
        row["dialect"] = "live"
        row["target"] = "ws://127.0.0.1:9/v1/live/sessions"
    write_turn_tables(run_dir, records)
    for name in ("run.json", "summary.json"):
        data = json.loads((run_dir / name).read_text())
        run = data if name == "run.json" else data["run"]
        run["dialect"], run["target"] = "live", "ws://127.0.0.1:9/v1/live/sessions"
        (run_dir / name).write_text(json.dumps(data))
    return records


def test_a_live_runs_summary_groups_its_metrics_under_the_live_dialect() -> None:
    records = synthetic_records(N_TURNS, seed=3)
    for row in records[: N_TURNS // 3]:
        row["dialect"] = "live"
    by_dialect = summarize(records)["by"]["dialect"]
    assert set(by_dialect) == {"ga", "live"}
    live_ttfa = [r["ttfa_ms"] for r in records[: N_TURNS // 3] if r["ttfa_ms"] is not None]
    assert by_dialect["live"]["ttfa_ms"]["count"] == len(live_ttfa)


def test_the_report_header_of_a_live_run_names_the_live_dialect_and_endpoint(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "live", n_turns=N_TURNS, incident_traces=0, locust_history=False)
    records = _as_live(run_dir, seed=1)
    html = header_html(RunFiles.load(run_dir), None, turns_frame(records))
    assert "<tr><td>dialect</td><td>live</td></tr>" in html
    assert "/v1/live/sessions" in html


def test_compare_warns_that_a_live_run_and_a_realtime_run_differ_in_dialect(tmp_path: Path) -> None:
    ga = make_synthetic_run(tmp_path / "ga", n_turns=N_TURNS, incident_traces=0, locust_history=False)
    live = make_synthetic_run(tmp_path / "live", n_turns=N_TURNS, seed=1, incident_traces=0, locust_history=False)
    _as_live(live, seed=1)
    _, table = compare_runs(ga, live, tmp_path / "compare.html")
    warning = "the runs differ in dialect (ga -> live)"
    assert any(w.startswith(warning) for w in table.attrs["warnings"]), table.attrs["warnings"]
    assert "the runs differ in dialect (ga -&gt; live)" in (tmp_path / "compare.html").read_text()
    _, same = compare_runs(live, live, tmp_path / "same.html")     # two Live runs: nothing to warn about
    assert not any("dialect" in w for w in same.attrs["warnings"])
