"""Live turn records from hand-built traces: exact times in, exact metrics out (no sockets).

A Live trace has no responses: the meter delimits answers by the caller's speech marks and the
output chunks' arrivals (protocol/live_turns.py), and a record is the same whether the meter was fed
as the session ran or from the trace afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.metrics import turns_from_trace
from harness.metrics.turns import TurnMeter
from harness.protocol.live_turns import ANSWER_GAP_MS
from harness.trace import Trace

MS = 1_000_000
HEADER = {"rec": "header", "run_id": "r", "session_id": "s", "worker": "w", "dialect": "live", "format": "pcm16",
          "scenario": "barge_in", "clock": {"wall_ns": 0, "mono_ns": 0}}


def _mark(t_ms: float, name: str, **fields: Any) -> dict[str, Any]:
    return {"rec": "mark", "t_ns": int(t_ms * MS), "mark": name, **fields}


def _chunk(t_ms: float, ms: float = 100.0, audible: bool = True) -> dict[str, Any]:
    delta: dict[str, Any] = {"bytes": int(ms * 48), "ms": ms, "peak": 8000 if audible else 0}
    if audible:
        delta["audible_at_ms"] = 0.0
    return {"rec": "recv", "t_ns": int(t_ms * MS), "type": "session.output_audio.delta", "kind": "output_audio_delta",
            "event": {"type": "session.output_audio.delta", "delta": delta}}


def _input_transcript(t_ms: float, end_ms: int) -> dict[str, Any]:
    return {"rec": "recv", "t_ns": int(t_ms * MS), "type": "session.input_transcript.delta",
            "kind": "input_transcription_delta",
            "event": {"type": "session.input_transcript.delta", "delta": "hi", "start_ms": 100, "end_ms": end_ms}}


def _barge_in_trace() -> list[dict[str, Any]]:
    records = [
        _mark(0, "turn_start", turn=0, expect="barge_in", speech_end_ms=1000.0),
        _mark(100, "speech_start_sent", turn=0),
        _mark(1000, "speech_end_sent", turn=0, input_ms=1000.0),
        _input_transcript(1150, end_ms=1040),                      # the server heard speech end 40 ms late
        _chunk(1300, ms=2000.0, audible=False), _chunk(1320, ms=500.0),   # silent lead-in, then audible
        _mark(1500, "turn_start", turn=1, expect="response", speech_end_ms=700.0),
        _mark(1600, "speech_start_sent", turn=1),                  # interrupts the sounding answer
        _chunk(1680, ms=100.0),                                    # leak: still arriving after the barge-in
        _mark(2200, "speech_end_sent", turn=1, input_ms=2200.0),  # the interrupted answer is over now
        _mark(2210, "turn_end", turn=0, status="ok"),
        _chunk(2450, ms=100.0),
    ]
    quiet_ms = 2450 + 100 + ANSWER_GAP_MS
    records += [_mark(quiet_ms + 1, "turn_end", turn=1, status="ok"),
                {"rec": "footer", "t_ns": int((quiet_ms + 2) * MS), "reason": "done"}]
    return records


def test_a_live_barge_in_measures_ttfa_leak_and_the_servers_end_of_speech_exactly() -> None:
    records = _barge_in_trace()
    meter = TurnMeter(dict(HEADER))
    for record in records:
        meter.add(record)
    first, second = meter.records
    assert first["status"] == "ok" and first["response_id"] == "live-1" and first["response_status"] == "interrupted"
    assert first["ttfa_ms"] == 300.0 and first["ttfa_audible_ms"] == 320.0
    assert first["barge_in_ms"] == 80.0                            # speech start 1600 -> last chunk 1680
    assert first["audio_ms"] == 2600.0 and first["vad_end_error_ms"] == 40.0 and first["vad_verdict"] == "ok"
    assert second["status"] == "ok" and second["response_id"] == "live-2" and second["ttfa_ms"] == 250.0
    assert second["response_status"] == "completed" and second["barge_in_ms"] is None
    assert second["vad_end_error_ms"] is None and second["vad_verdict"] is None    # no input transcript came
    for row in (first, second):
        assert row["response_done_ms"] is None and row["vad_commit_ms"] is None and row["ttfa_from_commit_ms"] is None
    offline = turns_from_trace(Trace(path=Path("hand-built.jsonl"), header=dict(HEADER), records=records[:-1], footer=records[-1]))
    assert offline == meter.records


def test_a_live_turn_without_answer_audio_is_not_ok() -> None:
    records = [_mark(0, "turn_start", turn=0, expect="response", speech_end_ms=1000.0),
               _mark(1000, "speech_end_sent", turn=0, input_ms=1000.0),
               _chunk(900),                                          # before the speech end: no answer
               _mark(5000, "timeout", turn=0, waited_ms=5000.0, waiting_for="response"),
               _mark(5000, "turn_end", turn=0, status="timeout")]
    meter = TurnMeter(dict(HEADER))
    for record in records:
        meter.add(record)
    (row,) = meter.records
    assert row["status"] == "timeout" and row["ttfa_ms"] is None and row["response_id"] is None
