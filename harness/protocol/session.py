"""One neutral session configuration, rendered and parsed in either dialect.

The caller builds a `SessionConfig` and renders it as the `session` object of a beta (flat
fields) or GA (`session.type`, nested `audio.input/output`) `session.update`. The simulator
parses updates with `parse_session_update`, which applies a partial update to a base config or
rejects it as a whole with the service's own error codes (`ProtocolValueError`).

Defaults: GA uses what real `session.created` events show (voice marin, silence 200 ms);
beta uses the documented defaults (voice alloy, silence 500 ms, text+audio modalities).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harness.protocol.errors import ProtocolValueError
from harness.protocol.formats import BETA_FORMAT_NAMES, AudioFormat, Dialect, parse_audio_format

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")
EAGERNESS = ("low", "medium", "high", "auto")
TOOL_CHOICES = ("auto", "none", "required")
DEFAULT_INSTRUCTIONS = "You are a helpful, concise voice assistant."


@dataclass
class TurnDetection:
    type: str = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 200
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None
    eagerness: str = "auto"

    def render(self) -> dict[str, Any]:
        common = {"type": self.type, "create_response": self.create_response,
                  "interrupt_response": self.interrupt_response}
        if self.type == "semantic_vad":
            return {**common, "eagerness": self.eagerness}
        return {**common, "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms, "idle_timeout_ms": self.idle_timeout_ms}


@dataclass
class SessionConfig:
    input_format: AudioFormat = AudioFormat.PCM16
    output_format: AudioFormat = AudioFormat.PCM16
    voice: str | dict[str, Any] | None = None
    instructions: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)  # None: manual
    modalities: str = "audio"  # "audio" (audio + transcript) or "text"
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    input_transcription: dict[str, Any] | None = None
    max_output_tokens: int | str = "inf"
    temperature: float | None = None  # beta only
    speed: float | None = None
    noise_reduction: dict[str, Any] | None = None


def default_session_config(dialect: Dialect | str) -> SessionConfig:
    dialect = Dialect(dialect)
    if dialect is Dialect.GA:
        return SessionConfig(voice="marin", instructions=DEFAULT_INSTRUCTIONS, speed=1.0)
    return SessionConfig(voice="alloy", instructions=DEFAULT_INSTRUCTIONS, temperature=0.8, speed=1.0,
                         turn_detection=TurnDetection(silence_duration_ms=500))


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


def render_session_update(cfg: SessionConfig, dialect: Dialect | str) -> dict[str, Any]:
    """The `session` object of a `session.update` carrying `cfg` in `dialect`."""
    dialect = Dialect(dialect)
    td = None if cfg.turn_detection is None else cfg.turn_detection.render()
    common = _drop_none({"instructions": cfg.instructions, "tools": cfg.tools, "tool_choice": cfg.tool_choice})
    if dialect is Dialect.GA:
        audio_input = {"format": cfg.input_format.render(dialect), "turn_detection": td}
        if cfg.input_transcription is not None:
            audio_input["transcription"] = cfg.input_transcription
        if cfg.noise_reduction is not None:
            audio_input["noise_reduction"] = cfg.noise_reduction
        audio_output = _drop_none({"format": cfg.output_format.render(dialect), "voice": cfg.voice, "speed": cfg.speed})
        return {"type": "realtime", "output_modalities": [cfg.modalities], **common,
                "max_output_tokens": cfg.max_output_tokens,
                "audio": {"input": audio_input, "output": audio_output}}
    body: dict[str, Any] = {
        "modalities": ["text", "audio"] if cfg.modalities == "audio" else ["text"],
        "input_audio_format": cfg.input_format.value, "output_audio_format": cfg.output_format.value,
        "turn_detection": td, **common, "max_response_output_tokens": cfg.max_output_tokens,
    }
    body.update(_drop_none({"voice": cfg.voice, "temperature": cfg.temperature, "speed": cfg.speed,
                            "input_audio_transcription": cfg.input_transcription,
                            "input_audio_noise_reduction": cfg.noise_reduction}))
    return body


def render_session_object(cfg: SessionConfig, dialect: Dialect | str, session_id: str, model: str,
                          expires_at: int) -> dict[str, Any]:
    """The full effective `session` of `session.created` / `session.updated` (every field shown)."""
    dialect = Dialect(dialect)
    body = render_session_update(cfg, dialect)
    head = {"id": session_id, "object": "realtime.session", "model": model, "expires_at": expires_at}
    if dialect is Dialect.GA:
        body["audio"]["input"].setdefault("transcription", None)
        body["audio"]["input"].setdefault("noise_reduction", None)
        body.update({"tracing": None, "truncation": "auto", "prompt": None, "include": None})
        return {**head, **body}
    body.setdefault("input_audio_transcription", None)
    body.setdefault("input_audio_noise_reduction", None)
    return {**head, **body, "tracing": None}


# ---- parsing ---------------------------------------------------------------------------------
# Keys each dialect accepts at the top level of `session` (read-only echoes included).
_ECHO_KEYS = {"id", "object", "expires_at", "model", "client_secret", "tracing", "include"}
_GA_KEYS = _ECHO_KEYS | {"type", "instructions", "output_modalities", "audio", "tools", "tool_choice",
                         "max_output_tokens", "truncation", "prompt", "reasoning", "parallel_tool_calls"}
_BETA_KEYS = _ECHO_KEYS | {"modalities", "voice", "instructions", "input_audio_format", "output_audio_format",
                           "input_audio_transcription", "turn_detection", "tools", "tool_choice", "temperature",
                           "max_response_output_tokens", "speed", "input_audio_noise_reduction"}
_GA_AUDIO_KEYS = {"input": {"format", "transcription", "noise_reduction", "turn_detection"},
                  "output": {"format", "voice", "speed"}}
_TD_KEYS = {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response",
            "interrupt_response", "idle_timeout_ms", "eagerness"}


def _unknown(param: str) -> ProtocolValueError:
    return ProtocolValueError("unknown_parameter", param, f"Unknown parameter: '{param}'.")


def _invalid(param: str, value: Any, allowed: tuple[Any, ...] | None = None) -> ProtocolValueError:
    message = f"Invalid value: {value!r}."
    if allowed:
        message += " Supported values are: " + ", ".join(repr(a) for a in allowed) + "."
    return ProtocolValueError("invalid_value", param, message)


def _check_keys(obj: Any, allowed: set[str], path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtocolValueError("invalid_type", path, f"Invalid type for '{path}': expected an object.")
    for key in obj:
        if key not in allowed:
            raise _unknown(f"{path}.{key}")
    return obj


def _number(value: Any, param: str, low: float, high: float, integer: bool = False) -> Any:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not low <= value <= high:
        raise _invalid(param, value)
    return value


def _format(value: Any, param: str) -> AudioFormat:
    fmt = parse_audio_format(value)
    if fmt is None:
        raise _invalid(param, value, BETA_FORMAT_NAMES)
    return fmt


def _turn_detection(value: Any, param: str, base: TurnDetection | None) -> TurnDetection | None:
    if value is None:
        return None
    _check_keys(value, _TD_KEYS, param)
    kind = value.get("type", "server_vad")
    if kind not in TURN_DETECTION_TYPES:
        raise _invalid(f"{param}.type", kind, TURN_DETECTION_TYPES)
    td = replace(base) if base is not None and base.type == kind else TurnDetection(type=kind)
    if "threshold" in value:
        td.threshold = _number(value["threshold"], f"{param}.threshold", 0.0, 1.0)
    for key in ("prefix_padding_ms", "silence_duration_ms"):
        if key in value:
            setattr(td, key, _number(value[key], f"{param}.{key}", 0, 60_000, integer=True))
    if value.get("idle_timeout_ms") is not None:
        td.idle_timeout_ms = _number(value["idle_timeout_ms"], f"{param}.idle_timeout_ms", 5_000, 30_000, True)
    elif "idle_timeout_ms" in value:
        td.idle_timeout_ms = None
    for key in ("create_response", "interrupt_response"):
        if key in value:
            if not isinstance(value[key], bool):
                raise _invalid(f"{param}.{key}", value[key], (True, False))
            setattr(td, key, value[key])
    if "eagerness" in value:
        if value["eagerness"] not in EAGERNESS:
            raise _invalid(f"{param}.eagerness", value["eagerness"], EAGERNESS)
        td.eagerness = value["eagerness"]
    return td


def _voice(value: Any, param: str) -> str | dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value
    if value not in VOICES:
        raise _invalid(param, value, VOICES)
    return value


def _common(cfg: SessionConfig, session: dict[str, Any]) -> None:
    if "instructions" in session:
        if not isinstance(session["instructions"], str):
            raise _invalid("session.instructions", session["instructions"])
        cfg.instructions = session["instructions"]
    if "tools" in session:
        tools = session["tools"]
        if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("name") for t in tools):
            raise ProtocolValueError("invalid_value", "session.tools",
                                     "Invalid value for 'session.tools': each tool needs a type and a name.")
        cfg.tools = tools
    if "tool_choice" in session:
        choice = session["tool_choice"]
        if not (choice in TOOL_CHOICES or isinstance(choice, dict)):
            raise _invalid("session.tool_choice", choice, TOOL_CHOICES)
        cfg.tool_choice = choice


def _max_tokens(value: Any, param: str) -> int | str:
    if value == "inf":
        return value
    return _number(value, param, 1, 4096, integer=True)


def parse_session_update(session: Any, dialect: Dialect | str, base: SessionConfig,
                         assistant_audio_present: bool = False) -> SessionConfig:
    """Apply the partial update `session` to `base`; reject it as a whole on any bad value."""
    dialect = Dialect(dialect)
    if not isinstance(session, dict):
        raise ProtocolValueError("invalid_type", "session", "Invalid type for 'session': expected an object.")
    cfg = replace(base)
    if dialect is Dialect.GA:
        if "type" not in session:
            raise ProtocolValueError("missing_required_parameter", "session.type",
                                     "Missing required parameter: 'session.type'.")
        if session["type"] not in ("realtime", "transcription"):
            raise _invalid("session.type", session["type"], ("realtime", "transcription"))
        _check_keys(session, _GA_KEYS, "session")
        if "output_modalities" in session:
            mods = session["output_modalities"]
            if mods not in (["audio"], ["text"]):
                raise _invalid("session.output_modalities", mods, (["audio"], ["text"]))
            cfg.modalities = mods[0]
        audio = _check_keys(session.get("audio", {}), set(_GA_AUDIO_KEYS), "session.audio")
        audio_in = _check_keys(audio.get("input", {}), _GA_AUDIO_KEYS["input"], "session.audio.input")
        audio_out = _check_keys(audio.get("output", {}), _GA_AUDIO_KEYS["output"], "session.audio.output")
        if "format" in audio_in:
            cfg.input_format = _format(audio_in["format"], "session.audio.input.format")
        if "turn_detection" in audio_in:
            cfg.turn_detection = _turn_detection(audio_in["turn_detection"], "session.audio.input.turn_detection",
                                                 base.turn_detection)
        if "transcription" in audio_in:
            cfg.input_transcription = audio_in["transcription"]
        if "noise_reduction" in audio_in:
            cfg.noise_reduction = audio_in["noise_reduction"]
        if "format" in audio_out:
            cfg.output_format = _format(audio_out["format"], "session.audio.output.format")
        if "voice" in audio_out:
            cfg.voice = _voice(audio_out["voice"], "session.audio.output.voice")
        if "speed" in audio_out:
            cfg.speed = _number(audio_out["speed"], "session.audio.output.speed", 0.25, 1.5)
        if "max_output_tokens" in session:
            cfg.max_output_tokens = _max_tokens(session["max_output_tokens"], "session.max_output_tokens")
    else:
        _check_keys(session, _BETA_KEYS, "session")
        if "modalities" in session:
            mods = session["modalities"]
            if not isinstance(mods, list) or not mods or not set(mods) <= {"text", "audio"}:
                raise _invalid("session.modalities", mods, ("text", "audio"))
            cfg.modalities = "audio" if "audio" in mods else "text"
        for key, attr in (("input_audio_format", "input_format"), ("output_audio_format", "output_format")):
            if key in session:
                if session[key] not in BETA_FORMAT_NAMES:
                    raise _invalid(f"session.{key}", session[key], BETA_FORMAT_NAMES)
                setattr(cfg, attr, AudioFormat(session[key]))
        if "turn_detection" in session:
            cfg.turn_detection = _turn_detection(session["turn_detection"], "session.turn_detection",
                                                 base.turn_detection)
        if "voice" in session:
            cfg.voice = _voice(session["voice"], "session.voice")
        if "temperature" in session:
            cfg.temperature = _number(session["temperature"], "session.temperature", 0.6, 1.2)
        if "speed" in session:
            cfg.speed = _number(session["speed"], "session.speed", 0.25, 1.5)
        if "input_audio_transcription" in session:
            cfg.input_transcription = session["input_audio_transcription"]
        if "input_audio_noise_reduction" in session:
            cfg.noise_reduction = session["input_audio_noise_reduction"]
        if "max_response_output_tokens" in session:
            cfg.max_output_tokens = _max_tokens(session["max_response_output_tokens"],
                                                "session.max_response_output_tokens")
    _common(cfg, session)
    if assistant_audio_present and cfg.voice != base.voice:
        raise ProtocolValueError("cannot_update_voice", "session.voice",
                                 "Cannot update a conversation's voice if assistant audio is present.")
    return cfg
