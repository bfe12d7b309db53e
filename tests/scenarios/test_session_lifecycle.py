"""Stopping mid-session, in every way, leaves a complete readable trace; secrets never land in it;
the audio sent for an utterance is exactly the utterance."""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
from pathlib import Path

import pytest
from story import FAST_SIM, Story

from harness.audio import split_chunks
from harness.client import SessionSpec
from harness.corpus import load_corpus
from harness.protocol import AudioFormat
from harness.scenarios import run_scenario

DUMMY_KEY = "sk-test-DUMMY-never-in-a-trace-0123456789"


def _spec(url: str, tmp_path: Path, **kw) -> SessionSpec:
    base = dict(url=url, trace_dir=tmp_path, auth="none", rtf=4.0, turn_timeout_s=10, turns=2,
                scenario_params={"utterances": ["utt01", "utt11"]})
    base.update(kw)
    return SessionSpec(**base)


def test_the_stop_flag_ends_a_session_promptly_with_a_complete_trace(sim_factory, tmp_path):
    sim = sim_factory(**FAST_SIM)
    stop = threading.Event()
    spec = _spec(sim.url, tmp_path, rtf=1.0, turns=5)
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    started = time.monotonic()
    result = run_scenario(spec, stop)
    elapsed = time.monotonic() - started
    assert result.reason == "stopped" and elapsed < 3.0
    story = Story.read(result.trace_path)
    assert story.trace.complete and story.trace.footer["reason"] == "stopped"
    assert story.marks("stopped") and story.marks("close")[0]["by"] == "client"
    assert story.appends()


def test_an_exception_in_the_caller_is_recorded_and_the_trace_is_closed(sim_factory, tmp_path):
    sim = sim_factory(**FAST_SIM)

    def explode(turn: int) -> None:
        raise RuntimeError("listener bug")

    result = run_scenario(_spec(sim.url, tmp_path), on_turn_end=explode)
    assert result.reason == "error" and "listener bug" in (result.error or "")
    story = Story.read(result.trace_path)
    assert story.trace.complete and story.trace.footer["reason"] == "error"
    assert "listener bug" in story.marks("error")[0]["message"]


def test_a_server_that_drops_the_socket_mid_answer_leaves_a_closed_trace_with_the_turn_in_error(sim_factory, tmp_path):
    sim = sim_factory(faults=["drop_socket:after_deltas=2"], **FAST_SIM)
    result = run_scenario(_spec(sim.url, tmp_path))
    assert result.reason == "closed"
    story = Story.read(result.trace_path)
    assert story.trace.complete and story.trace.footer["reason"] == "closed"
    assert story.marks("close")[0]["by"] == "server"
    assert story.marks("turn_end", turn=0)[0]["status"] == "error"
    assert len(story.received("output_audio_delta")) >= 2


