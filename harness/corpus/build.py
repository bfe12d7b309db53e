"""Building a corpus folder: from a text file through TTS, or from a folder of the user's audio.

Both write mono 16-bit WAVs into the output folder, a manifest with transcripts and sources,
and then run the same annotation as `harness corpus annotate`, so every shipped or user-built
corpus has labels made one way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.audio import float_to_int16, read_wav, write_wav
from harness.corpus.annotate import AUDIO_SUFFIXES, annotate_dir
from harness.corpus.manifest import MANIFEST_NAME, CorpusError, Manifest
from harness.corpus.progress import progress

TTS_PACKAGE = "hibari-tts"
TTS_VERSION = "0.2.1"
TTS_RATE_HZ = 24000
TTS_PEAK = 0.5  # -6 dBFS: every utterance at one level, with headroom for noise mixing
LEAD_SILENCE_MS = (300, 600)  # digital silence added before the TTS's own, drawn per seed
TRAIL_SILENCE_MS = (300, 600)


@dataclass(frozen=True)
class TextLine:
    """One line of a TTS text list: `id | seed | text` (seed optional)."""

    id: str
    seed: int
    text: str


def read_text_list(path: Path, *, base_seed: int = 1000) -> list[TextLine]:
    """Parse a text list; '#' starts a comment. Without a seed, line n gets base_seed + n."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such text file; give a file with one `id | seed | text` line per utterance")
    lines: list[TextLine] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 2:
            parts = [parts[0], str(base_seed + len(lines) + 1), parts[1]]
        if len(parts) != 3 or not parts[0] or not parts[2] or not parts[1].isdigit():
            raise CorpusError(f"{path}:{number}: expected `id | seed | text` (or `id | text`), got {raw.strip()!r}")
        lines.append(TextLine(parts[0], int(parts[1]), parts[2]))
    if not lines:
        raise CorpusError(f"{path}: no utterances in the text file; add `id | seed | text` lines")
    ids = [t.id for t in lines]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise CorpusError(f"{path}: id {duplicate!r} appears twice; give each line its own id")
    return lines


def _synthesizer() -> Any:
    try:
        import hibari
    except ImportError:
        raise CorpusError(
            f"building from text needs the TTS extra; install it with: pip install '{TTS_PACKAGE}=={TTS_VERSION}'"
        ) from None
    return hibari.Hibari()


