"""`endpointing`: what the server's turn detection costs, utterance by utterance.

Each utterance is spoken twice in a row. First with the session's turn detection (server VAD):
the server decides when the caller stopped. Then, after a `session.update` that turns turn
detection off, as a manual turn: `input_audio_buffer.commit` and `response.create` go out at
exactly the true end of speech (the `speech_end_sent` moment: the send of the chunk holding the
last speech sample plus its offset in the chunk). Turn detection is then restored for the next
pair. The manual turn's record carries `endpointing_cost_ms` = ttfa(VAD twin) - ttfa(manual):
the silence window, the VAD's own decision delay and its commit stage, everything the caller
waits for because the server, not the caller, decides that the turn is over.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.client.driver import Session
from harness.client.pacer import Clip
from harness.protocol import Kind, render_session_update
from harness.scenarios.base import TurnWatch, follow_turn, think, turn_budget_s
from harness.trace.vocabulary import Mark

if TYPE_CHECKING:
    from harness.scenarios import Setup


def set_turn_detection(session: Session, detection: Any) -> bool:
    """Switch the session's turn detection (None: off) and wait for the server's acknowledgement."""
    config = replace(session.config, turn_detection=detection)
    session.send(Kind.SESSION_UPDATE, session=render_session_update(config, session.dialect))
    answer = session.wait_for((Kind.SESSION_UPDATED, Kind.ERROR), session.spec.connect_timeout_s)
    if answer is None or answer.kind is Kind.ERROR:
        return False
    session.config = config
    return True


def commit_at_speech_end(session: Session, turn: int, budget_s: float) -> bool:
    """Wait for the turn's speech end to be sent, then commit and ask for the response at that
    very instant; False when the utterance never got that far within the budget."""
    for item in session.events(budget_s):
        if item.local == "speech_end_sent" and item.turn == turn:
            break
    else:
        return False
    state = session.meter.matcher.turns.get(turn)
    speech_end_ns = int(state.speech_end["t_ns"]) if state is not None and state.speech_end else session.now_ns()
    wait_ns = speech_end_ns - session.now_ns()
    if wait_ns > 0:
        session.pause(wait_ns / 1e9)
    session.send(Kind.INPUT_AUDIO_COMMIT, mark=Mark.COMMIT_SENT, mark_fields={"turn": turn})
    session.send(Kind.RESPONSE_CREATE, mark=Mark.RESPONSE_CREATE_SENT, mark_fields={"turn": turn})
    return True


def _vad_turn(session: Session, setup: Setup, clip: Clip) -> int:
    turn = session.speak(clip, "response")
    watch = TurnWatch(session, turn)
    if follow_turn(session, watch, turn_budget_s(setup.spec, clip.audio_ms)) == "ok":
        session.end_turn(turn, "ok")
    return turn


def _manual_turn(session: Session, setup: Setup, clip: Clip, twin: int) -> None:
    turn = session.speak(clip, "response")
    watch = TurnWatch(session, turn)
    budget_s = turn_budget_s(setup.spec, clip.audio_ms)
    if not commit_at_speech_end(session, turn, budget_s):
        session.timeout_turn(turn, budget_s, "speech_end_sent")
        return
    if follow_turn(session, watch, setup.spec.turn_timeout_s) == "ok":
        session.end_turn(turn, "ok", probe={"pair": twin})


def run_endpointing(session: Session, setup: Setup) -> None:
    detection = session.config.turn_detection
    for clip in setup.clips:
        twin = _vad_turn(session, setup, clip)
        think(session, setup.params)
        if not set_turn_detection(session, None):
            session.rec.mark(Mark.ERROR, message="endpointing: the target refused turn_detection null")
            return
        _manual_turn(session, setup, clip, twin)
        if not set_turn_detection(session, detection):
            session.rec.mark(Mark.ERROR, message="endpointing: the target refused to restore turn detection")
            return
        think(session, setup.params)
