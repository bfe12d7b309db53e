"""harness compare: warnings on mismatched settings and failed gates, intervals, n too small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.compare import compare_runs
from harness.report.synthetic import make_synthetic_run


def _edit_run(run_dir: Path, **fields: object) -> None:
    path = run_dir / "run.json"
    run = json.loads(path.read_text())
    run.update(fields)
    path.write_text(json.dumps(run))


def test_compare_warns_when_the_runs_differ_in_corpus_format_dialect_users_mix_or_simulator(tmp_path: Path) -> None:
    a = make_synthetic_run(tmp_path / "a", n_turns=200, seed=1, incident_traces=0)
    b = make_synthetic_run(tmp_path / "b", n_turns=200, seed=2, incident_traces=0)
    _edit_run(a, simulator={"latency": {"first_audio": "fixed:250"}, "faults": [], "seed": 0})
    _edit_run(b, corpus="corpora/other", format="g711_ulaw", dialect="beta", users=20,
              scenarios={"plain": 1}, simulator={"latency": {"first_audio": "fixed:300"}, "faults": [], "seed": 0})
    _, deltas = compare_runs(a, b, tmp_path / "c.html")
    warnings = " | ".join(deltas.attrs["warnings"])
    for label in ("corpus (default -> other)", "format (pcm16,g711_ulaw -> g711_ulaw)", "dialect (ga -> beta)",
                  "users (50 -> 20)", "scenario mix", "simulator settings (latency: first_audio=fixed:250 -> "
                  "first_audio=fixed:300)"):
        assert label in warnings, warnings
    page = (tmp_path / "c.html").read_text()
    assert "Read with care" in page and "dialect (ga -&gt; beta)" in page


def test_the_same_corpus_by_another_path_and_fields_one_run_lacks_are_not_mismatches(tmp_path: Path) -> None:
    a = make_synthetic_run(tmp_path / "a", n_turns=100, seed=1, incident_traces=0)
    b = make_synthetic_run(tmp_path / "b", n_turns=100, seed=2, incident_traces=0)
    _edit_run(b, corpus="/abs/checkout/corpora/default", simulator={"seed": 1})
    _, deltas = compare_runs(a, b, tmp_path / "c.html")
    assert not [w for w in deltas.attrs["warnings"] if "differ" in w]
    assert "simulator settings: unknown in run A" in (tmp_path / "c.html").read_text()


def test_compare_warns_when_either_run_failed_a_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_synthetic_run(tmp_path / "a", n_turns=200, seed=1, incident_traces=0, pacing_passed=False)
    b = make_synthetic_run(tmp_path / "b", n_turns=200, seed=2, incident_traces=0)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    assert "WARNING: run A FAILED (exit code 1)" in out


def test_every_compared_percentile_has_its_interval_and_a_small_shift_inside_the_noise_is_no_regression(
        tmp_path: Path) -> None:
    a = make_synthetic_run(tmp_path / "a", n_turns=80, seed=3, incident_traces=0)
    b = make_synthetic_run(tmp_path / "b", n_turns=80, seed=3, ttfa_shift_ms=40.0, incident_traces=0)
    regressed, deltas = compare_runs(a, b, tmp_path / "c.html", metric="ttfa_ms", stat="p95", max_regression_ms=10)
    row = deltas.query("metric == 'ttfa_ms' and stat == 'p95'").iloc[0]
    assert row["delta"] > 10 and row["separated"] == 0   # over the limit, but the intervals overlap
    assert not regressed and deltas.attrs["verdict"].startswith("ok (within noise) ttfa_ms p95")
    for stat in ("p50", "p90", "p95", "p99"):
        r = deltas.query("metric == 'ttfa_ms' and stat == @stat").iloc[0]
        assert r["a_ci"][0] <= r["a"] <= r["a_ci"][1] and r["b_ci"][0] <= r["b"] <= r["b_ci"][1]


def test_a_percentile_below_its_minimum_count_is_withheld_and_not_judged(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    a = make_synthetic_run(tmp_path / "a", n_turns=20, seed=4, incident_traces=0)
    b = make_synthetic_run(tmp_path / "b", n_turns=20, seed=4, ttfa_shift_ms=500.0, incident_traces=0)
    code = main(["compare", str(a), str(b), "--stat", "p95", "--max-regression-ms", "100",
                 "--out", str(tmp_path / "c.html")])
    out = capsys.readouterr().out
    assert code == 0 and "NOT JUDGED ttfa_ms p95" in out and "n too small (n=" in out
    assert "n too small" in (tmp_path / "c.html").read_text()
    # p50 needs only 10 values: judged, and the +500 ms separates
    assert main(["compare", str(a), str(b), "--stat", "p50", "--max-regression-ms", "100",
                 "--out", str(tmp_path / "d.html")]) == 1
