"""Codec and catalogue: round trips in both dialects, tolerant decoding, strict framing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol import (
    CATALOGUE,
    Dialect,
    Kind,
    LocalProtocolError,
    RemoteProtocolError,
    decode_client,
    decode_server,
    encode,
    make_event,
)
from harness.protocol.catalogue import CLIENT

from .sequences import SEQUENCES

DIALECTS = (Dialect.GA, Dialect.BETA)


def _example_fields(spec) -> dict:  # type: ignore[no-untyped-def]
    return {name: f"v_{name}" for name in spec.required}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_catalogued_event_of_a_dialect_encodes_and_decodes_to_itself(dialect: Dialect) -> None:
    for spec in CATALOGUE:
        if spec.wire_name(dialect) is None:
            continue
        event = make_event(spec.kind, dialect, **_example_fields(spec))
        decode = decode_client if spec.side == CLIENT else decode_server
        again = decode(encode(event), dialect)
        assert again == event, spec.kind
        assert again.kind is spec.kind and again.type == spec.wire_name(dialect)


@pytest.mark.parametrize("name", sorted(SEQUENCES))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_event_of_the_normative_sequences_round_trips(name: str, dialect: Dialect) -> None:
    for sent, event in SEQUENCES[name](dialect):
        decode = decode_client if sent else decode_server
        assert decode(encode(event), dialect) == event


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(kind=st.sampled_from([s.kind for s in CATALOGUE if s.side != CLIENT and s.ga]),
       fields=st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k != "type"), json_values,
                              max_size=6))
def test_any_server_event_with_any_fields_round_trips(kind: Kind, fields: dict) -> None:
    event = make_event(kind, Dialect.GA, **fields)
    assert decode_server(encode(event)) == event


def test_the_beta_and_ga_names_of_an_output_audio_delta_mean_the_same_kind() -> None:
    ga = decode_server('{"type":"response.output_audio.delta","delta":"AA=="}')
    beta = decode_server('{"type":"response.audio.delta","delta":"AA=="}')
    assert ga.kind is beta.kind is Kind.OUTPUT_AUDIO_DELTA
    assert ga.name_dialect is Dialect.GA and beta.name_dialect is Dialect.BETA


def test_an_unknown_type_decodes_to_an_unknown_event_keeping_its_name() -> None:
    event = decode_server('{"type":"response.hologram.delta","x":1}')
    assert event.kind is Kind.UNKNOWN and event.type == "response.hologram.delta" and event.get("x") == 1


def test_extra_fields_are_kept_and_listed() -> None:
    event = decode_server('{"type":"input_audio_buffer.cleared","event_id":"e","mystery":2}')
    assert event.kind is Kind.CLEARED and event.extra_fields == ("mystery",) and event.get("mystery") == 2


@pytest.mark.parametrize("text,fragment", [
    ("{not json", "not valid JSON"),
    ("[1,2]", "not an object"),
    ('{"event_id":"e"}', "without a 'type'"),
    ('{"type":7}', "not a string"),
])
def test_framing_errors_raise_a_clear_one_line_remote_protocol_error(text: str, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError, match=fragment) as info:
        decode_server(text)
    assert "\n" not in str(info.value)


def test_make_event_refuses_a_kind_the_dialect_lacks() -> None:
    with pytest.raises(LocalProtocolError, match="beta dialect has no 'item_done'"):
        make_event(Kind.ITEM_DONE, Dialect.BETA, item={})


def test_encoding_is_compact_json_with_type_first() -> None:
    text = encode(make_event(Kind.RESPONSE_CANCEL, Dialect.GA, event_id="e1"))
    assert text == '{"type":"response.cancel","event_id":"e1"}'
    assert json.loads(text)["type"] == "response.cancel"
