"""One simulator connection on asyncio's Protocol API, with websockets' sans-I/O `ServerProtocol`.

websockets parses the opening handshake and every frame (RFC 6455: masking, fragmentation,
control frames, the closing handshake, the size limit); this module moves bytes between it and
the transport, and hands each complete text message to the session in the same callback in
which its last bytes arrived, stamped with that moment: no queue, no task switch per message.
Outgoing text frames are framed here (a server's frames are unmasked: one header, then the
payload) and a batch of them leaves in one transport write.

Fast path: when the data that arrived is nothing but whole, final, masked text frames (the
appends of a paced caller, each in its own TCP segment) and websockets holds no partial frame or
fragmented message, those frames are unmasked here, with websockets' own C `apply_mask`; anything
else (control frames, fragments, partial frames, 64-bit lengths, frames over the size limit)
goes through the sans-I/O parser, which then sees the byte stream exactly where it left it.

The connection offers the session what a websockets connection did: `request` (path and
headers), `remote_address`, `close(code, reason)`, `abort()`, `close_code`, `close_reason`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode
from websockets.frames import apply_mask  # websockets' C speedup when built (it always is on PyPI wheels)
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from harness.sim.server import SimServer

log = logging.getLogger("harness.sim")

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
SERVER_HEADER = "harness-sim"
OPEN_TIMEOUT_S = 10.0   # a client that never completes the handshake is dropped (as websockets' serve)
CLOSE_TIMEOUT_S = 2.0   # after a close frame, how long the client has to close the TCP connection
WRITE_LIMIT_HIGH = 64 * 1024   # transport buffer above which the outbox waits (the client is not reading)
_OPEN = State.OPEN
_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT


def select_subprotocol(protocol: ServerProtocol, offered: Sequence[str]) -> str | None:
    """Pick a subprotocol the client offered (browsers abort the handshake without one); never the key."""
    for choice in ("realtime", BETA_SUBPROTOCOL):
        if choice in offered:
            return choice
    usable = [p for p in offered if not p.startswith(KEY_SUBPROTOCOL_PREFIX)]
    return usable[0] if usable else None


def text_frame_header(size: int) -> bytes:
    """The header of an unmasked final text frame carrying `size` bytes."""
    if size < 126:
        return bytes((0x81, size))
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big")
    return bytes((0x81, 127)) + size.to_bytes(8, "big")


def split_text_frames(data: bytes, max_size: int) -> list[bytes] | None:
    """The unmasked payloads when `data` is only whole final masked text frames, else None."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 6 or data[pos] != 0x81:  # FIN, no RSV bits, opcode text
            return None
        second = data[pos + 1]
        if not second & 0x80:  # a client frame must be masked: the parser reports that
            return None
        size = second & 0x7F
        if size == 126:
            if end - pos < 8:
                return None
            size = int.from_bytes(data[pos + 2:pos + 4], "big")
            head = pos + 4
        elif size == 127:
            return None
        else:
            head = pos + 2
        stop = head + 4 + size
        if stop > end or size > max_size:
            return None
        out.append(apply_mask(data[head + 4:stop], data[head:head + 4]))
        pos = stop
    return out


