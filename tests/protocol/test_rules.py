"""Conformance rules: silent on the normative sequences, each rule fires on its bad sequence."""

from __future__ import annotations

import pytest

from harness.protocol import RULES, ConnectionRules, Dialect, Event, Kind, make_event

from .sequences import SEQUENCES, opening


def _run(steps: list[tuple[bool, Event]], perspective: str = "client", dialect: Dialect | None = None) -> list:
    rules = ConnectionRules(perspective, dialect)
    found = []
    for sent_by_client, event in steps:
        sent = sent_by_client if perspective == "client" else not sent_by_client
        found.extend(rules.observe(event, sent))
    return found


@pytest.mark.parametrize("name", sorted(SEQUENCES))
@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
@pytest.mark.parametrize("perspective", ["client", "server"])
def test_the_normative_sequences_break_no_rule(name: str, dialect: Dialect, perspective: str) -> None:
    violations = [v for v in _run(SEQUENCES[name](dialect), perspective, dialect)
                  if v.rule != "cancel_without_active_response"]
    assert violations == []


def _s(kind: Kind, **fields) -> tuple[bool, Event]:  # type: ignore[no-untyped-def]
    return False, make_event(kind, Dialect.GA, event_id="event_x", **fields)


def _c(kind: Kind, **fields) -> tuple[bool, Event]:  # type: ignore[no-untyped-def]
    return True, make_event(kind, Dialect.GA, **fields)


R = {"response_id": "resp_1"}
I = {**R, "item_id": "item_A", "output_index": 0, "content_index": 0}
CREATED = _s(Kind.RESPONSE_CREATED, response={"id": "resp_1", "status": "in_progress"})
ITEM = _s(Kind.OUTPUT_ITEM_ADDED, **R, output_index=0, item={"id": "item_A"})
DONE = _s(Kind.RESPONSE_DONE, response={"id": "resp_1", "status": "completed"})

BAD = {
    "unknown_event_type": [(False, Event(Kind.UNKNOWN, "response.hologram", {}))],
    "missing_required_field": [_s(Kind.SPEECH_STARTED, item_id="item_U")],
    "response_event_for_unknown_response": [_s(Kind.OUTPUT_AUDIO_DELTA, **I, delta="AA==")],
    "response_event_after_done": [CREATED, ITEM, DONE, _s(Kind.OUTPUT_AUDIO_DELTA, **I, delta="AA==")],
    "response_created_while_active": [CREATED, _s(Kind.RESPONSE_CREATED, response={"id": "resp_2"})],
    "response_done_twice": [CREATED, DONE, DONE],
    "response_done_bad_status": [CREATED, _s(Kind.RESPONSE_DONE, response={"id": "resp_1", "status": "exploded"})],
    "delta_for_unknown_item": [CREATED, _s(Kind.OUTPUT_AUDIO_DELTA, **I, delta="AA==")],
    "delta_after_done": [CREATED, ITEM, _s(Kind.OUTPUT_AUDIO_DONE, **I), _s(Kind.OUTPUT_AUDIO_DELTA, **I, delta="AA==")],
    "output_item_done_twice": [CREATED, ITEM, _s(Kind.OUTPUT_ITEM_DONE, **R, output_index=0, item={"id": "item_A"}),
                               _s(Kind.OUTPUT_ITEM_DONE, **R, output_index=0, item={"id": "item_A"})],
    "speech_stopped_without_started": [_s(Kind.SPEECH_STOPPED, audio_end_ms=10, item_id="item_U")],
    "commit_without_audio": [_c(Kind.INPUT_AUDIO_COMMIT)],
    "cancel_without_active_response": [_c(Kind.RESPONSE_CANCEL)],
    "response_create_while_active": [CREATED, _c(Kind.RESPONSE_CREATE)],
    "truncate_unknown_item": [_c(Kind.ITEM_TRUNCATE, item_id="item_Z", content_index=0, audio_end_ms=5)],
    "event_before_session_created": [],
    "wrong_dialect_name": [],
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_fires_on_its_bad_sequence_with_the_right_side(rule: str) -> None:
    if rule == "event_before_session_created":
        found = _run([_s(Kind.CLEARED)])
    elif rule == "wrong_dialect_name":
        found = _run([*opening(Dialect.GA)[:1], (False, make_event(Kind.OUTPUT_AUDIO_DONE, Dialect.BETA, **I))],
                     dialect=Dialect.GA)
    else:
        found = _run([*opening(Dialect.GA)[:1], *BAD[rule]])
    hits = [v for v in found if v.rule == rule]
    assert hits, f"{rule} did not fire: {found}"
    client_sent = rule in {"commit_without_audio", "cancel_without_active_response",
                           "response_create_while_active", "truncate_unknown_item"}
    assert hits[0].side == ("local" if client_sent else "remote")


def test_the_server_perspective_sees_a_clients_bad_commit_as_remote() -> None:
    found = _run([_c(Kind.INPUT_AUDIO_COMMIT)], perspective="server")
    assert [(v.rule, v.side) for v in found] == [("commit_without_audio", "remote")]


def test_hostile_shapes_never_raise_from_observe() -> None:
    rules = ConnectionRules("client")
    for fields in ({"response": "not a dict"}, {"response": None}, {"item": 5}):
        rules.observe(Event(Kind.RESPONSE_DONE, "response.done", fields), sent=False)
        rules.observe(Event(Kind.OUTPUT_ITEM_ADDED, "response.output_item.added", fields), sent=False)
