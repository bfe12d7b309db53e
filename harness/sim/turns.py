"""Input audio of one session: the buffer, the server VAD on the audio clock, commits and idle timeouts.

A VAD decision is taken when the audio that completes it has arrived (the append holding the end
of the silence window); the decision's send time is that arrival plus the `vad_decision` delay
(`speech_start` for a start). The commit that follows a stop is due `commit` after
`speech_stopped` was actually sent. `audio_start_ms`/`audio_end_ms` count input audio since the
session started and are never reset by a commit.
"""

from __future__ import annotations

import binascii
import time
from typing import TYPE_CHECKING, Any

from harness.protocol import Dialect, Kind, ProtocolValueError
from harness.sim.conversation import Item
from harness.sim.outbox import Outgoing
from harness.sim.vad import SEMANTIC_SILENCE_MS, FrameVad, VadEvent, make_vad

if TYPE_CHECKING:
    from harness.sim.session import Session

K = Kind
MAX_APPEND_BYTES = 15 * 1024 * 1024  # the service's documented limit per append
BUFFER_KEEP_BYTES = 16 * 1024 * 1024  # audio kept per turn for recognition; beyond it only the length counts


class InputTurns:
    """The uncommitted input buffer and the VAD that cuts it into turns."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.input_ms = 0.0  # cumulative input audio since the session started
        self.buffer: list[bytes] = []  # this turn's appended audio, joined when committed
        self.buffer_bytes = 0
        self.buffer_ms = 0.0
        self.vad: FrameVad | None = None
        self._vad_key: tuple[Any, ...] | None = None
        self.pending_item_id: str | None = None
        self.last_transcript: str | None = None
        self.idle_anchor_ms: float | None = 0.0
        self._idle_possible = False
        self.configure()

    # ---- configuration
    def configure(self) -> None:
        """(Re)build the VAD after a session.update; the audio clock carries on."""
        td = self.s.settings.turn_detection
        self._idle_possible = bool(td is not None and td.idle_timeout_ms)
        self._fmt = self.s.settings.input_format
        self._bytes_per_ms = self._fmt.bytes_per_ms
        if td is None:
            self.vad, self._vad_key = None, None
            return
        silence = td.silence_duration_ms
        if td.type == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS.get(td.eagerness or "auto", 700)
        fmt = self.s.settings.input_format
        key = (fmt, td.threshold, td.prefix_padding_ms, silence)
        if key == self._vad_key:
            return
        self.vad = make_vad(self.s.cfg.vad, fmt.rate_hz, td.threshold if td.threshold is not None else 0.5,
                             td.prefix_padding_ms if td.prefix_padding_ms is not None else 300,
                             silence if silence is not None else 500, self.s.cfg.min_speech_ms, self.input_ms)
        self._vad_key = key

    # ---- client events
    def append(self, audio: Any, t_ns: int, eid: str | None) -> None:
        if not isinstance(audio, str):
            raise ProtocolValueError("invalid_type", "audio",
                                     f"Invalid type for 'audio': expected a base64 string, but got {type(audio).__name__}.")
        if len(audio) > MAX_APPEND_BYTES * 4 // 3 + 4:
            raise ProtocolValueError("invalid_value", "audio", "Audio too large: an append carries at most 15 MiB of audio.")
        try:  # = base64.b64decode(audio, validate=True); a2b_base64 is faster on bytes than on str
            data = binascii.a2b_base64(audio.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError):
            raise ProtocolValueError("invalid_value", "audio", "Invalid 'audio'. Expected base64-encoded audio bytes.") from None
        ms = len(data) / self._bytes_per_ms
        if self.buffer_bytes < BUFFER_KEEP_BYTES:
            self.buffer.append(data)
            self.buffer_bytes += len(data)
        self.buffer_ms += ms
        self.input_ms += ms
        if self.vad is not None and data:
            decisions = self.vad.feed_wire(data, self._fmt)
            if decisions:
                for decision in decisions:
                    self._on_vad(decision, t_ns)
        if self._idle_possible:
            self._check_idle(t_ns)

    def manual_commit(self, t_ns: int, eid: str | None) -> None:
        self.s.refuse_if_the_rules_say(Kind.INPUT_AUDIO_COMMIT, {})
        item_id = self.pending_item_id or self.s.ids.item()
        if self.vad is not None:
            self.vad.reset()
        self._commit(item_id, t_ns)

    def clear(self) -> None:
        self._reset_buffer()
        self.pending_item_id = None
        if self.vad is not None:
            self.vad.reset()

    # ---- decisions
    def _on_vad(self, decision: VadEvent, t_ns: int | Outgoing) -> None:
        td = self.s.settings.turn_detection
        arrival = t_ns if isinstance(t_ns, int) else None
        late: dict[str, int] = {}
        if arrival is not None:  # a decision is meant for the arrival of the audio that completed it
            late["late_ns"] = time.perf_counter_ns() - arrival
            self.s.ctx.lateness.add("decision", late["late_ns"])
        self.s.trace.record("vad", self.s.session_id, kind=decision.kind, audio_ms=decision.audio_ms,
                            speech_ms=decision.speech_ms, decided_ms=decision.decided_ms,
                            level_dbfs=round(decision.level_dbfs, 1), arrival_ns=arrival, **late)
        if decision.kind == "started":
            self.pending_item_id = self.s.ids.item()
            self.idle_anchor_ms = None
            started = self._put(K.SPEECH_STARTED, "speech_start", t_ns, audio_start_ms=decision.audio_ms,
                                item_id=self.pending_item_id)
            started.note.update(speech_ms=decision.speech_ms, decided_ms=decision.decided_ms)
            active = self.s.active
            if active is not None and not active.finished and td is not None and td.interrupt_response:
                self.s.cancel_response(active, "turn_detected", started)
            return
        item_id = self.pending_item_id or self.s.ids.item()
        stopped = self._put(K.SPEECH_STOPPED, "vad_decision", t_ns, audio_end_ms=decision.audio_ms, item_id=item_id)
        stopped.note.update(speech_ms=decision.speech_ms, decided_ms=decision.decided_ms)
        self.idle_anchor_ms = float(decision.audio_ms)
        committed = self._commit(item_id, stopped)
        if td is not None and td.create_response and self.s.active is None:
            self.s.start_response(self.s.settings.response_defaults(), committed, "committed")

    def _put(self, kind: Kind, stage: str, trigger: int | Outgoing, **fields: Any) -> Outgoing:
        out = Outgoing(event=self.s.event(kind, **fields), stage=stage, trigger=trigger,
                       delay_ns=self.s.latency.delay_ns(stage))
        return self.s.outbox.put(out)

    def _commit(self, item_id: str, trigger: int | Outgoing) -> Outgoing:
        """Turn the buffer into a user item: committed, then the item events (and transcription)."""
        audio = b"".join(self.buffer)
        utterance = self.s.ctx.recognizer.identify(audio, self.s.settings.input_format)
        self.last_transcript = utterance.transcript if utterance is not None else None
        item = Item(item_id, "message", role="user", status="completed",
                    parts=[{"type": "input_audio", "transcript": None}], audio=audio)
        previous = self.s.conversation.add(item)
        committed = self._put(K.COMMITTED, "commit", trigger, item_id=item_id, previous_item_id=previous)
        committed.note.update(buffer_ms=round(self.buffer_ms, 3), utterance=utterance.id if utterance else None)
        self.s.announce_item(item, previous)
        if self.s.settings.transcription_enabled:
            transcript = self.last_transcript or ""
            item.parts[0]["transcript"] = transcript
            if transcript:
                self.s.put(K.INPUT_TRANSCRIPTION_DELTA, item_id=item_id, content_index=0, delta=transcript)
            self.s.put(K.INPUT_TRANSCRIPTION_COMPLETED, item_id=item_id, content_index=0, transcript=transcript,
                       usage={"type": "duration", "seconds": round(self.buffer_ms / 1000.0, 3)})
        self.pending_item_id = None
        self._reset_buffer()
        return committed

    def _reset_buffer(self) -> None:
        self.buffer = []
        self.buffer_bytes = 0
        self.buffer_ms = 0.0

    def _check_idle(self, t_ns: int) -> None:
        td = self.s.settings.turn_detection
        if (td is None or not td.idle_timeout_ms or self.idle_anchor_ms is None or self.s.active is not None
                or self.s.dialect is not Dialect.GA or (self.vad is not None and self.vad.in_speech)):
            return
        if self.input_ms - self.idle_anchor_ms < td.idle_timeout_ms:
            return
        item_id = self.s.ids.item()
        timeout = self.s.outbox.put(Outgoing(event=self.s.event(
            K.TIMEOUT_TRIGGERED, audio_start_ms=int(self.idle_anchor_ms), audio_end_ms=int(self.input_ms),
            item_id=item_id)))
        self.s.trace.record("idle_timeout", self.s.session_id, audio_start_ms=int(self.idle_anchor_ms),
                            audio_end_ms=int(self.input_ms), arrival_ns=t_ns)
        self.idle_anchor_ms = None
        committed = self._commit(item_id, timeout)
        if td.create_response:
            self.s.start_response(self.s.settings.response_defaults(), committed, "committed")

    # ---- notifications from the session
    def response_finished(self) -> None:
        self.idle_anchor_ms = self.input_ms

    def false_start(self) -> None:
        """The false-trigger fault: speech_started on silent input, cancelling the active response."""
        now = self.input_ms
        decision = self.vad.force_start() if self.vad is not None else VadEvent("started", int(now), int(now), int(now), -70.0)
        self.s.trace.record("false_vad", self.s.session_id, audio_ms=decision.audio_ms)
        self.pending_item_id = self.s.ids.item()
        started = self._put(K.SPEECH_STARTED, "speech_start", time.perf_counter_ns(), audio_start_ms=decision.audio_ms,
                            item_id=self.pending_item_id)
        active = self.s.active
        if active is not None and not active.finished:
            self.s.cancel_response(active, "turn_detected", started)

