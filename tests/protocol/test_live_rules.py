"""The Live connection rules (harness.protocol.live_rules): a session's life from session.start to
session.closed, checked from either side; a normal exchange breaks none."""

from __future__ import annotations

from typing import Any

import pytest

from harness.protocol import Dialect, Kind, make_event
from harness.protocol.live_rules import LIVE_RULES, LiveConnectionRules

START = (Kind.SESSION_START, True, {"session": {"model": "gpt-live", "audio": {}}})
STARTED = (Kind.SESSION_STARTED, False, {"event_id": "e1", "session": {"id": "sess_1"}})
APPEND = (Kind.INPUT_AUDIO_APPEND, True, {"audio": "AAAA"})
CHUNK = (Kind.OUTPUT_AUDIO_DELTA, False, {"delta": "AAAA"})
CLOSE = (Kind.SESSION_CLOSE, True, {})
CLOSED = (Kind.SESSION_CLOSED, False, {"event_id": "e9", "reason": "close_requested", "session": {"id": "sess_1"},
                                       "usage": {}})


def _rules_after(steps: list[tuple[Kind, bool, dict[str, Any]]]) -> list[str]:
    rules = LiveConnectionRules("client")
    found: list[str] = []
    for kind, sent, fields in steps:
        event = make_event(kind, Dialect.LIVE, **fields)
        found += [v.rule for v in rules.observe(event, sent)]
    return found


def test_a_normal_live_session_breaks_no_rule() -> None:
    assert _rules_after([START, STARTED, APPEND, CHUNK, APPEND, CHUNK, CLOSE, CLOSED]) == []


def test_a_refusal_before_the_session_started_is_no_violation() -> None:
    error = (Kind.ERROR, False, {"event_id": "e2", "error": {"type": "invalid_request_error", "code": "x",
                                                             "message": "no"}})
    assert _rules_after([START, error, CLOSED]) == []


@pytest.mark.parametrize(("steps", "rule"), [
    ([START, CHUNK], "event_before_session_started"),
    ([START, STARTED, STARTED], "session_started_twice"),
    ([START, STARTED, CLOSED, CHUNK], "event_after_session_closed"),
    ([APPEND], "command_before_session_start"),
    ([START, START], "session_start_twice"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_each_broken_rule_is_named(steps: list[tuple[Kind, bool, dict[str, Any]]], rule: str) -> None:
    assert rule in LIVE_RULES
    assert _rules_after(steps) == [rule]
