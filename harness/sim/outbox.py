"""One connection's outgoing frames, sent in order, each no earlier than its deadline.

Everything the simulator says goes through here, so frames leave in the order they were
decided and each delayed stage is sent on an absolute deadline: target = trigger + delay, where
the trigger is a time (an arrival) or another frame (its actual send time). The send time of
every frame is recorded in the server trace with its stage, trigger, delay and target.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from harness.sim.server_trace import ServerTrace


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
    note: dict[str, Any] = field(default_factory=dict)
    on_sent: Callable[[], None] | None = None  # bookkeeping that must happen only if the frame left
    dropped: bool = False
    sent_ns: int | None = None
    done: asyncio.Future[int] | None = None

    def target_ns(self) -> int | None:
        if self.trigger is None:
            return None
        base = self.trigger.sent_ns if isinstance(self.trigger, Outgoing) else self.trigger
        return None if base is None else base + self.delay_ns


class Outbox:
    """FIFO of Outgoing frames drained by one writer task per connection."""

    def __init__(self, send: Callable[[str], Awaitable[None]], trace: ServerTrace, session_id: str, limit: int) -> None:
        self._send = send
        self._trace = trace
        self._session_id = session_id
        self._limit = limit
        self._queue: deque[Outgoing] = deque()
        self._wakeup = asyncio.Event()
        self.closed = False

    def put(self, item: Outgoing) -> Outgoing:
        """Queue a frame without waiting; raises OutboxFull when the client has stopped reading."""
        if self.closed:
            item.dropped = True
            return item
        if len(self._queue) >= self._limit:
            raise OutboxFull(f"{len(self._queue)} frames waiting for a client that does not read")
        self._queue.append(item)
        self._wakeup.set()
        return item

    async def send(self, item: Outgoing) -> int:
        """Queue a frame and wait until it has been sent; returns its send time (perf_counter_ns)."""
        item.done = asyncio.get_running_loop().create_future()
        self.put(item)
        if item.dropped:
            return time.perf_counter_ns()
        return await item.done

    def drop(self, response_id: str) -> None:
        """Forget frames of a cancelled response that have not left yet."""
        for item in self._queue:
            if item.response_id == response_id:
                item.dropped = True

    async def run(self) -> None:
        """The writer loop; returns when `close()` is called or the socket fails."""
        try:
            while not self.closed:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._queue[0]
                if not item.dropped:
                    await self._deliver(item)
                self._queue.popleft()
                if item.done is not None and not item.done.done():
                    item.done.set_result(item.sent_ns or time.perf_counter_ns())
        finally:
            self.closed = True
            for item in self._queue:
                item.dropped = True
                if item.done is not None and not item.done.done():
                    item.done.set_result(time.perf_counter_ns())
            self._queue.clear()

    async def _deliver(self, item: Outgoing) -> None:
        target = item.target_ns()
        if target is not None:
            # the loop's timers may fire up to a clock tick early; never send before the deadline
            while (wait_ns := target - time.perf_counter_ns()) > 0 and not item.dropped:
                await asyncio.sleep(wait_ns / 1e9)
        if item.dropped:  # cancelled while waiting for its deadline
            return
        if item.action is not None:
            item.sent_ns = time.perf_counter_ns()
            self._record(item, target, None)
            await item.action()
            return
        text = item.raw if item.raw is not None else json.dumps(item.event, separators=(",", ":"))
        item.sent_ns = time.perf_counter_ns()
        await self._send(text)
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
