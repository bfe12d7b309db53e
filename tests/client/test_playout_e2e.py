"""The playout model against a known injected stall: the simulator holds back the 4th audio delta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.client import SessionSpec
from harness.scenarios import run_scenario
from harness.trace import read_trace

STALL_MS = 1000
DELTA_MS = 100     # the simulator's audio per delta (default)
GAP_MS = 25        # its delta_gap


def test_a_stall_after_three_deltas_is_one_underrun_of_the_stall_minus_the_buffered_audio(sim_factory: Any,
                                                                                         tmp_path: Path) -> None:
    sim = sim_factory(reply_text="Okay, done.", seed=1, faults=[f"stall:after_deltas=3,ms={STALL_MS}"],
                      latency={"delta_gap": f"fixed:{GAP_MS}"}, delta_ms=DELTA_MS)
    spec = SessionSpec(url=sim.url, turns=1, rtf=4.0, auth="none", trace_dir=tmp_path,
                       scenario_params={"utterances": ["utt11"]})
    result = run_scenario(spec)
    assert result.reason == "done"
    records = read_trace(result.trace_path).records
    deltas = [r for r in records if r["rec"] == "recv" and r["kind"] == "output_audio_delta"]
    underruns = [r for r in records if r.get("mark") == "underrun"]
    assert len(underruns) == 1
    start = [r for r in records if r.get("mark") == "playout_start"][0]["t_ns"]
    # the player ran dry when the first three deltas had played ...
    assert underruns[0]["t_ns"] == start + 3 * DELTA_MS * 1_000_000
    # ... and heard nothing until the fourth arrived
    assert abs(underruns[0]["ms"] - (deltas[3]["t_ns"] - underruns[0]["t_ns"]) / 1e6) < 1e-6
    injected_ms = 2 * GAP_MS + (GAP_MS + STALL_MS) - 3 * DELTA_MS
    assert abs(underruns[0]["ms"] - injected_ms) < 15
    end = [r for r in records if r.get("mark") == "playout_end"][0]
    total_ms = sum(d["event"]["delta"]["ms"] for d in deltas)
    assert abs((end["t_ns"] - start) / 1e6 - (total_ms + underruns[0]["ms"])) < 0.01
