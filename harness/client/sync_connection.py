"""The same connection interface on `websockets.sync.client`, for comparison and as a fallback.

The sync client reads the socket in its own background thread and queues whole messages, so
`receive` stamps the arrival when the message leaves that queue (one thread switch later than
`SansIOConnection`). `benchmarks/pacing.py` measures both; the driver uses the sans-I/O one
unless `SessionSpec.ws_impl == "sync"`.
"""

from __future__ import annotations

import inspect
import time
from typing import Sequence

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from harness.client.connection import MAX_MESSAGE_BYTES, ConnectFailed, ConnectionLost, ended_by

# websockets >= 17 warns unless a directly returned connection is asked for explicitly.
_LEGACY = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


class SyncConnection:
    def __init__(self, ws: ClientConnection, poll_s: float) -> None:
        self._ws = ws
        self._closing = False
        self.poll_s = poll_s
        self.subprotocol = ws.subprotocol

    @classmethod
    def open(cls, url: str, headers: Sequence[tuple[str, str]], timeout_s: float,
             subprotocols: Sequence[str] | None = None, poll_s: float = 1.0) -> "SyncConnection":
        try:
            ws = connect(url, additional_headers=list(headers), open_timeout=timeout_s,
                         subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
                         compression=None, proxy=None, ping_interval=None, close_timeout=1.0,
                         max_size=MAX_MESSAGE_BYTES, **_LEGACY)  # type: ignore[call-overload]  # _LEGACY: only where websockets has the flag
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from None
        return cls(ws, poll_s)

    def send_text(self, data: bytes | str) -> None:
        try:
            self._ws.send(data if isinstance(data, str) else data.decode("utf-8"))
        except ConnectionClosed as exc:
            raise ConnectionLost("connection is closed", exc.rcvd.code if exc.rcvd else 1006) from None

    def receive(self) -> tuple[int, list[str]] | None:
        try:
            message = self._ws.recv(timeout=self.poll_s)
        except TimeoutError:
            return None
        except ConnectionClosed:
            raise self.ended("connection closed") from None
        t_ns = time.perf_counter_ns()
        return t_ns, [message if isinstance(message, str) else message.decode("utf-8", errors="replace")]

    def ended(self, message: str) -> ConnectionLost:
        """How the connection ended (the same rules as SansIOConnection.ended, on the library's state)."""
        return ended_by(message, self._ws.protocol.close_rcvd, self._ws.protocol.close_sent, self._closing)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._closing = True
        try:
            self._ws.close(code, reason)   # thread-safe; bounded by close_timeout
        except (OSError, RuntimeError):
            pass

    def abort(self) -> None:
        try:
            self._ws.socket.close()
        except OSError:
            pass
