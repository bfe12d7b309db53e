"""Loading a corpus: validated utterances whose audio is read once and converted once per format.

Loading checks the manifest and every file's header (cheap); the samples are read on first use
and each wire format is converted once and kept in memory, so a load test pays for resampling
and G.711 encoding before its sessions start (call `Corpus.prepare(fmt)`), never during them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.audio import AudioFileError, mix_at_snr, read_wav, resample, to_wire
from harness.corpus.manifest import CorpusError, Manifest, SpeechBounds, UtteranceEntry, check_audio_file, read_manifest

if TYPE_CHECKING:
    from harness.corpus.fingerprint import FingerprintIndex
    from harness.protocol import AudioFormat

# The shipped corpora, for `load_corpus("default")` from any working directory: installed from a
# wheel they are package data (setup.py copies the repository's corpora/ to harness/corpus/shipped/
# corpora/, so `SHIPPED_CORPORA_DIR.parent / "corpora/default"` holds in both layouts); in a checkout
# (or an editable install) they are the repository's corpora/.
INSTALLED_CORPORA_DIR = Path(__file__).resolve().parent / "shipped" / "corpora"
SHIPPED_CORPORA_DIR = (INSTALLED_CORPORA_DIR if INSTALLED_CORPORA_DIR.is_dir()
                       else Path(__file__).resolve().parents[2] / "corpora")


@dataclass(eq=False)
class Utterance(SpeechBounds):
    """One recording with its ground truth; audio is loaded lazily and cached."""

    id: str  # "<corpus>/<utterance id>"
    path: Path
    rate_hz: int
    duration_ms: float
    transcript: str
    segments_ms: list[tuple[float, float]]
    kind: str
    source: str = ""
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    _samples: np.ndarray | None = field(default=None, repr=False)
    _wire: dict[str, bytes] = field(default_factory=dict, repr=False)
    _pcm: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def samples(self) -> np.ndarray:
        """The file's mono int16 samples at `rate_hz` (read on first use)."""
        if self._samples is None:
            try:
                samples, _ = read_wav(self.path)
            except AudioFileError as exc:
                raise CorpusError(str(exc)) from None
            samples.setflags(write=False)
            self._samples = samples
        return self._samples

    def pcm(self, rate_hz: int) -> np.ndarray:
        """int16 samples at `rate_hz` (resampled once and cached); read-only."""
        if rate_hz == self.rate_hz:
            return self.samples
        with self._lock:
            if rate_hz not in self._pcm:
                converted = resample(self.samples, self.rate_hz, rate_hz)
                converted.setflags(write=False)
                self._pcm[rate_hz] = converted
            return self._pcm[rate_hz]

    def holds_speech(self, start_ms: float, end_ms: float) -> bool:
        """True when [start_ms, end_ms) of this utterance overlaps a labelled speech segment."""
        return any(start_ms < seg_end and seg_start < end_ms for seg_start, seg_end in self.segments_ms)

    def mixed(self, noise: Utterance, snr_db: float, *, noise_offset_ms: float = 0.0) -> Utterance:
        """This utterance with `noise` overlaid at `snr_db` over its speech; same labels and
        transcript, id `<id>+<noise id>@<snr>dB`, audio made now and kept in memory."""
        offset = int(round(noise_offset_ms * self.rate_hz / 1000.0))
        samples = mix_at_snr(
            self.samples, noise.pcm(self.rate_hz), snr_db, self.segments_ms, self.rate_hz, noise_offset=offset
        )
        samples.setflags(write=False)
        return Utterance(
            id=f"{self.id}+{noise.id}@{snr_db:g}dB",
            path=self.path,
            rate_hz=self.rate_hz,
            duration_ms=self.duration_ms,
            transcript=self.transcript,
            segments_ms=list(self.segments_ms),
            kind=self.kind,
            source=f"{self.source}; mixed with {noise.id} at {snr_db:g} dB SNR over speech",
            license=self.license,
            extra=dict(self.extra),
            _samples=samples,
        )

    def wire(self, fmt: AudioFormat) -> bytes:
        """The whole utterance as bytes in `fmt` (converted once, then cached)."""
        key = fmt.value
        with self._lock:
            cached = self._wire.get(key)
        if cached is None:
            cached = to_wire(self.pcm(fmt.rate_hz), fmt.rate_hz, fmt)
            with self._lock:
                cached = self._wire.setdefault(key, cached)
        return cached


