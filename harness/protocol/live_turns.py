"""How a Live turn is delimited, since Live has no protocol turns.

Live sends no `speech_started`/`committed`, no `response.created`/`done` and no cancel: its server
events are audio chunks (`session.output_audio.delta`, no id, no time on the primary WebSocket)
and transcript fragments with session-timeline `start_ms`/`end_ms` that "do not define complete
turns". So a turn is defined by what the caller did and heard:

- the turn is the caller's utterance, from its true speech start to its true speech end (the
  corpus annotation, as in Realtime), then the answer audio that follows it;
- the answer starts at the first output audio chunk received after the utterance's speech end
  (`ttfa_ms` = speech end -> that chunk, as in Realtime);
- the answer ends at its last chunk before the stream goes quiet for `ANSWER_GAP_MS` of
  wall-clock time beyond what its audio still has to play, or before the caller's next speech
  starts (then it was interrupted: `barge_in_ms` = speech start -> the last chunk that arrived);
- the server's "commit" (end of speech as the server heard it) is the `end_ms` of the last input
  transcript fragment received before the answer; `vad_end_error_ms` = that end_ms minus the true
  speech end on the session timeline (input-audio ms since session.started). Without fragments the
  value is None.

`LIVE_METRICS` names each Realtime metric's Live meaning, or None with the reason it does not exist.
`LiveAnswers` applies the rules above to received chunks; it is pure (times in, answers out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ANSWER_GAP_MS = 500.0

LIVE_METRICS: dict[str, str | None] = {
    "ttfa_ms": "speech end -> first session.output_audio.delta after it",
    "barge_in_ms": "start of the interrupting speech -> the answer's last chunk (its audio stops)",
    "underrun_count": "the player model over the answer's chunks, as in Realtime",
    "vad_end_error_ms": "end_ms of the last input transcript fragment before the answer minus the true speech end",
    "ttfa_from_commit_ms": None,  # no committed event
    "vad_stop_ms": None,          # no speech_stopped event
    "vad_commit_ms": None,        # no committed event
    "response_done_ms": None,     # no response.done: an answer ends by going quiet
    "cancel_ack_ms": None,        # no response.cancel
    "cancel_leak_ms": None,       # no response.cancel
    "truncate_ack_ms": None,      # no conversation.item.truncate
    "tool_args_ms": None,         # tools belong to a delegation backend, not the voice session
    "tool_roundtrip_ms": None,
}


@dataclass
class LiveAnswer:
    """The answer to one utterance: its chunks' arrival and audio, and whether speech cut it."""

    first_ns: int
    last_ns: int
    audio_ms: float
    interrupted_by_ns: int | None = None
    chunks: int = 1

    def quiet_after_ns(self) -> int:
        """When a further chunk would no longer belong to this answer (its audio played, plus the gap)."""
        played_ns = self.first_ns + int(self.audio_ms * 1e6)
        return max(self.last_ns, played_ns) + int(ANSWER_GAP_MS * 1e6)


@dataclass
class LiveAnswers:
    """Groups received output chunks into answers, one per utterance (see the module docstring)."""

    answers: list[LiveAnswer] = field(default_factory=list)
    speech_end_ns: int | None = None   # the latest utterance's true speech end, not yet answered
    transcript_end_ms: int | None = None
    open: LiveAnswer | None = None

    def speech_started(self, t_ns: int) -> None:
        """The caller's next utterance begins: an answer still sounding is interrupted by it (and
        keeps the chunks that still arrive until that utterance ends: they are its leak)."""
        if self.open is not None and t_ns < self.open.quiet_after_ns():
            self.open.interrupted_by_ns = t_ns
        else:
            self.open = None

    def speech_ended(self, t_ns: int) -> None:
        """The utterance's true speech end: what follows is its answer, not the one before."""
        self.open = None
        self.speech_end_ns = t_ns
        self.transcript_end_ms = None

    def input_transcript(self, end_ms: int) -> None:
        if self.open is None:
            self.transcript_end_ms = end_ms

    def answer_index(self, t_ns: int) -> int | None:
        """Which answer a chunk arriving at `t_ns` would belong to (its index in `answers`; a new
        answer is `len(answers)`), None for none: the rule `audio` applies, without applying it."""
        current = self.open
        if current is not None and t_ns <= current.quiet_after_ns():
            return len(self.answers) - 1
        if self.speech_end_ns is None or t_ns < self.speech_end_ns:
            return None
        return len(self.answers)

    def audio(self, t_ns: int, audio_ms: float) -> LiveAnswer | None:
        """One output chunk: it opens the answer of the unanswered utterance or extends the open one.
        A chunk that is neither (a server talking on its own) returns None."""
        index = self.answer_index(t_ns)
        if index is None:
            return None
        current = self.open
        if current is not None and index < len(self.answers):
            current.last_ns, current.audio_ms, current.chunks = t_ns, current.audio_ms + audio_ms, current.chunks + 1
            return current
        self.open = LiveAnswer(t_ns, t_ns, audio_ms)
        self.answers.append(self.open)
        self.speech_end_ns = None
        return self.open

    def ttfa_ms(self, speech_end_ns: int, answer: LiveAnswer) -> float:
        return (answer.first_ns - speech_end_ns) / 1e6

    def barge_in_ms(self, answer: LiveAnswer) -> float | None:
        if answer.interrupted_by_ns is None:
            return None
        return max(0.0, (answer.last_ns - answer.interrupted_by_ns) / 1e6)
