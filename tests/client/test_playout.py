"""The playout model against hand-computed timelines (synthetic arrival times, exact answers)."""

from __future__ import annotations

import pytest

from harness.client.playout import Player

MS = 1_000_000
T0 = 10_000 * MS


def test_audio_arriving_faster_than_real_time_plays_back_to_back_and_ends_at_the_sum() -> None:
    player = Player("r1")
    for i in range(10):                      # 10 deltas of 100 ms, all within 50 ms
        assert player.add(T0 + i * 5 * MS, 100.0) is None
    assert player.start_ns == T0
    assert player.end_ns == T0 + 1000 * MS
    assert player.underruns == []
    assert player.played_ms(T0 + 250 * MS) == pytest.approx(250.0)
    assert player.played_ms(T0 + 5000 * MS) == pytest.approx(1000.0)


def test_a_gap_longer_than_the_buffer_is_one_underrun_of_the_gap_and_playback_resumes() -> None:
    player = Player("r1")
    player.add(T0, 100.0)                     # plays T0 .. T0+100
    gap = player.add(T0 + 250 * MS, 100.0)    # dry from +100 to +250
    assert gap is not None and gap.t_ns == T0 + 100 * MS and gap.ms == pytest.approx(150.0)
    assert player.underrun_ms == pytest.approx(150.0)
    assert player.end_ns == T0 + 350 * MS
    assert player.played_ms(T0 + 200 * MS) == pytest.approx(100.0)   # paused while dry
    assert player.played_ms(T0 + 300 * MS) == pytest.approx(150.0)


def test_a_jitter_buffer_delays_the_start_and_absorbs_a_gap_shorter_than_itself() -> None:
    player = Player("r1", jitter_ms=80.0)
    player.add(T0, 100.0)                     # starts at +80, dry at +180
    assert player.add(T0 + 150 * MS, 100.0) is None
    assert player.start_ns == T0 + 80 * MS
    assert player.played_ms(T0 + 50 * MS) == 0.0
    assert player.played_ms(T0 + 130 * MS) == pytest.approx(50.0)
    assert player.end_ns == T0 + 280 * MS


def test_stopping_freezes_the_played_position_and_ignores_later_audio() -> None:
    player = Player("r1")
    player.add(T0, 500.0)
    played = player.stop(T0 + 123 * MS)
    assert played == pytest.approx(123.0)
    assert player.add(T0 + 200 * MS, 100.0) is None
    assert player.received_ms == 500.0
    assert player.played_ms(T0 + 400 * MS) == pytest.approx(123.0)
    assert player.end_ns == T0 + 123 * MS


def test_the_played_position_at_a_past_instant_ignores_audio_that_arrived_later() -> None:
    player = Player("r1")
    player.add(T0, 40.0)
    player.add(T0 + 100 * MS, 40.0)           # underrun of 60 ms
    player.add(T0 + 110 * MS, 40.0)
    assert player.played_ms(T0 + 60 * MS) == pytest.approx(40.0)
    assert player.played_ms(T0 + 120 * MS) == pytest.approx(60.0)
    assert player.played_ms(T0 + 500 * MS) == pytest.approx(120.0)
