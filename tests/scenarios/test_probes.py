"""The probe scenarios against truths the server knows, on the in-memory pair's virtual clock.

The server is tests/client/memory_pair.py's scripted one (the simulator's energy VAD on the
input audio's clock), so every number is exact on any machine: a VAD decision delay injected
into the server is recovered as endpointing cost to the nanosecond; the VAD's silence window
decides which pauses split a turn; its minimum speech duration decides whether backchannels
cancel the answer; its threshold decides at which SNR noise barges in; heard and discarded audio
add up to what the caller received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.client import SessionSpec
from harness.corpus import load_corpus
from harness.metrics import summarize
from harness.scenarios import run_scenario
from harness.scenarios.probe_audio import speech_level_dbfs
from harness.sim.vad import threshold_dbfs
from harness.trace import read_trace
from tests.client.memory_pair import MS, Delays, ScriptedServer, VirtualClock

# utterances whose energy-VAD speech holds a continuous run longer than 400 ms (the backchannels' longest is 380)
LONG_RUNS = ["utt20", "utt21", "utt22"]


def _run(tmp_path: Path, scenario: str, params: dict[str, Any], turns: int, delays: Delays | None = None,
         session_id: str = "p") -> tuple[list[dict[str, Any]], ScriptedServer, Path]:
    clock = VirtualClock()
    server = ScriptedServer(clock, delays or Delays())
    spec = SessionSpec(url="ws://memory.invalid/v1/realtime", scenario=scenario, turns=turns, trace_dir=tmp_path,
                       session_id=session_id, scenario_params=params)
    result = run_scenario(spec, clock=clock, connector=server.connect, pacer=clock.pacer)
    assert result.reason == "done", result.error
    return sorted(result.records, key=lambda r: r["turn"]), server, result.trace_path


def test_endpointing_recovers_an_injected_vad_decision_delay_exactly(tmp_path: Path) -> None:
    params = {"silence_duration_ms": 500, "utterances": ["utt02", "utt05"]}
    base, _, _ = _run(tmp_path / "a", "endpointing", params, 2, Delays(vad_ms=0.0))
    slow, _, _ = _run(tmp_path / "b", "endpointing", params, 2, Delays(vad_ms=300.0))
    assert [r["turn_detection"] for r in base] == ["server_vad", "manual"] * 2
    assert all(r["status"] == "ok" for r in base + slow)
    for fast_row, slow_row in zip(base, slow):
        if fast_row["turn_detection"] == "manual":
            assert fast_row["ttfa_ms"] == slow_row["ttfa_ms"] == 300.0   # committed at the speech end: 0 + 300 scripted
            assert slow_row["endpointing_cost_ms"] - fast_row["endpointing_cost_ms"] == pytest.approx(300.0, abs=1e-9)
        else:
            assert fast_row["endpointing_cost_ms"] is None
    probes = summarize(slow)["probes"]["endpointing"]
    assert probes["overall"]["count"] == 2 and set(probes["by_utterance"]) == {"default/utt02", "default/utt05"}


def test_endpointing_cost_is_the_wait_for_the_vad_decision_and_its_commit(tmp_path: Path) -> None:
    rows, server, trace_path = _run(tmp_path, "endpointing", {"silence_duration_ms": 500, "utterances": ["utt02"]}, 1,
                                    Delays(vad_ms=120.0, commit_ms=200.0))
    trace = read_trace(trace_path)
    speech_end = next(m for m in trace.records if m.get("mark") == "speech_end_sent" and m["turn"] == 0)
    stopped = next(e for e in server.sent if e["type"] == "input_audio_buffer.speech_stopped")
    commit = next(m for m in trace.records if m.get("mark") == "commit_sent" and m["turn"] == 1)
    second_end = next(m for m in trace.records if m.get("mark") == "speech_end_sent" and m["turn"] == 1)
    assert commit["t_ns"] == second_end["t_ns"]       # the manual commit leaves exactly at the true speech end
    assert rows[1]["endpointing_cost_ms"] == pytest.approx((stopped["t_ns"] - speech_end["t_ns"]) / MS + 200.0, abs=1e-9)


@pytest.mark.parametrize(("silence_ms", "splits"), [(500, [False, False, True, True]),
                                                    (900, [False, False, False, True])])
def test_the_pause_ladder_splits_exactly_the_pauses_longer_than_the_vad_silence_window(
        tmp_path: Path, silence_ms: int, splits: list[bool]) -> None:
    params = {"silence_duration_ms": silence_ms, "pauses": "200/400/800/1200", "utterances": LONG_RUNS + ["utt23"]}
    rows, _, _ = _run(tmp_path, "pause_ladder", params, 4)
    assert [r["pause_ms"] for r in rows] == [200.0, 400.0, 800.0, 1200.0]
    assert [r["pause_split"] for r in rows] == splits and all(r["status"] == "ok" for r in rows)
    ladder = summarize(rows)["probes"]["pause_ladder"]
    assert [ladder[p]["rate"] for p in ("200", "400", "800", "1200")] == [float(s) for s in splits]


@pytest.mark.parametrize(("min_speech_ms", "share"), [(20, 1.0), (400, 0.0)])
def test_backchannels_cancel_every_answer_or_none_as_the_vad_s_minimum_speech_says(
        tmp_path: Path, min_speech_ms: int, share: float) -> None:
    delays = Delays(answer_audio_ms=4000.0, delta_gap_ms=100.0, min_speech_ms=min_speech_ms)
    params = {"silence_duration_ms": 500, "offsets": "300/800", "utterances": LONG_RUNS}
    rows, _, _ = _run(tmp_path, "backchannel", params, 3, delays)
    answered = [r for r in rows if r["backchannel_offset_ms"] is not None]
    assert [r["backchannel_offset_ms"] for r in answered] == [300.0, 800.0, 300.0]
    assert all(r["status"] == "ok" and r["response_id"] for r in answered)
    assert all(r["backchannel_cancelled"] is (share == 1.0) for r in answered)
    block = summarize(rows)["probes"]["backchannel"]
    assert block["by_offset_ms"]["300"]["rate"] == block["by_offset_ms"]["800"]["rate"] == share
    assert len(block["findings"]) == (len(answered) if share else 0)
    if share:
        assert all(r["incident"] == "barge_in" for r in answered)   # the finding's evidence is the turn's incident


def test_the_noise_ladder_false_barge_ins_step_at_the_snr_where_noise_reaches_the_vad_threshold(tmp_path: Path) -> None:
    utt = load_corpus("default").get("utt08")
    # The VAD hears speech when two 10 ms frames in a row reach its threshold. Noise at SNR s has
    # RMS (speech level - s); its frames sit (frame level - RMS) above that: never loud enough
    # while its loudest frame pair stays under the threshold, always once its median frame is over.
    frames_db = _frame_excess_db(load_corpus("noise").get("pink").pcm(24000))
    loudest_pair = float(np.max(np.minimum(frames_db[:-1], frames_db[1:])))
    silent_above = speech_level_dbfs(utt) - threshold_dbfs(0.5) + loudest_pair
    loud_below = speech_level_dbfs(utt) - threshold_dbfs(0.5) + float(np.median(frames_db))
    snrs = [round(silent_above + 8, 1), round(silent_above + 2, 1), round(loud_below - 2, 1), round(loud_below - 8, 1)]
    params = {"silence_duration_ms": 500, "snrs": "/".join(map(str, snrs)), "utterances": ["utt08"] * 4}
    rows, _, _ = _run(tmp_path, "noise_ladder", params, 4, Delays(answer_audio_ms=3000.0, delta_gap_ms=100.0))
    assert [r["snr_db"] for r in rows] == snrs
    assert [r["incident"] == "false_barge_in" for r in rows] == [False, False, True, True]
    ladder = summarize(rows)["probes"]["noise_ladder"]
    assert [ladder[f"{s:g}"]["rate"] for s in snrs] == [0.0, 0.0, 1.0, 1.0]


def _frame_excess_db(pcm: np.ndarray) -> np.ndarray:
    """Each 10 ms frame's level over the clip's RMS level, in dB."""
    x = np.asarray(pcm, dtype=np.float64)
    frames = x[: x.size // 240 * 240].reshape(-1, 240)
    return 10 * np.log10((frames ** 2).mean(axis=1)) - 10 * np.log10((x ** 2).mean())


def test_an_interrupted_answer_s_heard_and_discarded_audio_add_up_to_what_arrived(tmp_path: Path) -> None:
    rows, server, trace_path = _run(tmp_path, "barge_in", {"silence_duration_ms": 800}, 2,
                                    Delays(answer_audio_ms=6000.0, delta_gap_ms=100.0))
    trace = read_trace(trace_path)
    row = rows[0]
    start = next(m for m in trace.records if m.get("mark") == "playout_start" and m["response_id"] == row["response_id"])
    stop = next(m for m in trace.records if m.get("mark") == "playout_stop" and m["response_id"] == row["response_id"])
    arrived = [e for e in server.sent if e["type"] == "response.output_audio.delta" and e["response_id"] == row["response_id"]]
    assert row["heard_ms"] == (stop["t_ns"] - start["t_ns"]) / MS      # real-time delivery: no underrun
    assert row["heard_ms"] + row["discarded_ms"] == pytest.approx(100.0 * len(arrived), abs=1e-9)
    assert 0 < row["discarded_ms"] and rows[1]["heard_ms"] is None    # the last answer played to its end


def test_a_client_cancel_discards_what_was_received_after_the_played_position(tmp_path: Path) -> None:
    rows, _, _ = _run(tmp_path, "client_cancel", {"silence_duration_ms": 800, "cancel_after_ms": 400}, 1,
                      Delays(answer_audio_ms=3000.0, delta_gap_ms=20.0))
    row = rows[0]
    # 400 ms arrived in 4 deltas 20 ms apart, so the player had played 60 ms when the cancel went out
    assert row["heard_ms"] == 60.0 and row["discarded_ms"] == 340.0 and row["cancel_leak_ms"] == 0.0
