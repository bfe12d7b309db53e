"""The session driver: one simulated caller's connection, audio stream, inbox and trace.

`Session` opens the WebSocket (auth headers from the environment, dialect header), waits for
`session.created`, sends `session.update`, starts the receive loop and registers the session's
endless audio stream with the process pacer. Scenarios then drive it with a handful of verbs:
`speak` (queue an utterance as a turn), `send` (any client event, traced), `events` (the
inbox, with a deadline, stop flag and playout ends folded in), `stop_playout` and `end_turn`.

Every exit path closes the trace: `with Session(spec) as s:` writes the footer with reason
"done", "closed" (the server ended it), "stopped" (stop flag, Ctrl-C) or "error" (connect
failure, exception); a failed connect is a `connect_failed` mark, never an exception.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from typing import Any, Callable, Iterator

import websockets

from harness.client.clips import Clip, silence_clip, utterance_clip
from harness.client import live_start
from harness.client.connection import ConnectFailed, ConnectionLost, SansIOConnection
from harness.client.clock import REAL_CLOCK, Clock
from harness.client.pacer import AudioStream, Pacer, get_pacer
from harness.client.playout import Player
from harness.client.receiver import Incoming, Receiver
from harness.client.spec import SessionSpec
from harness.client.sync_connection import SyncConnection
from harness.protocol import AudioFormat, Dialect, Kind, encode, make_event, render_session_update
from harness.metrics import TurnMeter
from harness.protocol.config_drift import config_drift, session_update_ignored
from harness.protocol.responses import ResponseFacts
from harness.trace import TraceRecorder, redact_url
from harness.trace.scrub import SECRET_QUERY_KEYS
from harness.trace.vocabulary import Mark

STOP_POLL_S = 1.0
CLOSE_RECORD_WAIT_S = 1.0   # how long a session whose send failed waits for the receive loop's close record      # fallback stop-flag check before streaming starts (then the pacer wakes waits)
TICK_MS = 250.0        # while streaming, the pacer wakes the session's waits this often
RECEIVE_POLL_S = 5.0   # socket timeout: bounds a blocked send; receives end by close, not by polling
# Write buffered trace records this often: small batches keep each flush (JSON encoding, which
# blocks the process's pacer while it runs) well under a millisecond, and bound memory and GC work.
FLUSH_EVERY_NS = 250_000_000
BETA_HEADER = ("OpenAI-Beta", "realtime=v1")


def error_words(item: Incoming) -> str:
    """An `error` event's code and message."""
    error = (item.event.get("error") if item.event is not None else None) or {}
    if not isinstance(error, dict):
        return str(error)
    code = error.get("code") or error.get("type")
    return f"{code}: {error.get('message')}" if code else str(error.get("message"))


class SessionStopped(Exception):
    """The stop flag was set: the session ends now (trace reason "stopped")."""


class SessionClosed(Exception):
    """The connection ended (server close, socket error) while the scenario was waiting."""


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    from importlib import metadata

    try:
        harness_version = metadata.version("realtime-voice-harness")
    except metadata.PackageNotFoundError:
        harness_version = "unknown"
    return {"python": sys.version.split()[0], "harness": harness_version, "websockets": websockets.__version__}


