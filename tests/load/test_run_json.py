"""run.json holds what reproducing a run needs (argv without secrets, every option with its
default, the simulator's settings, versions, commit, host); `--out` reuse is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load.command import OutputDirError, claim_out_dir
from harness.load.run_info import harness_git_commit, redact_argv, redact_options

from .runs import REPO

KEY = "sk-test-run-json-0123456789"


def test_redact_argv_removes_url_credentials_key_options_bearer_values_and_the_keys_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    argv = ["harness", "run", "--target", "wss://user:pw@gw.example/v1/realtime?api-key=abc&model=m",
            "--api-key-env", "OPENAI_API_KEY", "--api-key", "plain-secret", "--auth-token=tok123",
            "--scenario-params", '{"plain": {"note": "%s"}}' % KEY, "Authorization: Bearer xyz.789"]
    shown = redact_argv(argv)
    text = " ".join(shown)
    for secret in ("pw@", "abc", "plain-secret", "tok123", KEY, "xyz.789"):
        assert secret not in text, (secret, shown)
    assert shown[3] == "wss://gw.example/v1/realtime?api-key=REDACTED&model=m"
    assert shown[4:6] == ["--api-key-env", "OPENAI_API_KEY"]    # a variable's name is no secret
    assert shown[6:8] == ["--api-key", "REDACTED"] and shown[8] == "--auth-token=REDACTED"
    assert shown[-1] == "Authorization: Bearer REDACTED"


def test_redact_options_keeps_every_value_but_credentials() -> None:
    shown = redact_options({"target": "ws://h:1/v1/realtime?token=t0", "chunk_ms": 20.0, "slo": ["ttfa_ms:p95<1"],
                            "out": Path("/x"), "api_key_env": "OPENAI_API_KEY", "secret_token": "s3"})
    assert shown == {"api_key_env": "OPENAI_API_KEY", "chunk_ms": 20.0, "out": "/x", "secret_token": "REDACTED",
                     "slo": ["ttfa_ms:p95<1"], "target": "ws://h:1/v1/realtime?token=REDACTED"}


def test_the_harness_commit_is_this_checkouts_head() -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    found = harness_git_commit()
    assert found is not None and found["commit"] == head.stdout.strip()


def test_a_non_empty_out_is_refused_and_overwrite_empties_only_a_run_directory(tmp_path: Path) -> None:
    claim_out_dir(tmp_path / "new", overwrite=False)        # missing: fine
    (tmp_path / "empty").mkdir()
    claim_out_dir(tmp_path / "empty", overwrite=False)      # empty: fine
    run_dir = tmp_path / "run"
    (run_dir / "traces").mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    (run_dir / "traces" / "a.jsonl").write_text("{}\n")
    with pytest.raises(OutputDirError, match="not empty.*--overwrite"):
        claim_out_dir(run_dir, overwrite=False)
    claim_out_dir(run_dir, overwrite=True)
    assert run_dir.is_dir() and not any(run_dir.iterdir())
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not a run directory"):
        claim_out_dir(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "run", "-u", "3", "-r", "3", "-t", "8s", "--turns", "2",
                           "--rtf", "4", "--no-report", "--pacing-limit-ms", "100",
                           "--lateness-limit-ms", "1000", "--out", str(out),
                           "--sim-latency", "first_audio=fixed:300", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OPENAI_API_KEY": KEY})


@pytest.mark.slow
def test_run_json_reproduces_the_run_and_a_reused_out_is_refused_before_anything_starts(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _run(out)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["argv"][:2] == ["harness", "run"] and "first_audio=fixed:300" in run["argv"]
    options = run["options"]   # every option, its default filled in
    assert options["chunk_ms"] == 20.0 and options["dialect"] == "ga" and options["sim_lateness_limit_ms"] > 0
    assert options["users"] == 3 and options["overwrite"] is False and options["scenario"] == "plain:1"
    assert run["settings"]["turn_timeout_s"] == 15.0 and run["settings"]["vad_fallback"] == "manual"
    latency = run["simulator"]["latency"]   # every stage, the one set and the defaults
    assert latency["first_audio"] == "fixed:300" and latency["commit"] == "fixed:10"
    assert {"seed", "vad", "processes", "faults"} <= set(run["simulator"])
    assert {"python", "locust", "websockets", "numpy", "realtime-voice-harness"} <= set(run["versions"])
    assert run["host"]["cpu_count"] >= 1 and len(run["host"]["load_average_1_5_15"]) == 3
    assert "git" in run
    assert KEY not in (out / "run.json").read_text() and KEY not in (out / "summary.json").read_text()

    again = _run(out)
    lines = again.stderr.strip().splitlines()
    assert again.returncode == 2 and len(lines) == 1 and "not empty" in lines[0] and "--overwrite" in lines[0]
    assert "embedded simulator" not in again.stdout       # refused before anything started
    assert json.loads((out / "run.json").read_text())["run_id"] == run["run_id"]
