"""A WebSocket client connection on a plain blocking socket, driven by websockets' sans-I/O protocol.

Why not `websockets.sync.client`: it runs a reader thread per connection that hands messages to
the caller through a queue and a lock, so an arrival is stamped only after a thread switch, and
under gevent every connection costs two greenlets. Here the receive loop itself reads the socket
and stamps `perf_counter_ns()` right after `recv()` returns, and the pacer's send is a frame
build plus one non-blocking `send`. Both variants are measured in `benchmarks/pacing.py`; `SyncConnection`
(the sync client) is kept for that comparison and as a fallback (`SessionSpec.ws_impl="sync"`).

All waits are bounded: connect and handshake by `timeout_s`, each receive by `poll_s` (returns
None on a quiet poll); sends never wait (see `_write`). Failures surface
as `ConnectFailed` (before open) or `ConnectionLost` (after), both `OSError`s so the pacer's
`except OSError` covers them.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
from typing import Callable, Sequence

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.frames import Close, Opcode, apply_mask
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from harness.client.frame_reads import FrameCutter

MAX_MESSAGE_BYTES = 16 * 2**20
MAX_BACKLOG_BYTES = 4 * 2**20    # ~80 s of pcm16 the target has not read: the connection is failed
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")
READ_BYTES = 65536


_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux; absent elsewhere
_SCM_TIMESTAMPNS = _SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@qq")
_STAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
MAX_STAMP_AGE_NS = 10_000_000_000   # a kernel stamp older than this (a clock step) is not trusted


def enable_kernel_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to timestamp received data (CLOCK_REALTIME, per read); False where it cannot."""
    if not _STAMP_SPACE or not hasattr(sock, "recvmsg"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def arrival_ns(ancillary: list[tuple[int, int, bytes]], read_ns: int) -> int:
    """The kernel's arrival stamp on the perf_counter (CLOCK_MONOTONIC) clock, else `read_ns`.

    The kernel stamps with the real-time clock; `realtime_offset_ns` converts it.
    """
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanos = _TIMESPEC.unpack_from(data)
            stamp = seconds * 1_000_000_000 + nanos - realtime_offset_ns(read_ns)
            if read_ns - MAX_STAMP_AGE_NS < stamp <= read_ns:
                return stamp
    return read_ns


_offset = [0, -1 << 62]   # (real-time minus monotonic, monotonic time it was measured)
OFFSET_REFRESH_NS = 1_000_000_000


def realtime_offset_ns(now_ns: int) -> int:
    """CLOCK_REALTIME minus CLOCK_MONOTONIC, measured at most a second ago.

    Read between two monotonic reads; a pair more than 20 us apart (the thread was preempted
    between them) is read again, so the offset errs by a few microseconds at most. The two
    clocks drift apart only by NTP's slewing (parts per million), so once a second is enough.
    """
    if now_ns - _offset[1] < OFFSET_REFRESH_NS:
        return _offset[0]
    best_offset, best_gap = 0, 1 << 62
    for _ in range(5):
        before = time.perf_counter_ns()
        real = time.time_ns()
        after = time.perf_counter_ns()
        if after - before < best_gap:
            best_offset, best_gap = real - (before + after) // 2, after - before
        if best_gap < 20_000:
            break
    _offset[0], _offset[1] = best_offset, now_ns
    return _offset[0]


class ConnectFailed(OSError):
    """The connection could not be opened (refused, TLS, handshake rejected, timeout)."""


class ConnectionLost(OSError):
    """The open connection ended. `code`/`reason` of the close frame, `by` "server" or "client"."""

    def __init__(self, message: str, code: int | None = None, reason: str = "", by: str = "server") -> None:
        super().__init__(message)
        self.code, self.reason, self.by = code, reason, by


def ended_by(message: str, rcvd: Close | None, sent: Close | None, closing: bool) -> ConnectionLost:
    """How a connection ended: the server's close frame, else our own failure (a frame over the
    size limit, broken framing: the close we sent), else 1006 (no close frame)."""
    if rcvd is not None:
        return ConnectionLost(message, rcvd.code, rcvd.reason, "client" if closing else "server")
    if sent is not None and (not closing or sent.code != 1000):   # not our own goodbye
        return ConnectionLost(f"connection failed: {sent.reason}", sent.code, sent.reason, "client")
    return ConnectionLost(message, 1006, "", "client" if closing else "server")


def open_socket(host: str, port: int, secure: bool, timeout_s: float) -> socket.socket:
    """TCP (and TLS) connection with Nagle off: a 20 ms chunk must leave now, not with the next."""
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if secure:
        context = ssl.create_default_context()
        sock = context.wrap_socket(sock, server_hostname=host)
    return sock


class SansIOConnection:
    """One WebSocket connection; `send_text` from any thread, `receive` from one receive loop."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, poll_s: float) -> None:
        self._sock = sock
        self._protocol = protocol
        self._lock = threading.Lock()
        self._fragments: list[bytes] = []
        self._pending: list[tuple[int, list[str]]] = []
        self.poll_s = poll_s
        self._closing = False
        self._masks = b""
        self._mask_pos = 0
        # Writes never wait for the peer: a plain-TCP socket gets a non-blocking twin for writing,
        # and bytes the kernel will not take yet wait in `_backlog` (sent first next time). So one
        # target connection that stops reading cannot stall the process's pacer, which sends for
        # every session. (TLS sockets cannot be twinned; they keep blocking writes.)
        self._writer = sock
        self._backlog = bytearray()
        self._kernel_stamps = False
        self._cutter = FrameCutter()
        self.subprotocol = protocol.subprotocol
        self._pings: dict[bytes, int] = {}     # ping payload -> its send time (ns)
        self._ping_seq = 0
        self.on_pong: Callable[[int, int], None] | None = None   # (ping sent ns, pong arrival ns)

    @classmethod
    def open(cls, url: str, headers: Sequence[tuple[str, str]], timeout_s: float,
             subprotocols: Sequence[str] | None = None, poll_s: float = 1.0) -> "SansIOConnection":
        try:
            uri = parse_uri(url)
        except (InvalidURI, ValueError) as exc:
            raise ConnectFailed(f"invalid URL: {exc}") from None
        deadline = time.monotonic() + timeout_s
        try:
            sock = open_socket(uri.host, uri.port, uri.secure, timeout_s)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from None
        protocol = ClientProtocol(uri, subprotocols=[Subprotocol(p) for p in subprotocols] if subprotocols else None,
                                  max_size=MAX_MESSAGE_BYTES)
        request = protocol.connect()
        for name, value in headers:
            request.headers[name] = value
        protocol.send_request(request)
        conn = cls(sock, protocol, poll_s)
        try:
            sock.sendall(b"".join(protocol.data_to_send()))
            conn._finish_handshake(deadline)
        except (OSError, InvalidHandshake) as exc:
            sock.close()
            if isinstance(exc, ConnectFailed):
                raise
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from None
        conn.subprotocol = protocol.subprotocol
        sock.settimeout(poll_s)
        if not uri.secure:
            conn._writer = sock.dup()
            conn._writer.settimeout(0.0)
            conn._kernel_stamps = enable_kernel_stamps(sock)
        return conn

    def _finish_handshake(self, deadline: float) -> None:
        protocol = self._protocol
        accepted = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectFailed("timed out waiting for the WebSocket handshake response")
            self._sock.settimeout(remaining)
            data = self._sock.recv(READ_BYTES)
            t_ns = time.perf_counter_ns()
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Response):
                    if protocol.handshake_exc is not None:
                        raise ConnectFailed(f"handshake rejected: {protocol.handshake_exc}")
                    accepted = True
                else:   # frames that arrived in the same read as the response
                    text = self._collect(event)
                    if text is not None:
                        self._pending.append((t_ns, [text]))
            if protocol.state is State.OPEN or accepted:
                # accepted, even if a close frame came in the same read: the session then sees it end
                return
            if not data or protocol.state is State.CLOSED:
                raise ConnectFailed("the server closed the connection during the handshake")

    def _collect(self, frame: object) -> str | None:
        """The text of a complete data message, assembling fragments; None for control frames."""
        opcode = frame.opcode  # type: ignore[attr-defined]
        if opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return None     # ping/pong/close: the protocol object answers them itself
        self._fragments.append(frame.data)  # type: ignore[attr-defined]
        if not frame.fin:  # type: ignore[attr-defined]
            return None
        data, self._fragments = b"".join(self._fragments), []
        return data.decode("utf-8", errors="replace")

    def send_text(self, data: bytes | str) -> int:
        """Send one text message as a single masked frame (the pacer's hot path).

        Returns the bytes still waiting for the peer to read (0 normally). The frame is built here
        rather than by `ClientProtocol.send_text`: measured under gevent, the library path (Frame
        object, secrets.token_bytes per mask, gevent's Python sendall) costs about twice as much
        per append. No extension is negotiated, so a data frame is just header + mask + masked
        payload (RFC 6455 section 5.2); handshake, control frames and close stay with the protocol
        object, whose state still gates every send.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            if self._protocol.state is not State.OPEN:
                raise ConnectionLost("connection is closed", self._protocol.close_code, by="server")
            return self._write(self._frame(payload))

    def send_ping(self) -> int | None:
        """Send a WebSocket ping (one small control frame, never waiting); its pong's arrival is
        reported to `on_pong` by the receive loop. Returns the send time, None when closed."""
        with self._lock:
            if self._protocol.state is not State.OPEN:
                return None
            self._ping_seq += 1
            payload = self._ping_seq.to_bytes(8, "big")
            if len(self._pings) > 64:       # pongs that never came: forget the oldest
                self._pings.pop(next(iter(self._pings)))
            self._protocol.send_ping(payload)
            t_ns = time.perf_counter_ns()
            self._pings[payload] = t_ns
            self._write(b"".join(w for w in self._protocol.data_to_send() if w))
            return t_ns

    def _pong(self, frame: object, t_ns: int, pongs: list[tuple[int, int]]) -> None:
        sent_ns = self._pings.pop(bytes(frame.data), None)  # type: ignore[attr-defined]
        if sent_ns is not None:
            pongs.append((sent_ns, t_ns))

    @property
    def backlog_bytes(self) -> int:
        return len(self._backlog)

    def _write(self, data: bytes) -> int:
        """Write in order behind any backlog, without waiting; caller holds the lock."""
        if self._backlog:
            self._backlog += data
            data = bytes(self._backlog)
            self._backlog.clear()
        try:
            sent = self._writer.send(data) if data else 0
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ConnectionLost(f"send failed: {exc}") from None
        if sent < len(data):
            if self._writer is self._sock:      # TLS: no twin, finish it (bounded by the socket timeout)
                try:
                    self._sock.sendall(memoryview(data)[sent:])
                except OSError as exc:
                    raise ConnectionLost(f"send failed: {exc}") from None
                return 0
            self._backlog += memoryview(data)[sent:]
            if len(self._backlog) > MAX_BACKLOG_BYTES:
                raise ConnectionLost(f"the target stopped reading ({len(self._backlog)} bytes unsent)")
        return len(self._backlog)

    def _frame(self, payload: bytes) -> bytes:
        size = len(payload)
        if size < 126:
            header = bytes((0x81, 0x80 | size))
        elif size < 65536:
            header = _HEADER_16.pack(0x81, 0xFE, size)
        else:
            header = _HEADER_64.pack(0x81, 0xFF, size)
        if self._mask_pos >= len(self._masks):
            self._masks, self._mask_pos = os.urandom(4 * 1024), 0   # one getrandom() per 1024 frames
        mask = self._masks[self._mask_pos:self._mask_pos + 4]
        self._mask_pos += 4
        return header + mask + apply_mask(payload, mask)

    def receive(self) -> tuple[int, list[str]] | None:
        """Block up to `poll_s` for data: (arrival ns, text messages), or None on a quiet poll.

        The arrival is the kernel's receive timestamp of the data (plain TCP: SO_TIMESTAMPNS, so
        a receive loop that ran late, behind other connections' work, still stamps when the bytes
        came), else the time right after the socket read (TLS); either way before any parsing.
        With kernel stamps the waiting bytes are read one frame at a time, so every message has
        its own arrival (the kernel stamps a read with the last packet it took).
        Raises ConnectionLost when the connection has ended.
        """
        if self._pending:
            return self._pending.pop(0)
        try:
            if self._kernel_stamps:
                reads = self._read_frames()
            else:
                data = self._sock.recv(READ_BYTES)
                reads = [(time.perf_counter_ns(), data)]
        except socket.timeout:
            return None
        except OSError as exc:
            raise self.ended(f"receive failed: {exc}") from None
        protocol = self._protocol
        groups: list[tuple[int, list[str]]] = []
        pongs: list[tuple[int, int]] = []
        ended = False
        with self._lock:
            for t_ns, data in reads:
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                    ended = True
                texts = []
                for frame in protocol.events_received():
                    if frame.opcode is Opcode.PONG:  # type: ignore[union-attr]
                        self._pong(frame, t_ns, pongs)
                        continue
                    text = self._collect(frame)
                    if text is not None:
                        texts.append(text)
                if texts:
                    groups.append((t_ns, texts))
            writes = [w for w in protocol.data_to_send() if w]   # pongs, the reply to a close
            if writes or self._backlog:
                try:
                    self._write(b"".join(writes))
                except ConnectionLost:
                    pass
        if pongs and self.on_pong is not None:     # reported outside the lock the pacer's sends take
            for sent_ns, arrival in pongs:
                self.on_pong(sent_ns, arrival)
        if groups:
            self._pending.extend(groups[1:])
            return groups[0]
        if protocol.close_rcvd is not None or ended or protocol.state is State.CLOSED:
            raise self.ended("connection closed")
        return None

    def _read_frames(self) -> list[tuple[int, bytes]]:
        """Read what is waiting frame by frame, each read stamped by the kernel (see frame_reads)."""
        sock = self._sock
        peeked = sock.recv(READ_BYTES, socket.MSG_PEEK)
        if not peeked:
            return [(time.perf_counter_ns(), b"")]
        reads: list[tuple[int, bytes]] = []
        for size in self._cutter.next_reads(peeked, READ_BYTES):
            data, ancillary, _, _ = sock.recvmsg(size, _STAMP_SPACE)
            reads.append((arrival_ns(ancillary, time.perf_counter_ns()), data))
            self._cutter.consumed(data)
            if len(data) < size:
                break
        return reads

    def ended(self, message: str) -> ConnectionLost:
        return ended_by(message, self._protocol.close_rcvd, self._protocol.close_sent, self._closing)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame; the receive loop then sees the server's reply and ends."""
        self._closing = True
        with self._lock:
            try:
                if self._protocol.state is State.OPEN:
                    self._protocol.send_close(code, reason)
                    self._write(b"".join(w for w in self._protocol.data_to_send() if w))
            except OSError:
                pass

    def abort(self) -> None:
        """Release the socket now (wakes a receive blocked on it). Safe to call twice."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._writer.close()
