"""The real workload's capacity of one caller process: users per Locust process at which pacing holds.

    python benchmarks/run_capacity.py [--code old=/work/wt-old --code new=.] [--users 50,100,200,300,500]
                                      [--duration 40] [--rate 50] [--quick] [--keep]

Why: `benchmarks/pacing.py` streams silence into a discarding sink; a real run also receives and
plays out answers, follows turns, writes full traces and runs Locust. This measures that: for each
code version (`--code LABEL=PATH`, a checkout of this repository) and each user count, a real
`harness run` (scenario mix plain:3,barge_in:1,client_cancel:1, pcm16, GA) is pinned to core 0
against `benchmarks/answer_sink.py` pinned to core 1, in a fresh sink and run directory per step.

Per step: pacing p50/p99/max (the run's summary.json, which the pass criterion uses; and from the
traces without the appends of a session's last second before Locust stopped it), the
share of turns `invalid_pacing`, turns total/ok, protocol violations in the traces (must be 0
against the sink), the receive-stamp error (each `recv` record's t_ns minus the sink's actual
send time of that event_id, same CLOCK_MONOTONIC), the caller's CPU (user+sys of the Locust
process after its first 5 s; the whole `harness run` tree in seconds), and the sink's own send
lateness p99 and CPU (to show it was not the bottleneck). Plus one single-stream run per version
(1 user): pacing p99 and max. A step passes at pacing p99 <= 5 ms, under 1 % invalid turns and no
violations (DESIGN.md section 7).

Writes benchmarks/results/run_capacity.json and .md (or --out). The figures only mean something
on a quiet machine with two free cores; `--quick` (20 users, 10 s) is a smoke test of the tooling.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil

from harness.trace.reader import iter_trace_files, read_trace_text
from scheduling import scheduling

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
SCENARIO = "plain:3,barge_in:1,client_cancel:1"
P99_LIMIT_MS, INVALID_LIMIT, WARM_S, STOP_S = 5.0, 0.01, 5.0, 1.0
LIVE: list[subprocess.Popen[Any]] = []


def _pinned(core: int, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *argv]
    return argv


def _stop(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM the process group, then SIGKILL it after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            continue
    if proc in LIVE:
        LIVE.remove(proc)


def _stats(values: np.ndarray | list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99 = np.percentile(arr, [50, 99])
    return {"count": int(arr.size), "p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3),
            "max_ms": round(float(arr.max()), 3)}


def _cpu_s(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def start_sink(tmp: Path, timeout_s: float) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, str(ROOT / "answer_sink.py"), "--port", "0", "--record", str(tmp / "sink.csv"),
            "--max-seconds", str(timeout_s)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sink = subprocess.Popen(_pinned(1, argv), stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    LIVE.append(sink)
    assert sink.stdout is not None
    ready, _, _ = select.select([sink.stdout], [], [], 30.0)
    line = sink.stdout.readline().strip() if ready else ""
    if not line.startswith("ready "):
        _stop(sink, 5)
        raise RuntimeError(f"answer_sink did not start (said {line!r})")
    return sink, line.split()[1]


def run_step(label: str, path: Path, users: int, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return _run_step(label, path, users, args)
    except (RuntimeError, OSError, psutil.Error) as exc:   # one broken step must not lose the others
        return {"users": users, "error": f"{type(exc).__name__}: {exc}", "passed": False}


def _run_step(label: str, path: Path, users: int, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"run-capacity-{label}-{users}-"))
    row: dict[str, Any] = {"users": users, "dir": str(tmp) if args.keep else None}
    sink, url = start_sink(tmp, args.duration + 300)
    try:
        sink_ps = psutil.Process(sink.pid)
        sink_cpu0 = _cpu_s(sink_ps)
        cmd = [sys.executable, "-m", "harness", "run", "--target", url, "--auth", "none", "-u", str(users),
               "-r", str(args.rate), "-t", f"{args.duration}s", "--scenario", SCENARIO, "--out", str(tmp / "run"),
               "--no-report"]
        started = time.monotonic()
        with open(tmp / "caller.log", "w") as log:
            caller = subprocess.Popen(_pinned(0, cmd), cwd=path, env={**os.environ, "PYTHONPATH": str(path)},
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            LIVE.append(caller)
            row.update(_watch(caller, started + args.duration + 180))
            _stop(caller, 30)
        row["caller_exit"], row["caller_wall_s"] = caller.returncode, round(time.monotonic() - started, 1)
        row["sink_cpu_pct"] = round((_cpu_s(sink_ps) - sink_cpu0) / row["caller_wall_s"] * 100, 1)
    finally:
        _stop(sink, 60)
    assert sink.stdout is not None
    said = [ln for ln in sink.stdout.read().splitlines() if ln.startswith("sink ")]
    row["sink"] = json.loads(said[-1][5:]) if said else None
    row.update(analyse(tmp / "run", tmp / "sink.csv"))
    if row.get("turns", {}).get("total", 0) == 0:
        row["caller_log_tail"] = (tmp / "caller.log").read_text(errors="replace")[-600:]
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    pacing = row.get("pacing") or {}
    share = row.get("invalid_share")
    row["passed"] = bool(pacing.get("p99_ms") is not None and pacing["p99_ms"] <= P99_LIMIT_MS
                         and share is not None and share < INVALID_LIMIT and row.get("violations") == 0)
    return row


def _watch(caller: subprocess.Popen[Any], deadline: float) -> dict[str, Any]:
    """Sample the caller's process tree until it exits: the Locust process's CPU % after its first
    WARM_S seconds (imports, corpus loading), and the whole tree's CPU seconds."""
    root = psutil.Process(caller.pid)
    seen: dict[int, dict[str, Any]] = {}
    while caller.poll() is None and time.monotonic() < deadline:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for proc in procs:
            if proc.pid not in seen:
                try:
                    seen[proc.pid] = {"cmd": " ".join(proc.cmdline()), "born": proc.create_time(), "samples": []}
                except psutil.Error:
                    continue
            seen[proc.pid]["samples"].append((time.time(), _cpu_s(proc)))
        time.sleep(0.5)
    out: dict[str, Any] = {"tree_cpu_s": round(sum(max(c for _, c in e["samples"]) for e in seen.values()), 1)}
    locust = [e for e in seen.values() if "locust" in e["cmd"] and len(e["samples"]) > 1]
    if locust:
        main = max(locust, key=lambda e: e["samples"][-1][1])
        warm = [x for x in main["samples"] if x[0] >= main["born"] + WARM_S] or main["samples"]
        (t0, c0), (t1, c1) = warm[0], main["samples"][-1]
        out["caller_cpu_pct"] = round((c1 - c0) / (t1 - t0) * 100, 1) if t1 > t0 else None
    return out


