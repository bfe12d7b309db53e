"""Shared fixtures: tiny corpora written into tmp folders, and the audio formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.audio import write_wav

try:
    from harness.protocol import AudioFormat
except ImportError:  # protocol/__init__ is being written in parallel; formats.py is there
    from harness.protocol.formats import AudioFormat

RATE_HZ = 24000


def tone_burst(ms: float, rate_hz: int = RATE_HZ, freq_hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(ms * rate_hz / 1000)) / rate_hz
    return (6000 * np.sin(2 * np.pi * freq_hz * t) + 2000 * np.sin(2 * np.pi * 3.1 * freq_hz * t)).astype(np.int16)


def silence(ms: float, rate_hz: int = RATE_HZ) -> np.ndarray:
    return np.zeros(int(ms * rate_hz / 1000), dtype=np.int16)


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., Path]:
    """Write a two-utterance speech corpus (tone bursts between silences) and return its folder.

    Keyword arguments override manifest fields: `corpus={...}` at the top, `utterance={...}`
    in the first utterance.
    """

    def build(corpus: dict[str, Any] | None = None, utterance: dict[str, Any] | None = None) -> Path:
        folder = tmp_path / "tiny"
        folder.mkdir(exist_ok=True)
        entries = []
        for index, (lead, speech, trail) in enumerate([(300, 700, 400), (250, 1200, 500)]):
            name = f"u{index + 1}"
            write_wav(
                folder / f"{name}.wav", np.concatenate([silence(lead), tone_burst(speech), silence(trail)]), RATE_HZ
            )
            entries.append(
                {
                    "id": name,
                    "file": f"{name}.wav",
                    "rate_hz": RATE_HZ,
                    "duration_ms": float(lead + speech + trail),
                    "transcript": f"burst {index + 1}",
                    "segments_ms": [[float(lead), float(lead + speech)]],
                    "speech_start_ms": float(lead),
                    "speech_end_ms": float(lead + speech),
                    "source": "synthetic",
                    "license": "CC0-1.0",
                }
            )
        entries[0].update(utterance or {})
        raw = {
            "schema": 1,
            "name": "tiny",
            "kind": "speech",
            "language": "en",
            "annotation": {"method": "exact"},
            "utterances": entries,
        }
        raw.update(corpus or {})
        (folder / "manifest.json").write_text(json.dumps(raw))
        return folder

    return build


@pytest.fixture(params=[f.value for f in AudioFormat])
def audio_format(request: pytest.FixtureRequest) -> AudioFormat:
    return AudioFormat(request.param)


@pytest.fixture
def formats() -> type[AudioFormat]:
    """The AudioFormat enum itself, for tests that name one format."""
    return AudioFormat