def test_a_dummy_key_authenticates_but_never_appears_in_the_trace(sim_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DUMMY_KEY", DUMMY_KEY)
    sim = sim_factory(require_key="ENV:HARNESS_DUMMY_KEY", **FAST_SIM)
    spec = _spec(f"{sim.url}?model=gpt-realtime&api-key={DUMMY_KEY}", tmp_path, auth="bearer",
                 api_key_env="HARNESS_DUMMY_KEY", turns=1, headers={"X-Trace-Me": "not-secret"})
    result = run_scenario(spec)
    assert result.reason == "done" and result.turns_ok == 1
    text = result.trace_path.read_text()
    assert DUMMY_KEY not in text and "Bearer" not in text and "Authorization" not in text
    assert "api-key=REDACTED" in Story.read(result.trace_path).trace.header["target"]


def test_a_wrong_key_is_a_recorded_failure_not_an_exception(sim_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DUMMY_KEY", DUMMY_KEY)
    monkeypatch.setenv("HARNESS_WRONG_KEY", "sk-wrong")
    sim = sim_factory(require_key="ENV:HARNESS_DUMMY_KEY", **FAST_SIM)
    result = run_scenario(_spec(sim.url, tmp_path, auth="bearer", api_key_env="HARNESS_WRONG_KEY", turns=1))
    assert result.reason in ("error", "closed")
    story = Story.read(result.trace_path)
    assert story.trace.complete
    assert "sk-wrong" not in result.trace_path.read_text()


@pytest.mark.parametrize("fmt", ["pcm16", "g711_ulaw", "g711_alaw"])
def test_the_appends_of_an_utterance_are_exactly_its_audio_in_order(sim_factory, tmp_path, fmt):
    sim = sim_factory(**FAST_SIM)
    result = run_scenario(_spec(sim.url, tmp_path, fmt=fmt, turns=1, scenario_params={"utterances": ["utt11"]}))
    story = Story.read(result.trace_path)
    utt = load_corpus("default").get("utt11")
    audio_format = AudioFormat(fmt)
    chunks = split_chunks(utt.wire(audio_format), audio_format, 20.0)
    start = story.marks("turn_start")[0]
    first = int(start["input_ms"] // 20)
    sent = [a for a in story.appends() if first <= a["seq"] < first + len(chunks)]
    assert len(chunks) == math.ceil(utt.duration_ms / 20.0)
    assert [a["sha1"] for a in sent] == [hashlib.sha1(c).hexdigest() for c in chunks]
    assert all(a["turn"] == 0 for a in sent)
    assert sum(a["bytes"] for a in sent) == len(chunks) * len(chunks[0])
    assert sum(a["audio_ms"] for a in sent) == pytest.approx(len(chunks) * 20.0)
    assert 0 <= sum(a["audio_ms"] for a in sent) - utt.duration_ms < 20.0
    assert [a["speech"] for a in sent] == [any(s < (i + 1) * 20 and e > i * 20 for s, e in utt.segments_ms)
                                          for i in range(len(chunks))]
    assert base64.b64encode(chunks[0])   # the chunks the trace hashes are the wire bytes


def test_the_sync_client_variant_tells_the_same_story(sim_factory, tmp_path):
    sim = sim_factory(**FAST_SIM)
    result = run_scenario(_spec(sim.url, tmp_path, ws_impl="sync", turns=1, fmt="g711_ulaw", dialect="beta"))
    assert result.reason == "done" and result.turns_ok == 1
    story = Story.read(result.trace_path)
    assert story.marks("playout_end") and story.received("response_done")
    assert story.trace.footer["reason"] == "done" and story.marks("close")[0]["by"] == "client"


def test_preencode_prepares_every_utterance_so_sessions_only_look_clips_up(tmp_path):
    from harness.client.clips import _cache
    from harness.scenarios import preencode

    spec = SessionSpec(url="ws://127.0.0.1:1/v1/realtime", fmt="g711_alaw", chunk_ms=40.0, trace_dir=tmp_path)
    count = preencode(spec)
    assert count == len([u for u in load_corpus("default").utterances if u.kind == "speech"])
    assert sum(1 for key in _cache if key[0] == "utt" and key[2:4] == ("g711_alaw", 40.0)) == count


class FakeGreenletExit(BaseException):
    """What Locust raises in a user greenlet it stops: a BaseException that is not an Exception."""


@pytest.mark.parametrize("stopper", [KeyboardInterrupt, FakeGreenletExit])
def test_ctrl_c_or_a_greenlet_kill_closes_the_trace_as_stopped_then_propagates(sim_factory, tmp_path, stopper):
    sim = sim_factory(**FAST_SIM)

    def interrupt(turn: int) -> None:
        raise stopper

    spec = _spec(sim.url, tmp_path)
    with pytest.raises(stopper):
        run_scenario(spec, on_turn_end=interrupt)
    story = Story.read(spec.trace_path())
    assert story.trace.complete and story.trace.footer["reason"] == "stopped"
    assert story.marks("stopped")[0]["why"] == stopper.__name__
    assert not story.marks("error")
