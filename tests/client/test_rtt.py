"""network_rtt_ms: WebSocket ping/pong round trips on the caller's connection, and each turn's nearest one.

Loopback against the real simulator (cheap: one short turn); the netem truth (a known delay
between caller and simulator in a network namespace) is tests/client/test_rtt_netem.py.
"""

from __future__ import annotations

from pathlib import Path

from harness.client import SessionSpec
from harness.metrics import turns_from_trace
from harness.scenarios import run_scenario
from harness.sim import SimConfig, start_in_thread
from harness.trace import read_trace


def _session(tmp_path: Path, interval_s: float) -> tuple[list[dict], list[dict]]:
    with start_in_thread(SimConfig(reply_text="Sure."), host="127.0.0.1", port=0) as sim:
        spec = SessionSpec(url=sim.url, scenario="plain", turns=1, trace_dir=tmp_path, session_id=f"rtt{interval_s:g}",
                           rtt_interval_s=interval_s, auth="none", lateness_limit_ms=250.0,
                           scenario_params={"utterances": ["utt01"]})
        result = run_scenario(spec)
    assert result.reason == "done", result.error
    marks = [m for m in read_trace(result.trace_path).records if m.get("mark") == "rtt"]
    return result.records, marks


def test_every_connection_pings_at_the_interval_and_each_turn_carries_the_round_trip_nearest_its_speech_end(
        tmp_path: Path) -> None:
    records, marks = _session(tmp_path, 0.25)
    assert len(marks) >= 4          # a 1.6 s utterance plus its answer, pinged every 250 ms
    for mark in marks:
        assert mark["rtt_ms"] == (mark["t_ns"] - mark["sent_ns"]) / 1e6 and 0 < mark["rtt_ms"] < 1000
    trace = read_trace(next(tmp_path.glob("*.jsonl")))
    speech_end = next(m for m in trace.records if m.get("mark") == "speech_end_sent")
    nearest = min(marks, key=lambda m: abs(m["t_ns"] - speech_end["t_ns"]))
    assert records[0]["network_rtt_ms"] == nearest["rtt_ms"]
    assert turns_from_trace(trace)[0]["network_rtt_ms"] == nearest["rtt_ms"]   # offline: the same


def test_an_interval_of_zero_sends_no_ping_and_leaves_the_column_empty(tmp_path: Path) -> None:
    records, marks = _session(tmp_path, 0.0)
    assert marks == [] and records[0]["network_rtt_ms"] is None and records[0]["status"] == "ok"
