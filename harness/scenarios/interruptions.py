"""Answers that do not play to the end: `barge_in`, `client_cancel`, `noisy_playback`.

barge_in        each answer but the last is interrupted: `barge_offset_ms` after its playout
                started, the next utterance starts; on the server's `speech_started` the caller
                stops playout and truncates the answer at the played position. The interrupted
                turn's `turn_start` says `expect: "barge_in"`. In Live (no `speech_started`, no
                truncate) the caller just speaks over the answer: the server's VAD stops its audio,
                and the interrupted turn ends once its answer is over (`run_live_barge_in`).
client_cancel   once `cancel_after_ms` of the answer's audio has arrived, `response.cancel`, stop
                playout, truncate at the played position; the turn says `expect: "cancel"`.
noisy_playback  while the answer plays, the caller's microphone picks up noise (`noise`, a clip of
                the noise corpus, at `noise_dbfs` RMS) instead of silence. A `speech_started` then
                is a false barge-in; with `react` (default) the caller behaves like a real client
                and stops playout and truncates. In Live (no `speech_started`: `react` has nothing
                to react to) the same flow runs; an answer stopped mid-sentence under the noise is
                the false barge-in (harness.metrics.live_meter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.client.driver import Session
from harness.client.receiver import Incoming
from harness.protocol import Kind
from harness.scenarios.base import FALLBACK_CHECK_S, TurnWatch, follow_turn, think, turn_budget_s, vad_fallback
from harness.trace.vocabulary import Mark

if TYPE_CHECKING:
    from harness.scenarios import Setup


def truncate_played(session: Session, turn: int, response_id: str, at_ns: int, reason: str) -> None:
    """Stop the answer's playout at `at_ns` and tell the server how much of it was heard."""
    played = session.stop_playout(response_id, at_ns, reason)
    facts = session.response(response_id)
    item_id = facts.first_item_id if facts is not None else None
    if played is None or item_id is None:
        return
    audio_end_ms = int(played)
    session.send(Kind.ITEM_TRUNCATE, item_id=item_id, content_index=0, audio_end_ms=audio_end_ms,
                 mark=Mark.TRUNCATE_SENT, mark_fields={"turn": turn, "item_id": item_id, "audio_end_ms": audio_end_ms})


def _wait_playout_offset(session: Session, watch: TurnWatch, offset_ms: float, budget_s: float) -> bool:
    """Run the inbox until the answer has played `offset_ms`; False when it ended or never came."""
    deadline = session.now_ns() + int(budget_s * 1e9)
    if watch.deadline_ns is not None:
        deadline = min(deadline, watch.deadline_ns)
    while True:
        player = session.player(watch.response_id)
        now = session.now_ns()
        if player is not None and player.started and watch.played_out:
            return False
        target = None
        if player is not None and player.start_ns is not None:
            target = player.start_ns + int(offset_ms * 1e6)
            if now >= target:
                return True
        wait_ns = min(deadline, target if target is not None else deadline) - now
        if now >= deadline:
            return False
        vad_fallback(session, watch)
        for item in session.events(min(wait_ns / 1e9, FALLBACK_CHECK_S)):
            watch.see(item)
            if item.local == "playout_end" or (item.kind is Kind.OUTPUT_AUDIO_DELTA and target is None):
                break


def _speak(session: Session, setup: Setup, index: int) -> TurnWatch:
    """Queue the next utterance; its watch carries the turn's one budget (utterance + timeout)."""
    last = index == len(setup.clips) - 1
    turn = session.speak(setup.clips[index], "response" if last else "barge_in")
    now = session.now_ns()
    budget_ns = int(turn_budget_s(setup.spec, setup.clips[index].audio_ms) * 1e9)
    return TurnWatch(session, turn, started_ns=now, deadline_ns=now + budget_ns)


def _until_done(session: Session, watches: tuple[TurnWatch, ...], response_id: str, budget_s: float) -> None:
    """Follow the inbox until the interrupted response is done (its cancelled `response.done`:
    the stop that `barge_in_ms` measures) or the budget runs out; the turns keep matching."""
    facts = session.response(response_id)
    if facts is not None and facts.done:
        return
    for item in session.events(budget_s):
        for watch in watches:
            watch.see(item)
        facts = session.response(response_id)
        if facts is not None and facts.done:
            return


def _finish(session: Session, watch: TurnWatch, budget_s: float) -> None:
    if follow_turn(session, watch, budget_s) == "ok":
        session.end_turn(watch.turn, "ok")


def run_barge_in(session: Session, setup: Setup) -> None:
    spec, clips = setup.spec, setup.clips
    offset_ms = float(setup.params["barge_offset_ms"])
    watch = _speak(session, setup, 0)
    for index in range(1, len(clips)):
        if not _wait_playout_offset(session, watch, offset_ms, turn_budget_s(spec, clips[index - 1].audio_ms)):
            _finish(session, watch, spec.turn_timeout_s)   # no answer, or over before the offset
            watch = _speak(session, setup, index)
            continue
        interrupted = watch.response_id
        assert interrupted is not None
        next_watch = _speak(session, setup, index)
        budget_s = turn_budget_s(spec, clips[index].audio_ms)
        for item in session.events(budget_s):
            next_watch.see(item)
            if item.kind is Kind.SPEECH_STARTED:
                truncate_played(session, watch.turn, interrupted, item.t_ns, "barge_in")
                _until_done(session, (next_watch,), interrupted, spec.turn_timeout_s)
                session.end_turn(watch.turn, "ok")
                break
        else:
            session.timeout_turn(watch.turn, budget_s, "speech_started")
        watch = next_watch
    _finish(session, watch, turn_budget_s(spec, clips[-1].audio_ms))