def analyse(run: Path, sink_csv: Path) -> dict[str, Any]:
    """Figures of one run directory, matched against the sink's send record."""
    out: dict[str, Any] = {}
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    sent: dict[bytes, int] = {}
    if sink_csv.is_file():
        with open(sink_csv, "rb") as fh:
            next(fh, None)
            for line in fh:
                event_id, _, _, sent_ns = line.rstrip().split(b",")
                sent[event_id] = int(sent_ns)
    errors: list[float] = []
    lateness: list[float] = []     # appends sent at least STOP_S before their session was stopped
    unmatched, violations = 0, collections.Counter[str]()
    # plain traces (older code) or compressed after the run (`*.jsonl.gz`, this code): the trace reader lists and opens both
    for path in iter_trace_files(run / "traces"):
        appends: list[tuple[int, float]] = []
        stopped_ns = None
        for line in read_trace_text(path)[0].splitlines():
            if line.startswith('{"rec":"recv"'):
                rec = orjson.loads(line)
                got = sent.get(str((rec.get("event") or {}).get("event_id")).encode())
                if got is None:
                    unmatched += 1
                else:
                    errors.append((rec["t_ns"] - got) / 1e6)
            elif line.startswith('{"rec":"append"'):
                rec = orjson.loads(line)
                if rec.get("sched_ns") is not None:
                    appends.append((rec["t_ns"], (rec["t_ns"] - rec["sched_ns"]) / 1e6))
            elif line.startswith('{"rec":"violation"'):
                violations[orjson.loads(line).get("rule")] += 1
            elif line.startswith('{"rec":"mark"') and '"mark":"stopped"' in line:
                stopped_ns = orjson.loads(line)["t_ns"]
        cut = stopped_ns - int(STOP_S * 1e9) if stopped_ns is not None else None
        lateness.extend(late for t_ns, late in appends if cut is None or t_ns < cut)
    pacing = summary.get("pacing") or {}
    out["pacing"] = {k: round(pacing[k], 3) if isinstance(pacing.get(k), float) else pacing.get(k)
                     for k in ("appends", "p50_ms", "p99_ms", "max_ms")}
    out["pacing_before_stop"] = _stats(lateness)
    out["stamp_error_ms"] = {**_stats(errors), "unmatched": unmatched}
    out["violations"] = sum(violations.values())
    out["violation_rules"] = dict(violations)
    turns = out["turns"] = summary.get("turns") or {"total": 0}
    out["invalid_share"] = round(turns.get("invalid_pacing", 0) / turns["total"], 4) if turns.get("total") else None
    return out


def _git(path: Path) -> str | None:
    try:
        rev = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (rev + ("+dirty" if dirty else "")) or None


