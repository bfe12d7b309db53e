"""A Live bundle is refused by `harness replay` in one line (exit 2) that says why, before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


def test_replaying_a_live_bundle_exits_2_with_one_line_saying_why_and_what_to_do_instead(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "live-0"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps(
        {"dialect": "live", "format": "g711_ulaw", "scenario": "barge_in", "chunk_ms": 20,
         "incident": {"cause": "stalled", "turn": 0}, "session_update": {"model": "gpt-realtime"}}))
    assert main(["replay", str(bundle), "--out", str(tmp_path / "out")]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith("harness replay: error: ") and str(bundle) in line
    assert "replay of a Live bundle is not supported" in line and "Live does not send" in line
    assert "harness run --dialect live" in line
    assert not (tmp_path / "out").exists()      # nothing started, nothing written
