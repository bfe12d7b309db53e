"""Shared by the replay and finalize tests: one short run started from a directory that is not
the repository (so its bundles must find the corpus by the path the run recorded, not by the
current directory)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.replay.helpers import harness


@pytest.fixture(scope="session")
def elsewhere_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A GA run with false-VAD incidents, started from a scratch directory with the default corpus."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    out = cwd / "run"
    done = harness("run", "-u", "2", "-r", "2", "-t", "7s", "--turns", "2", "--rtf", "2", "--no-report",
                   "--sim-fault", "false_vad:after_deltas=2", "--out", str(out), "--pacing-limit-ms", "100",
                   cwd=cwd)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    bundles = sorted((out / "incidents").iterdir())
    assert bundles, "the false_vad fault made no incident"
    return {"cwd": cwd, "out": out, "bundle": bundles[0], "stdout": done.stdout}
