"""Repro bundles and replay: the false-VAD incident is bundled, verified and reproduced on demand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.replay.bundle import BundleError
from harness.replay.bundle_files import read_audio
from harness.replay.replay import load_bundle, replay
from harness.sim import SimConfig
from harness.trace import read_trace

REPO = Path(__file__).resolve().parents[2]


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=150)


@pytest.fixture(scope="module")
def false_vad_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    # one turn per session: after the false speech_started the simulator's VAD goes on to stop, commit
    # and answer nothing; in a session's next turn that answer could meet the caller's next utterance
    # and be a real barge_in (a CI run bundled one), so each session ends with its turn
    done = _harness("run", "-u", "2", "-r", "2", "-t", "7s", "--turns", "1", "--rtf", "2", "--no-report",
                    "--sim-fault", "false_vad:after_deltas=2", "--out", str(out), "--pacing-limit-ms", "100")
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    return out


def test_a_false_vad_run_leaves_a_verified_bundle_for_every_incident(false_vad_run: Path) -> None:
    summary = json.loads((false_vad_run / "summary.json").read_text())
    bundles = sorted((false_vad_run / "incidents").iterdir())
    assert summary["incidents"]["by_cause"]["false_barge_in"]["count"] >= 1
    assert len(bundles) == summary["incidents"]["total"] == summary["incidents"]["bundles"]
    for bundle in bundles:
        data = json.loads((bundle / "bundle.json").read_text())
        assert data["incident"]["incident"] == "false_barge_in"
        trace = read_trace(bundle / "trace.jsonl.gz")
        sent = sum(r["bytes"] for r in trace.records if r.get("rec") == "append")
        assert data["audio"]["note"].startswith("verified") and data["audio"]["file"] == "audio.flac"
        assert len(read_audio(bundle)) == data["audio"]["bytes"] == sent   # FLAC decodes to every byte sent
        assert (bundle / "timeline.html").is_file() and "false_barge_in" in (bundle / "summary.txt").read_text()
        assert any(e["type"] == "session.update" for e in data["client_events"])


def test_bundles_are_capped_per_cause_unless_every_one_is_asked_for(false_vad_run: Path, tmp_path: Path) -> None:
    import shutil

    from harness.load.records import merged_records
    from harness.replay.bundle import write_incident_bundles

    shutil.copytree(false_vad_run / "traces", tmp_path / "traces")
    records = merged_records(false_vad_run)
    incidents = sum(1 for r in records if r.get("incident"))
    assert incidents >= 2
    assert len(write_incident_bundles(tmp_path, records, per_cause=1)) == 1
    assert len(write_incident_bundles(tmp_path, records, per_cause=None)) == incidents
    assert len(write_incident_bundles(tmp_path)) == incidents      # measured again from the traces


def test_replaying_a_bundle_reproduces_the_cause_with_the_fault_and_not_without(
        false_vad_run: Path, sim_factory: Any, tmp_path: Path) -> None:
    bundle = load_bundle(sorted((false_vad_run / "incidents").iterdir())[0])
    faulty = sim_factory(SimConfig(faults=["false_vad:after_deltas=2"]))
    outcome = replay(bundle, faulty.url, repeat=10, rtf=2.0, trace_dir=tmp_path / "a")
    assert outcome["cause"] == "false_barge_in" and outcome["recurred"] >= 9
    clean = sim_factory(SimConfig())
    outcome = replay(bundle, clean.url, repeat=3, rtf=2.0, trace_dir=tmp_path / "b")
    assert outcome["recurred"] == 0


def test_a_session_anchored_replay_reproduces_the_cause_with_the_fault_and_not_without(
        false_vad_run: Path, sim_factory: Any, tmp_path: Path) -> None:
    bundle_dir = sorted((false_vad_run / "incidents").iterdir())[0]
    bundle = load_bundle(bundle_dir)
    faulty = sim_factory(SimConfig(faults=["false_vad:after_deltas=2"]))
    outcome = replay(bundle, faulty.url, repeat=10, trace_dir=tmp_path / "a", anchor="session", bundle_dir=bundle_dir)
    assert outcome["anchor"] == "session" and outcome["recurred"] >= 9, outcome["runs"]
    clean = sim_factory(SimConfig())
    outcome = replay(bundle, clean.url, repeat=3, trace_dir=tmp_path / "b", anchor="session", bundle_dir=bundle_dir)
    assert outcome["recurred"] == 0, outcome["runs"]


def test_a_session_anchored_replay_sends_the_same_audio_on_the_same_schedule_with_translated_ids(
        false_vad_run: Path, sim_factory: Any, tmp_path: Path) -> None:
    bundle_dir = sorted((false_vad_run / "incidents").iterdir())[0]
    original = read_trace(bundle_dir / "trace.jsonl.gz")   # and its audio from audio.flac
    sim = sim_factory(SimConfig(faults=["false_vad:after_deltas=2"]))
    outcome = replay(load_bundle(bundle_dir), sim.url, trace_dir=tmp_path, anchor="session", bundle_dir=bundle_dir)
    replayed = read_trace(Path(outcome["runs"][0]["trace"]))

    def appends(trace: Any) -> list[tuple[str, int, Any, bool]]:
        t0 = next(r["t0_ns"] for r in trace.records if r.get("mark") == "stream_start")
        return [(r["sha1"], r["sched_ns"] - t0, r["turn"], r["speech"]) for r in trace.records if r.get("rec") == "append"]

    before, after = appends(original), appends(replayed)
    common = min(len(before), len(after))
    assert abs(len(after) - len(before)) <= 5 and after[:common] == before[:common]  # same chunks, turns, due times
    assert all(not speech for _, _, _, speech in after[common:])   # past the recording: silence
    sent = [r["type"] for r in original.records if r.get("rec") == "send"]
    assert [r["type"] for r in replayed.records if r.get("rec") == "send"][:len(sent)] == sent
    new_items = {r["event"]["item"]["id"] for r in replayed.records
                 if r.get("rec") == "recv" and isinstance(r["event"].get("item"), dict)}
    for record in replayed.records:
        if record.get("rec") == "send" and "item_id" in record["event"]:
            assert record["event"]["item_id"] in new_items   # ids of the new session, not the original's
    starts = [m["utterance"] for m in replayed.records if m.get("mark") == "turn_start"]
    assert starts == [m["utterance"] for m in original.records if m.get("mark") == "turn_start"]


def test_a_session_anchored_replay_can_change_dialect_and_format(
        false_vad_run: Path, sim_factory: Any, tmp_path: Path) -> None:
    bundle_dir = sorted((false_vad_run / "incidents").iterdir())[0]
    sim = sim_factory(SimConfig(faults=["false_vad:after_deltas=2"]))
    outcome = replay(load_bundle(bundle_dir), sim.url, trace_dir=tmp_path, anchor="session", bundle_dir=bundle_dir,
                     dialect="beta", fmt="g711_ulaw")
    replayed = read_trace(Path(outcome["runs"][0]["trace"]))
    assert replayed.header["dialect"] == "beta" and replayed.header["format"] == "g711_ulaw"
    assert {r["bytes"] for r in replayed.records if r.get("rec") == "append"} == {160}   # 20 ms at 8 kHz
    assert any(r.get("type") == "response.audio.delta" for r in replayed.records)     # beta names, answered
    assert outcome["recurred"] == 1, outcome["runs"]


def test_the_replay_command_reports_recurrence_and_honours_expect_reproduce(false_vad_run: Path) -> None:
    bundle = str(sorted((false_vad_run / "incidents").iterdir())[0])
    done = _harness("replay", bundle, "--repeat", "2", "--rtf", "2", "--expect-reproduce")
    assert done.returncode == 1 and "recurred in 0 of 2" in done.stdout  # the embedded sim has no fault
    done = _harness("replay", bundle, "--repeat", "2", "--rtf", "2", "--sim-fault", "false_vad:after_deltas=2",
                    "--expect-reproduce")
    assert done.returncode == 0 and "recurred in 2 of 2" in done.stdout


def test_a_folder_that_is_not_a_bundle_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a repro bundle"):
        load_bundle(tmp_path)


@pytest.mark.slow
def test_the_walkthrough_low_threshold_cuts_answers_and_a_high_threshold_does_not(tmp_path: Path) -> None:
    counts = {}
    for threshold in (0.2, 0.8):
        out = tmp_path / f"t{threshold}"
        params = json.dumps({"noisy_playback": {"vad_threshold": threshold, "silence_duration_ms": 500}})
        done = _harness("run", "-u", "2", "-r", "2", "-t", "10s", "--turns", "2", "--no-report",
                        "--scenario", "noisy_playback:1", "--scenario-params", params, "--out", str(out),
                        "--pacing-limit-ms", "100")
        assert done.returncode == 0, done.stdout[-1500:]
        counts[threshold] = json.loads((out / "summary.json").read_text())["incidents"]["by_cause"]["false_barge_in"]["count"]
        if threshold == 0.2:
            bundle = sorted((out / "incidents").iterdir())[0]
            replayed = _harness("replay", str(bundle), "--repeat", "3")
            assert replayed.returncode == 0 and "recurred in" in replayed.stdout
            replayed = _harness("replay", str(bundle), "--anchor", "session", "--repeat", "3")
            assert replayed.returncode == 0 and "anchored on session" in replayed.stdout, replayed.stderr[-1500:]
    assert counts[0.2] >= 1 and counts[0.8] == 0