class Session:
    def __init__(self, spec: SessionSpec, stop: threading.Event | None = None,
                 on_turn_end: Callable[[dict[str, Any]], None] | None = None, corpus_name: str = "",
                 clock: Clock = REAL_CLOCK, connector: Callable[..., Any] | None = None,
                 pacer: Pacer | None = None) -> None:
        """`clock`, `connector` (url, headers, timeout_s, poll_s -> connection) and `pacer` are
        injected by tests that run a session on virtual time against an in-memory server; a
        connection with `attach_receiver` is then fed by its server, with no receive thread."""
        spec.check()
        self.spec = spec
        self.clock = clock
        self._connector = connector
        self._pacer = pacer
        self.fmt = AudioFormat(spec.fmt)
        self.dialect = Dialect(spec.dialect)
        self.stop_flag = stop if stop is not None else threading.Event()
        self.on_turn_end = on_turn_end
        self.inbox: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self.url = spec.session_url()
        self.record_lock = threading.Lock()     # orders the trace's records (and the meter fed by them)
        self.rec = TraceRecorder(spec.trace_path(), header={
            "run_id": spec.run_id, "session_id": spec.session_id, "worker": spec.worker,
            "target": self.url, "dialect": self.dialect.value, "format": self.fmt.value,
            "corpus": corpus_name, "scenario": spec.scenario, "scenario_params": dict(spec.scenario_params),
            "session_config": None, "chunk_ms": spec.chunk_ms, "rtf": spec.rtf, "versions": dict(_versions()),
            "lateness_limit_ms": spec.lateness_limit_ms, "jitter_ms": spec.jitter_ms,
        }, lock=self.record_lock, flush_lock=threading.Lock(), clock_ns=clock.now_ns)
        # The turn meter sees every record as it is written: a turn's record exists the moment
        # its turn_end mark does, and the scenario asks it which response answers a turn.
        self.meter = TurnMeter(self.rec.header)
        self.rec.observer = self.meter.add
        self.rec.append_observer = self.meter.add_append
        self._delivered = 0     # turn records handed to on_turn_end so far
        self.conn: SansIOConnection | SyncConnection | None = None
        self.config: Any = None    # the session config the target acknowledged (set by open)
        self.receiver: Receiver | None = None
        self.stream: AudioStream | None = None
        self.silence: Clip = silence_clip(self.fmt, spec.chunk_ms, self.dialect)
        self.turns_started = 0
        self.turns_ok = 0
        self.open_turns: set[int] = set()
        self.reason: str | None = None
        self.error: str | None = None
        self._recv_thread: threading.Thread | None = None
        self._ended_players: set[str] = set()
        self._flushed_ns = clock.now_ns()
        self._checked_k = 0     # audio chunks sent when the state tables last heard of appends
        self._rtt_interval_ns = int(spec.rtt_interval_s * 1e9)
        self._next_ping_ns = 0
        self._append_probe = make_event(Kind.INPUT_AUDIO_APPEND, self.dialect, audio="")

    @property
    def trace_path(self) -> Path:
        return self.rec.path

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, config: Any, background: Clip | None = None) -> bool:
        """Connect, configure and start streaming. False (recorded) when the target failed.

        `background` replaces the silence the stream sends between utterances (from its chunk 0).
        """
        spec = self.spec
        headers = spec.handshake_headers()
        if self.dialect is Dialect.BETA:
            headers.append(BETA_HEADER)
        self.rec.mark(Mark.CONNECT_START, url=self.rec.header["target"])
        impl = SyncConnection if spec.ws_impl == "sync" else SansIOConnection
        connect = self._connector or impl.open
        try:
            self.conn = connect(self.url, headers, spec.connect_timeout_s, poll_s=RECEIVE_POLL_S)
        except ConnectFailed as exc:
            self._fail("connect_failed", self._scrub(str(exc)))
            return False
        self.rec.mark(Mark.CONNECTED, status=101)
        if self._rtt_interval_ns and hasattr(self.conn, "on_pong"):
            self.conn.on_pong = self._record_rtt
        live = self.meter.live
        self.receiver = Receiver(self.conn, self.rec, self.fmt, self.inbox, spec.jitter_ms, self.dialect,
                                 on_speech_started=self._speech_started_checks,
                                 answer_of=live.answer_of_chunk if live is not None else None)
        attach = getattr(self.conn, "attach_receiver", None)
        if attach is not None:
            attach(self.receiver)        # an in-memory server hands its frames to the receiver
        else:
            self._recv_thread = threading.Thread(target=self.receiver.run, name=f"recv-{spec.session_id}", daemon=True)
            self._recv_thread.start()
        if self.dialect is Dialect.LIVE:
            if not live_start.start_live_session(self, config):
                return False
        elif not self._configure(config):
            return False
        self.stream = AudioStream(self.conn.send_text, self.rec, background or self.silence, chunk_ms=spec.chunk_ms,
                                  rtf=spec.rtf, lateness_limit_ms=spec.lateness_limit_ms, notify=self._notify,
                                  stop_flag=self.stop_flag,
                                  tick_chunks=max(1, int(TICK_MS * spec.rtf / spec.chunk_ms)))
        pacer = self._pacer or get_pacer()
        pacer.add(self.stream, start=self._pacer is None)   # an injected pacer is stepped by its owner
        self.rec.mark(Mark.STREAM_START, t0_ns=self.stream.t0_ns, chunk_ms=spec.chunk_ms, rtf=spec.rtf)
        self.rec.flush()
        return True

    def _configure(self, config: Any) -> bool:
        """Realtime: wait for session.created, send session.update, wait for its acknowledgement."""
        spec = self.spec
        # Until the session is configured, the target refusing it (an error, a close) is a failed
        # connection in the target's own words: nothing about the session could be measured.
        try:
            created = self.wait_for((Kind.SESSION_CREATED, Kind.ERROR), spec.connect_timeout_s)
            if created is None or created.kind is Kind.ERROR:
                self._fail("connect_failed", "no session.created within the connect timeout" if created is None
                           else f"the target answered with an error before session.created: {error_words(created)}")
                return False
            body = render_session_update(config, self.dialect)
            self.rec.header["session_config"] = body   # not yet flushed: the header is the first line
            self.send(Kind.SESSION_UPDATE, session=body)
            answer = self.wait_for((Kind.SESSION_UPDATED, Kind.TRANSCRIPTION_SESSION_UPDATED, Kind.ERROR),
                                   spec.connect_timeout_s)
        except SessionClosed:
            self._fail("connect_failed", f"the target closed the session before it started ({self.close_words()})")
            return False
        if answer is None or answer.kind is Kind.ERROR:
            detail = error_words(answer) if answer is not None else "no answer within the connect timeout"
            self._fail("connect_failed", f"session.update not accepted: {detail}")
            return False
        self.config = config
        self._check_acknowledged(config, created, answer)
        return True

    def _check_acknowledged(self, config: Any, created: Incoming, answer: Incoming) -> None:
        """Compare the session the target acknowledged with the one asked for: each difference
        is a conformance finding (both objects stay in the trace: the header and the recvs)."""
        acknowledged = answer.event.get("session") if answer.event is not None else None
        initial = created.event.get("session") if created.event is not None else None
        event_type = answer.event.type if answer.event is not None else None
        for drift in config_drift(config, acknowledged, self.dialect):
            self.rec.violation(answer.t_ns, "session_config_drift", "remote", str(drift), event_type)
        if session_update_ignored(config, initial, acknowledged, self.dialect):
            self.rec.violation(answer.t_ns, "session_update_ignored", "remote",
                               "session.updated holds the initial session's values where the update asked for others",
                               event_type)

    def _speech_started_checks(self, t_ns: int) -> None:
        """speech_started is only right with turn detection on and after the caller sent speech."""
        if self.config is not None and self.config.turn_detection is None:
            self.rec.violation(t_ns, "vad_event_without_turn_detection", "remote",
                               "speech_started although the session has turn detection off", None)
        elif not self.meter.index.speech_sent:
            self.rec.violation(t_ns, "speech_started_before_speech", "remote",
                               f"speech_started {(t_ns - self.rec.header['clock']['mono_ns']) / 1e6:.0f} ms into the "
                               "session, before the caller had sent any speech", None)

    def _unfinished_errors(self) -> None:
        """Responses that got a server_error and never their response.done."""
        for facts in self.meter.index.log.responses.values():
            if facts.server_errors and facts.done_ns is None:
                first = facts.server_errors[0]
                self.rec.violation(first["t_ns"], "error_without_response_done", "remote",
                                   f"response {facts.id}: {first.get('code')}: {first.get('message')} and no "
                                   "response.done after it", None)

    def fail_connect(self, message: str) -> None:
        """The target refused the session before it started (recorded, in its own words, scrubbed)."""
        self._fail("connect_failed", self._scrub(message))

    def _fail(self, mark: str, message: str) -> None:
        self.error = message
        if mark == "connect_failed":
            self.rec.mark(Mark.CONNECT_FAILED, error=message)
        else:
            self.rec.mark(Mark.ERROR, message=message)
        self.reason = "error"

    def _await_close_record(self, why: str) -> None:
        """A send found the connection gone before the receive loop said so: let the receive loop
        record how it ended (bounded), so the turns it cut end after the close is on record."""
        thread = self._recv_thread
        if thread is not None and thread.is_alive():
            thread.join(CLOSE_RECORD_WAIT_S)
        if self.meter.index.close_ns is None:
            lost = self.receiver.lost if self.receiver is not None else None
            self.rec.mark(Mark.CLOSE, code=lost.code if lost else None, reason=lost.reason if lost else why,
                          by=lost.by if lost else "server")

    def close_words(self) -> str:
        """How the connection ended, in the target's words: close code and reason."""
        lost = self.receiver.lost if self.receiver is not None else None
        if lost is None:
            return "connection closed"
        reason = f" {lost.reason!r}" if lost.reason else ""
        return self._scrub(f"close code {lost.code}{reason}, by the {lost.by}")

    def _scrub(self, text: str) -> str:
        """An error message without the key, header values or credentials in the URL's query."""
        text = text.replace(self.spec.url, redact_url(self.spec.url)).replace(self.url, redact_url(self.url))
        query = [value for key, value in parse_qsl(urlsplit(self.spec.url).query) if key.lower() in SECRET_QUERY_KEYS]
        for secret in [*self.spec.secret_values(), *query]:
            if secret:
                text = text.replace(secret, "REDACTED")
        return text

    def close(self, reason: str | None = None) -> None:
        """Stop streaming, close the socket (bounded), settle the players, write the footer."""
        reason = reason or self.reason or "done"
        if self.stream is not None:
            self.stream.close()
        conn, thread = self.conn, self._recv_thread
        if conn is not None:
            if thread is not None and thread.is_alive():
                conn.close(1000)    # the receive loop records the close when the server answers
                thread.join(1.0)
            conn.abort()
            if thread is not None:
                thread.join(1.0)
        self._settle_players(final=True)
        self.reason = reason
        self._unfinished_errors()
        self.rec.close(reason)      # the footer: the meter records the turns still open
        self._deliver_records()
        self._release()

    def _release(self) -> None:
        """Drop the callbacks that point back at this session from its connection, receiver and
        stream: an ended session is then freed by reference counting, not left as cyclic garbage
        for a full collection, which the load process defers for the whole run (harness.runtime)."""
        if self.conn is not None and hasattr(self.conn, "on_pong"):
            self.conn.on_pong = None
        if self.receiver is not None:
            self.receiver.release()
        if self.stream is not None:
            self.stream.release()

    def now_ns(self) -> int:
        """The session's clock (the trace's time base)."""
        return self.clock.now_ns()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            self.close()
            return False
        if issubclass(exc_type, SessionStopped) or not issubclass(exc_type, Exception):
            # The stop flag, or a BaseException that means "stop now": KeyboardInterrupt, SystemExit,
            # and the GreenletExit with which Locust ends its users. Turns in flight stay open (no
            # turn_end): they were cut by the operator, not failed by the target.
            self.rec.mark(Mark.STOPPED, why="stop flag" if exc_type is SessionStopped else exc_type.__name__)
            self.close("stopped")
            return exc_type is SessionStopped
        if issubclass(exc_type, SessionClosed):
            self._await_close_record(str(exc))
            if not self.meter.matcher.order:    # closed before its first turn began: refused
                self._fail("connect_failed", f"the target closed the session before its first turn "
                                             f"({self.close_words()})")
            self._end_open_turns("error")
            self.close("closed")
            return True
        self.error = self._scrub(f"{exc_type.__name__}: {exc}")
        self.rec.mark(Mark.ERROR, message=self.error)
        self._end_open_turns("error")
        self.close("error")
        return False

    # -- sending ------------------------------------------------------------------------------
    def send(self, kind: Kind, *, mark: str | None = None, mark_fields: dict[str, Any] | None = None,
             **fields: Any) -> int:
        """Send one client event (not audio: the pacer sends appends); returns the send time.

        `mark` names a mark to record at the same instant (e.g. "cancel_sent"), with `mark_fields`.
        """
        event = make_event(kind, self.dialect, **fields)
        text = encode(event)
        assert self.conn is not None
        t_ns = self.clock.now_ns()
        try:
            self.conn.send_text(text)
        except ConnectionLost as exc:
            self.rec.mark(Mark.ERROR, message=f"send {event.type} failed: {exc}")
            raise SessionClosed(str(exc)) from None
        self.rec.send(t_ns, event.to_dict(), self.fmt.bytes_per_ms)
        if mark is not None:
            self.rec.mark(mark, t_ns, **(mark_fields or {}))
        if self.receiver is not None:
            if self.stream is not None and self.stream.k != self._checked_k:
                # The pacer's appends bypass the state tables (per-chunk checks cost the hot path);
                # one probe tells them audio was appended since the last client event.
                self._checked_k = self.stream.k
                self.receiver.observe_sent(t_ns, self._append_probe)
            self.receiver.observe_sent(t_ns, event)
        return t_ns

    def speak(self, clip: Clip, expect: str = "response") -> int:
        """Queue `clip` as the next turn; returns the turn number. The pacer writes its marks."""
        assert self.stream is not None
        turn = self.turns_started
        self.turns_started += 1
        self.open_turns.add(turn)
        self.stream.play(clip, turn, expect)
        return turn

    def utterance(self, utt: Any) -> Clip:
        return utterance_clip(utt, self.fmt, self.spec.chunk_ms, self.dialect)

    def set_background(self, clip: Clip | None) -> None:
        assert self.stream is not None
        self.stream.set_background(clip or self.silence)

    def _deliver_records(self) -> None:
        """Hand the turn records the meter produced since last time to `on_turn_end` (here, in the
        scenario's thread, not inside the record path of the pacer or receiver)."""
        records = self.meter.records
        while self._delivered < len(records):
            record = records[self._delivered]
            self._delivered += 1
            if self.on_turn_end is not None:
                self.on_turn_end(record)

    def _record_rtt(self, sent_ns: int, arrival_ns: int) -> None:
        """A pong came (receive loop): one `rtt` mark at its arrival."""
        self.rec.mark(Mark.RTT, arrival_ns, rtt_ms=(arrival_ns - sent_ns) / 1e6, sent_ns=sent_ns)

    def _ping_if_due(self, now_ns: int) -> None:
        """A WebSocket ping every `rtt_interval_s` while streaming (the session's own thread, never
        the pacer: one small control frame)."""
        if not self._rtt_interval_ns or now_ns < self._next_ping_ns or self.stream is None:
            return
        self._next_ping_ns = now_ns + self._rtt_interval_ns
        send_ping = getattr(self.conn, "send_ping", None)
        if send_ping is not None:
            try:
                send_ping()
            except ConnectionLost:
                pass        # the receive loop reports the close

    def _notify(self, what: str, turn: int | None, t_ns: int) -> None:
        self.inbox.put(Incoming(t_ns, local=what, turn=turn))

    # -- waiting ------------------------------------------------------------------------------
    def events(self, timeout_s: float) -> Iterator[Incoming]:
        """Inbox items until `timeout_s` passes (the loop just ends: the caller records a timeout).

        Raises SessionStopped when the stop flag is set, SessionClosed when the connection ended.
        Playout ends are produced here, when their time comes, as `local="playout_end"` items.
        """
        clock = self.clock
        deadline = clock.now_ns() + int(timeout_s * 1e9)
        while True:
            if self.stop_flag.is_set():
                raise SessionStopped()
            ended = self._settle_players(final=False)
            if ended is not None:
                yield ended
                continue
            now = clock.now_ns()
            if now - self._flushed_ns > FLUSH_EVERY_NS:
                self.rec.flush()
                self._flushed_ns = now
            self._ping_if_due(now)
            if now >= deadline:
                return
            wake = min(deadline, now + int(STOP_POLL_S * 1e9), self._next_playout_end_ns())
            if self.meter.live is not None:     # Live answers end by going quiet: wake when one does
                live_start.tick(self, now)
                wake = min(wake, self.meter.live.next_quiet_ns() or wake)
            try:
                item = clock.wait(self.inbox, max(0, wake - now) / 1e9)
            except queue.Empty:
                continue
            if item.local == "tick":
                continue
            if item.local == "stop":
                raise SessionStopped()
            if item.local == "closed":
                raise SessionClosed(self.receiver.lost.reason if self.receiver and self.receiver.lost else "closed")
            if item.local == "stream_failed":
                raise SessionClosed("audio send failed")
            yield item

    def wait_for(self, kinds: Kind | tuple[Kind, ...], timeout_s: float) -> Incoming | None:
        """The first event of one of `kinds` within `timeout_s`, else None (others are skipped)."""
        wanted = kinds if isinstance(kinds, tuple) else (kinds,)
        for item in self.events(timeout_s):
            if item.kind in wanted:
                return item
        return None

    def pause(self, seconds: float) -> None:
        """Let time pass (audio keeps streaming, playout ends keep being recorded)."""
        for _ in self.events(seconds):
            pass

    # -- responses and playout ---------------------------------------------------------------
    def response(self, response_id: str | None) -> ResponseFacts | None:
        """What the server said of this response so far (the meter's record of it)."""
        return self.meter.index.log.get(response_id)

    def player(self, response_id: str | None) -> Player | None:
        """The caller's playback of this response's audio (None before any audio came)."""
        if self.receiver is None or response_id is None:
            return None
        return self.receiver.players.get(response_id)

    def stop_playout(self, response_id: str, at_ns: int, reason: str) -> float | None:
        """Stop the response's playback at `at_ns`; returns the played ms (None if never started)."""
        player = self.player(response_id)
        if player is None or not player.started or response_id in self._ended_players:
            return None
        if player.end_ns is not None and player.audio_done and player.end_ns <= at_ns:
            return None     # already over: it ended on its own
        played = player.stop(at_ns)
        self._ended_players.add(response_id)
        self.rec.mark(Mark.PLAYOUT_STOP, at_ns, response_id=response_id, played_ms=played, reason=reason)
        return played

    def _next_playout_end_ns(self) -> int:
        soonest = 1 << 62
        if self.receiver is None:
            return soonest
        for rid, player in list(self.receiver.players.items()):
            if rid not in self._ended_players and player.audio_done and player.end_ns is not None:
                soonest = min(soonest, player.end_ns)
        return soonest

    def _settle_players(self, final: bool) -> Incoming | None:
        """Record the playout end of a player whose audio has all played (or, on close, stop it)."""
        if self.receiver is None:
            return None
        now = self.clock.now_ns()
        for rid, player in list(self.receiver.players.items()):
            if rid in self._ended_players or not player.started or player.end_ns is None:
                continue
            if player.audio_done and player.end_ns <= now:
                self._ended_players.add(rid)
                self.rec.mark(Mark.PLAYOUT_END, player.end_ns, response_id=rid, played_ms=player.received_ms)
                if not final:
                    return Incoming(player.end_ns, local="playout_end", response_id=rid)
            elif final:
                self.stop_playout(rid, now, "end")
        return None

    def playout_over(self, response_id: str) -> bool:
        return response_id in self._ended_players

    # -- turns --------------------------------------------------------------------------------
    def end_turn(self, turn: int, status: str, **fields: Any) -> None:
        if turn not in self.open_turns:
            return
        self.open_turns.discard(turn)
        if status == "ok":
            self.turns_ok += 1
        self.rec.mark(Mark.TURN_END, turn=turn, status=status, **fields)   # the meter records the turn now
        self._deliver_records()

    def timeout_turn(self, turn: int, waited_s: float, waiting_for: str) -> None:
        self.rec.mark(Mark.TIMEOUT, turn=turn, waited_ms=waited_s * 1000.0, waiting_for=waiting_for)
        self.end_turn(turn, "timeout")

    def _end_open_turns(self, status: str) -> None:
        for turn in sorted(self.open_turns):
            self.end_turn(turn, status)
