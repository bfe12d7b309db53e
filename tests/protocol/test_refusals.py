"""The connection-state rules a server enforces, stated once (harness.protocol.refusals): each
refusal names a rule of rules.RULES and the service's error code, and the caller's
ConnectionRules finds exactly the same refusals from the events it saw on the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.protocol import RULES, ConnectionRules, Dialect, Kind, make_event
from harness.protocol.refusals import MIN_COMMIT_MS, REFUSAL_RULES, RULES_BY_KIND, refusal
from harness.protocol.server_errors import MESSAGES


@dataclass
class View:
    input_ms: float = 0.0
    active_response_id: str | None = None
    cancellable_ids: set[str] = field(default_factory=set)
    item_ids: set[str] = field(default_factory=set)


BUSY = View(input_ms=500.0, active_response_id="resp_1", cancellable_ids={"resp_1", "resp_oob"}, item_ids={"item_1"})
IDLE = View()
# kind, fields, the view in which the event is refused, the rule, the service's error code
CASES: list[tuple[Kind, dict[str, Any], View, str, str]] = [
    (Kind.INPUT_AUDIO_COMMIT, {}, View(input_ms=MIN_COMMIT_MS - 0.1), "commit_without_audio",
     "input_audio_buffer_commit_empty"),
    (Kind.RESPONSE_CREATE, {}, BUSY, "response_create_while_active", "conversation_already_has_active_response"),
    (Kind.RESPONSE_CANCEL, {}, IDLE, "cancel_without_active_response", "response_cancel_not_active"),
    (Kind.RESPONSE_CANCEL, {"response_id": "resp_gone"}, BUSY, "cancel_without_active_response",
     "response_cancel_not_active"),
    (Kind.ITEM_TRUNCATE, {"item_id": "item_X", "content_index": 0, "audio_end_ms": 5}, BUSY,
     "truncate_unknown_item", "item_truncate_invalid_item_id"),
]


@pytest.mark.parametrize(("kind", "fields", "view", "rule", "code"), CASES, ids=[c[3] + "-" + str(i) for i, c in enumerate(CASES)])
def test_a_refused_event_carries_its_rule_and_the_services_error_code(kind: Kind, fields: dict[str, Any], view: View,
                                                                        rule: str, code: str) -> None:
    refused = refusal(kind, fields, view)
    assert refused is not None
    assert (refused.rule, refused.code) == (rule, code)
    assert rule in RULES and code in MESSAGES and refused.message


@pytest.mark.parametrize(("kind", "fields", "view"), [
    (Kind.INPUT_AUDIO_COMMIT, {}, View(input_ms=MIN_COMMIT_MS)),
    (Kind.RESPONSE_CREATE, {}, IDLE),
    (Kind.RESPONSE_CREATE, {"response": {"conversation": "none"}}, BUSY),   # out of band: allowed while active
    (Kind.RESPONSE_CANCEL, {}, BUSY),
    (Kind.RESPONSE_CANCEL, {"response_id": "resp_oob"}, BUSY),
    (Kind.ITEM_TRUNCATE, {"item_id": "item_1", "content_index": 0, "audio_end_ms": 5}, BUSY),
    (Kind.INPUT_AUDIO_APPEND, {"audio": ""}, IDLE),    # no state rule for appends
])
def test_the_same_event_in_a_state_that_allows_it_is_not_refused(kind: Kind, fields: dict[str, Any], view: View) -> None:
    assert refusal(kind, fields, view) is None


def test_every_rule_of_the_table_is_a_named_rule_and_every_kind_has_one() -> None:
    assert set(REFUSAL_RULES) <= set(RULES)
    assert {case[0] for case in CASES} == set(RULES_BY_KIND)


def _client(kind: Kind, **fields: Any) -> Any:
    return make_event(kind, Dialect.GA, **fields)


def test_the_callers_connection_rules_count_the_appended_audio_in_the_sessions_input_format() -> None:
    rules = ConnectionRules(perspective="client", dialect=Dialect.GA)
    session = {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}
    rules.observe(make_event(Kind.SESSION_CREATED, Dialect.GA, session=session), sent=False)
    ninety_ms_of_ulaw = "/" * (720 * 4 // 3)           # 720 bytes at 8 bytes per ms
    rules.observe(_client(Kind.INPUT_AUDIO_APPEND, audio=ninety_ms_of_ulaw), sent=True)
    assert rules.input_ms == pytest.approx(90.0)
    assert [v.rule for v in rules.observe(_client(Kind.INPUT_AUDIO_COMMIT), sent=True)] == ["commit_without_audio"]
    rules.observe(_client(Kind.INPUT_AUDIO_APPEND, audio=ninety_ms_of_ulaw * 2), sent=True)
    assert rules.observe(_client(Kind.INPUT_AUDIO_COMMIT), sent=True) == []
