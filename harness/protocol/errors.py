"""Exceptions of the protocol layer.

`RemoteProtocolError`: the peer sent something that cannot be an event at all (not JSON, not
an object, no `type`). `LocalProtocolError`: our own code asked for something the protocol
cannot express (a kind the dialect lacks). `ProtocolValueError`: a well-formed request whose
values the service would reject; it carries the service's error `code`, `param` and `message`
so a server can send them back verbatim.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every protocol-layer error."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the framing: invalid JSON, a non-object, or a missing/non-string `type`.

    `code` is the service's error code for the same fault when a client commits it
    (`invalid_json`-style faults have none documented, so "invalid_event" is used for all).
    """

    def __init__(self, message: str, code: str = "invalid_event") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class LocalProtocolError(ProtocolError):
    """Our side asked for something the protocol (or the chosen dialect) cannot express."""


class ProtocolValueError(ProtocolError):
    """A request the service rejects as a whole, with the service's own error code and param."""

    def __init__(self, code: str, param: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.message = message

    def __repr__(self) -> str:
        return f"ProtocolValueError(code={self.code!r}, param={self.param!r}, message={self.message!r})"
