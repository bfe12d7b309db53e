"""Turn-taking without interruptions: `plain` (server VAD), `manual` (client commits), `silence`.

plain   N utterances; the server's VAD ends each turn; wait for the answer and (unless
        `wait_playout` is false) for its playout; `think_ms` of silence between turns.
manual  turn detection off: after the utterance is sent, `input_audio_buffer.commit` then
        `response.create`; the rest as plain.
silence no speech at all: each turn sends `duration_ms` of silence (or corpus noise at
        `noise_dbfs` when `noise` names a clip) and listens `listen_ms` more. Nothing should
        happen; a response that does happen is followed to its end and recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.client.driver import Session
from harness.protocol import Kind
from harness.scenarios.base import TurnWatch, follow_turn, think, turn_budget_s
from harness.trace.vocabulary import Mark

if TYPE_CHECKING:
    from harness.scenarios import Setup


def run_plain(session: Session, setup: Setup) -> None:
    wait_playout = bool(setup.params["wait_playout"])
    for clip in setup.clips:
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)
        if follow_turn(session, watch, turn_budget_s(setup.spec, clip.audio_ms), wait_playout=wait_playout) == "ok":
            session.end_turn(turn, "ok")
        think(session, setup.params)


def run_manual(session: Session, setup: Setup) -> None:
    wait_playout = bool(setup.params["wait_playout"])
    for clip in setup.clips:
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)
        budget_s = turn_budget_s(setup.spec, clip.audio_ms)
        for item in session.events(budget_s):
            watch.see(item)
            if watch.sent_ns is not None:
                break
        else:
            session.timeout_turn(turn, budget_s, "utterance_sent")
            continue
        session.send(Kind.INPUT_AUDIO_COMMIT, mark=Mark.COMMIT_SENT, mark_fields={"turn": turn})
        session.send(Kind.RESPONSE_CREATE, mark=Mark.RESPONSE_CREATE_SENT, mark_fields={"turn": turn})
        if follow_turn(session, watch, setup.spec.turn_timeout_s, wait_playout=wait_playout) == "ok":
            session.end_turn(turn, "ok")
        think(session, setup.params)


def run_silence(session: Session, setup: Setup) -> None:
    listen_s = float(setup.params["listen_ms"]) / 1000.0
    for clip in setup.clips:
        turn = session.speak(clip, "none")
        watch = TurnWatch(session, turn)
        for item in session.events(clip.audio_ms / 1000.0 / setup.spec.rtf + listen_s):
            watch.see(item)
        if watch.response_id is not None and not watch.played_out:
            # Something answered nothing: let it finish so the trace holds the whole incident.
            follow_turn(session, watch, setup.spec.turn_timeout_s, wait_playout=True)
        session.end_turn(turn, "ok")
