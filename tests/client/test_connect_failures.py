"""A target that refuses, rejects the handshake or says nothing becomes a recorded failure, fast."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.client import SessionSpec, SpecError
from harness.scenarios import run_scenario
from harness.trace import read_trace

DUMMY_KEY = "sk-dummy-DO-NOT-LEAK-4f9a1c"


@contextmanager
def raw_server(handle: Callable[[socket.socket, list[bytes]], None]) -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP server that hands each connection to `handle`; yields (port, requests seen)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    seen: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                handle(conn, seen)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        done.set()
        thread.join(2)
        listener.close()


def _read_request(conn: socket.socket, seen: list[bytes]) -> None:
    conn.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(4096)
        if not part:
            break
        data += part
    seen.append(data)


def _spec(tmp_path: Path, port: int, **kw: object) -> SessionSpec:
    settings: dict[str, object] = {"connect_timeout_s": 1.0, **kw}
    return SessionSpec(url=f"ws://127.0.0.1:{port}/v1/realtime", trace_dir=tmp_path, turns=1,
                       session_id="fail", **settings)  # type: ignore[arg-type]


def _marks(path: Path) -> list[str]:
    return [r["mark"] for r in read_trace(path).records if r["rec"] == "mark"]


def test_a_refused_connection_is_a_connect_failed_mark_and_an_error_footer(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                      # nothing listens there now
    result = run_scenario(_spec(tmp_path, port))
    trace = read_trace(result.trace_path)
    assert result.reason == "error" and result.turns == 0
    assert _marks(result.trace_path) == ["connect_start", "connect_failed"]
    failed = [r for r in trace.records if r.get("mark") == "connect_failed"][0]
    assert "refused" in failed["error"].lower()
    assert trace.complete and trace.footer["reason"] == "error"


def test_a_rejected_handshake_records_the_status_and_never_the_key(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_KEY", DUMMY_KEY)

    def reject(conn: socket.socket, seen: list[bytes]) -> None:
        _read_request(conn, seen)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    with raw_server(reject) as (port, seen):
        result = run_scenario(_spec(tmp_path, port, api_key_env="HARNESS_TEST_KEY",
                                    headers={"X-Team": "voice"}))
    assert f"Authorization: Bearer {DUMMY_KEY}".encode() in seen[0]   # the key was really sent ...
    assert b"X-Team: voice" in seen[0]
    text = result.trace_path.read_text()
    assert DUMMY_KEY not in text and "Bearer" not in text              # ... and never recorded
    assert "401" in [r for r in read_trace(result.trace_path).records if r.get("mark") == "connect_failed"][0]["error"]
    assert result.reason == "error"


def test_an_azure_key_goes_in_the_api_key_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", DUMMY_KEY)

    def reject(conn: socket.socket, seen: list[bytes]) -> None:
        _read_request(conn, seen)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    with raw_server(reject) as (port, seen):
        result = run_scenario(_spec(tmp_path, port, auth="api-key", api_key_env="AZURE_OPENAI_API_KEY"))
    assert f"api-key: {DUMMY_KEY}".encode() in seen[0] and b"Authorization" not in seen[0]
    assert DUMMY_KEY not in result.trace_path.read_text()


def test_a_server_that_never_answers_the_handshake_fails_within_the_connect_timeout(tmp_path: Path) -> None:
    def mute(conn: socket.socket, seen: list[bytes]) -> None:
        _read_request(conn, seen)
        time.sleep(1.5)

    with raw_server(mute) as (port, _seen):
        started = time.monotonic()
        result = run_scenario(_spec(tmp_path, port, connect_timeout_s=0.3))
        elapsed = time.monotonic() - started
    assert result.reason == "error"
    assert "timed out" in read_trace(result.trace_path).records[-1]["error"]
    assert elapsed < 1.4          # bounded by the timeout, not by the server


def test_garbage_instead_of_http_is_a_handshake_failure(tmp_path: Path) -> None:
    def garbage(conn: socket.socket, seen: list[bytes]) -> None:
        _read_request(conn, seen)
        conn.sendall(b"\x00\x01 definitely not http\r\n\r\n")

    with raw_server(garbage) as (port, _seen):
        result = run_scenario(_spec(tmp_path, port))
    assert _marks(result.trace_path)[-1] == "connect_failed"
    assert read_trace(result.trace_path).footer["reason"] == "error"


def test_a_key_in_the_url_query_never_reaches_the_trace_even_in_an_error(tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    spec = _spec(tmp_path, port)
    spec.url = f"ws://127.0.0.1:{port}/openai/realtime?api-version=2025-04-01-preview&api-key={DUMMY_KEY}"
    result = run_scenario(spec)
    text = result.trace_path.read_text()
    assert result.reason == "error" and DUMMY_KEY not in text and "api-key=REDACTED" in text
    assert [r for r in read_trace(result.trace_path).records if r.get("mark") == "connect_failed"]


@pytest.mark.parametrize("url", ["ws://127.0.0.1:99999/v1/realtime?api-key=" + DUMMY_KEY,
                                 "http://127.0.0.1:8765/v1/realtime?api-key=" + DUMMY_KEY, "ws:///no-host"])
def test_a_malformed_target_is_one_clear_user_error_that_does_not_echo_the_key(tmp_path: Path, url: str) -> None:
    with pytest.raises(SpecError) as caught:
        run_scenario(SessionSpec(url=url, trace_dir=tmp_path))
    assert caught.value.user_error and DUMMY_KEY not in str(caught.value)
    assert "ws://HOST:PORT/PATH" in str(caught.value) and "\n" not in str(caught.value)
