"""Replay timing fidelity: do the replayed appends go out on the original's schedule?

Runs one session with a fault that produces an incident, bundles it, replays the bundle N times
against the same simulator settings with each anchor (`events`, `session`) and compares, append
by append, the send offset from the stream start (actual send time minus the first append's
deadline) with the original's; for the session anchor also every other client event's offset
(the events anchor decides those anew, so they are not compared there).

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


def _offsets_ms(trace_path: str | Path, appends: bool = True) -> list[float]:
    records = read_trace(trace_path).records
    t0 = next(r["sched_ns"] for r in records if r.get("rec") == "append")
    if appends:
        return [(r["t_ns"] - t0) / 1e6 for r in records if r.get("rec") == "append"]
    return [(r["t_ns"] - t0) / 1e6 for r in records
            if r.get("rec") == "send" and r.get("type") not in ("input_audio_buffer.append", "session.update")]


def _stats(diffs: list[float]) -> dict[str, float | int | None]:
    if not diffs:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    array = np.asarray(diffs)
    return {"count": int(array.size), "p50": float(np.percentile(array, 50)), "p99": float(np.percentile(array, 99)),
            "max": float(array.max())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_in_thread(
            SimConfig(faults=["false_vad:after_deltas=2,nth=3"]), host="127.0.0.1", port=0) as sim:
        # client_cancel: its caller cancels, so the session anchor has client events to place
        result = run_scenario(SessionSpec(url=sim.url, scenario="client_cancel", turns=3, trace_dir=tmp, session_id="orig"))
        rows = turns_from_trace(read_trace(result.trace_path))
        record = next((r for r in rows if r["incident"]), rows[0])
        bundle_dir = write_bundle(Path(tmp) / "bundle", result.trace_path, record)
        out: dict[str, object] = {"machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
                                  "repeat": args.repeat}
        for anchor in ("events", "session"):
            outcome = replay(load_bundle(bundle_dir), sim.url, repeat=args.repeat, trace_dir=Path(tmp) / anchor,
                             anchor=anchor, bundle_dir=bundle_dir)
            appends: list[float] = []
            events: list[float] = []
            for run in outcome["runs"]:
                for diffs, flag in ((appends, True), (events, False)):
                    original, replayed = _offsets_ms(result.trace_path, flag), _offsets_ms(run["trace"], flag)
                    n = min(len(original), len(replayed))
                    diffs.extend(abs(a - b) for a, b in zip(original[:n], replayed[:n]))
            out[anchor] = {"recurred": outcome["recurred"], "abs_append_offset_diff_ms": _stats(appends),
                           "abs_client_event_offset_diff_ms": _stats(events) if anchor == "session" else None}
    path = Path(__file__).parent / "results" / "replay_fidelity.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
