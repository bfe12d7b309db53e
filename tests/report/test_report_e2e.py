"""From real sessions to the report: the real client against the real simulator on loopback,
harness.metrics turns the traces into turn records, the report shows exactly those numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.client import SessionSpec
from harness.metrics import summarize, turns_from_dir
from harness.report import build_report, read_turns, write_turn_tables
from harness.report.stats import percentile_table
from harness.scenarios import run_sessions


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    from harness.sim import SimConfig, start_in_thread

    run_dir = tmp_path_factory.mktemp("e2e") / "run"
    config = SimConfig(latency={"first_audio": "fixed:300"}, faults=["failed:nth=2"], reply_text="Okay, done.", seed=1)
    with start_in_thread(config, host="127.0.0.1", port=0) as sim:
        specs = [SessionSpec(url=sim.url, scenario=scenario, fmt=fmt, turns=2, rtf=4.0, auth="none",
                             trace_dir=run_dir / "traces", session_id=f"{scenario}-{fmt}", run_id="e2e",
                             turn_timeout_s=10, scenario_params={"utterances": ["utt01", "utt11"]})
                 for scenario, fmt in (("plain", "pcm16"), ("plain", "g711_ulaw"), ("client_cancel", "pcm16"))]
        results = run_sessions(specs)
    assert [r.reason for r in results] == ["done"] * len(specs), [(r.reason, r.error) for r in results]
    records = turns_from_dir(str(run_dir / "traces"))
    write_turn_tables(run_dir, records)
    return run_dir, records


def test_the_report_of_a_real_run_shows_the_exact_p95_of_its_turn_records(real_run) -> None:
    run_dir, records = real_run
    html_text = build_report(run_dir).read_text()
    ttfa = np.array([r["ttfa_ms"] for r in records if r.get("ttfa_ms") is not None], dtype=float)
    assert ttfa.size >= 4
    shown = re.search(r'data-metric="ttfa_ms" data-stat="p95" data-value="([^"]*)"', html_text).group(1)
    assert float(shown) == float(np.percentile(ttfa, 95))


def test_the_report_table_agrees_with_harness_metrics_summary(real_run) -> None:
    run_dir, records = real_run
    table = percentile_table(read_turns(run_dir))
    for metric, expected in summarize(records)["metrics"].items():
        for column in ("count", "p50", "p90", "p95", "p99", "max", "timeouts"):
            got = table.loc[metric, column]
            if expected[column] is None:
                assert pd.isna(got), (metric, column)
            else:
                assert got == expected[column], (metric, column)


def test_an_injected_failure_is_listed_with_a_timeline_built_from_its_trace(real_run) -> None:
    run_dir, records = real_run
    failed = [r for r in records if r.get("incident") == "failed"]
    assert failed, [r.get("incident") for r in records]
    html_text = build_report(run_dir).read_text()
    section = html_text[html_text.index('id="incidents"'): html_text.index('id="conformance"')]
    links = re.findall(r'<a href="([^"]+)">timeline</a>', section)
    assert len(links) == len([r for r in records if r.get("incident")])
    timeline = (run_dir / links[0]).read_text()
    assert "Plotly.newPlot(" in timeline and "failed" in timeline
