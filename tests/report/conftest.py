"""Fixtures for the report tests: synthetic run directories (harness.report.synthetic).

Until `harness run` writes real run directories these are the report's input: realistic
distributions, every turn-record column, a few incidents with session traces and bundles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.synthetic import make_synthetic_run


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 turns, a failed pacing gate, HTML/JS in transcripts and error messages."""
    return make_synthetic_run(tmp_path_factory.mktemp("runs") / "hostile", n_turns=1500, seed=3,
                              hostile=True, pacing_passed=False)


@pytest.fixture(scope="module")
def built_report(hostile_run: Path) -> tuple[Path, str]:
    from harness.report import build_report

    path = build_report(hostile_run)
    return path, path.read_text(encoding="utf-8")
