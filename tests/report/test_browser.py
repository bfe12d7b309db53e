"""The report in a real headless browser (Debian's chromium), offline: every figure draws, no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import build_report, render_session_timeline
from harness.report.browser_check import find_chromium, render_offline
from harness.report.synthetic import make_synthetic_run

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (apt-get install chromium)")


def test_the_report_renders_offline_with_every_figure_drawn_and_no_console_errors(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=800, seed=31, hostile=True, pacing_passed=False)
    page = build_report(run_dir)
    result = render_offline(page, timeout_s=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.console == []
    expected = page.read_text().count("Plotly.newPlot(")
    assert expected >= 10 and result.figures_drawn == expected
    assert 'class="main-svg"' in result.dom
    # The hostile transcript stayed text: no element was created from it.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.dom


def test_an_incident_timeline_with_a_shared_plotly_file_renders_offline(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=300, seed=32, incident_traces=1)
    build_report(run_dir)
    timelines = sorted((run_dir / "timelines").glob("*.html"))
    assert timelines
    result = render_offline(timelines[0], timeout_s=60)
    assert result.console == [] and result.figures_drawn == 1


def test_a_standalone_timeline_renders_offline(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=300, seed=33, incident_traces=1)
    trace = next((run_dir / "traces").glob("*.jsonl"))
    page = render_session_timeline(trace, tmp_path / "alone" / "timeline.html")
    assert not (tmp_path / "alone" / "plotly.min.js").exists()
    result = render_offline(page, timeout_s=60)
    assert result.console == [] and result.figures_drawn == 1


def test_a_page_that_needs_the_network_is_caught(tmp_path: Path) -> None:
    """The check itself: a page loading plotly from a CDN fails to draw and logs an error."""
    page = tmp_path / "cdn.html"
    page.write_text('<html><head><script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script></head>'
                    '<body><div id="g"></div><script>Plotly.newPlot("g", [{"y": [1, 2]}]);</script></body></html>')
    result = render_offline(page, timeout_s=60)
    assert result.figures_drawn == 0
    assert any("Plotly is not defined" in line for line in result.console)


def test_a_bundles_timeline_loads_the_run_directorys_plotly_and_renders_offline(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=300, seed=34, incident_traces=1)
    bundle = next((run_dir / "incidents").iterdir())
    page = render_session_timeline(bundle / "trace.jsonl", bundle / "timeline.html")
    assert '<script src="../../plotly.min.js">' in page.read_text()
    result = render_offline(page, timeout_s=60)
    assert result.console == [] and result.figures_drawn == 1
