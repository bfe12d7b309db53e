"""Checking a client's `conversation.item.create` item the way the service does, into an `Item`."""

from __future__ import annotations

from typing import Any

from harness.protocol import ProtocolValueError
from harness.protocol import error_message
from harness.sim.conversation import Conversation, Item
from harness.sim.ids import IdMaker

ITEM_TYPES = ("message", "function_call", "function_call_output")
ROLES = ("user", "system", "assistant")
# role -> content part types a client may send (assistant audio cannot be created by a client)
PART_TYPES = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "text"),
}


def _require(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj or obj[key] is None:
        raise ProtocolValueError("missing_required_parameter", f"{where}.{key}", f"Missing required parameter: '{where}.{key}'.")
    return obj[key]


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = _require(obj, key, where)
    if not isinstance(value, str):
        raise ProtocolValueError("invalid_type", f"{where}.{key}",
                                 f"Invalid type for '{where}.{key}': expected a string, but got {type(value).__name__}.")
    return value


def _one_of(value: Any, allowed: tuple[str, ...], param: str) -> str:
    if value not in allowed:
        raise ProtocolValueError("invalid_value", param, f"Invalid value: '{value}'. Supported values are: "
                                 + ", ".join(f"'{a}'" for a in allowed) + ".")
    return value


def parse_client_item(raw: Any, ids: IdMaker, conversation: Conversation) -> Item:
    if not isinstance(raw, dict):
        raise ProtocolValueError("missing_required_parameter", "item", "Missing required parameter: 'item'.")
    kind = _one_of(_require(raw, "type", "item"), ITEM_TYPES, "item.type")
    item_id = raw.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not item_id or len(item_id) > 32):
        raise ProtocolValueError("invalid_value", "item.id", "Invalid 'item.id': expected a string of at most 32 characters.")
    item = Item(item_id or ids.item(), kind)
    if kind == "message":
        item.role = _one_of(_require(raw, "role", "item"), ROLES, "item.role")
        content = _require(raw, "content", "item")
        if not isinstance(content, list):
            raise ProtocolValueError("invalid_type", "item.content", "Invalid type for 'item.content': expected an array.")
        for index, part in enumerate(content):
            where = f"item.content[{index}]"
            if not isinstance(part, dict):
                raise ProtocolValueError("invalid_type", where, f"Invalid type for '{where}': expected an object.")
            part_type = _one_of(part.get("type"), PART_TYPES[item.role], f"{where}.type")
            if part_type in ("input_text", "output_text", "text"):
                text = _string(part, "text", where)
                item.parts.append({"type": "text" if item.role == "assistant" else "input_text", "text": text})
            elif part_type == "input_audio":
                item.parts.append({"type": "input_audio", "transcript": part.get("transcript")})
            else:
                item.parts.append({"type": "input_image", "image_url": part.get("image_url"), "detail": part.get("detail")})
    elif kind == "function_call":
        item.name = _string(raw, "name", "item")
        item.call_id = _string(raw, "call_id", "item")
        item.arguments = raw.get("arguments") if isinstance(raw.get("arguments"), str) else ""
    else:
        item.call_id = _string(raw, "call_id", "item")
        item.output = _string(raw, "output", "item")
        if not any(i.type == "function_call" and i.call_id == item.call_id for i in conversation.items):
            raise ProtocolValueError("item_create_invalid_call_id", "item.call_id",
                                     error_message("item_create_invalid_call_id", call_id=item.call_id))
    return item
