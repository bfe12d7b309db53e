"""How a caller starts a Live session (`/v1/live/sessions`), and keeps its answers' playout.

Live has no `session.created`: the client speaks first. The caller sends `session.start` (model,
format, voice, instructions from the scenario's SessionConfig, rendered by
`harness.protocol.live_session`) and waits for `session.started`. An `error`, a `session.closed`
or a closed socket before it is a failed connection in the target's own words, as a refused
`session.update` is in Realtime. Everything after (pacing `session.input_audio.append`, receiving
`session.output_audio.delta`) is the Realtime caller's own machinery: only the messages differ.

Live answers end by going quiet, which no event says: `tick` lets the session's meter close them
as time passes, and marks their players' audio as complete so their playout end is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.protocol import Kind
from harness.protocol.errors import LocalProtocolError
from harness.protocol.live_session import render_session_start

if TYPE_CHECKING:
    from harness.client.driver import Session

STARTED_OR_REFUSED = (Kind.SESSION_STARTED, Kind.ERROR, Kind.SESSION_CLOSED)


def start_live_session(session: "Session", config: Any) -> bool:
    """Send `session.start` and wait for `session.started`; False (recorded) when refused."""
    from harness.client.driver import SessionClosed, error_words

    try:
        body = render_session_start(config)
    except LocalProtocolError as exc:
        session.fail_connect(f"session.start cannot be rendered: {exc}")
        return False
    session.rec.header["session_config"] = body     # not yet flushed: the header is the first line
    try:
        session.send(Kind.SESSION_START, session=body)
        answer = session.wait_for(STARTED_OR_REFUSED, session.spec.connect_timeout_s)
    except SessionClosed:
        session.fail_connect(f"the target closed the session before it started ({session.close_words()})")
        return False
    if answer is None:
        session.fail_connect("no session.started within the connect timeout")
        return False
    if answer.kind is Kind.ERROR:
        session.fail_connect(f"session.start not accepted: {error_words(answer)}")
        return False
    if answer.kind is Kind.SESSION_CLOSED:
        reason = answer.event.get("reason") if answer.event is not None else None
        session.fail_connect(f"the target closed the session before it started (session.closed, reason {reason})")
        return False
    # Live has no turn detection to configure (the service decides when to speak): the caller's
    # Realtime fallbacks for a silent server VAD do not apply.
    session.config = replace(config, turn_detection=None)
    return True


def tick(session: "Session", now_ns: int) -> None:
    """Close the Live answers that went quiet by `now_ns`; their players' audio is then complete."""
    live = session.meter.live
    if live is None:
        return
    with session.record_lock:
        live.tick(now_ns)
    receiver = session.receiver
    if receiver is None:
        return
    for rid, player in receiver.players.items():
        facts = live.log.get(rid)
        if facts is not None and facts.done and not player.audio_done:
            player.audio_done = True
