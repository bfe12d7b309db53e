"""The audio formats under test: `harness.protocol.AudioFormat`, once that module provides it."""

from __future__ import annotations

import enum

try:
    from harness.protocol import AudioFormat
except ImportError:  # protocol/ is being written in parallel; the contract fixes these facts

    class AudioFormat(str, enum.Enum):  # type: ignore[no-redef]
        PCM16 = "pcm16"
        G711_ULAW = "g711_ulaw"
        G711_ALAW = "g711_alaw"

        @property
        def rate_hz(self) -> int:
            return 24000 if self is AudioFormat.PCM16 else 8000

        @property
        def bytes_per_sample(self) -> int:
            return 2 if self is AudioFormat.PCM16 else 1

        @property
        def silence_byte(self) -> int:
            return {"pcm16": 0x00, "g711_ulaw": 0xFF, "g711_alaw": 0xD5}[self.value]


import pytest


@pytest.fixture(params=[f.value for f in AudioFormat])
def audio_format(request: pytest.FixtureRequest) -> AudioFormat:
    """Each wire format in turn."""
    return AudioFormat(request.param)


@pytest.fixture
def formats() -> type[AudioFormat]:
    """The AudioFormat enum itself, for tests that name one format."""
    return AudioFormat
