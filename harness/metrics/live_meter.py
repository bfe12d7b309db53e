"""Live turns, measured: the rules of `harness.protocol.live_turns` applied to a session's records.

Live has no responses, so `LiveMeter` makes them: every answer `LiveAnswers` delimits (the output
chunks after an utterance's true speech end, until the stream goes quiet or the caller speaks
again) becomes a `ResponseFacts` named `live-N` in the meter's own `ResponseLog`, filled by the
same handlers that fold Realtime deltas in (audio, audibility, transcript). The turn whose speech
end opened an answer owns it. An answer is over (`done_ns`) once time has passed its quiet point
(`LiveAnswer.quiet_after_ns`) or the interrupting utterance ended; `tick` applies the clock, and
every record ticks it with its own time first, so the caller (which also ticks while it waits) and
a trace read offline close each answer at the same instant.

The input transcript's `end_ms` before the answer is the server's end of speech (`vad_end_error_ms`).

Two more turn shapes (README "Live API"):
- a silence turn (`turn_start` expecting none, with no `speech_end_ms`) has no speech end, so its turn
  is the span of silence it sends: any output audio from its start on is its answer (the finding);
- while the caller's input is muted (`session.input_audio.mute` sent, not yet unmuted) its speech is
  silence to the server: it neither interrupts the answer playing nor asks for one.

Live sends no event when its VAD stops an answer, so `incident` infers it from the answer's end:
an answer the caller's speech did not interrupt, whose audio stopped mid-sentence (its transcript
ends without `.`, `!`, `?`), was cut: `false_barge_in` when the caller sent only noise under it
(`noisy_playback`), `muted_barge_in` when the caller's input was muted as it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.metrics.incidents import Incident
from harness.protocol import Dialect, make_event
from harness.protocol.catalogue import Kind
from harness.protocol.live_turns import LiveAnswer, LiveAnswers
from harness.protocol.responses import ResponseFacts, ResponseLog
from harness.trace.vocabulary import Mark, Rec

INTERRUPTED = "interrupted"   # the status of an answer the caller's speech cut
COMPLETED = "completed"
_AUDIO = Kind.OUTPUT_AUDIO_DELTA.value
_OUTPUT_TEXT = Kind.OUTPUT_TRANSCRIPT_DELTA.value
_INPUT_TEXT = Kind.INPUT_TRANSCRIPTION_DELTA.value
_MUTE = make_event(Kind.INPUT_AUDIO_MUTE, Dialect.LIVE).type
_UNMUTE = make_event(Kind.INPUT_AUDIO_UNMUTE, Dialect.LIVE).type
SENTENCE_ENDS = ".!?…"
NOISE_UNDER_ANSWER = ("noisy_playback",)   # scenarios whose caller sends noise while the answer plays


@dataclass
class LiveTurn:
    """One turn's answer as Live delimits it."""

    turn: Any
    answer: LiveAnswer
    facts: ResponseFacts
    transcript_end_ms: int | None     # the server's end of speech for this utterance (input-audio ms)


def answer_id(index: int) -> str:
    return f"live-{index + 1}"


