"""The service's error events, their codes and fixed messages, in one table.

The simulator answers bad input with these and the caller recognises them by code; nobody
retypes a message. Messages follow the protocol reference (section 5f).
"""

from __future__ import annotations

from typing import Any

from harness.protocol.catalogue import Kind
from harness.protocol.events import Event, make_event
from harness.protocol.formats import Dialect

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"

# code -> message template (str.format fields named in braces)
MESSAGES: dict[str, str] = {
    "input_audio_buffer_commit_empty": (
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
        "but buffer only has {ms:.2f}ms of audio."
    ),
    "response_cancel_not_active": "Cancellation failed: no active response found",
    "conversation_already_has_active_response": (
        "Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one."
    ),
    "invalid_value": "Invalid value: '{value}'. Supported values are: {allowed}.",
    "invalid_event": "The 'type' field is missing.",
    "invalid_json": "We could not parse the JSON body of your request. ({detail})",
    "item_truncate_invalid_item_id": "Error truncating item: the item with id '{item_id}' does not exist.",
    "item_truncate_invalid_audio_end_ms": (
        "Audio content of {generated_ms}ms is already shorter than {audio_end_ms}ms"
    ),
    "item_delete_invalid_item_id": "Error deleting item: the item with id '{item_id}' does not exist.",
    "item_retrieve_invalid_item_id": "Error retrieving item: the item with id '{item_id}' does not exist.",
    "item_create_invalid_call_id": "Tool call output for call_id '{call_id}' does not match any function call.",
    "cannot_update_voice": "Cannot update a conversation's voice if assistant audio is present.",
    "session_expired": "Your session hit the maximum duration of {minutes} minutes.",
    "beta_api_shape_disabled": "The beta Realtime API shape is disabled; use the GA interface.",
    "invalid_api_key": "Incorrect API key provided.",
    "missing_api_key": "Missing bearer or basic authentication in header",
    "message_too_large": "The message is larger than the maximum of {limit_bytes} bytes.",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}


def error_message(code: str, **values: Any) -> str:
    return MESSAGES[code].format(**values)


def undecodable_message(code: str, detail: str) -> str:
    """What a server answers to a client frame it could not decode (`decode_client` raised with
    `code` and `detail`): the service's own words for unparsable JSON, else the detail itself.
    One wording for both of the simulator's dialects."""
    return error_message("invalid_json", detail=detail) if code == "invalid_json" else detail


def error_event(dialect: Dialect | str, code: str | None, message: str, param: str | None = None,
                event_id: str | None = None, error_type: str = INVALID_REQUEST,
                server_event_id: str | None = None) -> Event:
    """A server `error` event. `event_id` is the client event that caused it (or None)."""
    fields: dict[str, Any] = {"error": {"type": error_type, "code": code, "message": message, "param": param,
                                        "event_id": event_id}}
    if server_event_id is not None:
        fields = {"event_id": server_event_id, **fields}
    return make_event(Kind.ERROR, dialect, **fields)
