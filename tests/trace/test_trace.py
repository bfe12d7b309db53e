"""Trace recording and reading: scrubbing, flushing, torn tails, secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path

import pytest

from harness.trace import (
    TraceFormatError,
    TraceRecorder,
    flush_all,
    read_trace,
    redact_url,
    scrub_event,
)

AUDIO = bytes(range(256)) * 4  # 1024 bytes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_an_append_event_keeps_length_duration_and_hash_but_not_the_audio() -> None:
    event = {"type": "input_audio_buffer.append", "audio": _b64(AUDIO)}
    scrubbed = scrub_event(event, bytes_per_ms=48.0)
    assert scrubbed["audio"] == {"bytes": 1024, "ms": 1024 / 48.0, "sha1": hashlib.sha1(AUDIO).hexdigest()}
    assert event["audio"] == _b64(AUDIO), "the original event is not modified"


def test_an_output_audio_delta_is_scrubbed_in_both_dialects_but_a_transcript_delta_is_not() -> None:
    for type_ in ("response.audio.delta", "response.output_audio.delta"):
        out = scrub_event({"type": type_, "delta": _b64(AUDIO[:160])}, bytes_per_ms=8.0)
        assert out["delta"]["bytes"] == 160 and out["delta"]["ms"] == 20.0
    text = scrub_event({"type": "response.output_audio_transcript.delta", "delta": "hello"}, 48.0)
    assert text["delta"] == "hello"


def test_audio_nested_in_an_item_is_scrubbed() -> None:
    event = {"type": "conversation.item.create",
             "item": {"type": "message", "content": [{"type": "input_audio", "audio": _b64(AUDIO)}]}}
    out = scrub_event(event, 48.0)
    assert out["item"]["content"][0]["audio"]["bytes"] == 1024


def test_redact_url_drops_user_info_and_credential_query_parameters() -> None:
    url = "wss://user:sk-secret@example.openai.azure.com/openai/realtime?api-version=2025&api-key=sk-secret&deployment=d"
    redacted = redact_url(url)
    assert "sk-secret" not in redacted and "user" not in redacted
    assert "api-version=2025" in redacted and "deployment=d" in redacted and "api-key=REDACTED" in redacted


def test_records_reach_the_file_only_on_flush_and_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "w0-s1.jsonl"
    rec = TraceRecorder(path, {"run_id": "r", "session_id": "s1", "target": "ws://127.0.0.1:1/v1/realtime?api-key=k"})
    rec.mark("connect_start", t_ns=10)
    rec.append(t_ns=20, sched_ns=19, seq=0, turn=0, nbytes=960, audio_ms=20.0, input_ms=0.0, speech=False, sha1="x")
    assert not path.exists()
    rec.flush()
    rec.recv(30, "session.created", "session_created", {"type": "session.created", "session": {}})
    rec.close("done")
    trace = read_trace(path)
    assert trace.header["schema"] == 1 and trace.header["target"].endswith("api-key=REDACTED")
    assert [r["rec"] for r in trace.records] == ["mark", "append", "recv"]
    assert trace.footer is not None and trace.footer["reason"] == "done" and trace.complete


def test_close_is_idempotent_and_keeps_the_first_reason(tmp_path: Path) -> None:
    rec = TraceRecorder(tmp_path / "t.jsonl", {"session_id": "s"})
    rec.close("error")
    rec.close("done")
    assert read_trace(tmp_path / "t.jsonl").footer["reason"] == "error"


def test_a_torn_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rec = TraceRecorder(path, {"session_id": "s"})
    for i in range(5):
        rec.mark("tick", t_ns=i)
    rec.flush()
    with path.open("a") as handle:
        handle.write('{"rec":"mark","t_ns":99,"mark":"ti')  # killed mid-write
    trace = read_trace(path)
    assert trace.torn_tail and not trace.complete
    assert len(trace.records) == 5


def test_a_file_without_header_is_rejected_with_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"rec": "mark"}) + "\n")
    with pytest.raises(TraceFormatError, match="x.jsonl: not a harness trace") as info:
        read_trace(path)
    assert "\n" not in str(info.value)


def test_flush_all_writes_every_open_recorder(tmp_path: Path) -> None:
    recorders = [TraceRecorder(tmp_path / f"{i}.jsonl", {"session_id": str(i)}) for i in range(3)]
    for rec in recorders:
        rec.mark("connect_start", t_ns=1)
    assert flush_all() >= 3
    assert all(len(read_trace(tmp_path / f"{i}.jsonl").records) == 1 for i in range(3))
    for rec in recorders:
        rec.close()


def test_concurrent_record_calls_and_flushes_lose_nothing(tmp_path: Path) -> None:
    rec = TraceRecorder(tmp_path / "t.jsonl", {"session_id": "s"})

    def writer(k: int) -> None:
        for i in range(500):
            rec.mark("m", t_ns=i, writer=k)
            if i % 50 == 0:
                rec.flush()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    rec.close()
    trace = read_trace(tmp_path / "t.jsonl")
    assert len(trace.records) == 2000
    assert trace.footer["records"] == 2002  # header + 2000 + footer


def test_records_made_while_another_thread_flushes_continuously_are_never_lost(tmp_path: Path) -> None:
    rec = TraceRecorder(tmp_path / "t.jsonl", {"session_id": "s"})
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            rec.flush()

    def writer(k: int) -> None:
        for i in range(3000):
            rec.mark("m", t_ns=i, writer=k)

    flush_thread = threading.Thread(target=flusher)
    flush_thread.start()
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=30)
    done.set()
    flush_thread.join(timeout=30)
    rec.close()
    assert len(read_trace(tmp_path / "t.jsonl").records) == 9000


def test_a_url_with_an_invalid_port_is_redacted_not_raised() -> None:
    assert redact_url("ws://127.0.0.1:99999999/v1/realtime?api-key=k") == "<invalid url>"
