"""Keep audio bytes and secrets out of traces.

A trace records every event a session sent or received, but never the audio itself (only its
length, duration and a hash: the exact audio lives in repro bundles) and never a credential.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Event types whose `delta` field is base64 audio (both dialects).
AUDIO_DELTA_TYPES = frozenset({"response.audio.delta", "response.output_audio.delta"})
# Query parameters that carry credentials on some gateways (Azure accepts `api-key`).
SECRET_QUERY_KEYS = frozenset({"api-key", "api_key", "apikey", "key", "token", "access_token", "sig", "signature"})
REDACTED = "REDACTED"
# A longer text (a hostile or broken target's transcript) is cut: one event must not bloat a trace.
MAX_TRACE_STRING_CHARS = 65536


def audio_summary(b64_text: str, bytes_per_ms: float) -> dict[str, Any]:
    """Length, duration and sha1 of a base64 audio payload, in place of the payload."""
    try:
        raw = base64.b64decode(b64_text, validate=False)
    except (binascii.Error, ValueError):
        return {"bytes": None, "ms": None, "sha1": None, "invalid_base64": True}
    ms = len(raw) / bytes_per_ms if bytes_per_ms > 0 else None
    return {"bytes": len(raw), "ms": ms, "sha1": hashlib.sha1(raw).hexdigest()}


def _scrub_value(value: Any, bytes_per_ms: float, depth: int) -> Any:
    if depth > 32:  # hostile nesting: keep the trace bounded
        return "<nested too deep>"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "audio" and isinstance(item, str) and item:
                out[key] = audio_summary(item, bytes_per_ms)
            else:
                out[key] = _scrub_value(item, bytes_per_ms, depth + 1)
        return out
    if isinstance(value, list):
        return [_scrub_value(item, bytes_per_ms, depth + 1) for item in value]
    if isinstance(value, str) and len(value) > MAX_TRACE_STRING_CHARS:
        return value[:MAX_TRACE_STRING_CHARS] + f"...<cut: {len(value)} characters>"
    return value


def scrub_event(event: dict[str, Any], bytes_per_ms: float) -> dict[str, Any]:
    """A copy of `event` with every audio payload replaced by {"bytes", "ms", "sha1"}."""
    scrubbed = _scrub_value(event, bytes_per_ms, 0)
    if event.get("type") in AUDIO_DELTA_TYPES and isinstance(event.get("delta"), str):
        scrubbed["delta"] = audio_summary(event["delta"], bytes_per_ms)
    return scrubbed


def redact_url(url: str) -> str:
    """`url` without user info or credential-bearing query parameters."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    netloc = parts.hostname or ""
    if port:
        netloc = f"{netloc}:{port}"
    query = [
        (key, REDACTED if key.lower() in SECRET_QUERY_KEYS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=REDACTED), ""))
