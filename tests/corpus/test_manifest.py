"""Manifest validation: every broken corpus fails with one line naming the file and the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.audio import write_wav
from harness.corpus import CorpusError, load_corpus


def one_line_error(folder: Path) -> str:
    with pytest.raises(CorpusError) as exc:
        load_corpus(folder)
    message = str(exc.value)
    assert "\n" not in message
    assert exc.value.user_error is True
    return message


def test_a_valid_tiny_corpus_loads_with_its_labels(make_corpus: Callable[..., Path]) -> None:
    corpus = load_corpus(make_corpus())
    assert [u.id for u in corpus.utterances] == ["tiny/u1", "tiny/u2"]
    first = corpus.utterances[0]
    assert (first.speech_start_ms, first.speech_end_ms, first.kind) == (300.0, 1000.0, "speech")
    assert first.segments_ms == [(300.0, 1000.0)]


def test_a_missing_audio_file_is_named_with_the_fix(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus()
    (folder / "u2.wav").unlink()
    message = one_line_error(folder)
    assert "u2.wav" in message and "missing" in message and "restore the file or remove utterance 'u2'" in message


def test_a_segment_past_the_end_of_the_audio_is_out_of_range(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus(utterance={"segments_ms": [[300.0, 1800.0]], "speech_end_ms": 1800.0})
    message = one_line_error(folder)
    assert "manifest.json" in message and "'u1'" in message and "outside the audio" in message
    assert "harness corpus annotate" in message


def test_a_negative_or_empty_segment_is_out_of_range(make_corpus: Callable[..., Path]) -> None:
    assert "outside the audio" in one_line_error(
        make_corpus(utterance={"segments_ms": [[-5.0, 100.0]], "speech_start_ms": -5.0})
    )
    assert "outside the audio" in one_line_error(make_corpus(utterance={"segments_ms": [[400.0, 400.0]]}))


def test_overlapping_segments_are_refused(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus(utterance={"segments_ms": [[300.0, 700.0], [600.0, 1000.0]]})
    assert "overlap" in one_line_error(folder)


def test_a_rate_that_differs_from_the_file_is_a_mismatch(make_corpus: Callable[..., Path]) -> None:
    message = one_line_error(make_corpus(utterance={"rate_hz": 16000}))
    assert "u1.wav" in message and "24000 Hz" in message and "16000 Hz" in message


def test_a_duration_that_differs_from_the_file_is_stale(make_corpus: Callable[..., Path]) -> None:
    message = one_line_error(make_corpus(utterance={"duration_ms": 1300.0}))
    assert "u1.wav" in message and "lasts 1400.0 ms" in message


def test_bad_json_names_the_manifest(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus()
    (folder / "manifest.json").write_text('{"utterances": [')
    message = one_line_error(folder)
    assert "manifest.json" in message and "not valid JSON" in message


def test_an_empty_corpus_says_how_to_fill_it(make_corpus: Callable[..., Path]) -> None:
    message = one_line_error(make_corpus(corpus={"utterances": []}))
    assert "no utterances" in message and "harness corpus annotate" in message


def test_a_folder_without_a_manifest_says_how_to_build_one(tmp_path: Path) -> None:
    message = one_line_error(tmp_path)
    assert "no manifest" in message and "harness corpus build --from-wavs" in message


def test_a_path_that_is_no_folder_and_no_shipped_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    message = one_line_error(tmp_path / "nothing-here")
    assert "no such corpus folder" in message and "default" in message


def test_speech_end_that_disagrees_with_the_segments_is_refused(make_corpus: Callable[..., Path]) -> None:
    assert "speech_end_ms" in one_line_error(make_corpus(utterance={"speech_end_ms": 950.0}))


def test_duplicate_ids_are_refused(make_corpus: Callable[..., Path]) -> None:
    assert "appears twice" in one_line_error(make_corpus(utterance={"id": "u2"}))


def test_a_missing_required_key_is_named(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus(utterance={"rate_hz": None})
    assert "rate_hz must be an integer" in one_line_error(folder)


def test_a_speech_utterance_needs_a_segment_and_a_noise_one_must_have_none(make_corpus: Callable[..., Path]) -> None:
    assert "at least one speech segment" in one_line_error(
        make_corpus(utterance={"segments_ms": [], "speech_start_ms": None, "speech_end_ms": None})
    )
    assert "must have no speech segments" in one_line_error(make_corpus(corpus={"kind": "noise"}))
    assert "kind 'music'" in one_line_error(make_corpus(corpus={"kind": "music"}))


def test_a_file_that_is_not_audio_is_named(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus()
    (folder / "u1.wav").write_text("not audio at all")
    assert "u1.wav" in one_line_error(folder)


def test_a_truncated_file_is_named_as_truncated(make_corpus: Callable[..., Path]) -> None:
    folder = make_corpus()
    write_wav(folder / "u1.wav", np.ones(33600, dtype=np.int16), 24000)
    data = (folder / "u1.wav").read_bytes()
    (folder / "u1.wav").write_bytes(data[: len(data) - 1000])
    message = one_line_error(folder)
    assert "u1.wav" in message and "truncated" in message
