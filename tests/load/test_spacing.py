"""harness.load.spacing: a batch of users Locust spawned at once starts evenly, at the rate given."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.load.spacing import MAX_SPACING_S, StartSpacing, spawn_rate_of


def test_fifty_users_spawned_together_at_rate_fifty_start_twenty_ms_apart_over_one_second() -> None:
    spacing = StartSpacing()
    delays = [spacing.delay_s(100.0, 50.0) for _ in range(50)]
    assert delays == pytest.approx([i * 0.02 for i in range(50)])


def test_a_user_spawned_after_the_batch_has_started_waits_only_for_the_slots_still_ahead() -> None:
    spacing = StartSpacing()
    for _ in range(10):
        spacing.delay_s(0.0, 100.0)                   # slots 0 .. 0.09 s
    assert spacing.delay_s(0.05, 100.0) == pytest.approx(0.05)   # slot 0.10
    assert spacing.delay_s(5.0, 100.0) == 0.0         # long after: at once


def test_a_slow_rate_spaces_users_at_most_twenty_ms_and_an_unknown_rate_not_at_all() -> None:
    spacing = StartSpacing()
    assert [spacing.delay_s(0.0, 1.0) for _ in range(3)] == pytest.approx([0.0, MAX_SPACING_S, 2 * MAX_SPACING_S])
    assert StartSpacing().delay_s(0.0, None) == 0.0


def test_the_rate_is_the_dispatcher_s_current_one_else_the_command_line_s() -> None:
    shaped = SimpleNamespace(runner=SimpleNamespace(_users_dispatcher=SimpleNamespace(_spawn_rate=200.0)),
                             parsed_options=SimpleNamespace(spawn_rate=1.0))
    assert spawn_rate_of(shaped) == 200.0
    worker = SimpleNamespace(runner=SimpleNamespace(), parsed_options=SimpleNamespace(spawn_rate=25.0))
    assert spawn_rate_of(worker) == 25.0
    assert spawn_rate_of(SimpleNamespace(runner=None, parsed_options=None)) is None
