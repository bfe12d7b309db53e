"""The report's data, not its pixels: users from Locust's history, bins that hold enough turns,
step CDFs, latency against concurrency, a failed run explained, one plotly per run directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from harness.report import build_report, read_turns, render_session_timeline
from harness.report.concurrency import slo_first_failure
from harness.report.figures_latency import MARKED_PERCENTILES, cdf_figure
from harness.report.load_history import read_locust_history, user_history
from harness.report.report_load import activity_bins, activity_figure
from harness.report.stats import MIN_TURNS_PER_BIN, time_bins
from harness.report.synthetic import make_synthetic_run, synthetic_records
from harness.report.turn_table import turns_frame


@pytest.fixture(scope="module")
def ramp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_run(tmp_path_factory.mktemp("ramp") / "run", n_turns=1500, seed=11, incident_traces=2)


def test_the_user_count_over_time_is_locusts_own_history(ramp_run: Path) -> None:
    turns = read_turns(ramp_run)
    history = user_history(ramp_run, turns)
    assert history.from_locust and "stats_stats_history.csv" in history.source
    raw = pd.read_csv(ramp_run / "stats_stats_history.csv")
    assert history.frame["users"].tolist() == raw["User Count"].tolist()
    t0 = float(turns["t_wall_s"].min())
    drawn = activity_figure(turns, history, t0).data[-1]      # the users line, drawn as steps
    assert drawn.name == "users" and drawn.line.shape == "hv"
    assert list(drawn.y) == raw["User Count"].tolist()
    assert np.allclose(np.asarray(drawn.x) + t0, raw["Timestamp"].to_numpy())
    # each turn's concurrency: the history row nearest to its start (a tie takes the earlier row)
    stamps, counts = raw["Timestamp"], raw["User Count"]
    at = history.users_at(np.array([stamps[10] + 0.5, stamps[10] + 0.6, stamps[10] - 0.4, stamps[0] - 1]))
    assert at[:3].tolist() == [counts[10], counts[11], counts[10]] and np.isnan(at[3])


def test_only_the_aggregated_rows_of_a_full_history_count(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats_history.csv"
    path.write_text("Timestamp,User Count,Type,Name\n100,3,realtime,ttfa\n100,3,,Aggregated\n101,7,realtime,ttfa\n"
                    "101,7,,Aggregated\n102,7,,Aggregated\n")
    frame = read_locust_history(path)
    assert frame["t_wall_s"].tolist() == [100, 101, 102] and frame["users"].tolist() == [3, 7, 7]


def test_without_a_history_the_users_come_from_the_records_and_the_report_says_so(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "r", n_turns=300, seed=12, incident_traces=0, locust_history=False)
    history = user_history(run_dir, read_turns(run_dir))
    assert not history.from_locust and "no Locust history" in history.source
    assert "no Locust history in the run directory" in build_report(run_dir).read_text()


def test_every_time_bin_holds_at_least_the_minimum_number_of_turns(ramp_run: Path) -> None:
    turns = read_turns(ramp_run)
    t0 = float(turns["t_wall_s"].min())
    activity = activity_bins(turns, t0)
    assert len(activity) > 10 and activity["turns"].min() >= MIN_TURNS_PER_BIN
    assert activity["turns"].sum() == len(turns)
    measured = turns[turns["ttfa_ms"].notna()]
    bins = time_bins(measured["t_wall_s"] - t0, measured["ttfa_ms"])
    assert len(bins) > 10 and bins["count"].min() >= MIN_TURNS_PER_BIN and bins["count"].sum() == len(measured)
    assert (bins["p95"] > bins["p50"]).all()      # never one turn per bin (p50 == p95)
    few = time_bins(measured["t_wall_s"].head(25) - t0, measured["ttfa_ms"].head(25))
    assert len(few) == 1 and few["count"].iloc[0] == 25


def test_the_cdf_is_an_exact_step_function_with_p50_p95_p99_marked() -> None:
    turns = turns_frame(synthetic_records(3000, seed=13))
    fig = cdf_figure(turns, "ttfa_ms", "CDF")
    lines, marks = fig.data[0::2], fig.data[1::2]
    measured = turns[turns["ttfa_ms"].notna()]
    groups = dict(list(measured.groupby([measured["scenario"].fillna("?"), measured["format"].fillna("?")], sort=True)))
    assert len(lines) == len(groups)
    for line, mark, values in zip(lines, marks, (g["ttfa_ms"].to_numpy() for g in groups.values())):
        x, y = np.asarray(line.x), np.asarray(line.y)
        assert line.line.shape == "hv" and np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0) and y[-1] == 1.0
        assert np.array_equal(y, np.array([(values <= v).mean() for v in x]))   # the empirical CDF at each corner
        assert list(mark.text) == [f"p{q}" for q in MARKED_PERCENTILES]
        assert np.allclose(mark.x, np.percentile(values, MARKED_PERCENTILES))


def test_latency_against_concurrency_names_where_an_slo_first_fails(ramp_run: Path) -> None:
    turns = read_turns(ramp_run)
    users = pd.Series(user_history(ramp_run, turns).users_at(turns["t_wall_s"]), index=turns.index)
    # synthetic first-audio latency is log-normal around 550 + 6 ms per user: p50 passes 800 ms near 40 users
    failing = slo_first_failure({"expr": "ttfa_ms:p50<800", "metric": "ttfa_ms", "stat": "p50", "op": "<",
                                 "threshold": 800.0}, turns, users)
    low = float(str(failing["first_fail"]).split("-")[0])
    assert 30 <= low <= 45 and failing["text"].startswith("first fails at")
    holding = slo_first_failure({"expr": "ttfa_ms:p95<5000", "metric": "ttfa_ms", "stat": "p95", "op": "<",
                                 "threshold": 5000.0}, turns, users)
    assert holding["first_fail"] is None and "holds at every concurrency" in holding["text"]
    gate = slo_first_failure({"expr": "pacing:p99<=5", "metric": "send_lateness_ms", "stat": "p99", "op": "<=",
                              "threshold": 5.0}, turns, users)
    assert "run-level gate" in gate["text"]


def _fail(run_dir: Path, **fields: object) -> Path:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(fields)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_a_refused_run_explains_its_failure_at_the_top_and_is_never_green(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "refused", n_turns=40, seed=14, incident_traces=0)
    frame = read_turns(run_dir)
    frame["incident"] = None
    frame.to_parquet(run_dir / "turns.parquet")
    _fail(run_dir, passed=False, exit_code=3, why=["the target failed: 3 of 3 sessions could not connect"],
          sessions={"total": 3, "connect_failed": 3, "errors": ["closed 4000 (beta_api_shape_disabled) <b>x</b>"]})
    page = build_report(run_dir).read_text()
    top = page[: page.index("<nav>")]
    assert "FAILED (exit code 3): The target failed" in top and "3 of 3 sessions could not connect" in top
    assert "beta_api_shape_disabled) &lt;b&gt;x&lt;/b&gt;" in top
    assert "banner good" not in page and "every response played out" not in page


def test_a_run_that_measured_nothing_or_failed_a_gate_says_so_first(tmp_path: Path) -> None:
    nothing = _fail(make_synthetic_run(tmp_path / "nothing", n_turns=40, seed=15, incident_traces=0), passed=False,
                    exit_code=6, why=["no turn was ok (40 turns: 40 timeout)"])
    top = build_report(nothing).read_text().split("<nav>")[0]
    assert "The run measured nothing" in top and "no turn was ok (40 turns: 40 timeout)" in top
    gate = make_synthetic_run(tmp_path / "gate", n_turns=300, seed=16, incident_traces=0)
    summary = json.loads((gate / "summary.json").read_text())
    assert not summary["passed"]      # ttfa_ms:p95<1200 fails on the synthetic ramp
    top = build_report(gate).read_text().split("<nav>")[0]
    assert "A gate failed" in top and "FAIL ttfa_ms:p95&lt;1200" in top


def test_plotly_is_written_once_per_run_directory_and_every_page_finds_it(ramp_run: Path) -> None:
    bundle = next((ramp_run / "incidents").iterdir())
    render_session_timeline(bundle / "trace.jsonl", bundle / "timeline.html", turn=None)   # as a repro bundle does
    build_report(ramp_run)
    library = get_plotlyjs()
    pages = sorted(ramp_run.rglob("*.html"))
    assert len(pages) >= 3     # the report, a timeline under timelines/, a bundle's own
    copies = [p for p in ramp_run.rglob("*") if p.is_file() and library[:300] in p.read_text(errors="ignore")]
    assert copies == [ramp_run / "plotly.min.js"]
    for page in pages:
        sources = re.findall(r'<script[^>]+src="([^"]+)"', page.read_text())
        assert len(sources) == 1 and (page.parent / sources[0]).resolve() == ramp_run / "plotly.min.js", page


def test_the_slowest_turns_are_listed_slowest_first_each_with_a_timeline(ramp_run: Path) -> None:
    page_path = build_report(ramp_run)
    page = page_path.read_text()
    section = page[page.index('id="slowest"'): page.index('id="incidents"')]
    turns = read_turns(ramp_run)
    slowest = turns.sort_values("ttfa_ms", ascending=False).head(10)
    shown = re.findall(r"<tr><td>(s\d+)</td><td>(\d+)</td>", section)
    assert shown == [(s, str(t)) for s, t in zip(slowest["session_id"], slowest["turn"])]
    links = re.findall(r'<a href="([^"]+)">timeline</a>', section)
    with_trace = sum(1 for s in slowest["session_id"] if list((ramp_run / "traces").glob(f"*-{s}.jsonl")))
    assert len(links) == with_trace and all((page_path.parent / link).is_file() for link in links)


def test_the_settings_section_shows_run_json_without_credentials(ramp_run: Path, tmp_path: Path) -> None:
    run = json.loads((ramp_run / "run.json").read_text())
    run["simulator"] = {"latency": {"first_audio": "fixed:300"}, "seed": 3}
    run["target"] = "wss://u:pw@gw.example/v1/realtime?api-key=sk-hidden"
    (ramp_run / "run.json").write_text(json.dumps(run))
    page = build_report(ramp_run, out_html=tmp_path / "r.html").read_text()
    section = page[page.index('id="settings"'):]
    assert "<td>simulator.latency.first_audio</td><td>fixed:300</td>" in section
    assert "<td>scenarios.plain</td><td>4</td>" in section
    assert "sk-hidden" not in page and ":pw@" not in page