class LiveMeter:
    def __init__(self) -> None:
        self.answers = LiveAnswers()
        self.log = ResponseLog()
        self.turns: dict[Any, LiveTurn] = {}
        self._ended_turn: Any = None      # the turn whose speech end is not answered yet
        self._open: list[LiveTurn] = []   # answers not yet over
        self.muted_spans: list[list[int | None]] = []   # [mute sent, unmute sent or None]

    # -- feeding ------------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> None:
        t_ns = record.get("t_ns")
        if not isinstance(t_ns, int):
            return
        self.tick(t_ns)
        kind = record.get("rec")
        if kind == Rec.SEND:
            self._sent(t_ns, record.get("type"))
        elif kind == Rec.MARK:
            name = record.get("mark")
            if self.muted and name in (Mark.SPEECH_START_SENT, Mark.SPEECH_END_SENT):
                return        # muted speech is silence to the server
            if name == Mark.TURN_START and record.get("expect") == "none" and record.get("speech_end_ms") is None:
                self.answers.speech_ended(t_ns)    # a silence turn: its answer is any audio from here
                self._ended_turn = record.get("turn")
            elif name == Mark.SPEECH_START_SENT:
                self.answers.speech_started(t_ns)
            elif name == Mark.SPEECH_END_SENT:
                self.answers.speech_ended(t_ns)
                self._ended_turn = record.get("turn")
                self.tick(t_ns)       # an interrupted answer is over once its interrupter ended
        elif kind == Rec.RECV:
            self._recv(t_ns, str(record.get("kind")), record.get("event") or {})

    @property
    def muted(self) -> bool:
        return bool(self.muted_spans) and self.muted_spans[-1][1] is None

    def _sent(self, t_ns: int, wire_type: Any) -> None:
        if wire_type == _MUTE and not self.muted:
            self.muted_spans.append([t_ns, None])
        elif wire_type == _UNMUTE and self.muted:
            self.muted_spans[-1][1] = t_ns

    def muted_at(self, t_ns: int) -> bool:
        return any(start is not None and start <= t_ns and (end is None or t_ns < end) for start, end in self.muted_spans)

    def _recv(self, t_ns: int, kind: str, event: dict[str, Any]) -> None:
        if kind == _AUDIO:
            delta = event.get("delta")
            ms = float(delta.get("ms") or 0.0) if isinstance(delta, dict) else 0.0
            opened = len(self.answers.answers)
            answer = self.answers.audio(t_ns, ms)
            if answer is None:
                return
            if len(self.answers.answers) > opened:
                self._opened(answer, opened)
            # the answer a chunk joins is always the newest one
            self.log.observe(t_ns, kind, {**event, "response_id": answer_id(len(self.answers.answers) - 1)})
        elif kind == _OUTPUT_TEXT:
            if self._open:
                self.log.observe(t_ns, kind, {**event, "response_id": self._open[-1].facts.id})
        elif kind == _INPUT_TEXT:
            end_ms = event.get("end_ms")
            if isinstance(end_ms, int):
                self.answers.input_transcript(end_ms)

    def _opened(self, answer: LiveAnswer, index: int) -> None:
        facts = self.log.facts(answer_id(index))
        assert facts is not None
        facts.created_ns = answer.first_ns
        turn = LiveTurn(self._ended_turn, answer, facts, self.answers.transcript_end_ms)
        self._ended_turn = None
        if turn.turn is not None:
            self.turns[turn.turn] = turn
        self._open.append(turn)

    def tick(self, now_ns: int) -> None:
        """Close the answers that are over by `now_ns` (quiet past their audio, or superseded)."""
        if not self._open:
            return
        still: list[LiveTurn] = []
        for turn in self._open:
            answer = turn.answer
            superseded = answer is not self.answers.open
            if superseded or now_ns > answer.quiet_after_ns():
                turn.facts.done_ns = min(now_ns, answer.quiet_after_ns())
                turn.facts.status = INTERRUPTED if answer.interrupted_by_ns is not None else COMPLETED
            else:
                still.append(turn)
        self._open = still

    # -- looking up ---------------------------------------------------------------------------
    def facts(self, turn: Any) -> ResponseFacts | None:
        found = self.turns.get(turn)
        return found.facts if found is not None else None

    def answer_of_chunk(self, t_ns: int) -> str | None:
        """The id of the answer a chunk arriving at `t_ns` belongs to (the receiver's player key)."""
        index = self.answers.answer_index(t_ns)
        return answer_id(index) if index is not None else None

    def next_quiet_ns(self) -> int | None:
        """When the soonest open answer goes quiet (a waiting caller wakes then)."""
        return min((t.answer.quiet_after_ns() + 1 for t in self._open), default=None)

    def barge_in_ms(self, turn: Any) -> float | None:
        found = self.turns.get(turn)
        return self.answers.barge_in_ms(found.answer) if found is not None else None

    def incident(self, turn: Any, scenario: Any, playout_start_ns: int | None, origin_ns: int) -> Incident | None:
        """The cut Live says nothing about, inferred from the answer's end (see the module docstring)."""
        found = self.turns.get(turn)
        if found is None or found.facts.status != COMPLETED:
            return None
        text = found.facts.text.strip()
        if not text or text[-1] in SENTENCE_ENDS:
            return None
        answer = found.answer
        evidence = {"how": "audio stopped mid-sentence", "last_audio_ms": round((answer.last_ns - origin_ns) / 1e6, 3),
                    "audio_received_ms": round(answer.audio_ms, 3), "transcript_tail": text[-40:],
                    "caller_speaking": False}
        if self.muted_at(answer.last_ns):
            return Incident("muted_barge_in", found.facts.id, {**evidence, "muted": True})
        if scenario in NOISE_UNDER_ANSWER and playout_start_ns is not None and answer.last_ns >= playout_start_ns:
            return Incident("false_barge_in", found.facts.id, {**evidence, "noise": True})
        return None
