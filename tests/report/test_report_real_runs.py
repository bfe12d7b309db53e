"""Two real `harness run`s against the embedded simulator, the second with +200 ms first-audio
latency injected: `harness report` rebuilds each page and `harness compare` exits 1. Slow (~40 s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _harness(*args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=Path(__file__).resolve().parents[2])


def _run(out: Path, first_audio_ms: int) -> Path:
    done = _harness("run", "-u", "3", "-r", "3", "-t", "10s", "--scenario", "plain:1", "--turns", "2",
                    "--sim-latency", f"first_audio=fixed:{first_audio_ms}", "--out", str(out))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_harness_compare_of_real_runs_flags_200_ms_more_first_audio_latency(tmp_path: Path) -> None:
    base = _run(tmp_path / "base", 300)
    slower = _run(tmp_path / "slower", 500)
    rebuilt = _harness("report", str(slower))
    assert rebuilt.returncode == 0 and (slower / "report.html").is_file()
    page = (slower / "report.html").read_text()
    assert re.search(r'data-metric="ttfa_ms" data-stat="p95" data-value="[0-9.]+"', page)
    compared = _harness("compare", str(base), str(slower), "--metric", "ttfa_ms", "--stat", "p95",
                        "--max-regression-ms", "100")
    assert compared.returncode == 1, compared.stdout + compared.stderr
    delta = re.search(r"REGRESSION ttfa_ms p95: [0-9.]+ -> [0-9.]+ ms \(\+([0-9.]+) ms", compared.stdout)
    assert delta and 150 < float(delta.group(1)) < 260, compared.stdout
    assert _harness("compare", str(base), str(base), "--max-regression-ms", "100").returncode == 0
