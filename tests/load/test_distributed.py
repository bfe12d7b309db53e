"""Plain Locust against a separately started simulator, `--processes 2`, and a master with two workers.

In every mode each turn of every trace must reach the run directory as one record; with a
master, the records the master received over Locust's worker reports alone must be complete.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from .runs import QUIET, REPO, closed_port, harness, records, summary, turns_in_traces

pytestmark = pytest.mark.slow
FAST = ["--turns", "2", "--rtf", "2", *QUIET]


@pytest.fixture
def sim_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "harness", "sim", "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "listening on " in line, line
        yield line.split("listening on ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _locust(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", "locustfile.py", *args]


def _statuses(run_dir: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for record in records(run_dir):
        found[record["status"]] = found.get(record["status"], 0) + 1
    return found


def test_plain_locust_with_a_step_shape_writes_the_run_directory_with_harness_exit_codes_and_no_error_turns(
        sim_url: str, tmp_path: Path) -> None:
    """The README's plain-Locust command: turns cut by the stop are `stopped` (Locust's default stop
    timeout of 0 kills the users at once), the process exits with the harness's code (1: the SLO
    failed), and the step shape's user count over time is in users.csv."""
    out = tmp_path / "run"
    done = subprocess.run(_locust("--headless", "-u", "2", "-r", "2", "-t", "9s", "--target", sim_url,
                                  "--shape", "step:users=2,step=1,every=3s", "--slo", "ttfa_ms:p50<1",
                                  "--out", str(out), *FAST, "--turns", "1"), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "FAIL  ttfa_ms:p50<1" in done.stdout
    assert (out / "report.html").is_file() and (out / "summary.json").is_file()
    assert {(r["session_id"], r["turn"]) for r in records(out)} == turns_in_traces(out)
    statuses = _statuses(out)
    assert statuses.get("ok") and "error" not in statuses, statuses
    with (out / "users.csv").open() as handle:
        samples = [(float(row["elapsed_s"]), int(row["users"]), row["target_users"]) for row in csv.DictReader(handle)]
    assert {target for elapsed, _, target in samples if elapsed < 2.5} == {"1"}
    assert max(users for _, users, _ in samples) == 2 and samples[-1][2] == "2"


def test_processes_2_puts_every_turn_record_in_the_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = harness("run", "--processes", "2", "-u", "4", "-r", "4", "-t", "8s", "--no-report",
                   "--out", str(out), *FAST, timeout_s=150)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    traced = turns_in_traces(out)
    workers = {path.stem.split("-")[0] for path in (out / "traces").glob("*.jsonl")}
    assert len(workers) == 2, workers  # both forked workers ran callers
    assert len(traced) > 0 and {(r["session_id"], r["turn"]) for r in records(out)} == traced
    assert summary(out)["turns"]["total"] == len(traced)


def test_a_master_with_two_workers_receives_every_turn_record_over_worker_reports(
        sim_url: str, tmp_path: Path) -> None:
    out, port = tmp_path / "run", closed_port()
    common = ["--target", sim_url, "--out", str(out), *FAST]
    master = subprocess.Popen(_locust("--master", "--headless", "-u", "4", "-r", "4", "-t", "8s",
                                      "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
                                      "--master-bind-port", str(port), *common),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = [subprocess.Popen(_locust("--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
                                        *common), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        output, _ = master.communicate(timeout=120)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=20)
    assert master.returncode == 0, output[-3000:]
    traced = turns_in_traces(out)
    shipped = set()
    for path in (out / "records").glob("master-*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            shipped.add((row["session_id"], row["turn"]))
    assert traced and shipped == traced
    statuses = _statuses(out)
    assert statuses.get("ok") and "error" not in statuses, statuses   # the stop cuts turns as `stopped`
