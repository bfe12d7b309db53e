"""The Realtime protocol with no I/O: events of both dialects, codec, session config, state rules.

Used by both the caller and the simulator; names are fixed in docs/contracts.md section 1.
"""

from harness.protocol.catalogue import CATALOGUE, CLIENT, SERVER, EventSpec, Kind, client_kinds, server_kinds
from harness.protocol.codec import decode_client, decode_server, encode
from harness.protocol.errors import LocalProtocolError, ProtocolError, ProtocolValueError, RemoteProtocolError
from harness.protocol.events import Event, make_event
from harness.protocol.formats import AudioFormat, Dialect, parse_audio_format
from harness.protocol.rules import RULES, SESSION_RULES, ConnectionRules, Violation
from harness.protocol.server_errors import error_event, error_message
from harness.protocol.session import (
    SessionConfig,
    TurnDetection,
    default_session_config,
    parse_session_update,
    render_session_object,
    render_session_update,
)

__all__ = [
    "CATALOGUE", "CLIENT", "RULES", "SERVER", "SESSION_RULES", "AudioFormat", "ConnectionRules", "Dialect", "Event", "EventSpec",
    "Kind", "LocalProtocolError", "ProtocolError", "ProtocolValueError", "RemoteProtocolError", "SessionConfig",
    "TurnDetection", "Violation", "client_kinds", "decode_client", "decode_server", "default_session_config",
    "encode", "error_event", "error_message", "make_event", "parse_audio_format", "parse_session_update",
    "render_session_object", "render_session_update", "server_kinds",
]
