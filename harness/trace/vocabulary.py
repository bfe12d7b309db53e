"""The trace's vocabulary, defined once: record kinds, mark names, footer reasons.

Every writer (pacer, driver, scenarios, replay, the report's synthetic traces) and every reader
(metrics, report, replay) names marks through `Mark`; `docs/contracts.md` section 4 lists the
same names and a test keeps the two equal. `Mark` and `Rec` are `StrEnum`s, so a record written
with `Mark.TURN_START` reads back as the plain string "turn_start" and compares equal to it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict


class Rec(StrEnum):
    """The `rec` field of a trace line."""

    HEADER = "header"
    SEND = "send"
    APPEND = "append"
    RECV = "recv"
    MARK = "mark"
    VIOLATION = "violation"
    FOOTER = "footer"


class Mark(StrEnum):
    """The `mark` field of a `mark` record: things the caller did or saw that no event says."""

    CONNECT_START = "connect_start"
    CONNECTED = "connected"
    CONNECT_FAILED = "connect_failed"
    STREAM_START = "stream_start"
    TURN_START = "turn_start"
    SPEECH_START_SENT = "speech_start_sent"
    SPEECH_END_SENT = "speech_end_sent"
    COMMIT_SENT = "commit_sent"
    RESPONSE_CREATE_SENT = "response_create_sent"
    CANCEL_SENT = "cancel_sent"
    TRUNCATE_SENT = "truncate_sent"
    FUNCTION_OUTPUT_SENT = "function_output_sent"
    PLAYOUT_START = "playout_start"
    UNDERRUN = "underrun"
    PLAYOUT_STOP = "playout_stop"
    PLAYOUT_END = "playout_end"
    PACING_INVALID = "pacing_invalid"
    SEND_BACKLOG = "send_backlog"
    TIMEOUT = "timeout"
    TURN_END = "turn_end"
    STOPPED = "stopped"
    ERROR = "error"
    CLOSE = "close"
    RTT = "rtt"


class Reason(StrEnum):
    """How a session's trace ended (the footer's `reason`)."""

    DONE = "done"
    CLOSED = "closed"
    STOPPED = "stopped"
    ERROR = "error"


class AppendRecord(TypedDict):
    rec: str
    t_ns: int
    sched_ns: int
    seq: int
    turn: int | None
    bytes: int
    audio_ms: float
    input_ms: float
    speech: bool
    sha1: str


class RecvRecord(TypedDict):
    rec: str
    t_ns: int
    type: str
    kind: str
    event: dict[str, Any]


class MarkRecord(TypedDict, total=False):
    rec: str
    t_ns: int
    mark: str


MARK_NAMES: tuple[str, ...] = tuple(m.value for m in Mark)
