"""Bad input through the real command line: exit 2 and one stderr line naming the problem and the fix."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _corpus_with(tmp: Path, name: str, payload: bytes | None, manifest_text: str | None = None) -> Path:
    """A copy of a one-utterance corpus whose audio file is replaced by `payload` (None: removed),
    and its manifest by `manifest_text` when given."""
    src = REPO / "corpora" / "default"
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["utterances"] = manifest["utterances"][:1]
    folder = tmp / name
    folder.mkdir()
    (folder / "manifest.json").write_text(manifest_text if manifest_text is not None else json.dumps(manifest))
    wav = manifest["utterances"][0]["file"]
    if payload is not None:
        (folder / wav).write_bytes(payload)
    return folder


def _wav(samples: np.ndarray, rate_hz: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _manifest(**changes: object) -> str:
    manifest = json.loads((REPO / "corpora" / "default" / "manifest.json").read_text())
    manifest["utterances"] = manifest["utterances"][:1]
    manifest.update(changes)
    return json.dumps(manifest)


def _cases(tmp: Path, port: int) -> dict[str, list[str]]:
    (tmp / "bad.toml").write_text("latency = [\n")
    (tmp / "afile").write_text("x")
    good_wav = (REPO / "corpora" / "default" / "utt01.wav").read_bytes()
    mono, rate_hz = soundfile.read(io.BytesIO(good_wav), dtype="int16")
    no_file = json.loads(_manifest())
    del no_file["utterances"][0]["file"]
    return {
        "port in use": ["sim", "--port", str(port)],
        "bad simulator TOML": ["sim", "--config", str(tmp / "bad.toml"), "--port", "0"],
        "bad SLO TOML": ["run", "--slo", str(tmp / "bad.toml")],
        "bad SLO expression": ["run", "--slo", "ttfa_ms:p95<<1"],
        "unwritable output": ["run", "--out", str(tmp / "afile" / "run")],
        "unknown scenario": ["run", "--scenario", "telepathy:1"],
        "unknown format": ["run", "--format", "opus"],
        "missing corpus": ["run", "--corpus", str(tmp / "nowhere")],
        "invalid URL": ["run", "--target", "http://127.0.0.1:1/x"],
        "corpus: missing file": ["corpus", "check", str(_corpus_with(tmp, "missing", None))],
        "corpus: non-audio file": ["corpus", "check", str(_corpus_with(tmp, "text", b"hello, not audio"))],
        "corpus: truncated WAV": ["corpus", "check", str(_corpus_with(tmp, "torn", good_wav[:30]))],
        "corpus: empty file": ["corpus", "check", str(_corpus_with(tmp, "empty", b""))],
        "corpus: stereo file": ["corpus", "check", str(_corpus_with(tmp, "stereo", _wav(np.stack([mono, mono], 1), rate_hz)))],
        "corpus: wrong rate": ["corpus", "check", str(_corpus_with(tmp, "rate", _wav(mono[::3], rate_hz // 3)))],
        "corpus: manifest not JSON": ["corpus", "check", str(_corpus_with(tmp, "mjson", good_wav, "{not json"))],
        "corpus: manifest entry without file": ["corpus", "check",
                                                str(_corpus_with(tmp, "mfile", good_wav, json.dumps(no_file)))],
        "corpus: no utterances": ["corpus", "check", str(_corpus_with(tmp, "none", good_wav, _manifest(utterances=[])))],
        "run: stereo corpus": ["run", "--corpus", str(tmp / "stereo")],
        "run: empty corpus": ["run", "--corpus", str(tmp / "none")],
        "missing API key (named variable)": ["run", "--api-key-env", "HARNESS_NOT_SET_ANYWHERE"],
        "missing API key (remote target)": ["run", "--target", "wss://realtime.invalid/v1/realtime"],
        "not a trace folder": ["metrics", str(tmp / "nowhere")],
        "not a run directory": ["report", str(tmp / "nowhere")],
        "not a bundle": ["replay", str(tmp)],
    }


def test_every_bad_input_gives_exit_2_and_one_line_naming_it(tmp_path: Path, busy_port: int) -> None:
    failures = []
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")}
    for name, args in _cases(tmp_path, busy_port).items():
        done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=60, env=env)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        if done.returncode != 2 or len(lines) != 1 or "error:" not in lines[0]:
            failures.append((name, done.returncode, lines[-3:]))
    assert not failures, failures
    shutil.rmtree(tmp_path, ignore_errors=True)