def run_live_barge_in(session: Session, setup: Setup) -> None:
    """barge_in in Live: speak over the answer and follow it until it is over (the meter closes an
    interrupted answer when the interrupting utterance ends, or when it goes quiet before); its
    audio plays out what arrived. `barge_in_ms` is the interrupting speech start -> its last chunk.
    With `mute_during_answer` every other attempt is muted (see `_muted_over`)."""
    spec, clips = setup.spec, setup.clips
    offset_ms = float(setup.params["barge_offset_ms"])
    mute_next = bool(setup.params["mute_during_answer"])
    watch = _speak(session, setup, 0)
    index = 1
    while index < len(clips):
        if not _wait_playout_offset(session, watch, offset_ms, turn_budget_s(spec, clips[index - 1].audio_ms)):
            _finish(session, watch, spec.turn_timeout_s)
            watch = _speak(session, setup, index)
            index += 1
            continue
        if mute_next:
            _muted_over(session, setup, watch, index)
            index += 1
            mute_next = False
            if index >= len(clips):
                return
            watch = _speak(session, setup, index)
            index += 1
            continue
        mute_next = bool(setup.params["mute_during_answer"])
        next_watch = _speak(session, setup, index)
        index += 1
        budget_s = turn_budget_s(spec, clips[index - 1].audio_ms)
        if not watch.done:
            for item in session.events(budget_s):
                next_watch.see(item)
                if watch.done:
                    break
        if watch.done:
            session.end_turn(watch.turn, "ok")
        else:
            session.timeout_turn(watch.turn, budget_s, "answer_over")
        watch = next_watch
    _finish(session, watch, turn_budget_s(spec, clips[-1].audio_ms))


def _muted_over(session: Session, setup: Setup, watch: TurnWatch, index: int) -> None:
    """The client-side mute probe: mute the input, speak utterance `index` over the playing answer
    (a turn expecting no answer: the server hears silence), unmute once it is sent, and follow
    the answer to its end. A server that honours mute plays the answer whole; one that stops it
    mid-sentence while muted is the turn's `muted_barge_in` incident (harness.metrics.live_meter)."""
    spec = setup.spec
    session.send(Kind.INPUT_AUDIO_MUTE)
    over = TurnWatch(session, session.speak(setup.clips[index], "none"))
    budget_s = turn_budget_s(spec, setup.clips[index].audio_ms)
    for item in session.events(budget_s):
        over.see(item)
        if over.sent_ns is not None:
            break
    session.send(Kind.INPUT_AUDIO_UNMUTE)
    _finish(session, watch, spec.turn_timeout_s)
    session.end_turn(over.turn, "ok")


def run_client_cancel(session: Session, setup: Setup) -> None:
    spec, params = setup.spec, setup.params
    cancel_after_ms = float(params["cancel_after_ms"])
    for clip in setup.clips:
        turn = session.speak(clip, "cancel")
        watch = TurnWatch(session, turn)
        cancelled: list[str] = []

        def on_item(item: Incoming, turn: int = turn, watch: TurnWatch = watch, cancelled: list[str] = cancelled) -> bool:
            state = session.response(watch.response_id)
            if cancelled or state is None or state.done or state.audio_ms < cancel_after_ms:
                return False
            t_ns = session.send(Kind.RESPONSE_CANCEL, response_id=state.id, mark=Mark.CANCEL_SENT,
                                mark_fields={"turn": turn, "response_id": state.id})
            cancelled.append(state.id)
            truncate_played(session, turn, state.id, t_ns, "cancel")
            return False

        if follow_turn(session, watch, turn_budget_s(spec, clip.audio_ms), on_item=on_item) == "ok":
            session.end_turn(turn, "ok")
        think(session, params)


def run_noisy_playback(session: Session, setup: Setup) -> None:
    spec, params = setup.spec, setup.params
    react = bool(params["react"])
    assert setup.noise is not None
    for clip in setup.clips:
        turn = session.speak(clip, "response")
        watch = TurnWatch(session, turn)

        def on_item(item: Incoming, turn: int = turn, watch: TurnWatch = watch) -> bool:
            rid = watch.response_id
            player = session.player(rid)
            if rid is None or player is None or not player.started:
                return False
            playing = not session.playout_over(rid)
            session.set_background(setup.noise if playing else None)
            if playing and react and item.kind is Kind.SPEECH_STARTED:
                truncate_played(session, turn, rid, item.t_ns, "barge_in")
                session.set_background(None)
            return False

        try:
            status = follow_turn(session, watch, turn_budget_s(spec, clip.audio_ms), on_item=on_item)
        finally:
            session.set_background(None)
        if status == "ok":
            session.end_turn(turn, "ok")
        think(session, params)
