"""compare_runs and `harness compare`: a +200 ms first-audio run is a regression and exits 1."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.report import ReportInputError
from harness.report.compare import compare_runs
from harness.report.synthetic import make_synthetic_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    base = make_synthetic_run(root / "base", n_turns=1200, seed=21, incident_traces=0)
    same = make_synthetic_run(root / "same", n_turns=1200, seed=22, incident_traces=0)
    slower = make_synthetic_run(root / "slower", n_turns=1200, seed=22, ttfa_shift_ms=200.0, incident_traces=0)
    return base, same, slower


def test_a_run_with_200_ms_more_first_audio_latency_is_a_regression(runs, tmp_path: Path) -> None:
    base, same, slower = runs
    regressed, deltas = compare_runs(base, slower, tmp_path / "c.html", metric="ttfa_ms", stat="p95",
                                     max_regression_ms=100)
    assert regressed
    row = deltas[(deltas["metric"] == "ttfa_ms") & (deltas["stat"] == "p95")].iloc[0]
    assert 150 < row["delta"] < 250
    page = (tmp_path / "c.html").read_text()
    assert "REGRESSION ttfa_ms p95" in page and "more than 100 ms" in page
    assert page.count("Plotly.newPlot(") >= 2


def test_two_runs_of_the_same_system_do_not_regress(runs, tmp_path: Path) -> None:
    base, same, _ = runs
    regressed, deltas = compare_runs(base, same, tmp_path / "c.html", max_regression_ms=100)
    assert not regressed
    assert abs(deltas.query("metric == 'ttfa_ms' and stat == 'p95'")["delta"].iloc[0]) < 100


def test_the_percent_limit_is_applied_alone_or_with_the_ms_limit(runs, tmp_path: Path) -> None:
    base, _, slower = runs
    assert compare_runs(base, slower, tmp_path / "a.html", max_regression_pct=10)[0]
    assert not compare_runs(base, slower, tmp_path / "b.html", max_regression_pct=50)[0]
    assert compare_runs(base, slower, tmp_path / "c.html", max_regression_ms=1000, max_regression_pct=10)[0]


def test_harness_compare_exits_1_on_regression_and_prints_the_table(runs, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    base, _, slower = runs
    code = main(["compare", str(base), str(slower), "--metric", "ttfa_ms", "--stat", "p95",
                 "--max-regression-ms", "100", "--out", str(tmp_path / "cmp.html")])
    out = capsys.readouterr().out
    assert code == 1
    assert "ttfa_ms" in out and "REGRESSION" in out and (tmp_path / "cmp.html").is_file()


def test_harness_compare_exits_0_when_nothing_regressed(runs, tmp_path: Path) -> None:
    base, same, _ = runs
    assert main(["compare", str(base), str(same), "--max-regression-ms", "100", "--out", str(tmp_path / "x.html")]) == 0


def test_a_metric_the_baseline_never_measured_is_a_user_error(tmp_path: Path) -> None:
    a = make_synthetic_run(tmp_path / "a", n_turns=50, seed=1, incident_traces=0)
    b = make_synthetic_run(tmp_path / "b", n_turns=50, seed=2, incident_traces=0)
    frame = pd.read_parquet(a / "turns.parquet")
    frame["tool_args_ms"] = float("nan")
    frame.to_parquet(a / "turns.parquet")
    with pytest.raises(ReportInputError, match="run A has no tool_args_ms"):
        compare_runs(a, b, tmp_path / "c.html", metric="tool_args_ms")
