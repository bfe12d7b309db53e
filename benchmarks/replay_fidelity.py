"""Replay timing fidelity: do the replayed appends go out on the original's schedule?

Runs one session with a fault that produces an incident, bundles it, replays the bundle N times
against the same simulator settings and compares, append by append, the send offset from the
stream start (actual send time minus the first append's deadline) with the original's.

    python benchmarks/replay_fidelity.py [--repeat 5]

Writes benchmarks/results/replay_fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from harness.client import SessionSpec
from harness.metrics import turns_from_trace
from harness.replay.bundle import write_bundle
from harness.replay.replay import load_bundle, replay
from harness.scenarios import run_scenario
from harness.sim import SimConfig, start_in_thread
from harness.trace import read_trace


def _offsets_ms(trace_path: str | Path) -> list[float]:
    appends = [r for r in read_trace(trace_path).records if r.get("rec") == "append"]
    t0 = appends[0]["sched_ns"]
    return [(r["t_ns"] - t0) / 1e6 for r in appends]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_in_thread(
            SimConfig(faults=["false_vad:after_deltas=2"]), host="127.0.0.1", port=0) as sim:
        result = run_scenario(SessionSpec(url=sim.url, turns=2, trace_dir=tmp, session_id="orig"))
        record = next(r for r in turns_from_trace(read_trace(result.trace_path)) if r["incident"])
        bundle_dir = write_bundle(Path(tmp) / "bundle", result.trace_path, record)
        outcome = replay(load_bundle(bundle_dir), sim.url, repeat=args.repeat, trace_dir=Path(tmp) / "replays")
        original = _offsets_ms(result.trace_path)
        diffs: list[float] = []
        for run in outcome["runs"]:
            replayed = _offsets_ms(run["trace"])
            n = min(len(original), len(replayed))
            diffs.extend(abs(a - b) for a, b in zip(original[:n], replayed[:n]))
    array = np.asarray(diffs)
    out = {"machine": {"nproc": os.cpu_count(), "python": platform.python_version()}, "repeat": args.repeat,
           "appends_compared": int(array.size), "recurred": outcome["recurred"],
           "abs_send_offset_diff_ms": {"p50": float(np.percentile(array, 50)), "p99": float(np.percentile(array, 99)),
                                       "max": float(array.max())}}
    path = Path(__file__).parent / "results" / "replay_fidelity.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
