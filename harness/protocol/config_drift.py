"""What a target acknowledged against what the caller asked for: the session-config drift.

`config_drift(requested, acknowledged, dialect)` parses the `session` object of the target's
`session.updated` (or `session.created`) with the protocol's own parser and lists the fields that
matter to a voice measurement whose value differs from the request: audio formats, turn
detection (type, threshold, prefix padding, silence duration, create/interrupt response), voice
and modalities. A target may say nothing of a field (older gateways echo little): a field it
leaves out is not drift. `session_update_ignored` says whether an acknowledgement still holds
the session's initial values in every field where the request differed: the update had no effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.protocol.errors import ProtocolError
from harness.protocol.formats import Dialect
from harness.protocol.session import SessionConfig, TurnDetection, parse_session_update

DETECTION_FIELDS = ("type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response",
                    "interrupt_response")


@dataclass(frozen=True)
class Drift:
    field: str
    requested: Any
    acknowledged: Any

    def __str__(self) -> str:
        return f"{self.field}: asked for {self.requested!r}, the target acknowledged {self.acknowledged!r}"


def _said(session: dict[str, Any], dialect: Dialect) -> set[str]:
    """The comparable fields the acknowledgement states at all."""
    said: set[str] = set()
    if dialect is Dialect.GA:
        audio: dict[str, Any] = session["audio"] if isinstance(session.get("audio"), dict) else {}
        inp, out = audio.get("input") or {}, audio.get("output") or {}
        if "format" in inp:
            said.add("input_format")
        if "format" in out:
            said.add("output_format")
        if "voice" in out:
            said.add("voice")
        if "turn_detection" in inp:
            said.add("turn_detection")
        if "output_modalities" in session:
            said.add("modalities")
    else:
        for key, name in (("input_audio_format", "input_format"), ("output_audio_format", "output_format"),
                          ("voice", "voice"), ("turn_detection", "turn_detection"), ("modalities", "modalities")):
            if key in session:
                said.add(name)
    return said


def _values(config: SessionConfig) -> dict[str, Any]:
    values: dict[str, Any] = {"input_format": config.input_format.value, "output_format": config.output_format.value,
                              "voice": config.voice, "modalities": config.modalities}
    td = config.turn_detection
    values["turn_detection"] = None if td is None else {f: getattr(td, f) for f in DETECTION_FIELDS}
    return values


def config_drift(requested: SessionConfig, acknowledged: Any, dialect: Dialect | str) -> list[Drift]:
    """Fields the target acknowledged with another value than requested (empty: none, or unparsable)."""
    dialect = Dialect(dialect)
    if not isinstance(acknowledged, dict):
        return []
    try:
        ack = parse_session_update(dict(acknowledged), dialect, SessionConfig(turn_detection=TurnDetection()))
    except (ProtocolError, ValueError, TypeError, KeyError):
        return []
    said = _said(acknowledged, dialect)
    want, got = _values(requested), _values(ack)
    drifts: list[Drift] = []
    for name in ("input_format", "output_format", "voice", "modalities"):
        if name in said and want[name] != got[name]:
            drifts.append(Drift(name, want[name], got[name]))
    if "turn_detection" in said:
        w, g = want["turn_detection"], got["turn_detection"]
        if (w is None) != (g is None):
            drifts.append(Drift("turn_detection", w and w["type"], g and g["type"]))
        elif w is not None and g is not None:
            reported = (((acknowledged.get("audio") or {}).get("input") or {}).get("turn_detection")
                        if dialect is Dialect.GA else acknowledged.get("turn_detection")) or {}
            for f in DETECTION_FIELDS:
                if f in reported and w[f] != g[f]:
                    drifts.append(Drift(f"turn_detection.{f}", w[f], g[f]))
    return drifts


def session_update_ignored(requested: SessionConfig, initial: Any, acknowledged: Any, dialect: Dialect | str) -> bool:
    """The acknowledgement drifts from the request exactly where the initial session did: no effect."""
    after = config_drift(requested, acknowledged, dialect)
    before = config_drift(requested, initial, dialect)
    return bool(after) and {d.field for d in before} >= {d.field for d in after} and all(
        d in before for d in after)
