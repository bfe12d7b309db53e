"""Report build time and size at 10,000 and 100,000 synthetic turns, plus an offline browser check.

Writes benchmarks/results/report_build.json and benchmarks/results/report_screenshot.png
(the 10,000-turn report in headless Chromium). About 30 s on the 2-core dev machine:
    python benchmarks/report_build.py [TURNS ...]      (default: 10000 100000)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from harness.report import build_report, read_turns, write_turn_tables
from harness.report.browser_check import find_chromium, render_offline
from harness.report.synthetic import make_synthetic_run, synthetic_records

RESULTS = Path(__file__).resolve().parent / "results"


def timed_s(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return round(time.perf_counter() - start, 3), value


def measure(n_turns: int, root: Path) -> dict[str, object]:
    run_dir = make_synthetic_run(root / f"run{n_turns}", n_turns=n_turns, seed=1, incident_traces=5)
    records = synthetic_records(n_turns, seed=1)
    write_s, _ = timed_s(write_turn_tables, root / f"tables{n_turns}", records)
    read_s, turns = timed_s(read_turns, run_dir)
    builds = [timed_s(build_report, run_dir)[0] for _ in range(3)]
    page = run_dir / "report.html"
    return {
        "turns": n_turns,
        "incidents": int(turns["incident"].notna().sum()),
        "build_s": {"min": min(builds), "max": max(builds), "runs": builds},
        "report_html_mb": round(page.stat().st_size / 1e6, 2),
        "figures": page.read_text(encoding="utf-8").count("Plotly.newPlot("),
        "timelines": len(list((run_dir / "timelines").glob("*.html"))),
        "write_turn_tables_s": write_s,
        "read_turns_s": read_s,
        "turns_parquet_mb": round((run_dir / "turns.parquet").stat().st_size / 1e6, 2),
        "turns_csv_mb": round((run_dir / "turns.csv").stat().st_size / 1e6, 2),
        "_page": str(page),
    }


def browser_check(page: str) -> dict[str, object]:
    if find_chromium() is None:
        return {"skipped": "chromium not installed"}
    screenshot = RESULTS / "report_screenshot.png"
    seconds, result = timed_s(render_offline, page, screenshot=screenshot, width=1400, height=3000)
    return {"rendered_s": seconds, "figures_drawn": result.figures_drawn, "console_messages": result.console,
            "screenshot": screenshot.name, "returncode": result.returncode}


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [10_000, 100_000]
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        rows = [measure(n, Path(tmp)) for n in sizes]
        for row in rows:
            print(f"{row['turns']:>7} turns: build {row['build_s']['min']:.2f}-{row['build_s']['max']:.2f} s, "
                  f"report.html {row['report_html_mb']} MB, {row['figures']} figures", flush=True)
        browser = browser_check(str(rows[0]["_page"]))
        print(f"browser: {browser}")
    for row in rows:
        row.pop("_page")
    result = {
        "benchmark": "report_build",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "synthetic run directories (harness.report.synthetic); build_s includes 5 incident timeline pages",
        "sizes": rows,
        "browser": browser,
    }
    (RESULTS / "report_build.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
