"""Live turns are delimited by the caller's speech and the answer audio it hears (no protocol turns):
exact logic on in-memory times."""

from __future__ import annotations

from harness.protocol.live_turns import ANSWER_GAP_MS, LIVE_METRICS, LiveAnswers

MS = 1_000_000


def test_the_answer_starts_at_the_first_chunk_after_speech_end_and_collects_the_rest() -> None:
    live = LiveAnswers()
    assert live.audio(900 * MS, 100.0) is None          # before the utterance ended: not an answer
    live.speech_ended(1000 * MS)
    answer = live.audio(1300 * MS, 100.0)
    assert answer is not None and live.ttfa_ms(1000 * MS, answer) == 300.0
    for i in range(1, 5):
        assert live.audio((1300 + 20 * i) * MS, 100.0) is answer
    assert answer.chunks == 5 and answer.audio_ms == 500.0 and live.barge_in_ms(answer) is None


def test_a_chunk_after_the_answer_went_quiet_without_new_speech_belongs_to_no_turn() -> None:
    live = LiveAnswers()
    live.speech_ended(0)
    answer = live.audio(200 * MS, 100.0)
    assert answer is not None
    late = answer.quiet_after_ns() + MS
    assert late == (200 + 100 + ANSWER_GAP_MS + 1) * MS
    assert live.audio(late, 100.0) is None and len(live.answers) == 1


def test_speech_over_a_sounding_answer_interrupts_it_and_its_leak_is_measured() -> None:
    live = LiveAnswers()
    live.speech_ended(1000 * MS)
    answer = live.audio(1300 * MS, 2000.0)          # two seconds of answer audio in one chunk
    live.speech_started(1500 * MS)
    assert answer is not None and answer.interrupted_by_ns == 1500 * MS
    assert live.audio(1580 * MS, 100.0) is answer    # still arriving after the barge-in: leak
    assert live.barge_in_ms(answer) == 80.0
    live.speech_ended(2200 * MS)
    second = live.audio(2500 * MS, 100.0)
    assert second is not answer and live.ttfa_ms(2200 * MS, second) == 300.0 and len(live.answers) == 2


def test_every_realtime_metric_without_a_live_equivalent_is_named_none() -> None:
    missing = {name for name, meaning in LIVE_METRICS.items() if meaning is None}
    assert {"vad_commit_ms", "vad_stop_ms", "response_done_ms", "cancel_ack_ms"} <= missing
    assert LIVE_METRICS["ttfa_ms"] is not None and LIVE_METRICS["barge_in_ms"] is not None
