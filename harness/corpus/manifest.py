"""The `manifest.json` of a corpus: reading with validation, and writing.

The format is documented in `corpora/README.md`. Reading checks everything the harness relies
on later (files present, rates as declared, segments inside the audio and in order, speech
start/end consistent with the segments) and reports the first problem as one `CorpusError`
line naming the file and the fix, so a bad corpus fails before any session starts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.audio import AudioFileError, audio_info

MANIFEST_NAME = "manifest.json"
SCHEMA = 1
KINDS = ("speech", "noise")
# A duration written in ms may differ from the file's by rounding; more is a stale manifest.
DURATION_TOLERANCE_MS = 1.0


class CorpusError(ValueError):
    """A corpus that cannot be used; one line naming the file and the fix."""

    user_error = True


class SpeechBounds:
    """Speech start and end derived from `segments_ms`, the one place they come from."""

    segments_ms: list[tuple[float, float]]

    @property
    def speech_start_ms(self) -> float | None:
        """Start of the first speech segment (ms from the start of the file); None for noise."""
        return self.segments_ms[0][0] if self.segments_ms else None

    @property
    def speech_end_ms(self) -> float | None:
        """End of the last speech segment: the true end of speech; None for noise."""
        return self.segments_ms[-1][1] if self.segments_ms else None


@dataclass
class UtteranceEntry(SpeechBounds):
    """One utterance as the manifest describes it (no audio loaded)."""

    id: str
    file: str
    rate_hz: int
    duration_ms: float
    transcript: str
    segments_ms: list[tuple[float, float]]
    source: str = ""
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "rate_hz": self.rate_hz,
            "duration_ms": round(self.duration_ms, 3),
            "transcript": self.transcript,
            "segments_ms": [[round(a, 3), round(b, 3)] for a, b in self.segments_ms],
            "speech_start_ms": None if self.speech_start_ms is None else round(self.speech_start_ms, 3),
            "speech_end_ms": None if self.speech_end_ms is None else round(self.speech_end_ms, 3),
            "source": self.source,
            "license": self.license,
            **self.extra,
        }


@dataclass
class Manifest:
    """A corpus manifest: corpus-level facts plus its utterance entries."""

    name: str
    kind: str
    language: str
    annotation: dict[str, Any]
    utterances: list[UtteranceEntry]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "kind": self.kind,
            "language": self.language,
            "description": self.description,
            "annotation": self.annotation,
            **self.extra,
            "utterances": [u.to_json() for u in self.utterances],
        }


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write `directory/manifest.json` (stable key order, one utterance per block)."""
    path = Path(directory) / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


UTTERANCE_KEYS = {
    "id",
    "file",
    "rate_hz",
    "duration_ms",
    "transcript",
    "segments_ms",
    "speech_start_ms",
    "speech_end_ms",
    "source",
    "license",
}
MANIFEST_KEYS = {"schema", "name", "kind", "language", "description", "annotation", "utterances"}