def _padding(seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    return int(rng.integers(LEAD_SILENCE_MS[0], LEAD_SILENCE_MS[1] + 1)), int(
        rng.integers(TRAIL_SILENCE_MS[0], TRAIL_SILENCE_MS[1] + 1)
    )


def _silence(ms: float, rate_hz: int) -> np.ndarray:
    return np.zeros(int(round(ms * rate_hz / 1000.0)), dtype=np.int16)


def _write_start(
    out: Path,
    name: str,
    description: str,
    utterances: list[dict[str, Any]],
    extra: dict[str, Any],
    kind: str = "speech",
) -> None:
    """Write the manifest skeleton that annotation then completes (ids, files, transcripts, sources)."""
    raw = {
        "schema": 1,
        "name": name,
        "kind": kind,
        "language": "en",
        "description": description,
        **extra,
        "utterances": utterances,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(raw, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build_from_text(
    text_file: str | Path, out_dir: str | Path, *, speed: float = 1.0, method: str = "auto", description: str = ""
) -> Manifest:
    """Synthesise every line of `text_file` with hibari-tts into `out_dir`, then annotate it."""
    lines = read_text_list(Path(text_file))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tts = _synthesizer()
    utterances = []
    for line in progress(lines, f"tts {out.name}"):
        wave = np.asarray(tts(line.text, speed=speed, seed=line.seed), dtype=np.float64)
        peak = float(np.max(np.abs(wave))) or 1.0
        lead_ms, trail_ms = _padding(line.seed)
        speech = float_to_int16(wave * (TTS_PEAK / peak))
        write_wav(
            out / f"{line.id}.wav",
            np.concatenate([_silence(lead_ms, TTS_RATE_HZ), speech, _silence(trail_ms, TTS_RATE_HZ)]),
            TTS_RATE_HZ,
        )
        utterances.append(
            {
                "id": line.id,
                "file": f"{line.id}.wav",
                "transcript": line.text,
                "source": f"{TTS_PACKAGE} {TTS_VERSION}, voice heart, seed {line.seed}, speed {speed}; "
                f"{lead_ms} ms / {trail_ms} ms of digital silence added",
                "license": "Apache-2.0 (generated offline with hibari-tts)",
                "seed": line.seed,
            }
        )
    extra = {
        "built_with": {
            "command": "harness corpus build --from-text",
            "texts": Path(text_file).name,
            "tts": f"{TTS_PACKAGE}=={TTS_VERSION}",
            "speed": speed,
        }
    }
    _write_start(
        out, out.resolve().name, description or f"TTS utterances from {Path(text_file).name}", utterances, extra
    )
    return annotate_dir(out, method=method)


def read_transcripts(path: Path) -> dict[str, str]:
    """`file-or-id | transcript` lines -> {key: transcript}; keys are matched with and without suffix."""
    if not path.is_file():
        raise CorpusError(f"{path}: no such transcripts file; give a file of `file | transcript` lines")
    found: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "|" not in line:
            raise CorpusError(f"{path}:{number}: expected `file | transcript`, got {line!r}")
        key, text = (p.strip() for p in line.split("|", 1))
        found[key.rsplit(".", 1)[0] if key.lower().endswith(AUDIO_SUFFIXES) else key] = text
    return found


def build_from_wavs(
    source_dir: str | Path,
    out_dir: str | Path,
    *,
    rate_hz: int = 24000,
    transcripts: str | Path | None = None,
    only_listed: bool = False,
    pad_ms: tuple[float, float] = (0.0, 0.0),
    source: str = "",
    license: str = "",
    method: str = "auto",
    kind: str = "speech",
) -> Manifest:
    """Convert every WAV/FLAC under `source_dir` (mono, `rate_hz`, 16-bit) into `out_dir`, annotate."""
    src, out = Path(source_dir), Path(out_dir)
    if not src.is_dir():
        raise CorpusError(f"{src}: no such folder; give the folder holding your WAV or FLAC files")
    texts = read_transcripts(Path(transcripts)) if transcripts else {}
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    keyed = [(p, p.relative_to(src).as_posix().rsplit(".", 1)[0]) for p in files]
    if only_listed:
        keyed = [(p, key) for p, key in keyed if key in texts]
        missing = sorted(set(texts) - {key for _, key in keyed})
        if missing:
            raise CorpusError(
                f"{transcripts}: lists {missing[0]!r}, which is not under {src}; fix the name or remove the line"
            )
    if not keyed:
        raise CorpusError(f"{src}: no WAV or FLAC files found; give a folder with audio files")
    out.mkdir(parents=True, exist_ok=True)
    utterances = []
    for path, key in progress(keyed, f"convert {out.name}"):
        samples, _ = read_wav(path, rate_hz=rate_hz)
        utterance_id = key.replace("/", "-")
        write_wav(
            out / f"{utterance_id}.wav",
            np.concatenate([_silence(pad_ms[0], rate_hz), samples, _silence(pad_ms[1], rate_hz)]),
            rate_hz,
        )
        sidecar = path.with_suffix(".txt")
        transcript = (
            texts.get(key)
            or texts.get(path.stem)
            or (sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else "")
        )
        padded = f"; {pad_ms[0]:g} ms / {pad_ms[1]:g} ms of digital silence added" if any(pad_ms) else ""
        utterances.append(
            {
                "id": utterance_id,
                "file": f"{utterance_id}.wav",
                "transcript": transcript,
                "source": f"{source or src}/{path.relative_to(src).as_posix()}{padded}",
                "license": license,
            }
        )
    extra = {"built_with": {"command": "harness corpus build --from-wavs", "rate_hz": rate_hz, "pad_ms": list(pad_ms)}}
    _write_start(out, out.resolve().name, f"converted from {source or src}", utterances, extra, kind)
    return annotate_dir(out, method=method, kind=kind)
