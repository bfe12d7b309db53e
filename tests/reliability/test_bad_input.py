"""Bad input through the real command line: exit 2 and one stderr line naming the problem and the fix."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _corpus_with(tmp: Path, name: str, payload: bytes | None) -> Path:
    """A copy of a one-utterance corpus whose audio file is replaced by `payload` (None: removed)."""
    src = REPO / "corpora" / "default"
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["utterances"] = manifest["utterances"][:1]
    folder = tmp / name
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    wav = manifest["utterances"][0]["file"]
    if payload is not None:
        (folder / wav).write_bytes(payload)
    return folder


def _cases(tmp: Path, port: int) -> dict[str, list[str]]:
    (tmp / "bad.toml").write_text("latency = [\n")
    (tmp / "afile").write_text("x")
    good_wav = (REPO / "corpora" / "default" / "utt01.wav").read_bytes()
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
        "not a trace folder": ["metrics", str(tmp / "nowhere")],
        "not a run directory": ["report", str(tmp / "nowhere")],
        "not a bundle": ["replay", str(tmp)],
    }


def test_every_bad_input_gives_exit_2_and_one_line_naming_it(tmp_path: Path, busy_port: int) -> None:
    failures = []
    for name, args in _cases(tmp_path, busy_port).items():
        done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=60)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        if done.returncode != 2 or len(lines) != 1 or "error:" not in lines[0]:
            failures.append((name, done.returncode, lines[-3:]))
    assert not failures, failures
    shutil.rmtree(tmp_path, ignore_errors=True)
