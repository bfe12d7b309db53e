"""A cheap WebSocket server connection for benchmark targets, and the record of every frame sent.

Why not `websockets.asyncio.server.serve`: measured on the 2-core development VM (shared, noisy)
with 500 connections x 50 appends/s, a receive-only `serve()` server took 80-97 % of a core; the
answering sink (benchmarks/answer_sink.py, a turn every 3 s per connection) took 96-98 % with
websockets' sans-I/O protocol doing the framing and 76-78 % with the framing done here. So
websockets' `ServerProtocol` does the opening handshake only, and the data path is this plain
`asyncio.Protocol`: RFC 6455 framing of masked client frames (text, continuation, ping, close),
unmasked server text frames, no task, coroutine or queue per connection. A subclass implements
`on_open` and `on_text`.

`SendRecord`: per frame sent, the event number, type, intended and actual send time
(`time.perf_counter_ns()`, CLOCK_MONOTONIC, comparable with stamps of other processes on the host),
kept in arrays (25 bytes a frame) and written as CSV at exit, with a lateness summary.
"""

from __future__ import annotations

import asyncio
from array import array
from time import perf_counter_ns
from typing import Any, Callable

import numpy as np
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.speedups import apply_mask

MAX_FRAME, READ_BYTES = 16 * 2**20, 64 * 1024


def frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


class SendRecord:
    """Every frame sent: (event number, type, intended ns, sent ns); event ids come from `event_id`."""

    def __init__(self, event_id: Callable[[int], str]) -> None:
        self.event_id = event_id
        self.n, self.intended, self.sent, self.kind = array("q"), array("q"), array("q"), array("b")
        self.types: dict[str, int] = {}

    def add(self, n: int, kind: str, intended: int, sent: int) -> None:
        self.n.append(n)
        self.intended.append(intended)
        self.sent.append(sent)
        self.kind.append(self.types.setdefault(kind, len(self.types)))

    def finish(self, path: str | None) -> dict[str, Any]:
        """Write the CSV `event_id,type,intended_ns,sent_ns` (when a path is given); the lateness summary."""
        late = (np.frombuffer(self.sent, np.int64) - np.frombuffer(self.intended, np.int64)) / 1e6
        summary: dict[str, Any] = {"frames": int(late.size)}
        if late.size:
            p50, p99 = np.percentile(late, [50, 99])
            summary.update(lateness_p50_ms=round(float(p50), 3), lateness_p99_ms=round(float(p99), 3),
                           lateness_max_ms=round(float(late.max()), 3))
        if path:
            names = {v: k for k, v in self.types.items()}
            with open(path, "w", encoding="ascii", buffering=1 << 20) as out:
                out.write("event_id,type,intended_ns,sent_ns\n")
                out.writelines(f"{self.event_id(n)},{names[k]},{i},{s}\n"
                               for n, k, i, s in zip(self.n, self.kind, self.intended, self.sent))
        return summary


class LeanConnection(asyncio.Protocol):
    """One server-side WebSocket; `send_text` frames and records, `on_text(payload, arrival_ns)` receives."""

    record: SendRecord

    def __init__(self) -> None:
        self.ws: ServerProtocol | None = ServerProtocol(max_size=MAX_FRAME)  # until the handshake is done
        self.tr: Any = None
        self.closed, self.buf, self.frag = False, b"", b""

    def on_open(self, t_ns: int) -> None:
        raise NotImplementedError

    def on_text(self, payload: bytes, t_ns: int) -> None:
        raise NotImplementedError

    def connection_made(self, transport: Any) -> None:
        self.tr = transport
        if hasattr(transport, "max_size"):
            transport.max_size = READ_BYTES  # asyncio's default 256 KiB allocation per read is slower here

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def send_text(self, kind: str, body: bytes, n: int, intended_ns: int) -> None:
        if self.closed:
            return
        data = frame(1, body)
        sent = perf_counter_ns()
        self.tr.write(data)
        self.record.add(n, kind, intended_ns, sent)

    def close(self, code: int) -> None:
        self.tr.write(frame(8, code.to_bytes(2, "big")))
        self.tr.close()
        self.connection_lost(None)

    def data_received(self, data: bytes) -> None:
        t = perf_counter_ns()
        if self.ws is not None:
            self._handshake(data, t)
            return
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        while end - pos >= 6 and not self.closed:
            b0, n, h = buf[pos], buf[pos + 1] & 127, pos + 2
            if n >= 126:
                size = 2 if n == 126 else 8
                if end - h < size:
                    break
                n, h = int.from_bytes(buf[h:h + size], "big"), h + size
            if not buf[pos + 1] & 0x80 or n > MAX_FRAME:
                self.close(1002 if n <= MAX_FRAME else 1009)  # client frames must be masked
                return
            if end - h - 4 < n:
                break
            payload, pos, op = apply_mask(buf[h + 4:h + 4 + n], buf[h:h + 4]), h + 4 + n, b0 & 15
            if op in (0, 1):
                if not b0 & 0x80:
                    self.frag += payload
                    continue
                text, self.frag = self.frag + payload if self.frag else payload, b""
                self.on_text(text, t)
            elif op == 8:
                self.close(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000)
            elif op == 9:
                self.tr.write(frame(10, payload[:125]))
        self.buf = buf[pos:]

    def _handshake(self, data: bytes, t: int) -> None:
        ws = self.ws
        assert ws is not None
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                ws.send_response(ws.accept(event))
        out = ws.data_to_send()
        self.tr.write(b"".join(out))
        if ws.handshake_exc is not None or (out and out[-1] == b""):
            self.tr.close()
        elif out:
            self.ws = None  # open; a client sends nothing before it has read the handshake response
            self.on_open(t)
