"""The Live catalogue is the openai SDK's `openai.types.live` models, row for row, and every Live
event the harness renders validates against those models with no field they do not declare."""

from __future__ import annotations

import typing
from typing import Annotated, Any

import pytest

from harness.protocol import AudioFormat, Dialect, Kind, ProtocolValueError, decode_client, decode_server, encode, make_event
from harness.protocol.catalogue import CLIENT, SERVER
from harness.protocol.errors import LocalProtocolError
from harness.protocol.live_catalogue import LIVE_CATALOGUE, LiveEventSpec
from harness.protocol.live_session import (
    LiveStart,
    parse_live_format,
    parse_session_start,
    render_session_resource,
    render_session_start,
)
from harness.protocol.session import SessionConfig, default_session_config

live_types = pytest.importorskip("openai.types.live")
pydantic = pytest.importorskip("pydantic")


def _members(union_alias: Any) -> list[Any]:
    union = typing.get_args(union_alias)[0] if typing.get_origin(union_alias) is Annotated else union_alias
    return list(typing.get_args(union))


def _adapter(union_alias: Any) -> Any:
    union = typing.Union[tuple(_members(union_alias))]  # type: ignore[valid-type]
    return pydantic.TypeAdapter(Annotated[union, pydantic.Discriminator("type")])


SERVER_MODELS = {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in _members(live_types.ServerEvent)}
CLIENT_MODELS = {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in _members(live_types.ClientEvent)}
SERVER_ADAPTER = _adapter(live_types.ServerEvent)
CLIENT_ADAPTER = _adapter(live_types.ClientEvent)


def _validate(obj: dict[str, Any], side: str) -> Any:
    """Strict: the SDK parses it, and it carries no field the SDK's model does not declare."""
    parsed = (CLIENT_ADAPTER if side == CLIENT else SERVER_ADAPTER).validate_python(obj)
    assert set(obj) <= set(type(parsed).model_fields), f"{obj['type']}: fields the SDK does not declare"
    return parsed


@pytest.mark.parametrize("spec", LIVE_CATALOGUE, ids=lambda s: f"{s.side}:{s.name}")
def test_each_live_row_has_exactly_the_fields_of_its_sdk_model(spec: LiveEventSpec) -> None:
    model = (CLIENT_MODELS if spec.side == CLIENT else SERVER_MODELS)[spec.name]
    fields = {name: f for name, f in model.model_fields.items() if name != "type"}
    assert set(spec.required) == {name for name, f in fields.items() if f.is_required()}
    assert set(spec.optional) == {name for name, f in fields.items() if not f.is_required()}


def test_the_client_commands_a_voice_caller_needs_are_all_catalogued() -> None:
    names = {s.name for s in LIVE_CATALOGUE if s.side == CLIENT}
    assert {"session.start", "session.input_audio.append", "session.input_audio.mute",
            "session.input_audio.unmute", "session.update", "response.create", "session.close"} <= names
    assert names <= set(CLIENT_MODELS)


@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_session_start_rendered_from_the_harness_config_validates_in_every_format(fmt: AudioFormat) -> None:
    cfg = SessionConfig(input_format=fmt, output_format=fmt, voice="marin", instructions="Be brief.")
    event = make_event(Kind.SESSION_START, Dialect.LIVE, event_id="evt_1", session=render_session_start(cfg))
    parsed = _validate(event.to_dict(), CLIENT)
    assert parsed.session.audio.format.type == fmt.ga_type and parsed.session.audio.format.rate == fmt.rate_hz
    start = parse_session_start(event["session"])
    assert start.audio_format is fmt and start.voice == "marin" and start.instructions == "Be brief."


def test_live_cannot_say_different_input_and_output_formats() -> None:
    cfg = SessionConfig(input_format=AudioFormat.PCM16, output_format=AudioFormat.G711_ULAW)
    with pytest.raises(LocalProtocolError, match="one audio format for both directions"):
        render_session_start(cfg)


