"""harness run's live status line: the Locust processes' status boards, merged and drawn."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.load import status
from harness.load.progress import LiveStatus, StatusKey, merged, percentile, read_statuses, status_line

from .runs import REPO

NOW = 1_000_000.0


def _status(worker: str, written_at: float, users: int, ok: int, timeout: int, ttfa: list[float],
            buckets: dict[str, int]) -> dict[str, object]:
    """A status file; `buckets`: send lateness in 10 us buckets ("3": 30-40 us), as sessions count it."""
    return {StatusKey.WORKER: worker, StatusKey.WRITTEN_AT: written_at, StatusKey.USERS: users,
            StatusKey.TURNS: {"ok": ok, "timeout": timeout, "error": 1, "invalid_pacing": 0, "stopped": 2},
            StatusKey.TTFA_MS: ttfa,
            StatusKey.LATENESS: {"bucket_ns": 10_000, "buckets": buckets,
                                 "max_ns": 10_000 * (max(map(int, buckets)) + 1)}}


def test_percentile_is_numpys_linear_percentile() -> None:
    values = [float(v) for v in np.random.default_rng(3).lognormal(5.5, 0.4, 257)]
    for q in (0, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-9)
    assert percentile([], 50) is None


def test_workers_are_merged_and_a_silent_workers_users_and_window_drop_out_but_its_turns_stay() -> None:
    live = _status("w1", NOW - 1, 4, ok=10, timeout=1, ttfa=[300.0, 310.0, 320.0], buckets={"2": 500, "9": 480})
    other = _status("w2", NOW - 0.5, 6, ok=5, timeout=0, ttfa=[400.0], buckets={"2": 10, "40": 5})
    killed = _status("w3", NOW - 60, 5, ok=7, timeout=2, ttfa=[9000.0], buckets={"2": 5, "300": 5})
    state = merged([live, other, killed], NOW)
    assert state["users"] == 10 and state["ok"] == 22 and state["failed"] == (1 + 0 + 2) + 3   # timeouts + errors
    assert state["ttfa_p50_ms"] == pytest.approx(np.percentile([300, 310, 320, 400], 50))
    assert state["ttfa_p95_ms"] == pytest.approx(np.percentile([300, 310, 320, 400], 95))
    # 1,005 appends over every worker (a finished session counts, whoever ran it, even a worker
    # gone since): rank 0.99 x 1,005 falls in bucket 9 (the 995th append), whose upper edge is
    # 100 us, as summary.json's pacing would say
    assert state["pacing_p99_ms"] == pytest.approx(0.1)
    line = status_line(state, 75.0)
    assert line.startswith("harness run: 1:15 users 10 | turns ok 22 failed 6 | ttfa p50 315.0 / p95 388.0 ms")
    assert "pacing p99 0.10 ms" in line


def test_the_board_keeps_a_bounded_window_of_recent_turns_and_writes_what_the_reader_merges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(status.time, "monotonic", lambda: clock[0])
    board = status.StatusBoard()
    monkeypatch.setattr(status, "BOARD", board)
    for index in range(1500):   # more than the window holds
        clock[0] = 100.0 + index * 0.01
        board.note_turn({"status": "ok" if index % 10 else "timeout", "ttfa_ms": 200.0 + index})
    board.note_session({"bucket_ns": 10_000, "buckets": {"1": 90, "7": 10}, "max_ns": 75_000})
    board.note_session({"bucket_ns": 10_000, "buckets": {"1": 10}, "max_ns": 15_000})
    board.note_session(None)   # a session killed before it measured anything
    assert board.counts["ok"] == 1350 and board.counts["timeout"] == 150
    assert len(board.window) == status.WINDOW_TURNS
    clock[0] = 100.0 + 14.99 + 30.0 - 5.0   # 5 s of turns are still inside the last 30 s
    status._write(tmp_path, "w1", 3)
    (written,) = read_statuses(tmp_path)
    assert written[StatusKey.USERS] == 3 and written[StatusKey.TURNS]["ok"] == 1350
    assert written[StatusKey.TTFA_MS] == [200.0 + i for i in range(1000, 1500)]
    assert written[StatusKey.LATENESS] == {"bucket_ns": 10_000, "buckets": {"1": 100, "7": 10}, "max_ns": 75_000}
    assert not list(tmp_path.glob("*.tmp"))


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_in_a_ci_log_the_line_comes_every_n_seconds_and_on_a_terminal_it_is_rewritten_in_place(
        tmp_path: Path) -> None:
    (tmp_path / "w1.json").write_text(json.dumps(_status("w1", NOW, 2, 3, 0, [250.0], {"1": 3})))
    clock = _Clock()
    log = io.StringIO()
    plain = LiveStatus(tmp_path, every_s=10, stream=log, clock=clock, wall=lambda: NOW)
    for second in range(1, 26):
        clock.now = float(second)
        plain.tick()
    plain.close()
    lines = log.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["0:10", "0:20", "0:25"]
    assert all("users 2 | turns ok 3 failed 1 | ttfa p50 250.0 / p95 250.0 ms" in line for line in lines)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    clock.now = 0.0
    drawn = LiveStatus(tmp_path, stream=term, clock=clock, wall=lambda: NOW)
    for second in range(1, 4):
        clock.now = float(second)
        drawn.tick()
    drawn.close()
    text = term.getvalue()
    assert text.count("\r") == 4 and text.count("\n") == 1 and text.endswith("\x1b[K\n")
    silent = io.StringIO()
    off = LiveStatus(tmp_path, every_s=0, stream=silent, clock=clock)
    off.tick()
    off.close()
    assert silent.getvalue() == ""


LINE = re.compile(r"harness run: (\d+):(\d\d) users (\d+) \| turns ok (\d+) failed (\d+) \| "
                  r"ttfa p50 (\S+) / p95 (\S+) ms \(last 30 s\) \| pacing p99 (\S+) ms")


def test_a_real_run_prints_status_lines_whose_last_one_matches_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "harness", "run", "-u", "3", "-r", "3", "-t", "8s", "--turns", "2",
                           "--rtf", "2", "--no-report", "--pacing-limit-ms", "100", "--scenario", "plain:1",
                           "--scenario-params", '{"plain": {"wait_playout": false}}',   # turns end inside 8 s
                           "--lateness-limit-ms", "1000", "--progress-every-s", "2",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    found = [LINE.search(line) for line in done.stderr.splitlines()]
    lines = [m for m in found if m]
    assert len(lines) >= 3, done.stderr[-2000:]       # every 2 s during 8 s, and the last one
    assert any(int(m.group(3)) == 3 for m in lines)   # all users seen running
    summary = json.loads((out / "summary.json").read_text())
    last, turns, ttfa = lines[-1], summary["turns"], summary["metrics"]["ttfa_ms"]
    assert int(last.group(4)) == turns["ok"] > 0
    assert int(last.group(5)) == turns["timeout"] + turns["error"] + turns["invalid_pacing"]
    assert float(last.group(6)) == pytest.approx(ttfa["p50"], abs=0.1)   # the harness's own records
    assert float(last.group(7)) == pytest.approx(ttfa["p95"], abs=0.1)
    assert float(last.group(8)) == pytest.approx(summary["pacing"]["p99_ms"], abs=0.005)   # the gate's own p99
