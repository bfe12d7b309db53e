"""The simulator's fast paths say exactly what the general ones would.

- Every frame on the wire, the byte-template deltas included, is the compact JSON that orjson
  dumps for its own parsed object, and the protocol's rules find nothing wrong with it, also with
  many sessions at once on a simulator of two processes.
- The energy VAD's bytes path (audioop RMS, exact near the threshold) decides frame by frame what
  the exact mean square decides, around the threshold and in every format.
- An append that skips the codec gets the same errors as through it.
"""

from __future__ import annotations

import base64
import json
import threading

import numpy as np
import orjson
import pytest
from sim_client import RawClient, burst_audio

from harness.audio import from_wire, to_wire
from harness.protocol import AudioFormat
from harness.sim import SimConfig
from harness.sim.vad import EnergyVad, threshold_dbfs

FAST = {"first_audio": "fixed:5", "delta_gap": "fixed:2"}


def _turn(url: str, dialect: str, fmt: AudioFormat) -> list[dict]:
    client = RawClient(url, dialect)
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("silence", 100), ("speech", 400), ("silence", 300)]), fmt)
    events = client.until("response.done")
    client.assert_conformant()
    client.close()
    return events


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_every_frame_is_the_compact_json_of_its_own_object_templates_included(sim_factory, dialect: str) -> None:
    reply = 'She said "ça va?" \\ then left \u2014 ok.'  # quotes, a backslash, non-ASCII in the transcript pieces
    sim = sim_factory(SimConfig(reply_text=reply, latency=FAST))
    fmt = AudioFormat.PCM16
    client = RawClient(sim.url, dialect)
    raw: list[str] = []
    received = client.ws.recv
    client.ws.recv = lambda timeout=None: raw.append(received(timeout=timeout)) or raw[-1]  # type: ignore[method-assign]
    client.until("session.created")
    client.configure(fmt)
    client.append(burst_audio(fmt, [("silence", 100), ("speech", 400), ("silence", 300)]), fmt)
    events = client.until("response.done")
    client.assert_conformant()
    client.close()
    assert any("audio" in e["type"] and e["type"].endswith(".delta") for e in events)
    for text in raw:
        assert orjson.dumps(json.loads(text)) == text.encode("utf-8"), text[:120]
    pieces = "".join(e["delta"] for e in events if e["type"].endswith("audio_transcript.delta"))
    assert pieces == reply


def test_thirty_sessions_at_once_on_two_processes_all_get_conformant_answers(process_sim_factory) -> None:
    sim = process_sim_factory(SimConfig(reply_text="A short answer for everyone.", latency=FAST))
    results: list[list[dict] | BaseException] = []

    def one(index: int) -> None:
        try:
            fmt = list(AudioFormat)[index % 3]
            results.append(_turn(sim.url, "ga" if index % 2 else "beta", fmt))
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert len(results) == 30
    assert all(r[-1]["response"]["status"] == "completed" for r in results if not isinstance(r, BaseException))


def _exact(samples: np.ndarray, rate: int, threshold: float) -> list[bool]:
    """Frame by frame: mean square (exact, in integers) >= the threshold's."""
    frame = rate // 100
    level = (10 ** (threshold_dbfs(threshold) / 20.0) * 32768.0) ** 2
    whole = samples.size // frame
    x = samples[: whole * frame].astype(np.int64).reshape(whole, frame)
    return list((x * x).sum(axis=1) / frame >= level)


@pytest.mark.parametrize("fmt", list(AudioFormat), ids=lambda f: f.value)
def test_the_bytes_vad_decides_every_frame_as_the_exact_mean_square_does_around_the_threshold(fmt: AudioFormat) -> None:
    rng = np.random.default_rng(7)
    threshold = 0.5
    target_rms = 10 ** (threshold_dbfs(threshold) / 20.0) * 32768.0
    # 10 ms frames whose RMS sits within a few units of the threshold's, each side
    rate = fmt.rate_hz
    frame = rate // 100
    frames = []
    for i in range(400):
        noise = rng.standard_normal(frame)
        wanted = target_rms + rng.uniform(-3, 3)
        frames.append(np.clip(np.round(noise / np.sqrt(np.mean(noise ** 2)) * wanted), -32768, 32767))
    samples = np.concatenate(frames).astype(np.int16)
    wire = to_wire(samples, rate, fmt)
    decoded = from_wire(wire, fmt)
    want = _exact(decoded, rate, threshold)
    assert 50 < sum(want) < len(want) - 50  # the frames really straddle the threshold

    vad = EnergyVad(rate, threshold=threshold, min_speech_ms=10, silence_duration_ms=10, prefix_padding_ms=0)
    got: list[bool] = []
    unit = fmt.bytes_per_sample
    step = (len(wire) // 97) // unit * unit  # appends of whole samples that do not line up with frames
    for i in range(0, len(wire), step):
        for event in vad.feed_wire(wire[i:i + step], fmt):
            got.append(event.kind == "started")
    # with one-frame start and stop, the decisions alternate exactly where the frames change side
    expected_changes = [want[0]] if want[0] else []
    for before, after in zip(want, want[1:]):
        if after != before:
            expected_changes.append(after)
    assert got == expected_changes


@pytest.mark.parametrize("audio", [123, "not base64!", "QUJ", None])
def test_a_bad_append_gets_the_errors_it_got_through_the_codec(sim, audio) -> None:
    client = RawClient(sim.url)
    client.until("session.created")
    client.send("input_audio_buffer.append", **({} if audio is None else {"audio": audio}))
    error = client.until("error")[-1]["error"]
    client.close()
    if isinstance(audio, str):
        assert (error["code"], error["param"]) == ("invalid_value", "audio")
        assert error["message"] == "Invalid 'audio'. Expected base64-encoded audio bytes."
    else:
        assert (error["code"], error["param"]) == ("invalid_type", "audio")
        assert error["message"].startswith("Invalid type for 'audio': expected a base64 string")


def test_non_ascii_audio_is_the_same_error_whether_orjson_or_json_decodes_the_frame(sim) -> None:
    errors = []
    for audio in (r"QUJD\u00e9", r"QUJD\ud800"):  # orjson takes the first; a lone surrogate only json decodes
        client = RawClient(sim.url)
        client.until("session.created")
        client.ws.send('{"type":"input_audio_buffer.append","event_id":"e1","audio":"' + audio + '"}')
        errors.append(client.until("error")[-1]["error"])
        client.close()
    assert errors[0] == errors[1] and errors[0]["code"] == "invalid_value" and errors[0]["event_id"] == "e1"


def test_an_append_of_good_audio_in_several_shapes_counts_the_same_input_time(sim) -> None:
    fmt = AudioFormat.G711_ULAW
    audio = base64.b64encode(bytes(800)).decode()  # 100 ms of mu-law
    client = RawClient(sim.url)
    client.until("session.created")
    client.configure(fmt, turn_detection=None)
    client.send("input_audio_buffer.append", audio=audio)
    client.ws.send(json.dumps({"event_id": "x", "audio": audio, "type": "input_audio_buffer.append"}))
    client.send("input_audio_buffer.commit")
    committed = client.until("input_audio_buffer.committed")[-1]
    record = [r for r in sim.trace.records if r.get("type") == "input_audio_buffer.committed"][-1]
    assert record["buffer_ms"] == 200.0 and committed["item_id"]
    client.close()
