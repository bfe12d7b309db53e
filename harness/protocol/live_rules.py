"""The Live API's connection rules (`/v1/live/sessions`), checked from either side.

Live has no responses, items or input buffer (live_catalogue.py), so `ConnectionRules`' tables do
not apply; what a Live connection does have is a session's life: `session.start` ->
`session.started` -> ... -> `session.close` -> `session.closed`. Fed every
event of one connection in order, sent and received, `LiveConnectionRules.observe` returns the
rules each event broke as `Violation`s (the same type, and the same report rows, as Realtime's);
it never raises. The simulator answers a command before `session.start` with the error
`session_not_started` (harness/sim/live_session.py); here that is the local rule
`command_before_session_start`.
"""

from __future__ import annotations

from harness.protocol.catalogue import CLIENT, SERVER, Kind
from harness.protocol.events import Event
from harness.protocol.rules import Violation

LIVE_RULES: dict[str, str] = {
    "unknown_event_type": "an event type the Live catalogue does not know",
    "missing_required_field": "a known event without one of its required fields",
    "event_before_session_started": "a server event other than error or session.closed before session.started",
    "session_started_twice": "a second session.started on one connection",
    "event_after_session_closed": "a server event after session.closed",
    "command_before_session_start": "a client command other than session.start before session.start",
    "session_start_twice": "a second session.start on one connection",
}
# Server events a session may send before it has started (a refusal, the transport's own progress).
_BEFORE_START = frozenset({Kind.ERROR, Kind.SESSION_CLOSED, Kind.TRANSPORT_RINGING, Kind.TRANSPORT_ANSWERED,
                           Kind.TRANSPORT_FAILED, Kind.INFO})


class LiveConnectionRules:
    """The state of one Live connection, seen from `perspective` ("client" or "server")."""

    def __init__(self, perspective: str = CLIENT) -> None:
        if perspective not in (CLIENT, SERVER):
            raise ValueError(f"perspective must be 'client' or 'server', not {perspective!r}")
        self.perspective = perspective
        self.start_sent = False
        self.started = False
        self.closed = False

    def observe(self, event: Event, sent: bool) -> list[Violation]:
        """Check one event (`sent` by this side or received) and update the state."""
        author = self.perspective if sent else (SERVER if self.perspective == CLIENT else CLIENT)
        side = "local" if sent else "remote"
        found: list[tuple[str, str]] = []
        if event.kind is Kind.UNKNOWN:
            found.append(("unknown_event_type", f"unknown event type {event.type!r}"))
        else:
            if event.missing_fields:
                found.append(("missing_required_field", f"{event.type} lacks {', '.join(event.missing_fields)}"))
            if author == SERVER:
                self._server_event(event.kind, event.type, found)
            else:
                self._client_event(event.kind, event.type, found)
        return [Violation(rule, side, message, event.type) for rule, message in found]

    def _server_event(self, kind: Kind, name: str, out: list[tuple[str, str]]) -> None:
        if self.closed:
            out.append(("event_after_session_closed", f"{name} after session.closed"))
        if kind is Kind.SESSION_STARTED:
            if self.started:
                out.append(("session_started_twice", "a second session.started"))
            self.started = True
        elif not self.started and kind not in _BEFORE_START:
            out.append(("event_before_session_started", f"{name} before session.started"))
            self.started = True   # report once
        if kind is Kind.SESSION_CLOSED:
            self.closed = True

    def _client_event(self, kind: Kind, name: str, out: list[tuple[str, str]]) -> None:
        if kind is Kind.SESSION_START:
            if self.start_sent:
                out.append(("session_start_twice", "a second session.start"))
            self.start_sent = True
        elif not self.start_sent:
            out.append(("command_before_session_start", f"{name} before session.start"))
