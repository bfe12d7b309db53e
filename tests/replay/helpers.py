"""Helpers of the replay and finalize tests: the command line in a subprocess, with this checkout's package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
            timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` with this checkout's package, from `cwd`, without any API key."""
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
    full_env = {**base, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
