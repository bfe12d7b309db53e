"""Session configuration: rendering in both dialects and parsing with the service's error codes."""

from __future__ import annotations

import pytest

from harness.protocol import (
    AudioFormat,
    Dialect,
    ProtocolValueError,
    SessionConfig,
    TurnDetection,
    default_session_config,
    parse_session_update,
    render_session_update,
)


def test_a_ga_update_is_nested_and_carries_session_type() -> None:
    cfg = SessionConfig(input_format=AudioFormat.G711_ULAW, output_format=AudioFormat.PCM16, voice="marin",
                        turn_detection=TurnDetection(threshold=0.7, silence_duration_ms=400))
    body = render_session_update(cfg, Dialect.GA)
    assert body["type"] == "realtime" and body["output_modalities"] == ["audio"]
    assert body["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert body["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert body["audio"]["input"]["turn_detection"]["threshold"] == 0.7
    assert "input_audio_format" not in body and "modalities" not in body


def test_a_beta_update_is_flat() -> None:
    cfg = SessionConfig(input_format=AudioFormat.G711_ALAW, output_format=AudioFormat.G711_ALAW, voice="alloy",
                        turn_detection=None)
    body = render_session_update(cfg, Dialect.BETA)
    assert body["input_audio_format"] == "g711_alaw" and body["output_audio_format"] == "g711_alaw"
    assert body["modalities"] == ["text", "audio"] and body["turn_detection"] is None
    assert "type" not in body and "audio" not in body


def test_semantic_vad_renders_eagerness_and_no_threshold() -> None:
    td = TurnDetection(type="semantic_vad", eagerness="high").render()
    assert td["eagerness"] == "high" and "threshold" not in td


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
@pytest.mark.parametrize("fmt", list(AudioFormat))
def test_rendering_then_parsing_gives_the_same_config(dialect: Dialect, fmt: AudioFormat) -> None:
    cfg = SessionConfig(input_format=fmt, output_format=fmt, voice="coral", instructions="be brief",
                        turn_detection=TurnDetection(threshold=0.3, prefix_padding_ms=200, silence_duration_ms=350,
                                                     interrupt_response=False),
                        tools=[{"type": "function", "name": "get_weather", "parameters": {}}])
    if dialect is Dialect.BETA:
        cfg.temperature = 0.8
    parsed = parse_session_update(render_session_update(cfg, dialect), dialect, default_session_config(dialect))
    assert parsed.input_format is fmt and parsed.turn_detection == cfg.turn_detection
    assert parsed.voice == "coral" and parsed.tools == cfg.tools and parsed.instructions == "be brief"


def test_a_partial_update_changes_only_what_it_names() -> None:
    base = default_session_config(Dialect.BETA)
    parsed = parse_session_update({"instructions": "x"}, Dialect.BETA, base)
    assert parsed.instructions == "x" and parsed.turn_detection == base.turn_detection and parsed.voice == base.voice


@pytest.mark.parametrize("dialect,session,code,param", [
    (Dialect.GA, {"instructions": "x"}, "missing_required_parameter", "session.type"),
    (Dialect.GA, {"type": "realtime", "modalities": ["audio"]}, "unknown_parameter", "session.modalities"),
    (Dialect.BETA, {"output_modalities": ["audio"]}, "unknown_parameter", "session.output_modalities"),
    (Dialect.GA, {"type": "realtime", "audio": {"input": {"format": {"type": "audio/ogg"}}}},
     "invalid_value", "session.audio.input.format"),
    (Dialect.GA, {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
     "invalid_value", "session.audio.input.format"),
    (Dialect.BETA, {"input_audio_format": "opus"}, "invalid_value", "session.input_audio_format"),
    (Dialect.BETA, {"turn_detection": {"type": "magic_vad"}}, "invalid_value", "session.turn_detection.type"),
    (Dialect.BETA, {"turn_detection": {"type": "server_vad", "threshold": 1.5}}, "invalid_value",
     "session.turn_detection.threshold"),
    (Dialect.GA, {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "bogus": 1}}}},
     "unknown_parameter", "session.audio.input.turn_detection.bogus"),
    (Dialect.BETA, {"voice": "robot"}, "invalid_value", "session.voice"),
    (Dialect.GA, {"type": "realtime", "output_modalities": ["text", "audio"]}, "invalid_value",
     "session.output_modalities"),
    (Dialect.GA, {"type": "chat"}, "invalid_value", "session.type"),
])
def test_bad_updates_are_rejected_whole_with_the_services_code_and_param(
        dialect: Dialect, session: dict, code: str, param: str) -> None:
    with pytest.raises(ProtocolValueError) as info:
        parse_session_update(session, dialect, default_session_config(dialect))
    assert (info.value.code, info.value.param) == (code, param)


def test_the_voice_cannot_change_once_assistant_audio_exists() -> None:
    base = default_session_config(Dialect.BETA)
    with pytest.raises(ProtocolValueError) as info:
        parse_session_update({"voice": "echo"}, Dialect.BETA, base, assistant_audio_present=True)
    assert info.value.code == "cannot_update_voice"
    assert parse_session_update({"voice": base.voice}, Dialect.BETA, base, assistant_audio_present=True).voice == "alloy"


def test_defaults_follow_each_dialects_observed_or_documented_values() -> None:
    ga, beta = default_session_config(Dialect.GA), default_session_config(Dialect.BETA)
    assert ga.voice == "marin" and ga.turn_detection.silence_duration_ms == 200
    assert beta.voice == "alloy" and beta.turn_detection.silence_duration_ms == 500 and beta.temperature == 0.8
