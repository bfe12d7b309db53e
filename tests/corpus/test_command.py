"""`harness corpus annotate | build | check` through the real command-line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.corpus import SHIPPED_CORPORA_DIR


@pytest.mark.parametrize("name", ["default", "tools", "telephony", "noise"])
def test_check_passes_on_every_shipped_corpus_and_prints_its_statistics(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["corpus", "check", str(SHIPPED_CORPORA_DIR / name)]) == 0
    out = capsys.readouterr().out
    assert f"corpus {name}" in out and ": OK" in out
    assert "utterances" in out and "s in total" in out and "duration" in out
    if name != "noise":
        assert "speech start (lead)" in out and "speech end -> file end" in out


def test_check_on_a_broken_corpus_exits_2_with_one_line(make_corpus, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_corpus(utterance={"rate_hz": 8000})
    assert main(["corpus", "check", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness corpus: error: ") and "u1.wav" in err[0]


def test_annotate_then_check_a_folder_of_wavs(make_corpus, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_corpus()
    (folder / "manifest.json").unlink()
    assert main(["corpus", "annotate", str(folder), "--vad", "energy"]) == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [u["id"] for u in manifest["utterances"]] == ["u1", "u2"]
    assert abs(manifest["utterances"][1]["speech_end_ms"] - 1450.0) <= 20
    assert main(["corpus", "check", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "annotate tiny [" in captured.err  # the progress bar


def test_build_from_wavs_in_one_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = SHIPPED_CORPORA_DIR / "telephony"
    out = tmp_path / "mine"
    assert (
        main(["corpus", "build", "--from-wavs", str(src), "--out", str(out), "--rate", "16000", "--vad", "energy"]) == 0
    )
    captured = capsys.readouterr()
    assert "resampled from 8000 Hz to 16000 Hz" in captured.err
    assert main(["corpus", "check", str(out)]) == 0
    assert "rate 16000 Hz" in capsys.readouterr().out


def test_bad_padding_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["corpus", "build", "--from-wavs", str(tmp_path), "--out", str(tmp_path / "o"), "--pad-ms", "lots"])
    assert code == 2 and "--pad-ms 'lots'" in capsys.readouterr().err


def test_build_over_an_existing_corpus_is_refused_and_keeps_its_transcripts_unless_overwrite(
    make_corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_corpus()
    before = (folder / "manifest.json").read_text()
    code = main(["corpus", "build", "--from-wavs", str(folder), "--out", str(folder), "--vad", "energy"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "already holds a corpus" in err[0] and "--overwrite" in err[0]
    assert (folder / "manifest.json").read_text() == before   # transcripts "burst 1", "burst 2" kept
    assert main(["corpus", "build", "--from-wavs", str(folder), "--out", str(folder), "--vad", "energy",
                 "--overwrite"]) == 0
    rebuilt = json.loads((folder / "manifest.json").read_text())
    assert sorted(u["id"] for u in rebuilt["utterances"]) == ["u1", "u2"]