def _require(value: Any, kind: type | tuple[type, ...], where: str, fix: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise CorpusError(f"{where}: {fix}")
    return value


def _number(value: Any, where: str, what: str) -> float:
    number = float(_require(value, (int, float), where, f"{what} must be a number"))
    if not math.isfinite(number):
        raise CorpusError(f"{where}: {what} must be a finite number")
    return number


def _segments(raw: Any, where: str, duration_ms: float) -> list[tuple[float, float]]:
    _require(raw, list, where, "segments_ms must be a list of [start_ms, end_ms] pairs")
    segments: list[tuple[float, float]] = []
    for pair in raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise CorpusError(f"{where}: segments_ms must be a list of [start_ms, end_ms] pairs, got {pair!r}")
        start, end = (_number(v, where, "a segment edge") for v in pair)
        if not 0 <= start < end <= duration_ms + DURATION_TOLERANCE_MS:
            raise CorpusError(
                f"{where}: segment [{start}, {end}] ms is outside the audio (0-{duration_ms:.1f} ms) or empty; "
                "re-run `harness corpus annotate` on the corpus"
            )
        if segments and start < segments[-1][1]:
            raise CorpusError(f"{where}: segments overlap or are out of order at {start} ms; sort and merge them")
        segments.append((start, min(end, duration_ms)))
    return segments


def _entry(raw: Any, index: int, manifest_path: Path, kind: str) -> UtteranceEntry:
    where = f"{manifest_path}: utterance #{index + 1}"
    _require(raw, dict, where, "each utterance must be a JSON object")
    for key in ("id", "file", "rate_hz", "duration_ms", "segments_ms"):
        if key not in raw:
            raise CorpusError(f"{where}: missing {key!r}; see corpora/README.md for the manifest format")
    where = f"{manifest_path}: utterance {raw['id']!r}"
    rate_hz = _require(raw["rate_hz"], int, where, "rate_hz must be an integer (samples per second)")
    duration_ms = _number(raw["duration_ms"], where, "duration_ms")
    segments = _segments(raw["segments_ms"], where, duration_ms)
    if kind == "speech" and not segments:
        raise CorpusError(
            f"{where}: a speech utterance needs at least one speech segment; annotate it or mark the corpus kind 'noise'"
        )
    if kind == "noise" and segments:
        raise CorpusError(
            f"{where}: a noise corpus must have no speech segments; empty segments_ms or mark the corpus kind 'speech'"
        )
    for key, expected in (
        ("speech_start_ms", segments[0][0] if segments else None),
        ("speech_end_ms", segments[-1][1] if segments else None),
    ):
        given = raw.get(key, expected)
        agrees = (
            given is None if expected is None else isinstance(given, (int, float)) and abs(given - expected) <= 0.01
        )
        if not agrees:
            raise CorpusError(f"{where}: {key}={given} disagrees with segments_ms; re-run `harness corpus annotate`")
    return UtteranceEntry(
        id=_require(raw["id"], str, where, "id must be a string"),
        file=_require(raw["file"], str, where, "file must be a path relative to the corpus folder"),
        rate_hz=rate_hz,
        duration_ms=duration_ms,
        transcript=_require(raw.get("transcript", ""), str, where, "transcript must be a string"),
        segments_ms=segments,
        source=str(raw.get("source", "")),
        license=str(raw.get("license", "")),
        extra={k: v for k, v in raw.items() if k not in UTTERANCE_KEYS},
    )


def check_audio_file(directory: Path, entry: UtteranceEntry, manifest_path: Path) -> Path:
    """The entry's audio file, after checking it exists and matches the declared rate and length."""
    path = directory / entry.file
    if not path.is_file():
        raise CorpusError(
            f"{path}: listed in {manifest_path} but missing; restore the file or remove utterance {entry.id!r}"
        )
    try:
        info = audio_info(path)
    except AudioFileError as exc:
        raise CorpusError(f"{exc} (utterance {entry.id!r})") from None
    if info.channels != 1:
        # which channel is the caller? mixing a two-party recording would send both voices
        raise CorpusError(
            f"{path}: {info.channels} channels, but corpus audio is one voice in mono; convert it with "
            "`harness corpus build --from-wavs` (mixes down) or keep only the caller's channel"
        )
    if info.samplerate != entry.rate_hz:
        raise CorpusError(
            f"{path}: sample rate {info.samplerate} Hz but the manifest says {entry.rate_hz} Hz; "
            "fix rate_hz or rebuild with `harness corpus build --from-wavs`"
        )
    actual_ms = info.frames * 1000.0 / info.samplerate
    if abs(actual_ms - entry.duration_ms) > DURATION_TOLERANCE_MS:
        raise CorpusError(
            f"{path}: lasts {actual_ms:.1f} ms but the manifest says {entry.duration_ms:.1f} ms; "
            "re-run `harness corpus annotate` on the corpus"
        )
    return path


def read_manifest(directory: Path) -> Manifest:
    """Parse and validate `directory/manifest.json` (structure and ranges; audio files not opened)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise CorpusError(
            f"{path}: no manifest; create one with `harness corpus build --from-wavs DIR --out {directory}`"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(
            f"{path}: not valid JSON ({exc}); fix the file or rebuild it with `harness corpus annotate`"
        ) from None
    _require(raw, dict, str(path), "the manifest must be a JSON object; see corpora/README.md")
    if raw.get("schema", SCHEMA) != SCHEMA:
        raise CorpusError(
            f"{path}: schema {raw.get('schema')!r} is not supported (expected {SCHEMA}); rebuild the corpus"
        )
    kind = raw.get("kind", "speech")
    if kind not in KINDS:
        raise CorpusError(f"{path}: kind {kind!r} is not one of {', '.join(KINDS)}; fix 'kind'")
    utterances = raw.get("utterances")
    if not isinstance(utterances, list) or not utterances:
        raise CorpusError(
            f"{path}: the corpus has no utterances; add audio and run `harness corpus annotate {directory}`"
        )
    entries = [_entry(u, i, path, kind) for i, u in enumerate(utterances)]
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise CorpusError(f"{path}: utterance id {entry.id!r} appears twice; give each utterance its own id")
        seen.add(entry.id)
    return Manifest(
        name=str(raw.get("name") or Path(directory).resolve().name),
        kind=kind,
        language=str(raw.get("language", "")),
        annotation=dict(raw.get("annotation") or {}),
        utterances=entries,
        description=str(raw.get("description", "")),
        extra={k: v for k, v in raw.items() if k not in MANIFEST_KEYS},
    )
