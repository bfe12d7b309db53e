"""Soak: does memory plateau over a long run? 50 callers against the embedded simulator.

Runs `harness run -u USERS -t MINUTES m` (the real command: simulator and Locust in their own
processes) and samples the resident memory (RSS) of the Locust load process and of the
simulator process every few seconds. Buffers in both are meant to be bounded (the trace
recorder drains to disk, the simulator keeps no in-memory trace in `harness sim`, sessions
free their state when they end), so RSS must stop growing once every caller runs.

Plateau test: after a warm-up (the first fifth of the run), the mean RSS of the last third is
compared with the mean of the middle third; growth under 5 % (or under 16 MiB, for small
processes) passes. The slope of a least-squares line over the post-warm-up samples is reported
in MiB per hour for a reader to judge.

    python benchmarks/soak.py [--users 50] [--minutes 30] [--sample-s 5]

Writes benchmarks/results/soak.json (samples and verdict). The run directory goes to a
temporary folder and is deleted unless --keep.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
MIB = 1024 * 1024
GROWTH_LIMIT_FRACTION = 0.05
GROWTH_LIMIT_MIB = 16.0


def _role(proc: psutil.Process) -> str | None:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if " -m locust" in cmd:
        return "load"
    if " -m harness sim" in cmd:
        return "sim"
    return None


def _sample(parent: psutil.Process) -> dict[str, float]:
    rss: dict[str, float] = {}
    try:
        rss["harness_run"] = parent.memory_info().rss / MIB
        children = parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return rss
    for child in children:
        role = _role(child)
        if role is None:
            continue
        try:
            rss[role] = rss.get(role, 0.0) + child.memory_info().rss / MIB
        except psutil.NoSuchProcess:
            continue
    return rss


def plateau(times_s: list[float], values_mib: list[float], run_s: float) -> dict[str, Any]:
    t = np.asarray(times_s)
    v = np.asarray(values_mib)
    warm = t >= run_s / 5
    if warm.sum() < 6:
        return {"passed": False, "why": "too few samples after warm-up"}
    tw, vw = t[warm], v[warm]
    third = (tw.max() - tw.min()) / 3
    middle = vw[(tw >= tw.min() + third) & (tw < tw.min() + 2 * third)]
    last = vw[tw >= tw.min() + 2 * third]
    growth = float(last.mean() - middle.mean())
    limit = max(GROWTH_LIMIT_FRACTION * float(middle.mean()), GROWTH_LIMIT_MIB)
    slope_per_s = float(np.polyfit(tw, vw, 1)[0])
    return {"middle_mean_mib": float(middle.mean()), "last_mean_mib": float(last.mean()), "growth_mib": growth,
            "limit_mib": limit, "slope_mib_per_hour": slope_per_s * 3600, "max_mib": float(v.max()),
            "passed": growth <= limit}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--scenario", default="plain:3,barge_in:1,client_cancel:1")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="harness-soak-"))
    run_dir = workdir / "run"
    run_s = args.minutes * 60
    cmd = [sys.executable, "-m", "harness", "run", "-u", str(args.users), "-r", "5", "-t", f"{int(run_s)}s",
           "--scenario", args.scenario, "--no-report", "--out", str(run_dir)]
    log = (workdir / "run.log").open("w")
    started = time.monotonic()
    child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    parent = psutil.Process(child.pid)
    samples: list[dict[str, float]] = []
    ended_at: float | None = None
    try:
        while child.poll() is None and time.monotonic() - started < run_s + 1800:
            now = time.monotonic() - started
            rss = _sample(parent)
            if "load" in rss and now <= run_s:
                samples.append({"t_s": round(now, 1), **{k: round(v, 2) for k, v in rss.items()}})
            elif now > run_s and ended_at is None:
                ended_at = now  # the run is finishing (writing the run directory)
            time.sleep(args.sample_s)
        code = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        log.close()
    finalize_s = time.monotonic() - started - (ended_at or run_s)

    verdicts = {}
    for role in ("load", "sim"):
        rows = [s for s in samples if role in s]
        verdicts[role] = plateau([s["t_s"] for s in rows], [s[role] for s in rows], run_s)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    traces_mib = sum(p.stat().st_size for p in (run_dir / "traces").rglob("*.jsonl")) / MIB if run_dir.exists() else 0
    result = {
        "benchmark": "soak", "users": args.users, "minutes": args.minutes, "scenario": args.scenario,
        "exit_code": code, "turns": (summary.get("turns") or {}).get("total"),
        "sessions": (summary.get("sessions") or {}).get("total"), "pacing": summary.get("pacing"),
        "traces_mib": round(traces_mib, 1), "finalize_s": round(finalize_s, 1),
        "plateau": verdicts, "passed": all(v.get("passed") for v in verdicts.values()),
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "samples": samples,
        "log_tail": (workdir / "run.log").read_text(errors="replace").splitlines()[-12:],
    }
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=2), encoding="utf-8")
    for role, verdict in verdicts.items():
        print(f"{role}: {json.dumps(verdict)}")
    print(f"turns {result['turns']}, sessions {result['sessions']}, exit {code}, traces {traces_mib:.0f} MiB, "
          f"finalize {finalize_s:.0f} s -> {args.results}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"run directory kept: {run_dir}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