@dataclass(eq=False)
class Corpus:
    """A loaded corpus: its manifest facts and its utterances, in manifest order."""

    name: str
    path: Path
    kind: str
    language: str
    annotation: dict[str, Any]
    utterances: list[Utterance]
    _fingerprints: dict[str, FingerprintIndex] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.utterances)

    def get(self, utterance_id: str) -> Utterance:
        """The utterance with this id ("default/utt01" or just "utt01")."""
        for utt in self.utterances:
            if utterance_id in (utt.id, utt.id.split("/", 1)[1]):
                return utt
        raise CorpusError(f"{self.path}: no utterance {utterance_id!r}; `harness corpus check {self.path}` lists them")

    def prepare(self, fmt: AudioFormat) -> None:
        """Convert every utterance to `fmt` now (before a run), so sessions only copy bytes."""
        for utt in self.utterances:
            utt.wire(fmt)

    def fingerprint_index(self, fmt: AudioFormat) -> FingerprintIndex:
        """Recognises which utterance a stream of received `fmt` audio holds (built once per format)."""
        from harness.corpus.fingerprint import FingerprintIndex

        if fmt.value not in self._fingerprints:
            self._fingerprints[fmt.value] = FingerprintIndex(self, fmt)
        return self._fingerprints[fmt.value]


def resolve_corpus_dir(path: str | Path) -> Path:
    """A corpus folder, a manifest.json, or the bare name of a shipped corpus."""
    given = Path(path)
    if given.name == "manifest.json":
        given = given.parent
    if given.is_dir():
        return given
    if not given.is_absolute():   # `default` or `corpora/default`, from any working directory
        for shipped in (SHIPPED_CORPORA_DIR / given, SHIPPED_CORPORA_DIR.parent / given):
            if (len(given.parts) == 1 or shipped.parent == SHIPPED_CORPORA_DIR) and shipped.is_dir():
                return shipped
    raise CorpusError(
        f"{given}: no such corpus folder; give a folder holding manifest.json (shipped: {_shipped_names()})"
    )


def _shipped_names() -> str:
    names = sorted(p.parent.name for p in SHIPPED_CORPORA_DIR.glob("*/manifest.json"))
    return ", ".join(names) or "none"


def _utterance(directory: Path, corpus_name: str, kind: str, entry: UtteranceEntry, manifest: Path) -> Utterance:
    return Utterance(
        id=f"{corpus_name}/{entry.id}",
        path=check_audio_file(directory, entry, manifest),
        rate_hz=entry.rate_hz,
        duration_ms=entry.duration_ms,
        transcript=entry.transcript,
        segments_ms=list(entry.segments_ms),
        kind=kind,
        source=entry.source,
        license=entry.license,
        extra=dict(entry.extra),
    )


def corpus_from_manifest(directory: Path, manifest: Manifest) -> Corpus:
    """A Corpus for an already-read manifest (every audio file's header checked)."""
    manifest_path = directory / "manifest.json"
    utterances = [_utterance(directory, manifest.name, manifest.kind, e, manifest_path) for e in manifest.utterances]
    return Corpus(
        name=manifest.name,
        path=directory,
        kind=manifest.kind,
        language=manifest.language,
        annotation=manifest.annotation,
        utterances=utterances,
    )


def load_corpus(path: str | Path) -> Corpus:
    """Load and validate a corpus; raises CorpusError (one line naming the file and the fix)."""
    directory = resolve_corpus_dir(path)
    return corpus_from_manifest(directory, read_manifest(directory))