class SimConnection(asyncio.Protocol):
    """The transport side of one session; `server` opens the session once the handshake is done."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.protocol = ServerProtocol(select_subprotocol=select_subprotocol,
                                       max_size=server.cfg.max_message_bytes)
        self._max_size = server.cfg.max_message_bytes
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.remote_address: Any = None
        self.session: Any = None   # harness.sim.session.Session once open
        self.paused = False
        self.paused_ns = 0   # the last time the transport paused (its buffer full: the client is not reading)
        self.resumed_ns = 0  # ... and resumed
        self.on_resume: Callable[[], None] | None = None
        self._fragments: list[bytes] | None = None
        self._fragment_text = False
        self._timer: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ---- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's
        transport.set_write_buffer_limits(high=WRITE_LIMIT_HIGH)
        self.remote_address = transport.get_extra_info("peername")
        self.server.connections.add(self)
        self._timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT_S, self._open_timed_out)

    def data_received(self, data: bytes) -> None:
        t_ns = time.perf_counter_ns()
        protocol = self.protocol
        if (self.session is not None and protocol.state is _OPEN and self._fragments is None
                and protocol.current_size is None and not protocol.reader.buffer):
            payloads = split_text_frames(data, self._max_size)
            if payloads is not None:
                for payload in payloads:
                    self._message(payload, True, t_ns)
                return
        protocol.receive_data(data)
        events = protocol.events_received()
        self._write_protocol_output()
        for event in events:
            if type(event) is Frame:
                self._frame(event, t_ns)
            elif isinstance(event, Request):
                self._handshake(event)
        if protocol.close_expected():
            self._expect_close()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._write_protocol_output()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)
        if self.session is not None:
            self.server.session_ended(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True
        self.paused_ns = time.perf_counter_ns()

    def resume_writing(self) -> None:
        self.paused = False
        self.resumed_ns = time.perf_counter_ns()
        if self.session is not None:
            self.server.trace.record("backpressure", self.session.session_id, paused_ns=self.paused_ns,
                                     resumed_ns=self.resumed_ns)
        if self.on_resume is not None:
            self.on_resume()

    # ---- what the session uses
    @property
    def open(self) -> bool:
        return self.protocol.state is _OPEN and self.transport is not None and not self.transport.is_closing()

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason

    def write_texts(self, payloads: list[bytes]) -> None:
        """Send each payload (UTF-8 JSON) as one text frame, all in one transport write."""
        if not payloads or not self.open:
            return
        parts: list[bytes] = []
        for payload in payloads:
            parts.append(text_frame_header(len(payload)))
            parts.append(payload)
        assert self.transport is not None
        self.transport.write(b"".join(parts))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake and wait (at most the close timeout) until the TCP connection ends."""
        if self.protocol.state is _OPEN:
            self.protocol.send_close(code, reason)
            self._write_protocol_output()
            self._expect_close()
        if not self.lost.done():
            await asyncio.wait({self.lost}, timeout=CLOSE_TIMEOUT_S + 1.0)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.transport is not None:
            self.transport.abort()

    # ---- internals
    def _write_protocol_output(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                try:
                    transport.write_eof()
                except OSError:
                    transport.close()
            else:
                transport.close()

    def _expect_close(self) -> None:
        """The client now has the close timeout to close the TCP connection; then it is aborted."""
        if self._timer is None and self.transport is not None and not self.lost.done():
            self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self.abort)

    def _open_timed_out(self) -> None:
        self._timer = None
        if self.request is None:
            self.abort()

    def _handshake(self, request: Request) -> None:
        protocol = self.protocol
        self.request = request
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        response: Response | None = None
        path = urlsplit(request.path).path.rstrip("/")
        if not (path.endswith("/realtime") or path.endswith("/live/sessions")):
            response = protocol.reject(404, "Not found: the Realtime endpoint is /v1/realtime "
                                            "(Live: /v1/live/sessions)\n")
        elif not self.server.serving:
            response = protocol.reject(503, "Server is shutting down.\n")
        else:
            response = protocol.accept(request)
        response.headers["Server"] = SERVER_HEADER
        protocol.send_response(response)
        self._write_protocol_output()
        if response.status_code == 101 and protocol.state is _OPEN:
            self.server.session_opened(self)
        elif protocol.close_expected():
            self._expect_close()

    def _frame(self, frame: Frame, t_ns: int) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self._message(frame.data, opcode is _TEXT, t_ns)
            else:
                self._fragments, self._fragment_text = [bytes(frame.data)], opcode is _TEXT
        elif opcode is _CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._message(data, self._fragment_text, t_ns)
        # ping (answered by the protocol), pong and close need nothing here

    def _message(self, data: bytes | bytearray | memoryview, is_text: bool, t_ns: int) -> None:
        if self.session is None:
            return
        if not is_text:
            self.server.deliver(self, None, len(data), t_ns)
            return
        # the session decodes the UTF-8 (orjson reads the bytes directly); invalid UTF-8 comes back here
        self.server.deliver(self, data if type(data) is bytes else bytes(data), len(data), t_ns)

    def fail_invalid_utf8(self, exc: UnicodeDecodeError) -> None:
        """A text frame that is not UTF-8: fail the connection with 1007, as websockets does."""
        if self.protocol.state is _OPEN:
            self.protocol.fail(1007, f"{exc.reason} at position {exc.start}")
            self._write_protocol_output()
            self._expect_close()
