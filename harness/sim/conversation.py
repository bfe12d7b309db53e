"""One session's conversation: its items in order, and how each is shown in either dialect.

Items are kept in a neutral form (assistant parts are `audio`/`text`); `render` gives the wire
object, where GA names assistant parts `output_audio`/`output_text` and beta `audio`/`text`.
Input audio is kept for `conversation.item.retrieve` up to a per-session budget, so a long
session cannot grow without bound; older audio is then reported as null.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from harness.protocol import Dialect, ProtocolValueError
from harness.protocol import error_message

AUDIO_BUDGET_BYTES = 8 * 1024 * 1024


@dataclass(eq=False)  # an item is itself: list.index/remove compare by identity, not field by field
class Item:
    """A conversation item. `audio_ms` is the assistant audio generated so far (truncate bound)."""

    id: str
    type: str  # message | function_call | function_call_output
    role: str | None = None
    status: str = "completed"
    parts: list[dict[str, Any]] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    audio: bytes | None = None
    audio_ms: float = 0.0

    @property
    def is_assistant_audio(self) -> bool:
        return self.type == "message" and self.role == "assistant" and any(p["type"] == "audio" for p in self.parts)


def render(item: Item, dialect: Dialect, with_audio: bool = False) -> dict[str, Any]:
    """The item as the server shows it (no audio bytes unless `with_audio`)."""
    wire: dict[str, Any] = {"id": item.id, "object": "realtime.item", "type": item.type, "status": item.status}
    if item.type == "message":
        wire["role"] = item.role
        wire["content"] = [_render_part(p, item, dialect, with_audio) for p in item.parts]
    elif item.type == "function_call":
        wire.update(call_id=item.call_id, name=item.name, arguments=item.arguments or "")
    elif item.type == "function_call_output":
        wire.update(call_id=item.call_id, output=item.output or "")
    return wire


def _render_part(part: dict[str, Any], item: Item, dialect: Dialect, with_audio: bool) -> dict[str, Any]:
    shown = dict(part)
    if item.role == "assistant" and dialect is Dialect.GA and part["type"] in ("audio", "text"):
        shown["type"] = "output_" + part["type"]
    if with_audio and part["type"] in ("audio", "input_audio") and item.audio is not None:
        shown["audio"] = base64.b64encode(item.audio).decode("ascii")
    return shown


class Conversation:
    """Items in conversation order with id lookup; raises ProtocolValueError like the service."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self._by_id: dict[str, Item] = {}
        self._audio_bytes = 0

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._by_id

    def get(self, item_id: str) -> Item | None:
        return self._by_id.get(item_id)

    @property
    def last_id(self) -> str | None:
        return self.items[-1].id if self.items else None

    def add(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert `item` (at the end, first for "root", or after an id); returns the id before it."""
        if item.id in self._by_id:
            raise ProtocolValueError("invalid_value", "item.id", f"Item with item_id '{item.id}' already exists.")
        if previous_item_id is None:
            index = len(self.items)
        elif previous_item_id == "root":
            index = 0
        elif previous_item_id in self._by_id:
            index = self.items.index(self._by_id[previous_item_id]) + 1
        else:
            raise ProtocolValueError(
                "invalid_value",
                "previous_item_id",
                f"Error adding item: the previous item with id '{previous_item_id}' does not exist.",
            )
        if item.audio is not None:
            self._audio_bytes += len(item.audio)
            self._enforce_audio_budget()
        self.items.insert(index, item)
        self._by_id[item.id] = item
        return self.items[index - 1].id if index > 0 else None

    def _enforce_audio_budget(self) -> None:
        for old in self.items:
            if self._audio_bytes <= AUDIO_BUDGET_BYTES:
                return
            if old.audio is not None:
                self._audio_bytes -= len(old.audio)
                old.audio = None

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item just before `item_id` (None if it is first or unknown)."""
        item = self._by_id.get(item_id)
        if item is None:
            return None
        index = self.items.index(item)
        return self.items[index - 1].id if index > 0 else None

    def delete(self, item_id: str) -> None:
        item = self._by_id.pop(item_id, None)
        if item is None:
            raise ProtocolValueError("item_delete_invalid_item_id", "item_id",
                                     error_message("item_delete_invalid_item_id", item_id=item_id))
        self.items.remove(item)

    def retrieve(self, item_id: str) -> Item:
        item = self._by_id.get(item_id)
        if item is None:
            raise ProtocolValueError("item_retrieve_invalid_item_id", "item_id",
                                     error_message("item_retrieve_invalid_item_id", item_id=item_id))
        return item

    def truncate(self, item_id: str, content_index: Any, audio_end_ms: Any) -> Item:
        """Cut an assistant audio item at `audio_end_ms`; value errors as the service reports them."""
        item = self._by_id[item_id]   # an unknown item was refused by the connection rules (session.py)
        if not item.is_assistant_audio:
            raise ProtocolValueError(
                "invalid_value", "item_id", f"Error truncating item: only assistant messages with audio can be truncated ('{item_id}')."
            )
        if not isinstance(content_index, int) or isinstance(content_index, bool) or content_index != 0:
            raise ProtocolValueError("invalid_value", "content_index", "Error truncating item: content_index must be 0.")
        if not isinstance(audio_end_ms, int) or isinstance(audio_end_ms, bool) or audio_end_ms < 0:
            raise ProtocolValueError(
                "invalid_value", "audio_end_ms", "Invalid 'audio_end_ms': expected a non-negative integer."
            )
        if audio_end_ms > item.audio_ms + 0.5:
            raise ProtocolValueError("item_truncate_invalid_audio_end_ms", "audio_end_ms", error_message(
                "item_truncate_invalid_audio_end_ms", generated_ms=int(item.audio_ms), audio_end_ms=audio_end_ms))
        for part in item.parts:
            if part["type"] == "audio" and part.get("transcript") and item.audio_ms > 0:
                kept = int(len(part["transcript"]) * audio_end_ms / item.audio_ms)
                part["transcript"] = part["transcript"][:kept]
        item.audio_ms = float(audio_end_ms)
        return item
