"""build_report on synthetic run directories: sections, exact numbers, escaping, one plotly.js."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

from harness.report import build_report, read_turns
from harness.report.synthetic import HOSTILE_ERROR, HOSTILE_TRANSCRIPT, make_synthetic_run
from harness.report.turn_table import METRIC_COLUMNS


def _shown(html_text: str, metric: str, stat: str) -> str:
    match = re.search(rf'data-metric="{metric}" data-stat="{stat}" data-value="([^"]*)"', html_text)
    assert match, f"{metric} {stat} not in the percentile table"
    return match.group(1)


def test_the_p95_shown_for_every_metric_equals_the_p95_of_the_records(hostile_run: Path, built_report) -> None:
    _, html_text = built_report
    turns = read_turns(hostile_run)
    for metric in METRIC_COLUMNS:
        values = turns[metric].dropna().to_numpy()
        if values.size == 0:
            assert _shown(html_text, metric, "p95") == ""
            continue
        for stat, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            assert float(_shown(html_text, metric, stat)) == float(np.percentile(values, q)), (metric, stat)
        assert int(float(_shown(html_text, metric, "count"))) == values.size
        assert float(_shown(html_text, metric, "max")) == float(values.max())


def test_timed_out_turns_are_counted_against_the_metrics_of_their_scenario(hostile_run: Path, built_report) -> None:
    _, html_text = built_report
    turns = read_turns(hostile_run)
    timed_out = turns[turns["status"] == "timeout"]
    assert len(timed_out) > 0
    assert int(float(_shown(html_text, "ttfa_ms", "timeouts"))) == len(timed_out)
    cancel_timeouts = int((timed_out["scenario"] == "client_cancel").sum())
    assert int(float(_shown(html_text, "cancel_ack_ms", "timeouts"))) == cancel_timeouts


def test_the_report_has_every_section_and_the_header_facts(hostile_run: Path, built_report) -> None:
    _, html_text = built_report
    for anchor in ("verdicts", "latency", "load", "concurrency", "vad", "playout", "pacing", "slowest", "incidents",
                   "conformance", "settings"):
        assert f'id="{anchor}"' in html_text
    for fact in ("pcm16,g711_ulaw", "corpora/default", "plain:4", "harness 0.1.0", "600 s"):
        assert fact in html_text
    for title in ("CDF: Time to first audio", "CDF: VAD commit latency", "CDF: Cancel acknowledgement",
                  "CDF: Barge-in", "ttfa_ms over time", "ttfa_ms against concurrency", "VAD accuracy",
                  "Playout", "Pacing quality", "Incidents by cause", "Violations by rule"):
        assert title in html_text, title


def test_slo_verdicts_and_the_failed_pacing_gate_are_at_the_top(hostile_run: Path, built_report) -> None:
    _, html_text = built_report
    summary = json.loads((hostile_run / "summary.json").read_text())
    slo = summary["slos"][0]
    top = html_text[: html_text.index('id="latency"')]
    assert "Pacing gate FAILED" in top
    failed = sum(not s["passed"] for s in summary["slos"])
    slo_text = f"{failed} of {len(summary['slos'])} SLOs failed; " if failed else ""
    assert f"FAILED (exit code 1): {slo_text}the pacing gate failed" in top
    assert "ttfa_ms:p95&lt;1200" in top
    assert f"{slo['value']:,.1f}" in top


def test_a_passing_run_has_no_pacing_banner(tmp_path: Path) -> None:
    html_text = build_report(make_synthetic_run(tmp_path / "ok", n_turns=300, seed=5)).read_text()
    assert "Pacing gate FAILED" not in html_text


def test_text_from_the_target_is_escaped_everywhere_even_in_hover_text(built_report) -> None:
    _, html_text = built_report
    assert "<script>alert(1)</script>" not in html_text
    assert "<img src=x" not in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text   # incidents table
    assert "&lt;img src=x onerror=alert(2)&gt;" in html_text
    hover = "&lt;script&gt;alert(1)&lt;\\u002fscript&gt;"           # plotly JSON: escaped, then \u-encoded
    assert hover in html_text
    assert HOSTILE_TRANSCRIPT and HOSTILE_ERROR


def test_credentials_in_the_target_never_reach_the_report(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "secret", n_turns=200, seed=6)
    run = json.loads((run_dir / "run.json").read_text())
    run["target"] = "wss://user:hunter2@gw.example/v1/realtime?api-key=sk-verysecret&model=m"
    (run_dir / "run.json").write_text(json.dumps(run))
    html_text = build_report(run_dir).read_text()
    assert "sk-verysecret" not in html_text and "hunter2" not in html_text
    assert "gw.example/v1/realtime" in html_text


def test_plotly_js_is_loaded_from_the_run_directory_and_nothing_from_the_network(hostile_run: Path,
                                                                                 built_report) -> None:
    _, html_text = built_report
    library = get_plotlyjs()
    assert library[:200] not in html_text
    assert re.findall(r'<script[^>]+src="([^"]+)"', html_text) == ["plotly.min.js"]
    assert (hostile_run / "plotly.min.js").read_text() == library
    assert html_text.count("Plotly.newPlot(") >= 10 and "cdn.plot.ly" not in html_text


def test_a_report_written_outside_its_run_directory_inlines_plotly_once(hostile_run: Path, tmp_path: Path) -> None:
    html_text = build_report(hostile_run, out_html=tmp_path / "elsewhere" / "r.html").read_text()
    assert html_text.count(get_plotlyjs()[:200]) == 1 and not re.search(r"<script[^>]+src=", html_text)


def test_every_incident_is_listed_and_links_to_a_timeline_that_exists(hostile_run: Path, built_report) -> None:
    path, html_text = built_report
    turns = read_turns(hostile_run)
    incidents = turns[turns["incident"].notna()]
    section = html_text[html_text.index('id="incidents"'): html_text.index('id="conformance"')]
    assert section.count("<tr>") >= len(incidents)
    links = re.findall(r'<a href="([^"]+)">timeline</a>', section)
    bundles = sorted(p.name for p in (hostile_run / "incidents").iterdir())
    assert len(links) == len(bundles) > 0
    for link in links:
        page = (path.parent / link)
        assert page.is_file() and "Plotly.newPlot(" in page.read_text()
    assert (hostile_run / "plotly.min.js").is_file() and not (hostile_run / "timelines" / "plotly.min.js").exists()


def test_violations_are_counted_by_rule_from_the_traces(built_report) -> None:
    _, html_text = built_report
    section = html_text[html_text.index('id="conformance"'):]
    assert "response_done_before_close" in section


def test_a_large_run_is_reduced_not_plotted_point_by_point(tmp_path: Path) -> None:
    small = build_report(make_synthetic_run(tmp_path / "small", n_turns=2_000, seed=7, incident_traces=0))
    large = build_report(make_synthetic_run(tmp_path / "large", n_turns=20_000, seed=7, incident_traces=0))
    # ten times the turns; the figures carry quantile grids, bins and capped samples
    assert large.stat().st_size < small.stat().st_size * 1.6


@pytest.mark.parametrize("missing", ["summary.json", "run.json"])
def test_a_run_missing_its_summary_or_settings_still_reports(tmp_path: Path, missing: str) -> None:
    run_dir = make_synthetic_run(tmp_path / missing, n_turns=200, seed=8, incident_traces=1)
    (run_dir / missing).unlink()
    html_text = build_report(run_dir).read_text()
    assert 'id="percentiles"' in html_text
    if missing == "summary.json":
        assert "SLOs were not evaluated" in html_text


def test_structured_evidence_reads_as_key_value_pairs_and_stays_escaped(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "ev", n_turns=100, seed=9, incident_traces=0)
    frame = read_turns(run_dir)
    frame.loc[0, "incident"] = "failed"
    frame.loc[0, "incident_evidence"] = json.dumps({"how": "error <b>boom</b>", "cut_ms": 1234.5678})
    frame.to_parquet(run_dir / "turns.parquet")
    html_text = build_report(run_dir).read_text()
    assert "how: error &lt;b&gt;boom&lt;/b&gt;; cut_ms: 1234.6" in html_text


def test_a_broken_incident_trace_is_reported_in_its_row_and_the_report_still_builds(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "broken", n_turns=300, seed=10, incident_traces=1)
    bundle = next((run_dir / "incidents").iterdir())
    (bundle / "trace.jsonl").write_text("this is not a trace\n")
    html_text = build_report(run_dir).read_text()
    assert "not a harness trace" in html_text
