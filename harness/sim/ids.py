"""Identifiers shaped like the real service's: `event_` + 21 and `sess_`/`resp_`/`item_`/... + 16 characters."""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits
# random bytes -> alphanumerics in one C call (byte % 62: the first 8 letters are a little likelier)
_TABLE = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))


class IdMaker:
    """Fresh ids for one session (random, never reused within a process run)."""

    def __init__(self) -> None:
        self._rng = random.Random()
        self._events: list[str] = []

    def _make(self, prefix: str, length: int) -> str:
        return prefix + self._rng.randbytes(length).translate(_TABLE).decode("ascii")

    def event(self) -> str:
        """One of a batch of 64 made at once (one random draw and one translation for all of them)."""
        events = self._events
        if not events:
            text = self._rng.randbytes(21 * 64).translate(_TABLE).decode("ascii")
            events.extend("event_" + text[i:i + 21] for i in range(21 * 63, -1, -21))
        return events.pop()

    def session(self) -> str:
        return self._make("sess_", 16)

    def conversation(self) -> str:
        return self._make("conv_", 16)

    def response(self) -> str:
        return self._make("resp_", 16)

    def item(self) -> str:
        return self._make("item_", 16)

    def call(self) -> str:
        return self._make("call_", 16)
