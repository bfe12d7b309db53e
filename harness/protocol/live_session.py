"""Live session configuration: `session.start` from the harness's SessionConfig, its parsing (for the
simulator), the session resource the server returns, and the Live audio formats.

Live fixes everything at startup (model, instructions, voice, format) and has one `audio.format`
for both directions; there is no turn detection to configure (the service decides when to speak),
no tools (those belong to a delegation backend) and no modalities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.protocol.errors import LocalProtocolError, ProtocolValueError
from harness.protocol.formats import AudioFormat, Dialect
from harness.protocol.session import SessionConfig

LIVE_PATH = "/v1/live/sessions"
LIVE_DEFAULT_MODEL = "gpt-live-1"
LIVE_DEFAULT_VOICE = "marin"
# the PCM rates Live accepts (AudioPCM.rate); the harness's pcm16 is 24 kHz, so 16 kHz is refused
LIVE_PCM_RATES_HZ: tuple[int, ...] = (16000, 24000)
_BY_TYPE = {fmt.ga_type: fmt for fmt in AudioFormat}


@dataclass(frozen=True)
class LiveStart:
    """What a `session.start` asked for."""

    model: str
    audio_format: AudioFormat
    voice: str | dict[str, Any]
    instructions: str | None


def render_session_start(cfg: SessionConfig, model: str = LIVE_DEFAULT_MODEL) -> dict[str, Any]:
    """The `session` object of a `session.start` carrying `cfg`.

    Raises LocalProtocolError for what Live cannot say: different input and output formats.
    """
    if cfg.input_format is not cfg.output_format:
        raise LocalProtocolError(
            f"the live dialect has one audio format for both directions; input {cfg.input_format.value} "
            f"and output {cfg.output_format.value} differ")
    session: dict[str, Any] = {"model": model, "audio": {"format": cfg.input_format.render(Dialect.LIVE)}}
    if cfg.voice is not None:
        session["audio"]["output"] = {"voice": cfg.voice}
    if cfg.instructions:
        session["instructions"] = cfg.instructions
    return session


def parse_live_format(value: Any, param: str = "session.audio.format") -> AudioFormat:
    """A Live `{type, rate}` object -> AudioFormat; ProtocolValueError naming what is wrong."""
    if not isinstance(value, dict):
        raise ProtocolValueError("invalid_type", param, f"Invalid type for '{param}': expected an object.")
    fmt = _BY_TYPE.get(value.get("type"))  # type: ignore[arg-type]
    if fmt is None:
        raise ProtocolValueError("invalid_value", f"{param}.type", f"Invalid value: '{value.get('type')}'. "
                                 f"Supported values are: {', '.join(_BY_TYPE)}.")
    rate = value.get("rate")
    if fmt is AudioFormat.PCM16 and rate not in LIVE_PCM_RATES_HZ:
        raise ProtocolValueError("invalid_value", f"{param}.rate", f"Invalid value: {rate!r}. audio/pcm rate "
                                 "must be 16000 or 24000.")
    if rate != fmt.rate_hz:
        raise ProtocolValueError("unsupported_value", f"{param}.rate",
                                 f"{fmt.ga_type} at {rate} Hz is not supported here; use {fmt.rate_hz}.")
    return fmt


def parse_session_start(session: Any) -> LiveStart:
    """The `session` of a client's `session.start` -> LiveStart (ProtocolValueError when invalid)."""
    if not isinstance(session, dict):
        raise ProtocolValueError("missing_required_parameter", "session", "Missing required parameter: 'session'.")
    model = session.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolValueError("missing_required_parameter", "session.model",
                                 "Missing required parameter: 'session.model'.")
    audio = session.get("audio") or {}
    if not isinstance(audio, dict):
        raise ProtocolValueError("invalid_type", "session.audio", "Invalid type for 'session.audio': expected an object.")
    fmt = AudioFormat.PCM16 if audio.get("format") is None else parse_live_format(audio["format"])
    voice = (audio.get("output") or {}).get("voice") or LIVE_DEFAULT_VOICE
    instructions = session.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ProtocolValueError("invalid_type", "session.instructions",
                                 "Invalid type for 'session.instructions': expected a string.")
    return LiveStart(model, fmt, voice, instructions)


def render_session_resource(start: LiveStart, session_id: str, expires_at: int) -> dict[str, Any]:
    """The resolved session (SessionResource) a server returns in session.started/updated/closed."""
    resource: dict[str, Any] = {"id": session_id, "expires_at": expires_at, "model": start.model, "status": "active",
                                "audio": {"format": start.audio_format.render(Dialect.LIVE),
                                          "output": {"voice": start.voice}}}
    if start.instructions:
        resource["instructions"] = start.instructions
    return resource