def machine() -> dict[str, Any]:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else None
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "taskset": bool(shutil.which("taskset")), "scheduling": scheduling()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=PATH",
                        help="a checkout to measure (repeatable; default old=/work/wt-old and new=this checkout)")
    parser.add_argument("--users", default="50,100,200,300,500")
    parser.add_argument("--duration", type=int, default=40, help="seconds per step (harness run -t)")
    parser.add_argument("--rate", type=float, default=50.0, help="users started per second")
    parser.add_argument("--quick", action="store_true", help="smoke test: 20 users, 10 s")
    parser.add_argument("--keep", action="store_true", help="keep each step's run directory and sink record")
    parser.add_argument("--out", default=str(ROOT / "results" / "run_capacity.json"))
    args = parser.parse_args()
    if args.quick:
        args.users, args.duration = "20", 10
    codes = dict(c.split("=", 1) for c in args.code) if args.code else {"old": "/work/wt-old", "new": str(REPO)}
    counts = [int(u) for u in args.users.split(",") if u.strip()]
    result: dict[str, Any] = {
        "benchmark": "run_capacity", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
        "setup": {"scenario": SCENARIO, "format": "pcm16", "dialect": "ga", "duration_s": args.duration,
                  "spawn_rate": args.rate, "caller_core": 0, "sink_core": 1, "quick": args.quick,
                  "sink": "benchmarks/answer_sink.py (first audio 300 ms after commit, 2 s answers, 100 ms deltas "
                          "every 20 ms)", "criterion": f"pacing p99 <= {P99_LIMIT_MS} ms, invalid_pacing < "
                                                       f"{INVALID_LIMIT:.0%} of turns, no violations"},
        "codes": {}}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    try:
        for label, path in codes.items():
            entry: dict[str, Any] = {"path": path, "commit": _git(Path(path)), "steps": []}
            result["codes"][label] = entry
            entry["single_stream"] = single = run_step(label, Path(path), 1, args)
            print(f"{label} single stream: {json.dumps(single)}", flush=True)
            for users in counts:
                row = run_step(label, Path(path), users, args)
                entry["steps"].append(row)
                print(f"{label} {users}: {json.dumps(row)}", flush=True)
            entry["largest_passing"] = max([r["users"] for r in entry["steps"] if r["passed"]], default=0)
    finally:
        for proc in list(LIVE):
            _stop(proc, 5)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


SEP = " \u00b7 "  # between the versions in a table cell
COLUMNS = ("pacing p99 / max ms", "same, without the last 1 s before stop", "invalid_pacing", "stamp error p99 / max ms", "caller CPU %",
           "sink lateness p99 ms (CPU %)", "turns ok / total", "violations", "pass")


def _cells(row: dict[str, Any] | None) -> list[str]:
    if row is None or row.get("error"):
        return [str((row or {}).get("error", "-"))[:80]] + ["-"] * (len(COLUMNS) - 1)
    pacing, err, turns = row.get("pacing") or {}, row.get("stamp_error_ms") or {}, row.get("turns") or {}
    share = row.get("invalid_share")
    steady = row.get("pacing_before_stop") or {}
    return [f"{pacing.get('p99_ms')} / {pacing.get('max_ms')}", f"{steady.get('p99_ms')} / {steady.get('max_ms')}",
            "-" if share is None else f"{share:.1%}",
            f"{err.get('p99_ms')} / {err.get('max_ms')}", f"{row.get('caller_cpu_pct')}",
            f"{(row.get('sink') or {}).get('lateness_p99_ms')} ({row.get('sink_cpu_pct')})",
            f"{turns.get('ok', 0)} / {turns.get('total', 0)}", f"{row.get('violations')}",
            "yes" if row.get("passed") else "no"]


def markdown(result: dict[str, Any]) -> str:
    m, setup, labels = result["machine"], result["setup"], list(result["codes"])
    lines = ["# Real-workload capacity of one caller process", "",
             f"{result['when']}; {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, load average at start "
             f"{m['loadavg_start']}. `harness run` ({setup['scenario']}) on core 0 against "
             f"`benchmarks/answer_sink.py` on core 1, {setup['duration_s']} s per step"
             + (" (--quick: a smoke test of the tooling, not a measurement)." if setup["quick"] else "."),
             f"Each cell: {SEP.join(labels)}. Users 1 is the single-stream run. Pass: {setup['criterion']}.", "",
             "| users | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    steps = {lab: {r["users"]: r for r in [result["codes"][lab].get("single_stream") or {"users": 1},
                                            *result["codes"][lab]["steps"]]} for lab in labels}
    for users in sorted({u for lab in labels for u in steps[lab]}):
        cells = [_cells(steps[lab].get(users)) for lab in labels]
        lines.append(f"| {users} | " + " | ".join(SEP.join(c) for c in zip(*cells)) + " |")
    lines.append("")
    for lab in labels:
        entry = result["codes"][lab]
        lines.append(f"- {lab}: {entry['path']} @ {entry['commit']}; largest passing step "
                     f"{entry.get('largest_passing')} users")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
