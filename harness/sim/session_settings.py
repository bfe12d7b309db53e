"""PROVISIONAL: session configuration of a simulated session until harness.protocol's SessionConfig lands.

To be replaced by protocol's SessionConfig / parse_session_update / render_session_update.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from harness.protocol import AudioFormat, Dialect, ProtocolValueError
from harness.protocol.formats import parse_audio_format
from harness.sim.responder import ResponseSettings

if TYPE_CHECKING:
    from harness.sim.session import Session


@dataclass
class TurnDetectionSettings:
    type: str = "server_vad"
    threshold: float | None = 0.5
    prefix_padding_ms: int | None = 300
    silence_duration_ms: int | None = 200
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None
    eagerness: str | None = None


@dataclass
class SessionSettings:
    dialect: Dialect
    model: str
    input_format: AudioFormat = AudioFormat.PCM16
    output_format: AudioFormat = AudioFormat.PCM16
    voice: str = "marin"
    instructions: str = "You are a helpful voice assistant."
    audio: bool = True
    turn_detection: TurnDetectionSettings | None = field(default_factory=TurnDetectionSettings)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    max_output_tokens: int | str = "inf"
    temperature: float = 0.8
    transcription: dict[str, Any] | None = None

    @classmethod
    def default(cls, dialect: Dialect, model: str) -> "SessionSettings":
        return cls(dialect, model, voice="marin" if dialect is Dialect.GA else "alloy")

    @property
    def transcription_enabled(self) -> bool:
        return bool(self.transcription)

    def response_defaults(self) -> ResponseSettings:
        return ResponseSettings(self.audio, self.output_format, self.voice, self.max_output_tokens, self.instructions,
                                list(self.tools), self.tool_choice, True, None, self.temperature)


def _fmt(value: Any, param: str) -> AudioFormat:
    fmt = parse_audio_format(value)
    if fmt is None:
        raise ProtocolValueError("invalid_value", param, f"Invalid value for '{param}'.")
    return fmt


def _td(value: Any) -> TurnDetectionSettings | None:
    if value is None:
        return None
    td = TurnDetectionSettings()
    for key, v in value.items():
        if hasattr(td, key):
            setattr(td, key, v)
    return td


def apply_session_update(session: Session, raw: dict[str, Any]) -> SessionSettings:
    s = replace(session.settings)
    if session.dialect is Dialect.GA:
        if "type" not in raw:
            raise ProtocolValueError("missing_required_parameter", "session.type",
                                     "Missing required parameter: 'session.type'.")
        audio = raw.get("audio") or {}
        inp, out = audio.get("input") or {}, audio.get("output") or {}
        if "format" in inp:
            s.input_format = _fmt(inp["format"], "session.audio.input.format")
        if "format" in out:
            s.output_format = _fmt(out["format"], "session.audio.output.format")
        if "voice" in out:
            s.voice = out["voice"]
        if "turn_detection" in inp:
            s.turn_detection = _td(inp["turn_detection"])
        if "transcription" in inp:
            s.transcription = inp["transcription"]
        if "output_modalities" in raw:
            s.audio = "audio" in raw["output_modalities"]
    else:
        if "input_audio_format" in raw:
            s.input_format = _fmt(raw["input_audio_format"], "session.input_audio_format")
        if "output_audio_format" in raw:
            s.output_format = _fmt(raw["output_audio_format"], "session.output_audio_format")
        if "voice" in raw:
            s.voice = raw["voice"]
        if "turn_detection" in raw:
            s.turn_detection = _td(raw["turn_detection"])
        if "input_audio_transcription" in raw:
            s.transcription = raw["input_audio_transcription"]
        if "modalities" in raw:
            s.audio = "audio" in raw["modalities"]
    for key in ("instructions", "tools", "tool_choice"):
        if key in raw:
            setattr(s, key, raw[key])
    if s.voice != session.settings.voice and session.assistant_audio_present:
        raise ProtocolValueError("cannot_update_voice", "session.voice",
                                 "Cannot update a conversation's voice if assistant audio is present.")
    return s


def render_session(session: Session) -> dict[str, Any]:
    s = session.settings
    td = None if s.turn_detection is None else dict(s.turn_detection.__dict__)
    base = {"id": session.session_id, "object": "realtime.session", "model": s.model,
            "expires_at": int(session.created_at_s + session.cfg.session_max_s), "instructions": s.instructions,
            "tools": s.tools, "tool_choice": s.tool_choice}
    if session.dialect is Dialect.GA:
        return {**base, "type": "realtime", "output_modalities": ["audio"] if s.audio else ["text"],
                "max_output_tokens": s.max_output_tokens,
                "audio": {"input": {"format": s.input_format.render(Dialect.GA), "transcription": s.transcription,
                                    "noise_reduction": None, "turn_detection": td},
                          "output": {"format": s.output_format.render(Dialect.GA), "voice": s.voice, "speed": 1.0}}}
    return {**base, "modalities": ["text", "audio"] if s.audio else ["text"], "voice": s.voice,
            "input_audio_format": s.input_format.value, "output_audio_format": s.output_format.value,
            "input_audio_transcription": s.transcription, "turn_detection": td, "temperature": s.temperature,
            "max_response_output_tokens": s.max_output_tokens}


def parse_response_overrides(session: Session, raw: Any) -> ResponseSettings:
    rs = session.settings.response_defaults()
    if raw is None:
        return rs
    if not isinstance(raw, dict):
        raise ProtocolValueError("invalid_type", "response", "Invalid type for 'response': expected an object.")
    if raw.get("conversation") == "none":
        rs.in_conversation = False
    for key in ("instructions", "tools", "tool_choice", "metadata"):
        if key in raw:
            setattr(rs, key, raw[key])
    mods = raw.get("output_modalities", raw.get("modalities"))
    if mods is not None:
        rs.audio = "audio" in mods
    return rs


_ = time
