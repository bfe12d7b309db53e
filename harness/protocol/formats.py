"""The wire dialects (Realtime GA and beta, and OpenAI Live) and the three audio formats, with their names in each dialect.

A format's facts (sample rate, bytes per sample, the byte that encodes silence) live here
once; `harness.audio` reads them from the enum instead of repeating them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Dialect(str, Enum):
    """Which protocol a connection speaks: Realtime GA or beta, or Live (`/v1/live/sessions`).

    Live is a different API, not a third Realtime shape: its events live in `live_catalogue.py`.
    """

    GA = "ga"
    BETA = "beta"
    LIVE = "live"


class AudioFormat(str, Enum):
    """An input/output audio format; the value is the beta wire string."""

    PCM16 = "pcm16"
    G711_ULAW = "g711_ulaw"
    G711_ALAW = "g711_alaw"

    @property
    def rate_hz(self) -> int:
        return _FACTS[self][0]

    @property
    def bytes_per_sample(self) -> int:
        return _FACTS[self][1]

    @property
    def silence_byte(self) -> bytes:
        """One byte (pcm16: one of the two bytes of a zero sample) that decodes to silence."""
        return _FACTS[self][2]

    @property
    def bytes_per_ms(self) -> float:
        return self.rate_hz * self.bytes_per_sample / 1000.0

    @property
    def ga_type(self) -> str:
        return _FACTS[self][3]

    def duration_ms(self, n_bytes: int) -> float:
        return n_bytes / self.bytes_per_ms

    def render(self, dialect: Dialect) -> str | dict[str, Any]:
        """The wire form: a beta string, a GA object `{type, rate}` (rate only for PCM), or a Live
        object `{type, rate}` (rate always: Live requires it for G.711 too)."""
        if dialect is Dialect.BETA:
            return self.value
        if dialect is Dialect.LIVE:
            return {"type": self.ga_type, "rate": self.rate_hz}
        if self is AudioFormat.PCM16:
            return {"type": self.ga_type, "rate": self.rate_hz}
        return {"type": self.ga_type}


# format -> (rate_hz, bytes_per_sample, silence byte, GA type)
_FACTS: dict[AudioFormat, tuple[int, int, bytes, str]] = {
    AudioFormat.PCM16: (24000, 2, b"\x00", "audio/pcm"),
    AudioFormat.G711_ULAW: (8000, 1, b"\xff", "audio/pcmu"),
    AudioFormat.G711_ALAW: (8000, 1, b"\xd5", "audio/pcma"),
}
_BY_GA_TYPE = {facts[3]: fmt for fmt, facts in _FACTS.items()}
GA_FORMAT_TYPES: tuple[str, ...] = tuple(_BY_GA_TYPE)
BETA_FORMAT_NAMES: tuple[str, ...] = tuple(fmt.value for fmt in AudioFormat)
# GA accepts only this rate for audio/pcm.
GA_PCM_RATES_HZ: tuple[int, ...] = (24000,)


def parse_audio_format(value: Any) -> AudioFormat | None:
    """A format in either wire form (beta string or GA object) -> AudioFormat; None if not one.

    Tolerant on purpose: a GA object without `rate` is accepted. Strict validation with the
    service's error codes is `session.parse_session_update`'s job.
    """
    if isinstance(value, str):
        try:
            return AudioFormat(value)
        except ValueError:
            return _BY_GA_TYPE.get(value)
    if isinstance(value, dict):
        fmt = _BY_GA_TYPE.get(value.get("type"))  # type: ignore[arg-type]
        if fmt is AudioFormat.PCM16 and value.get("rate", 24000) not in GA_PCM_RATES_HZ:
            return None
        return fmt
    return None
