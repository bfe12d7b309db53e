"""One connection's outgoing frames, each sent no earlier than its deadline, in order per lane.

Everything the simulator says goes through here. A delayed stage is sent on an absolute
deadline: target = trigger + delay, where the trigger is a time (an arrival) or another frame
(its actual send time). Frames live in lanes: one per response, one for the input side (VAD,
commits, items, session) and one for errors. Order is kept within a lane; lanes are independent,
so a response waiting for its first audio does not hold back a barge-in's speech_started,
exactly as the service's VAD and generation run side by side.

There is no writer task: `put` schedules a pump on the event loop (once per loop turn), the pump
sends every frame that is due (each stamped and recorded, then all written to the transport in
one write microseconds later, then their bookkeeping run) and arms one timer for the next deadline. The send time of every frame is recorded in the server trace with its stage,
trigger, delay and target, and its lateness (`late_ns`: sent minus intended, see lateness.py),
before the frame is written, so a reader of the trace never sees a frame it does not know of.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson

from harness.sim.server_trace import ServerTrace

if TYPE_CHECKING:
    from harness.sim.connection import SimConnection
    from harness.sim.lateness import Lateness

INPUT_LANE = "input"
ERROR_LANE = "errors"
_BLOCKED = float("inf")
_now = time.perf_counter_ns


class OutboxFull(Exception):
    """The client is not reading: more frames are waiting than the configured limit."""


def dumps(event: dict[str, Any]) -> bytes:
    """Compact JSON (UTF-8 bytes); json's encoder for what orjson refuses (lone surrogates, huge ints)."""
    try:
        return orjson.dumps(event)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(event, separators=(",", ":")).encode("utf-8", "surrogatepass")


@dataclass(eq=False, slots=True)
class Outgoing:
    """A frame (or an action such as closing the socket) waiting for its deadline."""

    event: dict[str, Any] | None = None
    raw: str | None = None  # a frame sent verbatim (malformed JSON fault)
    payload: bytes | None = None  # the event already serialised (hot deltas), with its type and event_id:
    kind: str | None = None
    eid: str | None = None
    action: Callable[[], Awaitable[None]] | None = None
    stage: str | None = None
    trigger: "int | Outgoing | None" = None
    delay_ns: int = 0
    response_id: str | None = None
    lane: str | None = None  # default: the response's lane, else the input lane
    note: dict[str, Any] = field(default_factory=dict)
    on_sent: Callable[[], None] | None = None  # bookkeeping that must happen only if the frame left
    dropped: bool = False
    sent_ns: int | None = None
    queued_ns: int = 0
    late_ns: int | None = None
    done: asyncio.Future[int] | None = None

    def target_ns(self) -> int | None:
        """The deadline, or None when there is none (or its trigger frame was never sent)."""
        trigger = self.trigger
        if trigger is None:
            return None
        base = trigger.sent_ns if isinstance(trigger, Outgoing) else trigger
        return None if base is None else base + self.delay_ns

    def due(self) -> float:
        """When this frame may go: its deadline, 0 for now, infinity while its trigger is pending."""
        trigger = self.trigger
        if trigger is None:
            return 0
        if isinstance(trigger, Outgoing):
            if trigger.sent_ns is None:
                return 0 if trigger.dropped else _BLOCKED
            return trigger.sent_ns + self.delay_ns
        return trigger + self.delay_ns


class _Lane:
    __slots__ = ("items", "last_intended_ns")

    def __init__(self) -> None:
        self.items: deque[Outgoing] = deque()
        self.last_intended_ns = 0


