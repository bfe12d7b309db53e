"""A replay that does not reproduce says what happened instead, and where its traces are;
bundles are checked before anything runs; a run started anywhere bundles its audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.protocol import Dialect, default_session_config, render_session_update
from harness.replay.bundle import BundleError
from harness.replay.bundle_files import has_audio, read_audio
from harness.replay.convert import replay_session_config
from harness.replay.replay import load_bundle, replay
from harness.sim import SimConfig
from harness.trace import read_trace

from tests.replay.helpers import REPO, harness


def _traces_dir(stdout: str) -> Path:
    line = next(line for line in stdout.splitlines() if line.startswith("traces: "))
    return Path(line.split()[1])


def _replay_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip().startswith("replay ")]


def test_a_run_started_from_another_directory_bundles_its_audio(elsewhere_run: dict[str, Any]) -> None:
    out = elsewhere_run["out"]
    run = json.loads((out / "run.json").read_text())
    assert run["corpus_path"] == str((REPO / "corpora" / "default").resolve())
    summary = json.loads((out / "summary.json").read_text())
    assert "bundle_error" not in summary["incidents"] and "bundle_errors" not in summary["incidents"]
    for bundle in sorted((out / "incidents").iterdir()):
        data = json.loads((bundle / "bundle.json").read_text())
        sent = sum(r["bytes"] for r in read_trace(bundle / "trace.jsonl.gz").records if r.get("rec") == "append")
        assert data["audio"]["note"].startswith("verified"), data["audio"]
        assert len(read_audio(bundle)) == sent
        assert data["corpus_path"] == run["corpus_path"]


def test_a_run_with_a_corpus_outside_the_repository_bundles_its_audio_from_the_recorded_path(
        tmp_path: Path) -> None:
    # a corpus only its absolute path can find: not shipped, not under the current directory
    source = REPO / "corpora" / "default"
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["name"] = "mine"
    manifest["utterances"] = manifest["utterances"][:4]
    corpus = tmp_path / "corpora-elsewhere" / "mine"
    corpus.mkdir(parents=True)
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    for entry in manifest["utterances"]:
        shutil.copyfile(source / entry["file"], corpus / entry["file"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = harness("run", "-u", "2", "-r", "2", "-t", "7s", "--turns", "2", "--rtf", "2", "--no-report",
                   "--corpus", str(corpus), "--sim-fault", "false_vad:after_deltas=2", "--out", "run",
                   "--pacing-limit-ms", "100", cwd=cwd)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    bundles = sorted((cwd / "run" / "incidents").iterdir())
    assert bundles
    for bundle in bundles:
        data = json.loads((bundle / "bundle.json").read_text())
        assert data["corpus"] == "mine" and data["corpus_path"] == str(corpus.resolve())
        assert has_audio(bundle), data["audio"]
    # and the replay finds the corpus by that path too, from yet another directory
    replayed = harness("replay", str(bundles[0]), "--rtf", "2", "--out", str(tmp_path / "replays"), cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr[-1500:]
    assert len(_replay_lines(replayed.stdout)) == 1


def test_a_refused_replay_prints_the_servers_message_and_where_the_traces_are(
        elsewhere_run: dict[str, Any], sim_factory: Any, tmp_path: Path) -> None:
    sim = sim_factory(SimConfig(reject_beta=True))     # what api.openai.com does to the beta shape
    done = harness("replay", str(elsewhere_run["bundle"]), "--target", sim.url, "--dialect", "beta", "--rtf", "2",
                   "--repeat", "2", "--out", str(tmp_path / "replays"))
    assert done.returncode == 3, done.stdout + done.stderr     # no replay got as far as sending audio
    lines = _replay_lines(done.stdout)
    assert len(lines) == 2 and "None" not in done.stdout
    for line in lines:
        assert "not reproduced" in line and "refused the session" in line
        assert "beta_api_shape_disabled" in line and "The beta Realtime API shape is disabled" in line
        assert "closed 4000" in line
    # the GA voice was converted for the beta replay, and said so
    assert "note: voice 'marin' is GA-only; the beta replay uses 'alloy'" in done.stdout
    traces = _traces_dir(done.stdout)
    assert traces == tmp_path / "replays" and len(list(traces.glob("*.jsonl"))) == 2
    outcome = json.loads((traces / "replay.json").read_text())
    assert outcome["recurred"] == 0 and outcome["trace_dir"] == str(traces)
    assert all("beta_api_shape_disabled" in run["why"] for run in outcome["runs"])
    assert outcome["runs"][0]["close"]["code"] == 4000
    assert outcome["runs"][0]["server_errors"][0]["code"] == "beta_api_shape_disabled"


def test_a_beta_replay_of_a_ga_bundle_sends_the_bundles_settings_with_the_voice_converted(
        elsewhere_run: dict[str, Any], sim_factory: Any, tmp_path: Path) -> None:
    bundle = load_bundle(elsewhere_run["bundle"])
    assert bundle["session_update"]["audio"]["output"]["voice"] == "marin"
    outcome = replay(bundle, sim_factory().url, dialect="beta", rtf=2.0, trace_dir=tmp_path)
    assert outcome["notes"] == ["voice 'marin' is GA-only; the beta replay uses 'alloy' (the beta default)"]
    sent = read_trace(Path(outcome["runs"][0]["trace"])).header["session_config"]
    original = bundle["session_update"]["audio"]["input"]["turn_detection"]
    assert sent["voice"] == "alloy" and sent["turn_detection"] == original     # the rest is the bundle's own
    assert outcome["runs"][0]["streamed"] and "refused" not in outcome["runs"][0]["why"]


def test_a_replay_refused_for_its_key_says_so_and_the_api_key_env_option_passes_the_key(
        elsewhere_run: dict[str, Any], sim_factory: Any, tmp_path: Path) -> None:
    sim = sim_factory(SimConfig(require_key=True))
    bundle = str(elsewhere_run["bundle"])
    done = harness("replay", bundle, "--target", sim.url, "--rtf", "2", "--out", str(tmp_path / "a"))
    assert done.returncode == 3, done.stdout + done.stderr
    (line,) = _replay_lines(done.stdout)
    assert "refused the session" in line and "invalid_api_key" in line, line
    done = harness("replay", bundle, "--target", sim.url, "--rtf", "2", "--out", str(tmp_path / "b"),
                   "--api-key-env", "HARNESS_TEST_REPLAY_KEY", env={"HARNESS_TEST_REPLAY_KEY": "sk-test-123"})
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = _replay_lines(done.stdout)
    assert "refused" not in line and "invalid_api_key" not in line, line
    for path in (tmp_path / "b").iterdir():
        assert "sk-test-123" not in path.read_text()        # the key is in no trace and not in replay.json
    done = harness("replay", bundle, "--target", sim.url, "--api-key-env", "HARNESS_NOT_SET_ANYWHERE")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "HARNESS_NOT_SET_ANYWHERE" in lines[0]


def test_a_timed_out_replay_says_every_turn_timed_out(elsewhere_run: dict[str, Any], tmp_path: Path) -> None:
    done = harness("replay", str(elsewhere_run["bundle"]), "--rtf", "2", "--sim-latency", "first_audio=fixed:60000",
                   "--turn-timeout", "1.5", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = _replay_lines(done.stdout)
    assert "not reproduced: every turn timed out (2 of 2" in line and "1.5 s turn timeout" in line, line
    assert "None" not in done.stdout and _traces_dir(done.stdout) == tmp_path
    outcome = json.loads((tmp_path / "replay.json").read_text())
    assert outcome["runs"][0]["statuses"] == {"timeout": 2}


GARBAGE = {
    "no such folder": lambda tmp: tmp / "nowhere",
    "a file": lambda tmp: _write(tmp / "afile.txt", "hello"),
    "no bundle.json": lambda tmp: _folder(tmp / "empty"),
    "only a trace": lambda tmp: _write(_folder(tmp / "torn") / "trace.jsonl", "").parent,
    "not JSON": lambda tmp: _write(_folder(tmp / "notjson") / "bundle.json", "{not json").parent,
    "a JSON list": lambda tmp: _write(_folder(tmp / "list") / "bundle.json", "[1, 2]").parent,
    "missing fields": lambda tmp: _write(_folder(tmp / "fields") / "bundle.json", '{"dialect": "ga"}').parent,
    "a bad dialect": lambda tmp: _write(_folder(tmp / "dialect") / "bundle.json", json.dumps(
        {"dialect": "klingon", "format": "pcm16", "scenario": "plain", "chunk_ms": 20, "incident": {}})).parent,
    "a future schema": lambda tmp: _write(_folder(tmp / "schema") / "bundle.json", json.dumps({"schema": 99})).parent,
}


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_garbage_bundle_exits_2_with_one_line_naming_the_problem_and_the_fix(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = GARBAGE[kind](tmp_path)
    with pytest.raises(BundleError):
        load_bundle(path)
    assert main(["replay", str(path)]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("harness replay: error: ") and "not a repro bundle" in lines[0]
    assert str(path) in lines[0] and ("harness replay --bundle-run" in lines[0] or "incidents/" in lines[0])


def test_a_garbage_bundle_through_the_real_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text("{torn")
    done = harness("replay", str(tmp_path))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "bundle.json is not JSON" in lines[0], done.stderr


def test_a_ga_only_voice_is_converted_for_a_beta_replay_and_said() -> None:
    assert replay_session_config(None, "ga", "beta", "pcm16") == (None, [])   # nothing recorded: scenario defaults
    ga = render_session_update(default_session_config("ga"), Dialect.GA)
    cfg, notes = replay_session_config(ga, "ga", "beta", "g711_ulaw")
    assert cfg is not None and cfg.voice == "alloy" and cfg.input_format.value == "g711_ulaw"
    assert notes == ["voice 'marin' is GA-only; the beta replay uses 'alloy' (the beta default)"]
    body = render_session_update(cfg, Dialect.BETA)
    assert body["voice"] == "alloy" and body["input_audio_format"] == "g711_ulaw"
    ga["audio"]["output"]["voice"] = "coral"           # a voice both dialects have is kept, silently
    cfg, notes = replay_session_config(ga, "ga", "beta", "pcm16")
    assert cfg is not None and cfg.voice == "coral" and notes == []
    same, notes = replay_session_config(ga, "ga", "ga", "pcm16")
    assert same is not None and same.voice == "coral" and notes == []


def test_a_beta_only_field_has_no_ga_equivalent_and_is_said_to_be_left_out() -> None:
    beta = render_session_update(default_session_config("beta"), Dialect.BETA)
    cfg, notes = replay_session_config(beta, "beta", "ga", "pcm16")
    assert cfg is not None and cfg.temperature is None and cfg.voice == "alloy"
    assert len(notes) == 1 and "temperature 0.8" in notes[0] and "no GA equivalent" in notes[0]
    assert "temperature" not in json.dumps(render_session_update(cfg, Dialect.GA))


def test_a_bundle_whose_corpus_is_gone_names_it_and_the_ways_out(
        elsewhere_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(elsewhere_run["bundle"], bundle)
    data = json.loads((bundle / "bundle.json").read_text())
    data.update(corpus="gone", corpus_path=str(tmp_path / "gone"))
    (bundle / "bundle.json").write_text(json.dumps(data))
    assert main(["replay", str(bundle)]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "corpus 'gone' not found" in line and str(tmp_path / "gone") in line
    assert "--corpus DIR" in line and "--anchor session" in line
    assert main(["replay", "--bundle-run", str(tmp_path / "nowhere")]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "not a run directory" in line
