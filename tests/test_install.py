"""Installable anywhere: `pip install <clone>` into a fresh venv, then `harness run` from another
directory finds its shipped corpora (package data) and writes a report.

The venv is made with `--system-site-packages` so the already-installed dependencies are reused
offline (a plain venv installs them again: 34 s here under load, see
benchmarks/results/install_anywhere.json); the harness itself is built from the clone and
installed into the venv, which shadows any harness installed outside it (checked below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _clone(into: Path) -> Path:
    """The checkout's files as they are now, tracked or new but not ignored (a clean clone of the working tree)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: nothing to clone")
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def test_pip_install_of_a_clone_into_a_fresh_venv_runs_from_another_directory(tmp_path: Path) -> None:
    clone = _clone(tmp_path / "clone")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", str(clone)], capture_output=True,
                               text=True, timeout=600, env=env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", (
        "import harness, json; from harness.corpus import SHIPPED_CORPORA_DIR, load_corpus; "
        "from harness.client import SessionSpec; "
        "print(json.dumps({'package': harness.__file__, 'shipped': str(SHIPPED_CORPORA_DIR), "
        "'counts': [len(load_corpus(n)) for n in ('default', 'corpora/tools', 'telephony')], "
        "'noise': len(load_corpus(SessionSpec.noise_corpus))}))")],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, env=env)
    assert where.returncode == 0, where.stderr[-3000:]
    found = json.loads(where.stdout)
    assert found["package"].startswith(str(venv)) and found["shipped"].startswith(str(venv)), found
    assert all(found["counts"]) and found["noise"] > 0, found

    out = elsewhere / "reports" / "run"
    done = subprocess.run([str(venv / "bin" / "harness"), "run", "-u", "2", "-r", "2", "-t", "15s", "--turns", "2",
                           "--rtf", "2", "--corpus", "default", "--pacing-limit-ms", "100",
                           "--lateness-limit-ms", "1000", "--out", str(out)],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "turns.parquet").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["turns"]["ok"] > 0, (summary["turns"], done.stdout[-2000:])
    run = json.loads((out / "run.json").read_text())
    assert run["corpus_path"].startswith(str(venv)) and run["git"] is None   # installed: no checkout's commit
