"""Noise clips for noisy-playback and false-barge-in scenarios: pink, brown, and speech babble.

Pink (1/f power) and brown (1/f^2) noise are shaped in the frequency domain from seeded white
noise, so a clip is the same on every machine. Babble is the most realistic interference for a
call centre and the hardest for a VAD: several talkers, each a shuffled chain of real speech
taken from speech corpora (only their labelled speech), summed at random offsets. It *is*
speech, so a noise corpus is labelled as holding no target speech rather than no speech.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.audio import float_to_int16, write_wav
from harness.corpus.annotate import annotate_dir
from harness.corpus.loader import load_corpus
from harness.corpus.manifest import MANIFEST_NAME, CorpusError, Manifest

NOISE_RMS = 0.05  # -26 dBFS: mixing rescales to the requested SNR anyway
BABBLE_TALKERS = 6
KINDS = ("pink", "brown", "babble")


def coloured_noise(n_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS, no DC."""
    freqs = np.fft.rfftfreq(n_samples)
    spectrum = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    spectrum[0] = 0.0
    spectrum[1:] /= freqs[1:] ** (exponent / 2.0)
    x = np.fft.irfft(spectrum, n_samples)
    return x / np.sqrt(np.mean(x**2))


def babble(
    n_samples: int, rate_hz: int, corpus_dirs: list[str], rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """BABBLE_TALKERS chains of real speech summed; returns (unit-RMS babble, the sources used)."""
    pieces: list[np.ndarray] = []
    sources: list[str] = []
    for directory in corpus_dirs:
        corpus = load_corpus(directory)
        for utt in corpus.utterances:
            if not utt.segments_ms:
                continue
            x = utt.pcm(rate_hz).astype(np.float64)
            first, last = (int(ms * rate_hz / 1000.0) for ms in (utt.segments_ms[0][0], utt.segments_ms[-1][1]))
            speech = x[first:last]
            pieces.append(speech / (np.sqrt(np.mean(speech**2)) or 1.0))
        sources.append(f"{corpus.name} ({corpus.path})")
    if len(pieces) < 2:
        raise CorpusError("babble needs speech to mix; pass --babble-from with one or more speech corpus folders")
    total = np.zeros(n_samples)
    for _ in range(BABBLE_TALKERS):
        chain: list[np.ndarray] = []
        length = 0
        while length < n_samples * 2:
            piece = pieces[int(rng.integers(len(pieces)))]
            chain.append(piece)
            length += piece.size
        talker = np.concatenate(chain)
        offset = int(rng.integers(0, talker.size - n_samples))
        total += talker[offset : offset + n_samples]
    return total / np.sqrt(np.mean(total**2)), sources


def build_noise(
    out_dir: str | Path, kinds: list[str], *, babble_from: list[str], seconds: float, rate_hz: int, seed: int
) -> Manifest:
    """Write one clip per kind into `out_dir` and annotate it as a noise corpus."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise CorpusError(f"--noise {','.join(kinds)}: choose from {', '.join(KINDS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_samples = int(seconds * rate_hz)
    utterances = []
    for index, kind in enumerate(kinds):
        rng = np.random.default_rng(seed + index)
        if kind == "babble":
            clip, sources = babble(n_samples, rate_hz, babble_from, rng)
            source = (
                f"{BABBLE_TALKERS} talkers mixed from the labelled speech of "
                + "; ".join(sources)
                + f", seed {seed + index}"
            )
            licence = "CC-BY-SA-3.0 (derived from the Asterisk prompts by Allison Smith; see corpora/LICENSES.md)"
        else:
            clip = coloured_noise(n_samples, {"pink": 1.0, "brown": 2.0}[kind], rng)
            source = f"synthesised {kind} noise (numpy, FFT-shaped, seed {seed + index})"
            licence = "CC0-1.0"
        write_wav(out / f"{kind}.wav", float_to_int16(clip * NOISE_RMS), rate_hz)
        utterances.append({"id": kind, "file": f"{kind}.wav", "transcript": "", "source": source, "license": licence})
    raw = {
        "schema": 1,
        "name": out.resolve().name,
        "kind": "noise",
        "language": "",
        "description": "noise clips for mixing at a chosen SNR and for false-barge-in scenarios; no target speech",
        "built_with": {"command": "harness corpus build --noise", "seconds": seconds, "rate_hz": rate_hz, "seed": seed},
        "utterances": utterances,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    return annotate_dir(out, kind="noise")
