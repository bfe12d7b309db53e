"""Hand-built session traces, record by record, exactly per docs/contracts.md section 4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.trace import Trace, TraceRecorder, read_trace

MS = 1_000_000


class TraceBuilder:
    """Times are given in ms from the session start; `speech_ms` marks the caller's speech."""

    def __init__(self, path: Path, scenario: str = "plain", silence_duration_ms: int = 200) -> None:
        session_config = {"type": "realtime", "audio": {"input": {"turn_detection": {
            "type": "server_vad", "silence_duration_ms": silence_duration_ms, "prefix_padding_ms": 300}}}}
        self.rec = TraceRecorder(path, {"run_id": "r", "session_id": "s1", "worker": "w0", "scenario": scenario,
                                        "format": "pcm16", "dialect": "ga", "target": "ws://127.0.0.1:1/v1/realtime",
                                        "session_config": session_config})
        self.path = path
        self.seq = 0

    def recv(self, at_ms: float, kind: str, type_: str, **event: Any) -> "TraceBuilder":
        self.rec.recv(int(at_ms * MS), type_, kind, {"type": type_, **event})
        return self

    def mark(self, at_ms: float, name: str, **fields: Any) -> "TraceBuilder":
        self.rec.mark(name, int(at_ms * MS), **fields)
        return self

    def audio(self, from_ms: float, to_ms: float, turn: int, speech: tuple[float, float] | None) -> "TraceBuilder":
        """20 ms appends, sent on time, input-audio time = wall time here."""
        t = from_ms
        while t < to_ms:
            is_speech = speech is not None and speech[0] <= t < speech[1]
            self.rec.append(int(t * MS), int(t * MS), self.seq, turn, 960, 20.0, t, is_speech, "x")
            self.seq += 1
            t += 20.0
        return self

    def turn(self, at_ms: float, turn: int, speech: tuple[float, float], expect: str = "response") -> "TraceBuilder":
        self.mark(at_ms, "turn_start", turn=turn, utterance=f"u{turn}", transcript="hello there",
                  segments_ms=[[speech[0] - at_ms, speech[1] - at_ms]], speech_start_ms=speech[0] - at_ms,
                  speech_end_ms=speech[1] - at_ms, input_ms=at_ms, expect=expect)
        self.mark(speech[0], "speech_start_sent", turn=turn)
        return self.mark(speech[1], "speech_end_sent", turn=turn, input_ms=speech[1])

    def vad(self, start_ms: float, stop_ms: float, commit_ms: float, item: str, audio_start: float,
            audio_end: float) -> "TraceBuilder":
        self.recv(start_ms, "speech_started", "input_audio_buffer.speech_started", audio_start_ms=audio_start,
                  item_id=item)
        self.recv(stop_ms, "speech_stopped", "input_audio_buffer.speech_stopped", audio_end_ms=audio_end, item_id=item)
        return self.recv(commit_ms, "committed", "input_audio_buffer.committed", item_id=item, previous_item_id=None)

    def response(self, created_ms: float, rid: str, item: str, deltas_ms: list[float], done_ms: float | None,
                 status: str = "completed", reason: str | None = None, audio_done_ms: float | None = None,
                 transcript: str = "Sure, here it is.", delta_audio_ms: float = 100.0) -> "TraceBuilder":
        self.recv(created_ms, "response_created", "response.created", response={"id": rid, "status": "in_progress"})
        self.recv(created_ms + 1, "output_item_added", "response.output_item.added", response_id=rid,
                  output_index=0, item={"id": item})
        ids = {"response_id": rid, "item_id": item, "output_index": 0, "content_index": 0}
        for at in deltas_ms:
            self.recv(at, "output_audio_delta", "response.output_audio.delta", **ids,
                      delta={"bytes": int(delta_audio_ms * 48), "ms": delta_audio_ms, "sha1": "x"})
        if audio_done_ms is not None:
            self.recv(audio_done_ms, "output_audio_done", "response.output_audio.done", **ids)
            self.recv(audio_done_ms, "output_transcript_done", "response.output_audio_transcript.done", **ids,
                      transcript=transcript)
        if done_ms is not None:
            details = {"type": status, "reason": reason} if reason else None
            self.recv(done_ms, "response_done", "response.done",
                      response={"id": rid, "status": status, "status_details": details})
        return self

    def playout(self, rid: str, start_ms: float, end_ms: float, stop_reason: str | None = None) -> "TraceBuilder":
        self.mark(start_ms, "playout_start", response_id=rid, item_id="a")
        if stop_reason:
            return self.mark(end_ms, "playout_stop", response_id=rid, played_ms=end_ms - start_ms, reason=stop_reason)
        return self.mark(end_ms, "playout_end", response_id=rid, played_ms=end_ms - start_ms)

    def build(self, reason: str = "done") -> Trace:
        self.rec.close(reason)
        return read_trace(self.path)