def test_every_client_command_the_harness_makes_validates() -> None:
    commands = [make_event(Kind.INPUT_AUDIO_APPEND, "live", audio="AAAA"),
                make_event(Kind.INPUT_AUDIO_MUTE, "live", event_id="m1"),
                make_event(Kind.INPUT_AUDIO_UNMUTE, "live"),
                make_event(Kind.RESPONSE_CREATE, "live"),
                make_event(Kind.SESSION_UPDATE, "live", session={}),
                make_event(Kind.SESSION_CLOSE, "live", event_id="c1"),
                make_event(Kind.SESSION_START, "live", session=render_session_start(default_session_config("ga")))]
    for event in commands:
        _validate(event.to_dict(), CLIENT)
        assert decode_client(encode(event), Dialect.LIVE) == event


def test_server_events_of_a_normal_exchange_validate_and_round_trip() -> None:
    start = LiveStart("gpt-live-1", AudioFormat.G711_ALAW, "marin", None)
    resource = render_session_resource(start, "sess_1", 1_900_000_000)
    usage = {"seconds": 3.0}
    events = [make_event(Kind.SESSION_STARTED, "live", event_id="e1", session=resource, client_event_id="s1"),
              make_event(Kind.INPUT_TRANSCRIPTION_DELTA, "live", event_id="e2", delta="hi", start_ms=200, end_ms=700),
              make_event(Kind.OUTPUT_AUDIO_DELTA, "live", delta="1dXV"),
              make_event(Kind.OUTPUT_TRANSCRIPT_DELTA, "live", event_id="e3", delta="Hello", start_ms=900, end_ms=900),
              make_event(Kind.INPUT_AUDIO_MUTED, "live", event_id="e4"),
              make_event(Kind.USAGE_UPDATED, "live", event_id="e5", usage=usage),
              make_event(Kind.ERROR, "live", event_id="e6", error={"type": "invalid_request_error",
                                                                   "code": "unknown_event", "message": "no"}),
              make_event(Kind.SESSION_CLOSED, "live", event_id="e7", reason="close_requested", session=resource,
                         usage=usage)]
    for event in events:
        _validate(event.to_dict(), SERVER)
        decoded = decode_server(encode(event), "live")
        assert decoded == event and decoded.missing_fields == () and decoded.extra_fields == ()


def test_live_names_decode_as_live_only_when_the_dialect_says_so() -> None:
    text = '{"type":"session.updated","event_id":"e1","session":{}}'
    assert decode_server(text, Dialect.LIVE).name_dialect is Dialect.LIVE
    assert decode_server(text, Dialect.GA).name_dialect is None  # the Realtime event, as before
    assert decode_server('{"type":"response.output_audio.delta"}', "live").kind is Kind.UNKNOWN
    missing = decode_server('{"type":"session.input_transcript.delta","delta":"x"}', "live")
    assert missing.missing_fields == ("end_ms", "event_id", "start_ms")


def test_realtime_only_kinds_have_no_live_event() -> None:
    with pytest.raises(LocalProtocolError, match="live dialect has no 'response_cancel'"):
        make_event(Kind.RESPONSE_CANCEL, Dialect.LIVE)
    with pytest.raises(LocalProtocolError):
        make_event(Kind.SESSION_START, Dialect.GA)


@pytest.mark.parametrize("value, param", [
    ({"type": "audio/pcm", "rate": 16000}, "session.audio.format.rate"),
    ({"type": "audio/pcm", "rate": 44100}, "session.audio.format.rate"),
    ({"type": "audio/opus", "rate": 48000}, "session.audio.format.type"),
    ({"type": "audio/pcmu", "rate": 16000}, "session.audio.format.rate"),
    ("pcm16", "session.audio.format"),
])
def test_a_format_the_harness_cannot_serve_is_refused_naming_the_parameter(value: Any, param: str) -> None:
    with pytest.raises(ProtocolValueError) as caught:
        parse_live_format(value)
    assert caught.value.param == param


def test_session_start_without_a_model_is_refused() -> None:
    with pytest.raises(ProtocolValueError, match="session.model"):
        parse_session_start({"audio": {}})
