"""A session that raises the same exception again and again stops the run with one line, not a flood."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PLANTED = '''
import harness.load.users as users
from harness.load.users import RealtimeUser  # noqa: F401


def _planted_bug(*args, **kwargs):
    raise RuntimeError("planted bug in every session")


users.run_scenario = _planted_bug
'''


def test_a_bug_that_fails_every_session_stops_the_run_after_three_with_one_traceback(tmp_path: Path) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(PLANTED, encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "2", "-r", "2",
                           "-t", "60s", "--target", "ws://127.0.0.1:9/v1/realtime", "--auth", "none",
                           "--out", str(tmp_path / "run"), "--loglevel", "WARNING"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 4, output[-3000:]
    assert time.monotonic() - started < 40
    assert output.count("Traceback") == 1            # the first failure, with its traceback; then counted
    assert "3 sessions in a row failed with RuntimeError: planted bug in every session" in output
