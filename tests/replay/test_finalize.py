"""`harness finalize RUN_DIR` completes a run directory from its files: after its outputs were
lost, from its traces alone, and after a second Ctrl-C stopped `harness run` mid-way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.replay.bundle_files import has_audio
from tests.replay.helpers import REPO, harness

OUTPUTS = ("summary.json", "junit.xml", "turns.parquet", "turns.csv", "report.html")


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def test_finalize_rebuilds_a_run_whose_summary_report_and_bundles_were_deleted(
        elsewhere_run: dict[str, Any], tmp_path: Path) -> None:
    before = _summary(elsewhere_run["out"])
    run = _copy(elsewhere_run["out"], tmp_path)
    for name in OUTPUTS:
        (run / name).unlink(missing_ok=True)
    shutil.rmtree(run / "incidents")
    done = harness("finalize", str(run), cwd=tmp_path)
    assert done.returncode == before["exit_code"] == 0, done.stdout[-1500:] + done.stderr[-1500:]
    after = _summary(run)
    assert after["turns"] == before["turns"] and after["incidents"]["total"] == before["incidents"]["total"]
    assert [r["expr"] for r in after["slos"]] == [r["expr"] for r in before["slos"]]   # the run's own gates
    assert all((run / name).is_file() for name in OUTPUTS)
    assert sorted(p.name for p in (run / "incidents").iterdir()) == sorted(
        p.name for p in (elsewhere_run["out"] / "incidents").iterdir())
    assert all(has_audio(bundle) for bundle in (run / "incidents").iterdir())
    assert f"turns: {before['turns']['total']} (" in done.stdout                        # the summary table
    assert json.loads((run / "run.json").read_text())["finalized_by"] == "harness finalize"


@pytest.mark.parametrize("deleted", [("records",), ("records", "sessions"), ("records", "sessions", "run.json")])
def test_finalize_from_the_traces_alone_gives_the_same_turns(
        deleted: tuple[str, ...], elsewhere_run: dict[str, Any], tmp_path: Path) -> None:
    before = _summary(elsewhere_run["out"])
    run = _copy(elsewhere_run["out"], tmp_path)
    for name in (*deleted, *OUTPUTS):
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    # without run.json the run's pacing limit is unknown: give it, as the run did
    extra = ["--pacing-limit-ms", "100"] if "run.json" in deleted else []
    done = harness("finalize", str(run), "--no-report", *extra, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    after = _summary(run)
    assert after["turns"] == before["turns"]
    assert after["incidents"]["by_cause"] == before["incidents"]["by_cause"]
    assert after["sessions"]["total"] == before["sessions"]["total"]


def test_finalize_on_a_folder_that_is_not_a_run_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "nowhere", tmp_path / "afile", tmp_path / "empty"):
        done = harness("finalize", str(path))
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1, (path, done.stderr)
        assert lines[0].startswith("harness finalize: error: ") and str(path) in lines[0]


def test_a_second_ctrl_c_leaves_the_run_directory_for_finalize_which_completes_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
    child = subprocess.Popen([sys.executable, "-m", "harness", "run", "-u", "2", "-r", "2", "-t", "60s", "--turns",
                              "2", "--rtf", "2", "--out", str(out), "--pacing-limit-ms", "100"],
                             cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:   # until a turn has ended
            traces = list((out / "traces").glob("*.jsonl")) if (out / "traces").is_dir() else []
            if any('"turn_end"' in path.read_text(errors="replace") for path in traces):
                break
            time.sleep(0.2)
        assert child.poll() is None, "harness run ended before it could be interrupted"
        child.send_signal(signal.SIGINT)
        time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, stderr[-1500:]
    assert f"run directory incomplete: complete it with `harness finalize {out}`" in stderr
    assert not (out / "summary.json").exists() and (out / "run.json").is_file()
    started = sum(path.read_text(errors="replace").count('"mark":"turn_start"') for path in (out / "traces").glob("*.jsonl"))
    done = harness("finalize", str(out), "--no-report", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stdout[-1500:] + done.stderr[-1500:]
    summary = _summary(out)
    assert summary["turns"]["total"] == started >= 1       # a record for every turn started
    assert summary["run"]["target"].startswith("ws://127.0.0.1:")   # the settings from the run.json written at start
