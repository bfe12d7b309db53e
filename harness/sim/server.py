"""The simulator's WebSocket server: handshake (path, dialect, key), one `Session` per connection,
and `start_in_thread` for tests and `harness run`.

Dialect per connection: beta when the request has `OpenAI-Beta: realtime=v1` or offers the
`openai-beta.realtime-v1` subprotocol, GA otherwise. A client that offers subprotocols gets one
selected back (browsers abort the handshake otherwise); the API-key subprotocol is never echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from harness.protocol import Dialect
from harness.protocol.server_errors import SERVER_ERROR, error_message
from harness.sim.answers import Recognizer
from harness.sim.config import SimConfig
from harness.sim.outbox import ERROR_LANE, OutboxFull, Outgoing
from harness.sim.server_trace import ServerTrace
from harness.sim.session import Session
from harness.sim.voice import AnswerVoice

log = logging.getLogger("harness.sim")

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
KEY_SUBPROTOCOL_PREFIX = "openai-insecure-api-key."
DEFAULT_MODEL = "gpt-realtime"
AUTH_CLOSE_CODE = 1008


@dataclass
class ServerContext:
    """What every session of one server shares."""

    cfg: SimConfig
    trace: ServerTrace
    voice: AnswerVoice
    recognizer: Recognizer
    expected_key: str | None
    counter: Iterator[int] = field(default_factory=itertools.count)
    sessions: set[Session] = field(default_factory=set)


def _dialect(request: Request, offered: Sequence[str]) -> Dialect:
    beta_header = "realtime=v1" in request.headers.get("OpenAI-Beta", "").replace(" ", "")
    return Dialect.BETA if beta_header or BETA_SUBPROTOCOL in offered else Dialect.GA


def _offered(request: Request) -> list[str]:
    values = request.headers.get_all("Sec-WebSocket-Protocol")
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _presented_key(headers: Headers, offered: Sequence[str]) -> str | None:
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    if headers.get("api-key"):
        return headers["api-key"]
    for proto in offered:
        if proto.startswith(KEY_SUBPROTOCOL_PREFIX):
            return proto[len(KEY_SUBPROTOCOL_PREFIX):]
    return None


def _select_subprotocol(connection: ServerConnection, offered: Sequence[str]) -> str | None:
    for choice in ("realtime", BETA_SUBPROTOCOL):
        if choice in offered:
            return choice
    usable = [p for p in offered if not p.startswith(KEY_SUBPROTOCOL_PREFIX)]
    return usable[0] if usable else None


def _process_request(connection: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path).path.rstrip("/")
    if not path.endswith("/realtime"):
        return connection.respond(404, "Not found: the Realtime endpoint is /v1/realtime\n")
    return None


class SimServer:
    """The simulator as an asyncio server: `await start(host, port)`, then `url`, then `await stop()`."""

    def __init__(self, cfg: SimConfig | None = None, trace: ServerTrace | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self.trace = trace or ServerTrace(self.cfg.trace_file, keep_in_memory=self.cfg.trace_in_memory)
        self._server: Server | None = None
        self.url: str | None = None
        self._ctx: ServerContext | None = None

    def prepare(self) -> None:
        """Load corpora and render answer audio (seconds at most); done before accepting connections."""
        recognizer = Recognizer(self.cfg.corpus if isinstance(self.cfg.corpus, tuple) else None)
        voice = AnswerVoice(recognizer.utterances if self.cfg.voice == "corpus" else None)
        voice.prepare()
        self._ctx = ServerContext(self.cfg, self.trace, voice, recognizer, self.cfg.expected_key())

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._ctx is None:
            self.prepare()
        self._server = await serve(
            self._handle, host, port, process_request=_process_request, select_subprotocol=_select_subprotocol,
            compression=None, max_size=self.cfg.max_message_bytes, ping_interval=None, close_timeout=2,
            server_header="harness-sim",
        )
        bound = self._server.sockets[0].getsockname()
        shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"ws://{shown_host}:{bound[1]}/v1/realtime"
        self.trace.record("listen", None, url=self.url, seed=self.cfg.seed,
                          latency=self.cfg.latency_model.describe(), faults=self.cfg.fault_plan.describe())
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.trace.flush()

    async def _handle(self, ws: ServerConnection) -> None:
        ctx = self._ctx
        assert ctx is not None and ws.request is not None
        offered = _offered(ws.request)
        dialect = _dialect(ws.request, offered)
        query = parse_qs(urlsplit(ws.request.path).query)
        model = (query.get("model") or query.get("deployment") or [DEFAULT_MODEL])[0]
        session = Session(ctx, ws, dialect, next(ctx.counter), model)
        ctx.sessions.add(session)
        started = time.perf_counter()
        peer = "%s:%s" % tuple(ws.remote_address[:2]) if ws.remote_address else "?"
        self.trace.record("connect", session.session_id, index=session.index, dialect=dialect.value, model=model,
                          peer=peer)
        writer = asyncio.create_task(session.outbox.run(), name=f"writer {session.session_id}")
        close_code: int | None = None
        try:
            if self._refuse_key(session, offered) or self._refuse_beta(session):
                await writer
                return
            session.open()
            expiry = asyncio.get_running_loop().call_later(session.max_duration_s, self._expire, session)
            try:
                await self._receive(session, ws)
            finally:
                expiry.cancel()
        except OutboxFull as exc:
            self.trace.record("overflow", session.session_id, message=str(exc))
            await ws.close(1008, "client is not reading its events")
        finally:
            session.shutdown()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer
            ctx.sessions.discard(session)
            close_code = ws.close_code
            self.trace.record("close", session.session_id, code=close_code, reason=ws.close_reason,
                              responses=session.responses_started)
            log.info("harness sim: %s %s %s %s, %.1f s, %d responses, close %s", session.session_id, dialect.value,
                     model, peer, time.perf_counter() - started, session.responses_started, close_code)

    async def _receive(self, session: Session, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                t_ns = time.perf_counter_ns()
                if session.outbox.closed:
                    break
                try:
                    if isinstance(message, str):
                        session.handle_text(message, t_ns)
                    else:
                        session.handle_binary(len(message))
                except OutboxFull:
                    raise
                except Exception as exc:  # noqa: BLE001 - one bad event must not end the server
                    log.exception("harness sim: internal error in %s", session.session_id)
                    self.trace.record("internal_error", session.session_id, error=repr(exc))
                    session.send_error(None, error_message("server_error"), type_=SERVER_ERROR)
        except ConnectionClosed:
            pass

    def _refuse_key(self, session: Session, offered: Sequence[str]) -> bool:
        """With require_key: send the service's error and close when the key is missing or wrong."""
        if not self.cfg.require_key:
            return False
        key = _presented_key(session.ws.request.headers, offered)
        expected = self._ctx.expected_key if self._ctx else None
        if key is not None and (expected is None or key == expected):
            return False
        message = error_message("missing_api_key" if key is None else "invalid_api_key")
        self.trace.record("auth_refused", session.session_id, missing=key is None)
        session.send_error("invalid_api_key", message)
        session.outbox.put(Outgoing(action=lambda: session.close_socket(AUTH_CLOSE_CODE, "invalid_api_key"),
                                    lane=ERROR_LANE))
        return True

    def _refuse_beta(self, session: Session) -> bool:
        """With reject_beta: what api.openai.com does to the retired beta shape since 2026-05-07."""
        if not self.cfg.reject_beta or session.dialect is not Dialect.BETA:
            return False
        self.trace.record("beta_refused", session.session_id)
        session.send_error("beta_api_shape_disabled", error_message("beta_api_shape_disabled"))
        session.outbox.put(Outgoing(action=lambda: session.close_socket(4000, "beta_api_shape_disabled"),
                                    lane=ERROR_LANE))
        return True

    def _expire(self, session: Session) -> None:
        minutes = session.max_duration_s / 60
        session.send_error("session_expired", error_message("session_expired", minutes=f"{minutes:g}"))
        session.outbox.put(Outgoing(action=lambda: session.close_socket(1000, "session expired"), lane=ERROR_LANE))


class ThreadedSim:
    """A SimServer running on its own event loop in a daemon thread (see `start_in_thread`)."""

    def __init__(self, cfg: SimConfig | None, host: str, port: int) -> None:
        self.server = SimServer(cfg)
        self.trace = self.server.trace
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="harness-sim", daemon=True)
        self.url = ""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.url = self._loop.run_until_complete(self.server.start(self._host, self._port))
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def start(self, timeout_s: float = 30.0) -> None:
        self.server.prepare()
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the simulator did not start within %.0f s" % timeout_s)
        if self._error is not None:
            raise self._error

    def sessions(self) -> list[str]:
        return self.trace.sessions()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self.trace.close()


@contextlib.contextmanager
def start_in_thread(cfg: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> Iterator[ThreadedSim]:
    """Run the simulator in a background thread; yields an object with `.url` and `.trace`."""
    sim = ThreadedSim(cfg, host, port)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()

