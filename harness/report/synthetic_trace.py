"""Synthetic session traces (the format of docs/contracts.md section 4) for report tests and demos.

One session of a few turns: real-time appends with speech flags, server VAD events, a response
per turn with audio deltas and playout marks. The incident turn is shaped by its cause: a false
barge-in cancels the response while the caller sends silence, `stalled` leaves a gap in the
deltas, `audio_cut_short` stops the audio early, `failed` sends an error event. Times are
perf_counter-like nanoseconds from an arbitrary origin.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.trace import TraceRecorder
from harness.trace.vocabulary import Mark

MS = 1_000_000
CHUNK_MS = 20


def _sha1(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


class _SessionWriter:
    """Keeps the clock and the cumulative input-audio time while a turn is written."""

    def __init__(self, recorder: TraceRecorder, t0_ns: int) -> None:
        self.rec = recorder
        self.t_ns = t0_ns
        self.input_ms = 0.0
        self.seq = 0

    def send_audio(self, turn: int, ms: float, speech: bool, lateness_ns: int = 150_000) -> None:
        for _ in range(int(ms // CHUNK_MS)):
            self.rec.append(self.t_ns + lateness_ns, self.t_ns, self.seq, turn, 960, CHUNK_MS,
                            self.input_ms, speech, _sha1(f"{self.seq}"))
            self.seq += 1
            self.input_ms += CHUNK_MS
            self.t_ns += CHUNK_MS * MS

    def recv(self, at_ns: int, type_: str, kind: str, **fields: Any) -> None:
        self.rec.recv(at_ns, type_, kind, {"type": type_, "event_id": f"event_{self.seq}", **fields})


def write_session_trace(path: Path, header: dict[str, Any], turns: list[dict[str, Any]],
                        t0_ns: int = 10_000_000_000) -> Path:
    """Write one session; each turn dict has `turn`, `ttfa_ms`, `transcript`, `incident` (cause or None)."""
    recorder = TraceRecorder(path, header=header)
    writer = _SessionWriter(recorder, t0_ns)
    recorder.mark(Mark.CONNECT_START, writer.t_ns)
    writer.t_ns += 35 * MS
    recorder.mark(Mark.CONNECTED, writer.t_ns, status=101)
    writer.recv(writer.t_ns + 2 * MS, "session.created", "session_created", session={"id": "sess_synthetic"})
    for turn in turns:
        _write_turn(writer, turn)
        recorder.flush()
    recorder.close("done")
    return path


def _write_turn(w: _SessionWriter, turn: dict[str, Any]) -> None:
    index, cause = int(turn["turn"]), turn.get("incident")
    rec = w.rec
    speech_ms = 1800.0
    rec.mark(Mark.TURN_START, w.t_ns, turn=index, utterance=turn.get("utterance", "default/utt01"),
             transcript=turn.get("transcript", ""), segments_ms=[[200.0, 200.0 + speech_ms]],
             speech_start_ms=200.0, speech_end_ms=200.0 + speech_ms, input_ms=w.input_ms, expect="response")
    w.send_audio(index, 200, speech=False)
    speech_start_input_ms = w.input_ms
    rec.mark(Mark.SPEECH_START_SENT, w.t_ns, turn=index)
    w.recv(w.t_ns + 260 * MS, "input_audio_buffer.speech_started", "speech_started",
           audio_start_ms=speech_start_input_ms - 0, item_id=f"item_u{index}")
    w.send_audio(index, speech_ms, speech=True)
    speech_end_ns, speech_end_input_ms = w.t_ns, w.input_ms
    rec.mark(Mark.SPEECH_END_SENT, speech_end_ns, turn=index, input_ms=speech_end_input_ms)
    stop_ns = speech_end_ns + 530 * MS
    w.send_audio(index, 900, speech=False)  # trailing silence, keeps streaming while the server answers
    w.recv(stop_ns, "input_audio_buffer.speech_stopped", "speech_stopped",
           audio_end_ms=speech_end_input_ms + 30, item_id=f"item_u{index}")
    w.recv(stop_ns + 6 * MS, "input_audio_buffer.committed", "committed", item_id=f"item_u{index}")
    response_id = f"resp_{index:04d}"
    created_ns = stop_ns + 40 * MS
    w.recv(created_ns, "response.created", "response_created", response={"id": response_id, "status": "in_progress"})
    first_ns = speech_end_ns + int(float(turn.get("ttfa_ms") or 700.0) * MS)
    n_deltas, delta_ms = 12, 200.0
    gap_at = 5 if cause == "stalled" else None
    stop_after = 4 if cause in ("false_barge_in", "audio_cut_short", "failed", "disconnected") else n_deltas
    t = first_ns
    rec.mark(Mark.PLAYOUT_START, first_ns, response_id=response_id, item_id=f"item_a{index}")
    for k in range(stop_after):
        if k == gap_at:
            t += 2400 * MS  # deltas stop arriving mid-response
            rec.mark(Mark.UNDERRUN, t - 2000 * MS, response_id=response_id, ms=1900.0)
        w.recv(t, "response.output_audio.delta", "output_audio_delta", response_id=response_id,
               item_id=f"item_a{index}", delta={"bytes": int(delta_ms * 48), "ms": delta_ms, "sha1": _sha1(f"{k}")})
        t += 60 * MS  # generation is faster than real time
    played_ms = stop_after * delta_ms
    status, details = "completed", None
    if cause == "false_barge_in":
        cut_ns = t + 300 * MS
        w.recv(cut_ns - 20 * MS, "input_audio_buffer.speech_started", "speech_started",
               audio_start_ms=w.input_ms + 100, item_id=f"item_u{index}b")
        status, details = "cancelled", {"type": "cancelled", "reason": "turn_detected"}
        t = cut_ns
        rec.mark(Mark.PLAYOUT_STOP, cut_ns + 3 * MS, response_id=response_id, played_ms=600.0, reason="barge_in")
        rec.mark(Mark.TRUNCATE_SENT, cut_ns + 5 * MS, turn=index, item_id=f"item_a{index}", audio_end_ms=600)
        w.recv(cut_ns + 60 * MS, "conversation.item.truncated", "item_truncated",
               item_id=f"item_a{index}", content_index=0, audio_end_ms=600)
    elif cause == "failed":
        w.recv(t + 10 * MS, "error", "error", error={"type": "server_error", "code": "server_error",
                                                      "message": turn.get("error_message", "The server had an error")})
        status, details = "failed", {"type": "failed", "error": {"type": "server_error", "code": None}}
    if cause == "disconnected":
        rec.mark(Mark.CLOSE, t + 5 * MS, code=1006, reason="", by="server")
        rec.violation(t + 5 * MS, "response_done_before_close", "remote", "socket closed before response.done",
                      "response.output_audio.delta")
    else:
        w.recv(t + 20 * MS, "response.output_audio.done", "output_audio_done", response_id=response_id)
        w.recv(t + 30 * MS, "response.done", "response_done",
               response={"id": response_id, "status": status, "status_details": details})
    stall_ms = 1900.0 if gap_at is not None else 0.0  # the player ran dry while deltas were missing
    if cause != "false_barge_in":
        rec.mark(Mark.PLAYOUT_END, first_ns + int((played_ms + stall_ms) * MS), response_id=response_id,
                 played_ms=played_ms)
    # The caller keeps streaming silence while it listens, as the real driver does.
    listen_until_ns = max(first_ns + int((played_ms + stall_ms) * MS), t) + 400 * MS
    w.send_audio(index, max(0.0, (listen_until_ns - w.t_ns) / MS), speech=False)
    rec.mark(Mark.TURN_END, w.t_ns, turn=index, status="error" if cause == "failed" else "ok")