class Outbox:
    """Lanes of Outgoing frames, pumped by the event loop for one connection."""

    def __init__(self, conn: SimConnection, trace: ServerTrace, session_id: str, limit: int,
                 lateness: Lateness) -> None:
        self._conn = conn
        self._trace = trace
        self._session_id = session_id
        self._limit = limit
        self._lateness = lateness
        self._lanes: dict[str, _Lane] = {}
        self._pending = 0
        self._loop = asyncio.get_running_loop()
        self._kicked = False
        self._pumping = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float = _BLOCKED
        self._cause_ns: int | None = None  # while a sent frame's on_sent runs: that frame's intended time
        self.closed = False
        conn.on_resume = self._kick

    def put(self, item: Outgoing) -> Outgoing:
        """Queue a frame without waiting; raises OutboxFull when the client has stopped reading."""
        if self.closed:
            self._resolve(item, dropped=True)
            return item
        if self._pending >= self._limit:
            raise OutboxFull(f"{self._pending} frames waiting for a client that does not read")
        # a frame queued by the bookkeeping of a sent frame was meant for the moment that frame was
        item.queued_ns = _now() if self._cause_ns is None else self._cause_ns
        name = item.lane or item.response_id or INPUT_LANE
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane()
        lane.items.append(item)
        self._pending += 1
        if not self._kicked and not self._pumping:
            self._kicked = True
            self._loop.call_soon(self._pump)
        return item

    async def send(self, item: Outgoing) -> int:
        """Queue a frame and wait until it has been sent; returns its send time (perf_counter_ns)."""
        item.done = self._loop.create_future()
        self.put(item)
        return await item.done

    def drop(self, response_id: str) -> None:
        """Forget frames of a cancelled response that have not left yet."""
        lane = self._lanes.get(response_id)
        if lane is not None:
            for item in lane.items:
                item.dropped = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for lane in self._lanes.values():
            for item in lane.items:
                self._resolve(item, dropped=True)
        self._lanes.clear()
        self._pending = 0

    # ---- internals
    def _kick(self) -> None:
        if not self._kicked and not self._pumping and not self.closed:
            self._kicked = True
            self._loop.call_soon(self._pump)

    @staticmethod
    def _resolve(item: Outgoing, dropped: bool = False) -> None:
        if dropped:
            item.dropped = True
        if item.dropped:
            item.on_sent = None  # never runs: let it go now
        done = item.done
        if done is not None and not done.done():
            done.set_result(item.sent_ns or _now())

    def _next(self) -> tuple[float, _Lane | None, Outgoing | None]:
        """The lane head that is due first (dropped heads are discarded on the way)."""
        best_due, best_lane, best = _BLOCKED, None, None
        empty = None
        for name, lane in self._lanes.items():
            items = lane.items
            while items and items[0].dropped:
                self._resolve(items.popleft())
                self._pending -= 1
            if not items:
                empty = [name] if empty is None else [*empty, name]
                continue
            head = items[0]
            due = head.due()
            if best is None or due < best_due:
                best_due, best_lane, best = due, lane, head
        if empty is not None:
            for name in empty:
                del self._lanes[name]
        return best_due, best_lane, best

    def _pump(self) -> None:
        """Rounds: stamp and record every frame due now, write them in one write, then run their
        bookkeeping (which may queue more frames due now: the next round)."""
        self._kicked = False
        if self.closed:
            return
        self._pumping = True
        conn = self._conn
        try:
            while not self.closed:
                sent: list[Outgoing] = []
                payloads: list[bytes] = []
                action: Outgoing | None = None
                while True:
                    due, lane, item = self._next()
                    if item is None or lane is None:
                        break
                    now = _now()
                    if due > now:
                        self._arm(due, now)
                        break
                    if item.action is not None:
                        if not sent:  # an action goes alone, after the frames ahead of it are out
                            self._deliver(item, lane, now, None)
                            action = item
                        break
                    if conn.paused:
                        break  # the transport is full; resume_writing pumps again
                    if not conn.open:  # the connection is closing or gone: nothing more leaves (nor is recorded)
                        self.close()
                        break
                    payload = item.payload
                    if payload is None:
                        payload = dumps(item.event) if item.raw is None else item.raw.encode("utf-8", "surrogatepass")
                    self._deliver(item, lane, _now(), payload)
                    sent.append(item)
                    if payload:  # an empty payload is stamped and recorded, never written (live_session.py)
                        payloads.append(payload)
                if payloads:
                    trace = self._trace
                    if trace.live:
                        trace.write_pending(force=True)  # a reader in another process sees the record first
                    conn.write_texts(payloads)  # microseconds after the stamps: nothing else runs in between
                    trace.write_pending()
                for item in sent:
                    self._sent(item)
                if action is not None:
                    asyncio.ensure_future(action.action())  # type: ignore[misc]
                    continue
                if not sent:
                    break
        finally:
            self._pumping = False

    def _arm(self, due: float, now: int) -> None:
        if due == _BLOCKED:
            return  # every head waits for a frame of this outbox: its sending pumps again
        timer = self._timer
        if timer is not None:
            if self._timer_due == due:
                return
            timer.cancel()
        self._timer_due = due
        # whole milliseconds, rounded up: epoll waits in ms anyway, and uvloop's timers round to the
        # nearest ms (a wait rounded down would wake early and spin)
        self._timer = self._loop.call_later(-(-(due - now) // 1_000_000) / 1000.0, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_due = _BLOCKED
        if not self._kicked:
            self._kicked = True
            self._pump()

    def _deliver(self, item: Outgoing, lane: _Lane, now: int, payload: bytes | None) -> None:
        """Stamp, measure and record the frame, take it off its lane, then run its bookkeeping.

        Intended: the deadline (or the moment it was queued), and never before the frame ahead of it in
        its lane was intended; so a late frame makes the frames queued behind it, due with it, late too.
        Time the transport spent paused by a client that did not read is the client's, not ours.
        """
        target = item.target_ns()
        intended = target if target is not None else item.queued_ns
        if lane.last_intended_ns > intended:
            intended = lane.last_intended_ns
        lane.last_intended_ns = intended
        late = now - intended
        conn = self._conn
        blocked = 0
        if conn.resumed_ns > intended:
            blocked = conn.resumed_ns - max(intended, conn.paused_ns)
            late -= blocked
        item.sent_ns = now
        item.late_ns = late
        self._lateness.add_send(late)
        self._record(item, target, payload is not None, blocked)  # recorded before it is written
        lane.items.popleft()
        self._pending -= 1
        if payload is None and item.done is not None:
            self._resolve(item)

    def _sent(self, item: Outgoing) -> None:
        """After the write: wake whoever waits for the frame, and run its bookkeeping once."""
        if item.done is not None:
            self._resolve(item)
        on_sent, item.on_sent = item.on_sent, None  # run once; a frame never keeps its step (no cycle for the GC)
        if on_sent is not None:
            intended = item.sent_ns - (item.late_ns or 0)
            self._cause_ns = intended
            try:
                on_sent()
            finally:
                self._cause_ns = None

    def _record(self, item: Outgoing, target: int | None, is_frame: bool, blocked_ns: int = 0) -> None:
        entry: dict[str, Any] = {"rec": "send" if is_frame else "action", "session": self._session_id,
                                 "t_ns": item.sent_ns, "sent_ns": item.sent_ns, "late_ns": item.late_ns}
        event = item.event
        if event is not None:
            entry["type"] = event.get("type")
            entry["event_id"] = event.get("event_id")
        elif item.payload is not None:
            entry["type"] = item.kind
            entry["event_id"] = item.eid
        elif item.raw is not None:
            entry["type"] = None
        if item.response_id is not None:
            entry["response_id"] = item.response_id
        if item.stage is not None:
            trigger = item.trigger
            entry["stage"] = item.stage
            entry["trigger_ns"] = trigger.sent_ns if isinstance(trigger, Outgoing) else trigger
            entry["delay_ns"] = item.delay_ns
            entry["target_ns"] = target
        if blocked_ns:
            entry["blocked_ns"] = blocked_ns  # the client was not reading (transport paused)
        if item.note:
            entry.update(item.note)
        self._trace.add(entry)
