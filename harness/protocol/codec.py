"""JSON text <-> Event. Decoding is tolerant of content and strict about framing.

Unknown `type` -> `Kind.UNKNOWN`; extra fields are kept (and listed in `extra_fields`); missing
required fields are left for the conformance rules. Only text that cannot be an event at all
(invalid JSON, not an object, no string `type`) raises RemoteProtocolError.

Wire names of both dialects decode in either dialect (a beta server that says
`response.output_audio.delta` still produces an output audio delta); `Event.name_dialect`
records which dialect the name belonged to, so a mismatch can be reported rather than lost.
"""

from __future__ import annotations

import json
from typing import Any

try:    # about 3x faster than json on the caller's hot path (every received frame)
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _loads = json.loads

from harness.protocol.catalogue import CLIENT, SERVER
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.events import Event, classify, classify_live
from harness.protocol.formats import Dialect

_PREVIEW_CHARS = 80


def _preview(text: str | bytes) -> str:
    shown = text if isinstance(text, str) else text[:_PREVIEW_CHARS * 4].decode("utf-8", "replace")
    shown = shown[:_PREVIEW_CHARS]
    return repr(shown) + ("..." if len(text) > _PREVIEW_CHARS else "")


def _strict_load(text: str | bytes, who: str) -> Any:
    """Decode with json, whose errors say what is wrong; only for frames orjson refused."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(
            f"{who} sent a frame that is not valid JSON ({exc}): {_preview(text)}", code="invalid_json"
        ) from None
    except RecursionError:   # nesting deeper than the interpreter's stack: hostile or broken
        raise RemoteProtocolError(f"{who} sent JSON nested too deeply to decode: {_preview(text)}",
                                  code="invalid_json") from None


def _load(text: str | bytes, who: str) -> tuple[str, dict[str, Any]]:
    try:
        obj = _loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        obj = _strict_load(text, who)   # json decodes a few things orjson refuses (lone surrogates)
    if not isinstance(obj, dict):
        raise RemoteProtocolError(
            f"{who} sent JSON that is not an object ({type(obj).__name__}): {_preview(text)}", code="invalid_event"
        )
    type_ = obj.pop("type", None)
    if type_ is None:
        raise RemoteProtocolError(f"{who} sent an event without a 'type' field: {_preview(text)}", code="invalid_event")
    if not isinstance(type_, str):
        raise RemoteProtocolError(
            f"{who} sent an event whose 'type' is a {type(type_).__name__}, not a string: {_preview(text)}",
            code="invalid_event",
        )
    return type_, obj


def decode_server(text: str | bytes, dialect: Dialect | str | None = None) -> Event:
    """A server frame -> Event. Realtime names of both GA and beta decode in either; Live names
    (whose `session.updated`, `error` mean other shapes) only when `dialect` is live."""
    type_, fields = _load(text, "the server")
    if dialect == Dialect.LIVE:
        return classify_live(type_, fields, SERVER)
    return classify(type_, fields, SERVER)


def decode_client(text: str | bytes, dialect: Dialect | str | None = None) -> Event:
    """A client frame -> Event (for the simulator). Same tolerance as decode_server."""
    type_, fields = _load(text, "the client")
    if dialect == Dialect.LIVE:
        return classify_live(type_, fields, CLIENT)
    return classify(type_, fields, CLIENT)


def encode(event: Event) -> str:
    """Event -> compact JSON text, `type` first."""
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)
