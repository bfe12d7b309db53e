"""A userspace TCP relay that holds every chunk it forwards for a fixed delay in each direction.

A known network delay where the kernel has no netem (tests/client/test_rtt_relay.py). Each
chunk read from one side is sent on to the other `delay_ms` after the kernel received it (its
SO_TIMESTAMPNS stamp, so the relay's own wake-up is inside the hold, not added to it), in
order, and the actual holding time (kernel arrival to the send returning) is recorded: the
truth is what the relay did, timer lateness included, never the configured figure.

Run as a process (inside a network namespace with `ip netns exec`):

    python3 -m tests.client.delay_relay --listen 10.251.8.2:0 --target 10.251.8.2:8765 \\
        --delay-ms 10 --holds holds.json

It prints `delay_relay: listening HOST:PORT` once bound; on SIGTERM it writes
{"delay_ms", "up_ns", "down_ns"} (every chunk's hold, caller to target and back) to --holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from harness.client.connection import READ_BYTES, arrival_ns, enable_kernel_stamps

STAMP_SPACE = socket.CMSG_SPACE(16)     # one struct timespec (SCM_TIMESTAMPNS)


class HeldPipe:
    """One direction of one relayed connection: read from `source`, hold, send to `sink`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: socket.socket, sink: socket.socket,
                 delay_ns: int, holds_ns: list[int], on_done: Callable[[], None]) -> None:
        self.loop, self.source, self.sink, self.delay_ns = loop, source, sink, delay_ns
        self.holds_ns, self.on_done = holds_ns, on_done
        self.held: deque[tuple[int, bytes]] = deque()   # (kernel arrival ns, data); b"" is the end
        self.unsent = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.finished = False
        loop.add_reader(source, self._readable)

    def _readable(self) -> None:
        try:
            data, ancillary, _flags, _addr = self.source.recvmsg(READ_BYTES, STAMP_SPACE)
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b"", []
        self.held.append((arrival_ns(ancillary, time.perf_counter_ns()), data))
        if not data:
            self.loop.remove_reader(self.source)
        self._arm()

    def _arm(self) -> None:
        if self.timer is None and self.held:
            self.timer = self.loop.call_at((self.held[0][0] + self.delay_ns) / 1e9, self._release)

    def _release(self) -> None:
        self.timer = None
        while self.held and self.held[0][0] + self.delay_ns <= time.perf_counter_ns():
            received_ns, data = self.held.popleft()
            if not data:
                self._end()
                return
            self._send(data)
            self.holds_ns.append(time.perf_counter_ns() - received_ns)
        self._arm()

    def _send(self, data: bytes) -> None:
        if not self.unsent:
            try:
                data = data[self.sink.send(data):]
            except BlockingIOError:
                pass
            except OSError:
                self._end()
                return
            if data:
                self.loop.add_writer(self.sink, self._flush)
        self.unsent += data

    def _flush(self) -> None:
        try:
            del self.unsent[:self.sink.send(self.unsent)]
        except BlockingIOError:
            return
        except OSError:
            self.unsent.clear()
        if not self.unsent:
            self.loop.remove_writer(self.sink)
            if self.finished:
                self._end()

    def _end(self) -> None:
        """The source closed (after all it sent was held and forwarded): pass the close on."""
        self.finished = True
        if self.unsent:
            return      # _flush ends it once the rest is out
        self.loop.remove_reader(self.source)
        try:
            self.sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.on_done()


class DelayRelay:
    """Accepts on `listen`, connects each caller to `target`, holds both ways for `delay_ms`."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], delay_ms: float) -> None:
        self.target, self.delay_ns = target, int(delay_ms * 1e6)
        self.delay_ms = delay_ms
        self.up_ns: list[int] = []
        self.down_ns: list[int] = []
        self.server = socket.create_server(listen)
        self.server.setblocking(False)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.getsockname()[:2]
        return str(host), int(port)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.server, self._accept, loop)

    def _accept(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            caller, _ = self.server.accept()
        except BlockingIOError:
            return
        target = socket.create_connection(self.target, timeout=5.0)   # local, microseconds
        pair = (caller, target)
        for sock in pair:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            enable_kernel_stamps(sock)
        done: list[int] = []

        def one_way_done() -> None:
            done.append(1)
            if len(done) == 2:
                for sock in pair:
                    sock.close()

        HeldPipe(loop, caller, target, self.delay_ns, self.up_ns, one_way_done)
        HeldPipe(loop, target, caller, self.delay_ns, self.down_ns, one_way_done)

    def holds(self) -> dict[str, object]:
        return {"delay_ms": self.delay_ms, "up_ns": self.up_ns, "down_ns": self.down_ns}


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    relay = DelayRelay(_address(args.listen), _address(args.target), args.delay_ms)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    relay.start(loop)
    host, port = relay.address
    print(f"delay_relay: listening {host}:{port}", flush=True)
    await stop.wait()
    Path(args.holds).write_text(json.dumps(relay.holds()))


def main() -> None:
    parser = argparse.ArgumentParser(description="TCP relay holding every chunk for a fixed delay each way")
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept on (port 0: any free one)")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, required=True, help="hold per chunk, each direction")
    parser.add_argument("--holds", required=True, help="JSON file written on SIGTERM")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
