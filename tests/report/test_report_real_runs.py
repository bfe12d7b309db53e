"""Two real `harness run`s against the embedded simulator, the second with +200 ms first-audio
latency injected: `harness report` rebuilds each page and `harness compare` exits 1 (the p50
intervals separate) and warns that the simulator settings differ. The report's users are
Locust's own history; the run directory holds one plotly.min.js. Slow (~50 s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import read_turns
from harness.report.load_history import read_locust_history, user_history

pytestmark = pytest.mark.slow


def _harness(*args: str, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=Path(__file__).resolve().parents[2])


def _run(out: Path, first_audio_ms: int) -> Path:
    done = _harness("run", "-u", "8", "-r", "8", "-t", "15s", "--rtf", "2", "--scenario", "plain:1", "--turns", "2",
                    "--sim-latency", f"first_audio=fixed:{first_audio_ms}", "--out", str(out),
                    # pacing and the simulator's lateness are not what this test checks: generous
                    # gates, so a loaded CI machine cannot fail the runs it compares
                    "--pacing-limit-ms", "100", "--lateness-limit-ms", "250", "--sim-lateness-limit-ms", "100")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_harness_compare_of_real_runs_flags_200_ms_more_first_audio_latency(tmp_path: Path) -> None:
    base = _run(tmp_path / "base", 300)
    slower = _run(tmp_path / "slower", 500)
    rebuilt = _harness("report", str(slower))
    assert rebuilt.returncode == 0 and (slower / "report.html").is_file()
    page = (slower / "report.html").read_text()
    assert re.search(r'data-metric="ttfa_ms" data-stat="p95" data-value="[0-9.]+"', page)
    compared = _harness("compare", str(base), str(slower), "--metric", "ttfa_ms", "--stat", "p50",
                        "--max-regression-ms", "100")
    assert compared.returncode == 1, compared.stdout + compared.stderr
    delta = re.search(r"REGRESSION ttfa_ms p50: [0-9.]+ -> [0-9.]+ ms \(\+([0-9.]+) ms", compared.stdout)
    assert delta and 150 < float(delta.group(1)) < 260, compared.stdout
    assert "95 % intervals" in compared.stdout and "separate" in compared.stdout
    assert "WARNING: the runs differ in simulator settings (latency: " in compared.stdout
    assert "compare: wrote" in compared.stderr          # progress, plain lines off a terminal
    assert _harness("compare", str(base), str(base), "--max-regression-ms", "100").returncode == 0
    # the report's users are Locust's own history of this run; one plotly per run directory
    turns = read_turns(slower)
    history = user_history(slower, turns)
    locust = read_locust_history(slower / "stats_stats_history.csv")
    assert history.from_locust and history.frame["users"].tolist() == locust["users"].tolist()
    assert history.frame["users"].max() == 8 and "Locust&#x27;s history (stats_stats_history.csv" in page
    copies = [p for p in slower.rglob("*.js")]
    assert copies == [slower / "plotly.min.js"]
    assert "report: " in rebuilt.stderr
