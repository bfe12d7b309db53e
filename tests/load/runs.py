"""Helpers for tests that run real `harness run` / `locust` processes on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.trace import iter_trace_files, read_trace

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--pacing-limit-ms", "100"]  # these tests are not about the generator's timing


def harness(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def turns_in_traces(run_dir: Path) -> set[tuple[str, int]]:
    found = set()
    for path in iter_trace_files(run_dir / "traces"):
        trace = read_trace(path)
        for record in trace.records:
            if record.get("mark") == "turn_start":
                found.add((trace.header["session_id"], record["turn"]))
    return found


def records(run_dir: Path) -> list[dict[str, Any]]:
    import pandas as pd

    return pd.read_parquet(run_dir / "turns.parquet").to_dict("records")


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())
