"""The simulator's WebSocket server: handshake (path, dialect, key), one `Session` per connection,
and `start_in_thread` for tests.

Connections are asyncio Protocols (`connection.py`) over websockets' sans-I/O protocol; each
message is handled in the callback it arrived in. The server also runs the lateness probe and
writes the lateness summary to its trace (`lateness.py`). `workers.py` runs several of these
servers in forked processes on one port.

Dialect per connection: beta when the request has `OpenAI-Beta: realtime=v1` or offers the
`openai-beta.realtime-v1` subprotocol, GA otherwise. A client that offers subprotocols gets one
selected back (browsers abort the handshake otherwise); the API-key subprotocol is never echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request

from harness.protocol import Dialect
from harness.protocol.server_errors import SERVER_ERROR, error_message
from harness.sim.answers import Recognizer
from harness.sim.config import SimConfig, SimConfigError
from harness.sim.connection import BETA_SUBPROTOCOL, KEY_SUBPROTOCOL_PREFIX, SimConnection
from harness.sim.lateness import PROBE_INTERVAL_S, Lateness
from harness.sim.live_session import LiveSession, is_live_path
from harness.sim.outbox import ERROR_LANE, OutboxFull, Outgoing
from harness.sim.server_trace import ServerTrace
from harness.sim.session import Session
from harness.sim.voice import AnswerVoice

log = logging.getLogger("harness.sim")

DEFAULT_MODEL = "gpt-realtime"
AUTH_CLOSE_CODE = 1008
LATENESS_RECORD_NS = 5_000_000_000  # how often the cumulative lateness summary is written to the trace
PROBE_INTERVAL_NS = int(PROBE_INTERVAL_S * 1e9)
GC_RECORD_NS = 5_000_000  # garbage collections at least this long get a `gc` record


@dataclass
class ServerContext:
    """What every session of one server process shares."""

    cfg: SimConfig
    trace: ServerTrace
    voice: AnswerVoice
    recognizer: Recognizer
    expected_key: str | None
    lateness: Lateness = field(default_factory=Lateness)
    next_index: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)
    sessions: set[Session] = field(default_factory=set)


def _offered(request: Request) -> list[str]:
    values = request.headers.get_all("Sec-WebSocket-Protocol")
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _dialect(request: Request, offered: Sequence[str]) -> Dialect:
    beta_header = "realtime=v1" in request.headers.get("OpenAI-Beta", "").replace(" ", "")
    return Dialect.BETA if beta_header or BETA_SUBPROTOCOL in offered else Dialect.GA


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


class SimServer:
    """The simulator as an asyncio server: `await start(host, port)`, then `url`, then `await stop()`.

    `worker` names this process among several serving one port (`harness sim --processes N`);
    `next_index` then hands out session numbers shared by all of them, so the seeded draws of the
    N-th session are the same whichever process serves it.
    """

    def __init__(self, cfg: SimConfig | None = None, trace: ServerTrace | None = None, worker: int | None = None,
                 next_index: Callable[[], int] | None = None) -> None:
        self.cfg = cfg or SimConfig()
        self.trace = trace or ServerTrace(self.cfg.trace_file, keep_in_memory=self.cfg.trace_in_memory,
                                          live=self.cfg.trace_live)
        self.worker = worker
        self._next_index = next_index
        self._server: asyncio.Server | None = None
        self.url: str | None = None
        self._ctx: ServerContext | None = None
        self.connections: set[SimConnection] = set()
        self.serving = False
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due = 0
        self._lateness_at = 0
        self._gc_started = 0

    @property
    def lateness(self) -> Lateness:
        assert self._ctx is not None
        return self._ctx.lateness

    def prepare(self) -> None:
        """Load corpora and render answer audio (seconds at most); done before accepting connections."""
        if self._ctx is not None:
            return
        recognizer = Recognizer(self.cfg.corpus if isinstance(self.cfg.corpus, tuple) else None)
        voice = AnswerVoice(recognizer.utterances if self.cfg.voice == "corpus" else None)
        voice.prepare(delta_ms=self.cfg.delta_ms)
        self.adopt((voice, recognizer))

    @property
    def prepared(self) -> tuple[AnswerVoice, Recognizer]:
        """What `prepare` built, for another server of the same settings (a forked worker) to `adopt`."""
        self.prepare()
        assert self._ctx is not None
        return self._ctx.voice, self._ctx.recognizer

    def adopt(self, prepared: tuple[AnswerVoice, Recognizer]) -> None:
        voice, recognizer = prepared
        self._ctx = ServerContext(self.cfg, self.trace, voice, recognizer, self.cfg.expected_key())
        if self._next_index is not None:
            self._ctx.next_index = self._next_index

    async def start(self, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None) -> str:
        if self._ctx is None:
            self.prepare()
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(lambda: SimConnection(self), sock=sock, backlog=1024)
        else:
            self._server = await loop.create_server(lambda: SimConnection(self), host, port, backlog=1024)
        self.serving = True
        bound = self._server.sockets[0].getsockname()
        shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"ws://{shown_host}:{bound[1]}/v1/realtime"
        extra = {} if self.worker is None else {"worker": self.worker}
        self.trace.record("listen", None, url=self.url, seed=self.cfg.seed, **extra,
                          latency=self.cfg.latency_model.describe(), faults=self.cfg.fault_plan.describe(),
                          settings=self.cfg.describe())
        self._probe_due = time.perf_counter_ns() + PROBE_INTERVAL_NS
        self._lateness_at = self._probe_due + LATENESS_RECORD_NS
        self._probe = loop.call_later(PROBE_INTERVAL_S, self._tick)
        if self.cfg.starve_ms:
            _start_starving(self.cfg.starve_ms, self.trace)
        gc.callbacks.append(self._gc_watch)
        return self.url

    def _gc_watch(self, phase: str, info: dict[str, Any]) -> None:
        """A collection that holds the interpreter for long stalls every session: say so in the trace."""
        if phase == "start":
            self._gc_started = time.perf_counter_ns()
        elif self._gc_started:
            took = time.perf_counter_ns() - self._gc_started
            if took >= GC_RECORD_NS:
                self.trace.record("gc", None, generation=info.get("generation"), ms=round(took / 1e6, 1),
                                  collected=info.get("collected"))

    async def stop(self) -> None:
        self.serving = False
        if self._gc_watch in gc.callbacks:
            gc.callbacks.remove(self._gc_watch)
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if self._server is not None:
            self._server.close()
            live = list(self.connections)
            if live:
                await asyncio.wait([asyncio.ensure_future(conn.close(1001, "")) for conn in live], timeout=5)
                for conn in list(self.connections):
                    conn.abort()
                await asyncio.sleep(0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        if self._ctx is not None:
            self.record_lateness()
        self.trace.flush()

    def record_lateness(self) -> dict[str, Any]:
        """Write the cumulative lateness summary to the trace (a `lateness` record) and return it."""
        assert self._ctx is not None
        summary = self._ctx.lateness.summary()
        extra = {} if self.worker is None else {"worker": self.worker}
        self.trace.record("lateness", None, **extra, **summary)
        return summary

    def _tick(self) -> None:
        """The loop's timer probe (see lateness.py), and now and then the lateness summary.

        Measured on perf_counter_ns, not loop.time() (uvloop's is the iteration's cached milliseconds)."""
        now = time.perf_counter_ns()
        assert self._ctx is not None
        self._ctx.lateness.add("timer", now - self._probe_due)
        if now >= self._lateness_at:
            self._lateness_at = now + LATENESS_RECORD_NS
            self.record_lateness()
        self._probe_due = max(self._probe_due + PROBE_INTERVAL_NS, now)
        wait_ms = -(-(self._probe_due - now) // 1_000_000)  # whole ms, rounded up (see Outbox._arm)
        self._probe = asyncio.get_running_loop().call_later(wait_ms / 1000.0, self._tick)

    # ---- called by SimConnection
    def session_opened(self, conn: SimConnection) -> None:
        ctx = self._ctx
        assert ctx is not None and conn.request is not None
        offered = _offered(conn.request)
        dialect = _dialect(conn.request, offered)
        query = parse_qs(urlsplit(conn.request.path).query)
        model = (query.get("model") or query.get("deployment") or [DEFAULT_MODEL])[0]
        if is_live_path(conn.request.path):  # the Live front-end (live_session.py) over the same engine
            session: Session = LiveSession(ctx, conn, ctx.next_index())
            dialect, model = Dialect.LIVE, session.settings.model
        else:
            session = Session(ctx, conn, dialect, ctx.next_index(), model)
        conn.session = session
        ctx.sessions.add(session)
        session.started_s = time.perf_counter()
        peer = "%s:%s" % tuple(conn.remote_address[:2]) if conn.remote_address else "?"
        session.peer = peer
        extra = {} if self.worker is None else {"worker": self.worker}
        self.trace.record("connect", session.session_id, index=session.index, dialect=dialect.value, model=model,
                          peer=peer, **extra)
        for fault in session.session_faults.values():
            self.trace.record("fault", session.session_id, kind=fault.kind, params=dict(fault.params))
        try:
            if self._refuse_key(session, offered) or self._refuse_beta(session) or self._refuse_fault(session):
                return
            session.open()
            session.expiry = asyncio.get_running_loop().call_later(session.max_duration_s, self._expire, session)
        except OutboxFull as exc:
            self._overflow(session, exc)

    def deliver(self, conn: SimConnection, data: bytes | None, size: int, t_ns: int) -> None:
        """One complete client text message as UTF-8 bytes (None: a binary one of `size` bytes), arrived at `t_ns`."""
        session = conn.session
        if session is None or session.outbox.closed:
            return
        try:
            if data is not None:
                session.handle_text(data, t_ns)
            else:
                session.handle_binary(size)
        except UnicodeDecodeError as exc:
            conn.fail_invalid_utf8(exc)
        except OutboxFull as exc:
            self._overflow(session, exc)
        except Exception as exc:  # noqa: BLE001 - one bad event must not end the server
            log.exception("harness sim: internal error in %s", session.session_id)
            self.trace.record("internal_error", session.session_id, error=repr(exc))
            with contextlib.suppress(OutboxFull):
                session.send_error(None, error_message("server_error"), type_=SERVER_ERROR)

    def session_ended(self, conn: SimConnection) -> None:
        session = conn.session
        ctx = self._ctx
        assert ctx is not None and session is not None
        if session.expiry is not None:
            session.expiry.cancel()
        session.shutdown()
        ctx.sessions.discard(session)
        close_code = conn.close_code
        self.trace.record("close", session.session_id, code=close_code, reason=conn.close_reason,
                          responses=session.responses_started)
        log.info("harness sim: %s %s %s %s, %.1f s, %d responses, close %s", session.session_id,
                 session.dialect.value, session.settings.model, session.peer, time.perf_counter() - session.started_s,
                 session.responses_started, close_code)

    def _overflow(self, session: Session, exc: OutboxFull) -> None:
        self.trace.record("overflow", session.session_id, message=str(exc))
        session.outbox.close()
        asyncio.ensure_future(session.ws.close(1008, "client is not reading its events"))

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

    def _refuse_fault(self, session: Session) -> bool:
        """The refuse fault: a close with its code and reason before session.created, and no error event."""
        fault = session.session_faults.get("refuse")
        if fault is None:
            return False
        code, reason = int(fault.number("code")), fault.text("reason")
        session.outbox.put(Outgoing(action=lambda: session.close_socket(code, reason), lane=ERROR_LANE))
        return True

    def _expire(self, session: Session) -> None:
        minutes = session.max_duration_s / 60
        with contextlib.suppress(OutboxFull):
            session.send_error("session_expired", error_message("session_expired", minutes=f"{minutes:g}"))
            session.outbox.put(Outgoing(action=lambda: session.close_socket(1000, "session expired"),
                                        lane=ERROR_LANE))


def _start_starving(hold_ms: int, trace: ServerTrace) -> None:
    """The overload self-test (SimConfig.starve_ms): a thread that keeps the interpreter for `hold_ms`
    and then lets go for 100 ms, forever, so the event loop runs late by up to `hold_ms`."""
    import sys

    sys.setswitchinterval(max(0.005, hold_ms / 1000.0))  # a running thread keeps the interpreter this long
    trace.record("starving", None, hold_ms=hold_ms)

    def hog() -> None:
        while True:
            time.sleep(0.1)
            end = time.perf_counter() + hold_ms / 1000.0
            while time.perf_counter() < end:
                pass

    threading.Thread(target=hog, name="harness-sim-starve", daemon=True).start()


class ThreadedSim:
    """A SimServer running on its own event loop in a daemon thread (see `start_in_thread`)."""

    def __init__(self, cfg: SimConfig | None, host: str, port: int) -> None:
        if cfg is not None and cfg.processes > 1:
            raise SimConfigError(f"processes={cfg.processes}: a simulator in a thread is one process; "
                                 "use start_in_process (or harness sim --processes N)")
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

