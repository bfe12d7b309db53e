"""Per-turn records and incident causes on hand-built traces: exact values and tricky orderings."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.metrics import summarize, turns_from_trace

from .trace_builder import TraceBuilder


def _plain(tmp_path: Path) -> TraceBuilder:
    """Speech 500-1500 ms; VAD stop at 1720 (audio_end 1700 = end + 200 silence), commit 1900,
    response at 1910, first audio at 2200, done at 2600."""
    b = TraceBuilder(tmp_path / "t.jsonl")
    b.mark(0, "connect_start").turn(10, 0, (500, 1500)).audio(10, 3000, 0, (500, 1500))
    b.vad(820, 1720, 1900, "item_U1", 200, 1700)
    return b.response(1910, "resp_1", "item_A1", [2200, 2210, 2220], 2600, audio_done_ms=2590)


def test_every_latency_of_a_plain_turn_is_the_exact_interval_between_its_events(tmp_path: Path) -> None:
    b = _plain(tmp_path)
    b.playout("resp_1", 2200, 2500)
    b.mark(2600, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["status"] == "ok" and row["incident"] is None
    assert row["ttfa_ms"] == pytest.approx(700.0)
    assert row["ttfa_from_commit_ms"] == pytest.approx(300.0)
    assert row["vad_stop_ms"] == pytest.approx(220.0) and row["vad_commit_ms"] == pytest.approx(400.0)
    assert row["vad_end_error_ms"] == pytest.approx(0.0) and row["vad_verdict"] == "ok"
    assert row["response_done_ms"] == pytest.approx(1100.0)
    assert row["audio_ms"] == pytest.approx(300.0) and row["underrun_count"] == 0
    assert row["send_lateness_max_ms"] == 0.0
    for missing in ("cancel_ack_ms", "barge_in_ms", "truncate_ack_ms", "tool_args_ms", "tool_roundtrip_ms"):
        assert row[missing] is None, missing


def test_transcription_events_after_response_done_do_not_change_the_turn(tmp_path: Path) -> None:
    b = _plain(tmp_path)
    b.recv(2700, "input_transcription_completed", "conversation.item.input_audio_transcription.completed",
           item_id="item_U1", content_index=0, transcript="hello there")
    b.mark(2800, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["response_id"] == "resp_1" and row["ttfa_ms"] == pytest.approx(700.0) and row["incident"] is None


def test_a_cancel_racing_a_finished_response_is_benign(tmp_path: Path) -> None:
    b = _plain(tmp_path)
    b.mark(2650, "cancel_sent", turn=0, response_id="resp_1")
    b.recv(2660, "error", "error", error={"type": "invalid_request_error", "code": "response_cancel_not_active",
                                          "message": "Cancellation failed: no active response found"})
    b.mark(2700, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["incident"] is None and row["status"] == "ok"
    assert row["cancel_ack_ms"] is None  # nothing was cancelled: no acknowledgement to time
    assert row["cancel_leak_ms"] == 0


def test_speech_started_after_generation_finished_cuts_only_the_playout(tmp_path: Path) -> None:
    """The answer completed generating; the caller's playout is cut by a speech_started on noise."""
    b = _plain(tmp_path)
    b.recv(2900, "speech_started", "input_audio_buffer.speech_started", audio_start_ms=2600, item_id="item_U2")
    b.playout("resp_1", 2200, 2905, stop_reason="barge_in")
    b.mark(2950, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["response_status"] == "completed"
    assert row["incident"] == "false_barge_in"
    assert row["incident_evidence"]["how"] == "playout cut by speech_started"
    assert row["incident_evidence"]["caller_speaking"] is False


def test_the_same_cut_while_the_caller_really_speaks_is_a_barge_in(tmp_path: Path) -> None:
    b = TraceBuilder(tmp_path / "t.jsonl")
    b.turn(10, 0, (500, 1500)).audio(10, 4000, 0, (500, 1500))
    b.vad(820, 1720, 1900, "item_U1", 200, 1700)
    b.response(1910, "resp_1", "item_A1", [2200, 2210], None)
    b.audio(4000, 5000, 0, (4000, 5000))  # the caller speaks again during the answer
    b.recv(4300, "speech_started", "input_audio_buffer.speech_started", audio_start_ms=4000, item_id="item_U2")
    b.recv(4310, "response_done", "response.done",
           response={"id": "resp_1", "status": "cancelled", "status_details": {"type": "cancelled",
                                                                               "reason": "turn_detected"}})
    b.mark(4320, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["incident"] == "barge_in" and row["incident_evidence"]["caller_speaking"] is True


def test_audio_deltas_after_audio_done_still_count_and_the_response_is_not_stalled(tmp_path: Path) -> None:
    b = _plain(tmp_path)
    b.recv(2595, "output_audio_delta", "response.output_audio.delta", response_id="resp_1", item_id="item_A1",
           output_index=0, content_index=0, delta={"bytes": 4800, "ms": 100.0, "sha1": "x"})
    b.mark(2700, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["audio_ms"] == pytest.approx(400.0) and row["incident"] is None


def test_a_client_cancel_the_scenario_did_not_ask_for_is_an_incident(tmp_path: Path) -> None:
    b = TraceBuilder(tmp_path / "t.jsonl")
    b.turn(10, 0, (500, 1500)).audio(10, 3000, 0, (500, 1500))
    b.vad(820, 1720, 1900, "item_U1", 200, 1700)
    b.response(1910, "resp_1", "item_A1", [2200], None)
    b.mark(2300, "cancel_sent", turn=0, response_id="resp_1")
    b.recv(2340, "response_done", "response.done", response={"id": "resp_1", "status": "cancelled",
           "status_details": {"type": "cancelled", "reason": "client_cancelled"}})
    b.mark(2400, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["incident"] == "client_cancel_unexpected"
    assert row["cancel_ack_ms"] == pytest.approx(40.0)


def test_a_reconnect_inside_one_trace_keeps_each_turn_with_its_own_response(tmp_path: Path) -> None:
    b = _plain(tmp_path)
    b.mark(2700, "turn_end", turn=0, status="ok")
    b.mark(2800, "close", code=1006, reason="", by="server").mark(2900, "connect_start").mark(2950, "connected")
    b.turn(3000, 1, (3500, 4500)).audio(3000, 6000, 1, (3500, 4500))
    b.vad(3820, 4720, 4900, "item_U9", 3200, 4700)
    b.response(4910, "resp_9", "item_A9", [5100], 5300, audio_done_ms=5290)
    b.mark(5400, "turn_end", turn=1, status="ok")
    rows = turns_from_trace(b.build())
    assert [r["response_id"] for r in rows] == ["resp_1", "resp_9"]
    assert rows[1]["ttfa_ms"] == pytest.approx(600.0)


def test_a_turn_without_an_answer_is_a_timeout_that_stays_in_the_denominators(tmp_path: Path) -> None:
    b = TraceBuilder(tmp_path / "t.jsonl")
    b.turn(10, 0, (500, 1500)).audio(10, 3000, 0, (500, 1500))
    b.mark(16000, "timeout", turn=0, waited_ms=15000.0).mark(16000, "turn_end", turn=0, status="timeout")
    (row,) = turns_from_trace(b.build())
    assert row["status"] == "timeout" and row["vad_verdict"] == "missed" and row["ttfa_ms"] is None
    summary = summarize([row])
    assert summary["turns"]["timeout"] == 1 and summary["metrics"]["ttfa_ms"]["timeouts"] == 1


def test_a_commit_before_the_caller_finished_is_an_early_vad_verdict(tmp_path: Path) -> None:
    b = TraceBuilder(tmp_path / "t.jsonl")
    b.turn(10, 0, (500, 2500)).audio(10, 4000, 0, (500, 2500))
    b.vad(820, 1300, 1320, "item_U1", 200, 1300)      # cut at a pause 1100 ms into the utterance
    b.vad(1600, 2720, 2900, "item_U2", 1400, 2700)    # the rest, committed again
    b.response(2910, "resp_1", "item_A1", [3200], 3500, audio_done_ms=3490)
    b.mark(3600, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["vad_verdict"] == "early"
    assert row["vad_commit_ms"] == pytest.approx(400.0)  # to the commit that led to the answer
    assert row["ttfa_from_commit_ms"] == pytest.approx(300.0)


def test_a_socket_closed_before_response_done_is_disconnected(tmp_path: Path) -> None:
    b = TraceBuilder(tmp_path / "t.jsonl")
    b.turn(10, 0, (500, 1500)).audio(10, 3000, 0, (500, 1500))
    b.vad(820, 1720, 1900, "item_U1", 200, 1700)
    b.response(1910, "resp_1", "item_A1", [2200], None)
    b.mark(2300, "close", code=1006, reason="", by="server")
    (row,) = turns_from_trace(b.build(reason="closed"))
    assert row["incident"] == "disconnected" and row["status"] == "error"


def test_a_turn_the_caller_sent_late_is_flagged_and_its_timings_are_not_counted(tmp_path: Path) -> None:
    b = _plain(tmp_path)
    b.mark(900, "pacing_invalid", turn=0, seq=40, lateness_ms=35.0, limit_ms=20.0)
    b.mark(2700, "turn_end", turn=0, status="ok")
    (row,) = turns_from_trace(b.build())
    assert row["status"] == "invalid_pacing"
    assert row["ttfa_ms"] is None and row["vad_commit_ms"] is None
    assert summarize([row])["metrics"]["ttfa_ms"]["count"] == 0
