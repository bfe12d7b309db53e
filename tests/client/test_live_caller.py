"""The caller does not speak Live yet: asking for it is bad input, said in one line before anything
starts (exit 2), not a run that fails at the first event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.client import SessionSpec, SpecError

ROOT = Path(__file__).resolve().parents[2]


def test_harness_run_with_the_live_dialect_exits_2_with_one_line_before_starting(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--dialect", "live", "--scenario", "plain:1",
                           "-u", "1", "-t", "2s", "--out", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--dialect live" in lines[0] and "/v1/live/sessions" in lines[0]
    assert not (tmp_path / "runs").exists()   # nothing started, nothing written


def test_a_session_spec_for_the_live_dialect_is_refused_before_connecting() -> None:
    with pytest.raises(SpecError, match="does not speak Live"):
        SessionSpec(url="ws://127.0.0.1:9/v1/live/sessions", dialect="live").check()
