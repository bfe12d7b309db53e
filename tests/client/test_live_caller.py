"""The caller speaks Live: `session.start` -> `session.started`, audio by `session.input_audio.append`,
answers heard from `session.output_audio.delta`, against the real simulator on 127.0.0.1.

The truth is the simulator's own: its server trace holds the moment it handed each Live audio chunk
to the socket (CLOCK_MONOTONIC, the caller's clock too), so the caller's ttfa (its speech end ->
the first chunk's arrival) exceeds the true one (speech end -> that chunk's send) by the loopback
transit only. Live chunks carry no id, so a turn's first chunk is matched to the first chunk the
simulator sent that session after the caller's speech end.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest

from harness.client import SessionSpec
from harness.client.clips import utterance_clip
from harness.metrics import turns_from_trace
from harness.protocol import AudioFormat, Dialect
from harness.scenarios import LIVE_UNAVAILABLE, prepare, run_sessions
from harness.sim import SimConfig
from harness.sim.process import start_in_process
from harness.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]
SHORT = "utt11"          # the corpus's shortest utterance: a whole Live turn fits a short run
TRANSIT_MS = 5.0         # loopback transit plus a busy machine's scheduling, well above what we see

live_types = pytest.importorskip("openai.types.live")
pydantic = pytest.importorskip("pydantic")


def _client_adapter() -> Any:
    union = typing.get_args(live_types.ClientEvent)[0] if typing.get_origin(live_types.ClientEvent) is Annotated \
        else live_types.ClientEvent
    members = typing.get_args(union)
    return pydantic.TypeAdapter(Annotated[typing.Union[tuple(members)], pydantic.Discriminator("type")])


def _live_runs(tmp_path: Path, formats: tuple[str, ...]) -> tuple[list[Any], list[dict[str, Any]]]:
    with start_in_process(SimConfig(latency={"first_audio": "fixed:300"})) as sim:
        specs = [SessionSpec(url=sim.url, dialect="live", fmt=fmt, turns=2, trace_dir=tmp_path, session_id=f"live{i}",
                             lateness_limit_ms=1000.0, scenario_params={"utterances": [SHORT]})
                 for i, fmt in enumerate(formats)]
        results = run_sessions(specs)
        sim.stop()
        return results, sim.read_records()


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], list[dict[str, Any]]]:
    """One real simulator, two Live sessions (pcm16 and G.711 µ-law), two turns each."""
    return _live_runs(tmp_path_factory.mktemp("live"), ("pcm16", "g711_ulaw"))


def test_live_sessions_measure_ttfa_against_the_simulators_send_times_within_a_few_ms(
        live_runs: tuple[list[Any], list[dict[str, Any]]]) -> None:
    results, server = live_runs
    sends: dict[str, list[int]] = {}
    for record in server:
        if record.get("rec") == "send" and record.get("type") == "session.output_audio.delta":
            sends.setdefault(str(record.get("session")), []).append(int(record["sent_ns"]))
    compared = 0
    for result in results:
        assert result.reason == "done" and result.error is None and result.measure_error is None
        trace = read_trace(result.trace_path)
        assert trace.header["target"].endswith("/v1/live/sessions") and trace.header["dialect"] == "live"
        started = next(r for r in trace.records if r.get("rec") == "recv" and r.get("kind") == "session_started")
        chunks = sends[started["event"]["session"]["id"]]
        ends = {r["turn"]: r["t_ns"] for r in trace.records if r.get("rec") == "mark" and r["mark"] == "speech_end_sent"}
        assert [r["status"] for r in result.records] == ["ok", "ok"]
        # a normal Live exchange breaks no Live connection rule, either side's
        assert [r for r in trace.records if r.get("rec") == "violation"] == []
        for row in result.records:
            true_ttfa_ms = (next(t for t in chunks if t >= ends[row["turn"]]) - ends[row["turn"]]) / 1e6
            assert true_ttfa_ms >= 300.0                          # the injected first_audio delay holds
            assert 0.0 <= row["ttfa_ms"] - true_ttfa_ms < TRANSIT_MS, (row["ttfa_ms"], true_ttfa_ms)
            assert row["ttfa_audible_ms"] is not None and row["ttfa_audible_ms"] >= row["ttfa_ms"]
            assert row["audio_ms"] > 0 and row["response_id"].startswith("live-") and row["underrun_count"] == 0
            # what Live has no event for is None, never a made-up number
            assert row["vad_commit_ms"] is None and row["response_done_ms"] is None and row["cancel_ack_ms"] is None
            compared += 1
        # live == offline: the records measured as the session ran are the trace's
        assert turns_from_trace(trace) == sorted(result.records, key=lambda r: (r["t_start_ns"], str(r["turn"])))
    assert compared == 4


def test_every_event_the_live_caller_sends_validates_against_the_sdks_client_models(
        tmp_path: Path, live_runs: tuple[list[Any], list[dict[str, Any]]]) -> None:
    adapter = _client_adapter()
    spec = SessionSpec(url="ws://127.0.0.1:9/v1/realtime", dialect="live", fmt="g711_alaw",
                       scenario_params={"utterances": [SHORT]}, trace_dir=tmp_path)
    _, setup, _ = prepare(spec)
    clip = setup.clips[0]
    for message in (clip.messages[0], clip.messages[-1]):     # what the pacer sends, byte for byte
        parsed = adapter.validate_python(json.loads(message))
        assert parsed.type == "session.input_audio.append"
    results, _ = live_runs
    sent = [r["event"] for r in read_trace(results[0].trace_path).records if r.get("rec") == "send"]
    assert [e["type"] for e in sent] == ["session.start"]
    for event in sent:
        adapter.validate_python(event)
    assert utterance_clip(clip.utterance, AudioFormat.PCM16, 20.0, Dialect.LIVE).messages[0].startswith(
        b'{"type":"session.input_audio.append"')


def test_a_live_session_aimed_at_a_realtime_path_goes_to_the_live_endpoint_on_the_same_host() -> None:
    assert SessionSpec(url="ws://127.0.0.1:9/v1/realtime?model=m", dialect="live").session_url() == \
        "ws://127.0.0.1:9/v1/live/sessions?model=m"
    assert SessionSpec(url="wss://gw.example/custom/voice", dialect="live").session_url() == "wss://gw.example/custom/voice"
    assert SessionSpec(url="ws://127.0.0.1:9/v1/realtime").session_url() == "ws://127.0.0.1:9/v1/realtime"
    SessionSpec(url="ws://127.0.0.1:9/v1/live/sessions", dialect="live").check()     # no longer refused


def _harness_run(tmp_path: Path, *args: str, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness", "run", "--dialect", "live", "--out", str(tmp_path / "runs"),
                           *args], capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env)


@pytest.mark.parametrize("scenario", sorted(LIVE_UNAVAILABLE))
def test_a_scenario_live_cannot_run_is_refused_in_one_line_naming_why_before_starting(tmp_path: Path,
                                                                                      scenario: str) -> None:
    from harness.client import SpecError

    with pytest.raises(SpecError, match=f"scenario {scenario} is not available in the live dialect because"):
        prepare(SessionSpec(url="ws://127.0.0.1:9/v1/realtime", dialect="live", scenario=scenario))


def test_harness_run_refuses_an_unavailable_live_scenario_with_exit_2_and_one_line(tmp_path: Path) -> None:
    done = _harness_run(tmp_path, "--scenario", "plain:1,client_cancel:1", "-u", "1", "-t", "2s", timeout_s=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "client_cancel is not available in the live dialect because" in lines[0]
    assert not (tmp_path / "runs").exists()   # nothing started, nothing written


def test_harness_run_in_the_live_dialect_against_the_simulator_gives_ok_turns(tmp_path: Path) -> None:
    # pacing and the simulator's own lateness are not what this checks: loose limits on a busy machine
    done = _harness_run(tmp_path, "--scenario", "plain:1", "-u", "2", "-t", "8s", "--sim-latency", "first_audio=fixed:300",
                        "--scenario-params", json.dumps({"plain": {"utterances": [SHORT]}}),
                        "--lateness-limit-ms", "1000", "--pacing-limit-ms", "1000", "--sim-lateness-limit-ms", "1000")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open(tmp_path / "runs" / "turns.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) >= 2 and all(r["dialect"] == "live" for r in rows)
    assert all(float(r["ttfa_ms"]) >= 300.0 for r in ok)
