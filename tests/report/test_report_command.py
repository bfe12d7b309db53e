"""`harness report RUN_DIR` through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.report.synthetic import make_synthetic_run


def test_harness_report_rebuilds_the_page_of_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=300, seed=11, incident_traces=2)
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out


def test_harness_report_writes_where_out_says(tmp_path: Path) -> None:
    run_dir = make_synthetic_run(tmp_path / "run", n_turns=200, seed=12, incident_traces=0)
    assert main(["report", str(run_dir), "--out", str(tmp_path / "elsewhere" / "r.html")]) == 0
    assert (tmp_path / "elsewhere" / "r.html").is_file() and not (run_dir / "report.html").exists()


def test_harness_report_on_a_folder_without_turns_exits_2_with_one_line(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness report: error:") and "turns.parquet" in err and "\n" not in err
