"""Measurement error of the harness against the simulator's own send times.

The simulator (its own process, as in `harness run`) injects fixed per-stage delays and records,
for every frame, its event_id and when it handed the frame to the socket (CLOCK_MONOTONIC, the
caller's clock too). For each turn the harness's `ttfa_from_commit_ms` and commit-stage interval
(`vad_commit_ms - vad_stop_ms`) are compared with the same intervals on the simulator's side.

    python benchmarks/measurement_error.py [--sessions 8] [--turns 15] [--rtf 2]

Writes benchmarks/results/measurement_error.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.client import SessionSpec
from harness.metrics import turns_from_trace
from harness.scenarios import run_sessions
from harness.sim import SimConfig
from harness.sim.process import start_in_process
from harness.trace import read_trace

LATENCY = {"vad_decision": "fixed:0", "commit": "fixed:200", "response_start": "fixed:0",
           "first_audio": "fixed:300", "delta_gap": "fixed:20"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--rtf", type=float, default=2.0)
    args = parser.parse_args()
    errors: dict[str, list[float]] = {"commit_stage_ms": [], "ttfa_from_commit_ms": [], "ttfa_ms": []}
    skipped = 0
    with tempfile.TemporaryDirectory() as tmp, start_in_process(SimConfig(latency=LATENCY)) as sim:
        specs = [SessionSpec(url=sim.url, turns=args.turns, rtf=args.rtf, trace_dir=tmp, session_id=f"s{i}",
                             scenario_params={"wait_playout": False, "silence_duration_ms": 500})
                 for i in range(args.sessions)]
        started = time.monotonic()
        results = run_sessions(specs)
        elapsed = time.monotonic() - started
        sim.stop()
        sent = {r["event_id"]: r for r in sim.read_records() if r.get("rec") == "send" and r.get("event_id")}
        for result in results:
            trace = read_trace(result.trace_path)
            recv = [r for r in trace.records if r.get("rec") == "recv"]
            for row in turns_from_trace(trace):
                if row["status"] != "ok" or row["ttfa_from_commit_ms"] is None:
                    skipped += 1
                    continue
                created = next(r for r in recv if r["kind"] == "response_created"
                               and r["event"]["response"]["id"] == row["response_id"])
                commit = [r for r in recv if r["kind"] == "committed" and r["t_ns"] <= created["t_ns"]][-1]
                stop = next(r for r in recv if r["kind"] == "speech_stopped"
                            and r["event"]["item_id"] == commit["event"]["item_id"])
                first = next(r for r in recv if r["kind"] == "output_audio_delta"
                             and r["event"]["response_id"] == row["response_id"])
                end = next(m for m in trace.records if m.get("mark") == "speech_end_sent" and m["turn"] == row["turn"])
                s_commit, s_stop, s_first = (sent[x["event"]["event_id"]]["sent_ns"] for x in (commit, stop, first))
                errors["commit_stage_ms"].append(row["vad_commit_ms"] - row["vad_stop_ms"] - (s_commit - s_stop) / 1e6)
                errors["ttfa_from_commit_ms"].append(row["ttfa_from_commit_ms"] - (s_first - s_commit) / 1e6)
                errors["ttfa_ms"].append(row["ttfa_ms"] - (s_first - end["t_ns"]) / 1e6)
    out = {"machine": {"nproc": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                       "python": platform.python_version()},
           "sessions": args.sessions, "turns_measured": len(errors["ttfa_ms"]), "turns_skipped": skipped,
           "elapsed_s": round(elapsed, 1), "injected": LATENCY, "error_ms": {}}
    for name, values in errors.items():
        a = np.abs(np.asarray(values))
        out["error_ms"][name] = {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
                                 "max": float(a.max()), "mean_signed": float(np.mean(values))}
    path = Path(__file__).parent / "results" / "measurement_error.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
