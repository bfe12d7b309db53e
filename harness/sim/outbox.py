"""One connection's outgoing frames, each sent no earlier than its deadline, in order per lane.

Everything the simulator says goes through here. A delayed stage is sent on an absolute
deadline: target = trigger + delay, where the trigger is a time (an arrival) or another frame
(its actual send time). Frames live in lanes: one per response, one for the input side (VAD,
commits, items, session) and one for errors. Order is kept within a lane; lanes are independent,
so a response waiting for its first audio does not hold back a barge-in's speech_started,
exactly as the service's VAD and generation run side by side. The send time of every frame is
recorded in the server trace with its stage, trigger, delay and target.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from harness.sim.server_trace import ServerTrace

INPUT_LANE = "input"
ERROR_LANE = "errors"
_BLOCKED = float("inf")


class OutboxFull(Exception):
    """The client is not reading: more frames are waiting than the configured limit."""


@dataclass(eq=False)
class Outgoing:
    """A frame (or an action such as closing the socket) waiting for its deadline."""

    event: dict[str, Any] | None = None
    raw: str | None = None  # a frame sent verbatim (malformed JSON fault)
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
    done: asyncio.Future[int] | None = None

    def target_ns(self) -> int | None:
        """The deadline, or None when there is none (or its trigger frame was never sent)."""
        if self.trigger is None:
            return None
        base = self.trigger.sent_ns if isinstance(self.trigger, Outgoing) else self.trigger
        return None if base is None else base + self.delay_ns

    def due(self) -> float:
        """When this frame may go: its deadline, 0 for now, infinity while its trigger is pending."""
        trigger = self.trigger
        if isinstance(trigger, Outgoing) and trigger.sent_ns is None:
            return 0 if trigger.dropped else _BLOCKED
        target = self.target_ns()
        return 0 if target is None else target


class Outbox:
    """Lanes of Outgoing frames drained by one writer task per connection."""

    def __init__(self, send: Callable[[str], Awaitable[None]], trace: ServerTrace, session_id: str, limit: int) -> None:
        self._send = send
        self._trace = trace
        self._session_id = session_id
        self._limit = limit
        self._lanes: dict[str, deque[Outgoing]] = {}
        self._pending = 0
        self._wakeup = asyncio.Event()
        self.closed = False

    def put(self, item: Outgoing) -> Outgoing:
        """Queue a frame without waiting; raises OutboxFull when the client has stopped reading."""
        if self.closed:
            self._resolve(item, dropped=True)
            return item
        if self._pending >= self._limit:
            raise OutboxFull(f"{self._pending} frames waiting for a client that does not read")
        lane = item.lane or item.response_id or INPUT_LANE
        self._lanes.setdefault(lane, deque()).append(item)
        self._pending += 1
        self._wakeup.set()
        return item

    async def send(self, item: Outgoing) -> int:
        """Queue a frame and wait until it has been sent; returns its send time (perf_counter_ns)."""
        item.done = asyncio.get_running_loop().create_future()
        self.put(item)
        return await item.done

    def drop(self, response_id: str) -> None:
        """Forget frames of a cancelled response that have not left yet."""
        for item in self._lanes.get(response_id, ()):
            item.dropped = True

    def _resolve(self, item: Outgoing, dropped: bool = False) -> None:
        if dropped:
            item.dropped = True
        if item.done is not None and not item.done.done():
            item.done.set_result(item.sent_ns or time.perf_counter_ns())

    def _next(self) -> tuple[float, Outgoing | None]:
        """The lane head that is due first (dropped heads are discarded on the way)."""
        best: tuple[float, Outgoing | None] = (_BLOCKED, None)
        for name in list(self._lanes):
            lane = self._lanes[name]
            while lane and lane[0].dropped:
                self._resolve(lane.popleft())
                self._pending -= 1
            if not lane:
                del self._lanes[name]
                continue
            due = lane[0].due()
            if best[1] is None or due < best[0]:
                best = (due, lane[0])
        return best

    async def run(self) -> None:
        """The writer loop; returns when `close()` is called or the socket fails."""
        loop = asyncio.get_running_loop()
        try:
            while not self.closed:
                due, item = self._next()
                now = time.perf_counter_ns()
                if item is None or due > now:
                    self._wakeup.clear()
                    timer = None if due == _BLOCKED else loop.call_later((due - now) / 1e9, self._wakeup.set)
                    await self._wakeup.wait()
                    if timer is not None:
                        timer.cancel()
                    continue
                await self._deliver(item)
                lane = self._lanes.get(item.lane or item.response_id or INPUT_LANE)
                if lane and lane[0] is item:
                    lane.popleft()
                    self._pending -= 1
                self._resolve(item)
        finally:
            self.closed = True
            for lane in self._lanes.values():
                for item in lane:
                    self._resolve(item, dropped=True)
            self._lanes.clear()

    async def _deliver(self, item: Outgoing) -> None:
        target = item.target_ns()
        if item.action is not None:
            item.sent_ns = time.perf_counter_ns()
            self._record(item, target, None)
            await item.action()
            return
        text = item.raw if item.raw is not None else json.dumps(item.event, separators=(",", ":"))
        item.sent_ns = time.perf_counter_ns()
        await self._send(text)
        # the frame reached the socket between sent_ns and this: a wide gap (the process was
        # preempted mid-send) says how uncertain this send time is as a truth
        item.note["sent_after_ns"] = time.perf_counter_ns()
        self._record(item, target, text)
        if item.on_sent is not None:
            item.on_sent()

    def _record(self, item: Outgoing, target: int | None, text: str | None) -> None:
        fields: dict[str, Any] = {"sent_ns": item.sent_ns}
        if item.event is not None:
            fields["type"] = item.event.get("type")
            fields["event_id"] = item.event.get("event_id")
        elif item.raw is not None:
            fields["type"] = None
        if item.response_id is not None:
            fields["response_id"] = item.response_id
        if item.stage is not None:
            trigger = item.trigger.sent_ns if isinstance(item.trigger, Outgoing) else item.trigger
            fields.update(stage=item.stage, trigger_ns=trigger, delay_ns=item.delay_ns, target_ns=target)
        fields.update(item.note)
        self._trace.record("send" if text is not None else "action", self._session_id, t_ns=item.sent_ns, **fields)

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
