"""A simulated session's effective settings: protocol's `SessionConfig` plus what the server adds.

Parsing, validation and rendering of the session object are `harness.protocol`'s (one copy of
the rules); this module only adapts them to the simulator: the session's model and expiry,
the VAD parameters it needs, and the per-response settings (`response.create` overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.protocol import (
    AudioFormat,
    Dialect,
    ProtocolValueError,
    SessionConfig,
    TurnDetection,
    default_session_config,
    parse_audio_format,
    parse_session_update,
    render_session_object,
)
from harness.sim.responder import ResponseSettings

if TYPE_CHECKING:
    from harness.sim.session import Session


@dataclass
class SessionSettings:
    """The effective config of one session (`config`) and its model name."""

    dialect: Dialect
    model: str
    config: SessionConfig

    @classmethod
    def default(cls, dialect: Dialect, model: str) -> "SessionSettings":
        return cls(dialect, model, default_session_config(dialect))

    @property
    def input_format(self) -> AudioFormat:
        return self.config.input_format

    @property
    def output_format(self) -> AudioFormat:
        return self.config.output_format

    @property
    def turn_detection(self) -> TurnDetection | None:
        return self.config.turn_detection

    @property
    def transcription_enabled(self) -> bool:
        return bool(self.config.input_transcription)

    def response_defaults(self) -> ResponseSettings:
        cfg = self.config
        voice = cfg.voice if isinstance(cfg.voice, str) else (cfg.voice or {}).get("id", "marin")
        return ResponseSettings(
            audio=cfg.modalities == "audio", output_format=cfg.output_format, voice=voice,
            max_output_tokens=cfg.max_output_tokens, instructions=cfg.instructions or "", tools=list(cfg.tools),
            tool_choice=cfg.tool_choice, in_conversation=True, metadata=None,
            temperature=cfg.temperature if cfg.temperature is not None else 0.8,
        )


def apply_session_update(session: Session, raw: dict[str, Any]) -> SessionSettings:
    """The settings after a client's session.update (rejected as a whole with the service's codes)."""
    current = session.settings
    config = parse_session_update(raw, session.dialect, current.config, session.assistant_audio_present)
    return replace(current, config=config)


def render_session(session: Session) -> dict[str, Any]:
    """The full effective session object of session.created / session.updated."""
    return render_session_object(session.settings.config, session.dialect, session.session_id,
                                 session.settings.model, int(session.created_at_s + session.max_duration_s))


def parse_response_overrides(session: Session, raw: Any) -> ResponseSettings:
    """The settings of one response: the session's, with the `response` object of response.create on top."""
    settings = session.settings.response_defaults()
    if raw is None:
        return settings
    if not isinstance(raw, dict):
        raise ProtocolValueError("invalid_type", "response", "Invalid type for 'response': expected an object.")
    conversation = raw.get("conversation", "auto")
    if conversation not in ("auto", "none"):
        raise ProtocolValueError("invalid_value", "response.conversation",
                                 f"Invalid value: '{conversation}'. Supported values are: 'auto', 'none'.")
    settings.in_conversation = conversation == "auto"
    for key in ("instructions", "tools", "tool_choice", "metadata"):
        if key in raw:
            setattr(settings, key, raw[key])
    if session.dialect is Dialect.GA:
        modalities = raw.get("output_modalities")
        fmt_value = ((raw.get("audio") or {}).get("output") or {}).get("format")
        fmt_param = "response.audio.output.format"
        voice = ((raw.get("audio") or {}).get("output") or {}).get("voice")
    else:
        modalities = raw.get("modalities")
        fmt_value, fmt_param, voice = raw.get("output_audio_format"), "response.output_audio_format", raw.get("voice")
    if modalities is not None:
        if not isinstance(modalities, list) or not modalities or not set(modalities) <= {"text", "audio"}:
            raise ProtocolValueError("invalid_value", "response.modalities",
                                     f"Invalid value: {modalities!r}. Supported values are: 'text', 'audio'.")
        settings.audio = "audio" in modalities
    if fmt_value is not None:
        fmt = parse_audio_format(fmt_value)
        if fmt is None:
            raise ProtocolValueError("invalid_value", fmt_param, f"Invalid value: {fmt_value!r}.")
        settings.output_format = fmt
    if isinstance(voice, str):
        settings.voice = voice
    return settings
