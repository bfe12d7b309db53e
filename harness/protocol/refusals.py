"""The client events a Realtime server refuses because of the connection's state, stated once.

A client event can be well formed and still wrong for the state it arrives in: a commit with
(almost) nothing in the input buffer, a `response.create` while a response is active, a
`response.cancel` with nothing to cancel, a truncate of an item the conversation does not hold.
The service answers each with an `error` event of a fixed code (server_errors.MESSAGES) and
changes nothing. This table is the one statement of those rules:

- the simulator asks `refusal(kind, fields, view)` before it acts on a client event, with a view
  of its own state, and sends the refusal's code and message;
- the caller's `ConnectionRules` asks the same question with the state it observed on the wire,
  and records a broken rule (by its rule name in rules.RULES) as a local violation.

So a rule changes in one place for both sides. The view is what each side knows: the server
knows its buffer to the millisecond; a caller's view counts the audio it appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Container, Protocol

from harness.protocol.catalogue import Kind
from harness.protocol.server_errors import error_message

# The service refuses a commit of less than this much buffered audio.
MIN_COMMIT_MS = 100.0


class ConnectionView(Protocol):
    """What one side knows of a connection's state, as these rules need it."""

    @property
    def input_ms(self) -> float:
        """Audio in the input buffer since the last commit or clear, in ms."""

    @property
    def active_response_id(self) -> str | None:
        """The default-conversation response in progress, if any."""

    @property
    def cancellable_ids(self) -> Collection[str]:
        """Every response that is still running (default conversation and out of band)."""

    @property
    def item_ids(self) -> Container[str]:
        """The items the conversation holds."""


@dataclass(frozen=True)
class Refusal:
    """A broken rule: its name (rules.RULES), the error code and message the server answers with."""

    rule: str
    code: str
    message: str
    param: str | None = None


def _commit(fields: dict[str, Any], view: ConnectionView) -> Refusal | None:
    if view.input_ms >= MIN_COMMIT_MS:
        return None
    return Refusal("commit_without_audio", "input_audio_buffer_commit_empty",
                   error_message("input_audio_buffer_commit_empty", ms=view.input_ms))


def _response_create(fields: dict[str, Any], view: ConnectionView) -> Refusal | None:
    response = fields.get("response")
    out_of_band = isinstance(response, dict) and response.get("conversation") == "none"
    if out_of_band or view.active_response_id is None:
        return None
    return Refusal("response_create_while_active", "conversation_already_has_active_response",
                   error_message("conversation_already_has_active_response", response_id=view.active_response_id))


def _response_cancel(fields: dict[str, Any], view: ConnectionView) -> Refusal | None:
    wanted = fields.get("response_id")
    if wanted:
        running = wanted in view.cancellable_ids
    else:
        running = view.active_response_id is not None
    if running:
        return None
    return Refusal("cancel_without_active_response", "response_cancel_not_active",
                   error_message("response_cancel_not_active"))


def _truncate(fields: dict[str, Any], view: ConnectionView) -> Refusal | None:
    item_id = fields.get("item_id")
    if isinstance(item_id, str) and item_id in view.item_ids:
        return None
    return Refusal("truncate_unknown_item", "item_truncate_invalid_item_id",
                   error_message("item_truncate_invalid_item_id", item_id=item_id), "item_id")


RULES_BY_KIND: dict[Kind, Callable[[dict[str, Any], ConnectionView], Refusal | None]] = {
    Kind.INPUT_AUDIO_COMMIT: _commit,
    Kind.RESPONSE_CREATE: _response_create,
    Kind.RESPONSE_CANCEL: _response_cancel,
    Kind.ITEM_TRUNCATE: _truncate,
}
# The rule names these refusals carry (each is described in rules.RULES).
REFUSAL_RULES = ("commit_without_audio", "response_create_while_active", "cancel_without_active_response",
                 "truncate_unknown_item")


def refusal(kind: Kind, fields: dict[str, Any], view: ConnectionView) -> Refusal | None:
    """The refusal a server owes this client event in this state, or None when it is acceptable."""
    rule = RULES_BY_KIND.get(kind)
    return rule(fields, view) if rule is not None else None
