"""What the simulator answers: recognising the caller's utterance, and spoken answer vs tool call.

The transcript of a user turn is known when its audio contains a corpus utterance (found by the
corpus's byte fingerprints); otherwise it is unknown (None). The answer is a tool call when the
session has tools and the `FunctionCallRule` says so, else speech whose audio length follows its
text (`ms_per_char`).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.protocol import AudioFormat

if TYPE_CHECKING:
    from harness.corpus import FingerprintIndex, Utterance
    from harness.sim.config import FunctionCallRule

CANNED_REPLIES = (
    "Sure, I can help with that. Let me check the details for you.",
    "Thanks for calling. Your request has been noted and I will follow up shortly.",
    "Of course. The next available slot is tomorrow morning at nine.",
    "I understand. Could you tell me a little more about what happened?",
)
# words in tool names that say nothing about the topic
GENERIC_NAME_WORDS = {"get", "set", "lookup", "find", "fetch", "check", "make", "create", "the", "for", "tool"}


@dataclass(frozen=True)
class SpokenAnswer:
    text: str
    audio_ms: int
    clip: int = 0


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str


class Recognizer:
    """Finds corpus utterances in a turn's input audio (all indexes built up front)."""

    def __init__(self, corpus_dirs: tuple[str, ...] | None) -> None:
        self.utterances: list[Utterance] = []
        self._indexes: dict[AudioFormat, list[FingerprintIndex]] = {}
        if not corpus_dirs:
            return
        from harness.corpus import load_corpus

        corpora = [load_corpus(path) for path in corpus_dirs]
        self.utterances = [u for c in corpora for u in c.utterances]
        for fmt in AudioFormat:
            self._indexes[fmt] = [c.fingerprint_index(fmt) for c in corpora]

    def identify(self, audio: bytes, fmt: AudioFormat) -> Utterance | None:
        for index in self._indexes.get(fmt, []):
            match = index.identify(audio)
            if match is not None:
                return match.utterance
        return None


def wants_tool(
    rule: FunctionCallRule, tools: list[dict[str, Any]], tool_choice: Any, transcript: str | None, response_number: int
) -> dict[str, Any] | None:
    """The tool this response calls, or None for a spoken answer."""
    functions = [t for t in tools if isinstance(t, dict) and t.get("type", "function") == "function" and t.get("name")]
    if not functions or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict) and tool_choice.get("name"):
        named = [t for t in functions if t["name"] == tool_choice["name"]]
        return named[0] if named else None
    if tool_choice == "required":
        return _best_tool(functions, transcript)
    if rule.every and response_number % rule.every == 0:
        return _best_tool(functions, transcript)
    if transcript is not None and rule.match and re.search(rule.match, transcript, re.IGNORECASE):
        return _best_tool(functions, transcript)
    if transcript is not None and rule.by_tool_name:
        return _tool_named_in(functions, transcript)
    return None


def _name_words(tool: dict[str, Any]) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", str(tool["name"]).lower()) if len(w) > 2} - GENERIC_NAME_WORDS


def _tool_named_in(functions: list[dict[str, Any]], transcript: str) -> dict[str, Any] | None:
    words = set(re.findall(r"[a-z0-9]+", transcript.lower()))
    for tool in functions:
        if _name_words(tool) & words:
            return tool
    return None


def _best_tool(functions: list[dict[str, Any]], transcript: str | None) -> dict[str, Any]:
    return (_tool_named_in(functions, transcript) if transcript else None) or functions[0]


def tool_arguments(rule: FunctionCallRule, tool: dict[str, Any], transcript: str | None) -> str:
    """JSON arguments: the configured ones, or values for the schema's properties taken from the transcript."""
    if rule.arguments is not None:
        return rule.arguments
    params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    text = transcript or ""
    names = [w for w in re.findall(r"\b[A-Z][a-z]+\b", text)[1:] if w not in {"I"}]
    numbers = re.findall(r"\d+", text)
    values: dict[str, Any] = {}
    for key, schema in props.items():
        schema = schema if isinstance(schema, dict) else {}
        kind = schema.get("type", "string")
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            values[key] = schema["enum"][0]
        elif kind in ("integer", "number"):
            values[key] = int(numbers.pop(0)) if numbers else 1
        elif kind == "boolean":
            values[key] = True
        elif kind == "string":
            values[key] = names.pop(0) if names else "unknown"
    return json.dumps(values, separators=(",", ":"))


def spoken_answer(
    reply_text: str | None, ms_per_char: float, transcript: str | None, tool_output: str | None, rng: random.Random,
    clips: int,
) -> SpokenAnswer:
    """The text and audio length of a spoken answer."""
    if reply_text is not None:
        text = reply_text
    elif tool_output is not None:
        text = f"Here is what I found: {tool_output[:120]}"
    elif transcript:
        text = f"You said: {transcript} Here is my answer."
    else:
        text = rng.choice(CANNED_REPLIES)
    audio_ms = max(10, int(round(len(text) * ms_per_char / 10.0)) * 10)
    return SpokenAnswer(text, audio_ms, rng.randrange(clips))
