"""`harness run` end to end: the embedded simulator, Locust headless, the run directory, exit codes."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .runs import QUIET, closed_port, harness, records, summary, turns_in_traces

REPO = Path(__file__).resolve().parents[2]


def test_harness_run_against_the_embedded_simulator_writes_the_whole_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # plain turns end at their answer's response.done (no 5-8 s of playout): turns finish in 8 s
    done = harness("run", "-u", "3", "-r", "3", "-t", "8s", "--turns", "2", "--rtf", "2",
                   "--scenario", "plain:2,client_cancel:1", "--scenario-params", '{"plain": {"wait_playout": false}}',
                   "--out", str(out), *QUIET)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name in ("report.html", "turns.parquet", "turns.csv", "summary.json", "junit.xml", "run.json",
                 "stats_stats.csv", "stats_stats_history.csv"):
        assert (out / name).is_file(), name
    assert not (out / "locust.html").exists()   # Locust's own page: report.html draws its history instead
    rows = records(out)
    assert rows and {(r["session_id"], r["turn"]) for r in rows} == turns_in_traces(out)
    assert summary(out)["turns"]["total"] == len(rows)
    assert any(r["ttfa_ms"] and r["ttfa_ms"] > 0 for r in rows)
    assert "ttfa_ms" in done.stdout and "PASS" in done.stdout
    stats = (out / "stats_stats.csv").read_text()
    assert "realtime,ttfa" in stats  # the per-turn request events reached Locust's own stats
    # Locust's live events are the run's records: each event's value is a record's value (Locust's
    # CSV keeps exact min and max), never more events than records. (Counts can trail: Locust
    # writes its CSV once a second and turns that end in the last second miss the last write.)
    table = {row["Name"]: row for row in csv.DictReader(stats.splitlines()) if row["Type"] == "realtime"}
    for name, metric in (("ttfa", "ttfa_ms"), ("cancel_ack", "cancel_ack_ms"), ("vad_commit", "vad_commit_ms")):
        values = {round(r[metric], 6) for r in rows if r.get(metric) is not None}
        if name not in table:
            continue
        assert int(table[name]["Request Count"]) <= sum(1 for r in rows if r.get(metric) is not None)
        for stat in ("Min Response Time", "Max Response Time"):
            assert round(float(table[name][stat]), 6) in values, (name, stat, table[name][stat], sorted(values))


@pytest.mark.slow
def test_an_injected_latency_over_the_slo_exits_1_naming_it_and_a_looser_slo_exits_0(tmp_path: Path) -> None:
    # the corpus's shortest utterance (utt11), so each turn (speech, 700 ms, the answer played out) ends in the run
    common = ["run", "-u", "2", "-r", "2", "-t", "10s", "--turns", "2", "--rtf", "2", "--no-report",
              "--scenario", "plain:1", "--scenario-params", '{"plain": {"utterances": ["utt11"]}}',
              "--sim-latency", "first_audio=fixed:700", *QUIET]
    strict = harness(*common, "--out", str(tmp_path / "strict"), "--slo", "ttfa_ms:p50<500")
    assert strict.returncode == 1, strict.stdout[-2000:]
    assert "FAIL  ttfa_ms:p50<500" in strict.stdout
    junit = (tmp_path / "strict" / "junit.xml").read_text()
    assert 'failures="1"' in junit and "ttfa_ms:p50&lt;500" in junit
    loose = harness(*common, "--out", str(tmp_path / "loose"), "--slo", "ttfa_ms:p50<5000")
    assert loose.returncode == 0, loose.stdout[-2000:]
    assert 'failures="0"' in (tmp_path / "loose" / "junit.xml").read_text()
    assert summary(tmp_path / "strict")["metrics"]["ttfa_ms"]["p50"] > 700


def test_a_target_that_refuses_connections_ends_quickly_with_exit_3_and_a_clear_error(tmp_path: Path) -> None:
    started = time.monotonic()
    done = harness("run", "-u", "2", "-r", "2", "-t", "60s", "--no-report", "--out", str(tmp_path / "run"),
                   "--target", f"ws://127.0.0.1:{closed_port()}/v1/realtime", timeout_s=90)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert time.monotonic() - started < 45
    assert "sessions in a row" in done.stdout + done.stderr
    assert summary(tmp_path / "run")["sessions"]["connect_failed"] >= 1


def test_a_bad_slo_is_rejected_before_anything_starts(tmp_path: Path) -> None:
    done = harness("run", "--slo", "ttfa_ms:p95<<1", "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not an SLO" in done.stderr


def test_a_target_that_refuses_every_session_in_its_own_words_stops_with_exit_3_and_says_why(tmp_path: Path) -> None:
    # the simulator answers beta sessions as api.openai.com does today: an error, then close 4000
    sim = subprocess.Popen([sys.executable, "-m", "harness", "sim", "--port", "0", "--reject-beta", "--quiet"],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = (sim.stdout.readline() if sim.stdout else "").split("listening on ", 1)[1].strip()
        started = time.monotonic()
        done = harness("run", "-u", "3", "-r", "3", "-t", "60s", "--dialect", "beta", "--no-report",
                       "--out", str(tmp_path / "run"), "--target", url, timeout_s=90)
    finally:
        sim.terminate()
        sim.wait(timeout=15)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert time.monotonic() - started < 45
    assert "beta_api_shape_disabled" in done.stdout      # the target's own words, on the console
    result = summary(tmp_path / "run")
    # bounded and backed off: 3 refused in a row stop the run (a session still opening when it stops
    # is cut by the stop, not refused)
    assert 3 <= result["sessions"]["connect_failed"] <= result["sessions"]["total"] <= 12
    assert any("beta_api_shape_disabled" in e for e in result["sessions"]["errors"])
    assert result["exit_code"] == 3 and result["why"]
