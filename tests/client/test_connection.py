"""The sans-I/O connection against a real websockets server: fragments, pings, close codes, stamps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from harness.client.connection import ConnectionLost, SansIOConnection
from harness.client.sync_connection import SyncConnection


@contextmanager
def ws_server(handler: Callable[[ServerConnection], None]) -> Iterator[str]:
    with serve(handler, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        try:
            yield f"ws://127.0.0.1:{port}/v1/realtime"
        finally:
            server.shutdown()
            thread.join(2)


def _drain(conn: Any, limit_s: float = 3.0) -> tuple[list[tuple[int, str]], ConnectionLost | None]:
    got: list[tuple[int, str]] = []
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            item = conn.receive()
        except ConnectionLost as exc:
            return got, exc
        if item is not None:
            got.extend((item[0], text) for text in item[1])
    return got, None


@pytest.mark.parametrize("impl", [SansIOConnection, SyncConnection])
def test_fragments_are_assembled_pings_answered_and_the_close_code_reported(impl: Any) -> None:
    pong = threading.Event()

    def handler(ws: ServerConnection) -> None:
        ws.send(iter(['{"type":"session.', 'created","event_id":"e1"}']))   # two frames, one message
        if ws.ping().wait(2):                 # answered by the client's receive loop
            pong.set()
        ws.send('{"type":"rate_limits.updated"}')
        ws.close(4000, "bye")

    with ws_server(handler) as url:
        conn = impl.open(url, [("X-Probe", "1")], 10.0, poll_s=0.2)
        before = time.perf_counter_ns()
        got, lost = _drain(conn)
        conn.abort()
    assert [text for _, text in got] == ['{"type":"session.created","event_id":"e1"}', '{"type":"rate_limits.updated"}']
    assert all(before <= t_ns <= time.perf_counter_ns() for t_ns, _ in got)
    assert pong.is_set()
    assert lost is not None and lost.code == 4000 and lost.reason == "bye" and lost.by == "server"


def test_a_client_close_is_answered_and_reported_as_the_clients() -> None:
    def handler(ws: ServerConnection) -> None:
        for _ in ws:
            pass

    with ws_server(handler) as url:
        conn = SansIOConnection.open(url, [], 10.0, poll_s=0.2)
        conn.send_text(b'{"type":"input_audio_buffer.clear"}')
        conn.close(1000)
        _, lost = _drain(conn)
        conn.abort()
    assert lost is not None and lost.code == 1000 and lost.by == "client"


def test_sending_after_the_server_went_away_raises_connection_lost() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.close(1001, "going away")

    with ws_server(handler) as url:
        conn = SansIOConnection.open(url, [], 10.0, poll_s=0.2)
        _drain(conn)
        with pytest.raises(ConnectionLost):
            for _ in range(100):          # the first sends may still fit the socket buffer
                conn.send_text(b'{"type":"input_audio_buffer.clear"}')
                time.sleep(0.01)
        conn.abort()


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
def test_frames_of_every_length_class_reach_a_real_server_intact(size: int) -> None:
    def echo(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    text = ("x" * size)[:size]
    payload = '{"type":"conversation.item.create","pad":"' + text + '"}'
    with ws_server(echo) as url:
        conn = SansIOConnection.open(url, [], 10.0, poll_s=0.2)
        for _ in range(3):              # several frames: the mask changes per frame
            conn.send_text(payload)
        got: list[str] = []
        end = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < end:
            item = conn.receive()
            if item is not None:
                got.extend(item[1])
        conn.close()
        conn.abort()
    assert got == [payload] * 3


def test_a_target_that_stops_reading_never_blocks_the_sender_and_is_failed_past_the_backlog_limit() -> None:
    import socket as socket_module

    from websockets.utils import accept_key

    listener = socket_module.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    held: list[socket_module.socket] = []

    def handshake_then_stop_reading() -> None:
        conn, _ = listener.accept()
        held.append(conn)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = [line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:")][0].decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n").encode())

    thread = threading.Thread(target=handshake_then_stop_reading, daemon=True)
    thread.start()
    conn = SansIOConnection.open(f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/realtime", [], 3.0, poll_s=0.2)
    message = b'{"type":"input_audio_buffer.append","audio":"' + b"A" * 65536 + b'"}'
    slowest_s, backlog_seen, lost = 0.0, 0, None
    for _ in range(2000):                         # at most ~130 MB: bounded whatever the buffers
        started = time.monotonic()
        try:
            backlog_seen = max(backlog_seen, conn.send_text(message))
        except ConnectionLost as exc:
            lost = exc
            break
        slowest_s = max(slowest_s, time.monotonic() - started)
    conn.abort()
    listener.close()
    for sock in held:
        sock.close()
    assert backlog_seen > 0                       # the kernel buffers filled ...
    assert slowest_s < 0.5                        # ... and no send waited for the peer
    assert lost is not None and "stopped reading" in str(lost)
