"""`--shape` plans (exact, on a virtual clock), their one-line errors, and the users.csv sampler."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harness.load.options import LoadSettingsError
from harness.load.shapes import USER_COUNT_COLUMNS, ShapePlan, UserCountLog, parse_shape


def test_a_step_shape_adds_its_step_every_interval_up_to_its_peak_and_holds() -> None:
    plan = parse_shape("step:users=12,step=5,every=10s")
    assert plan == ShapePlan(kind="step", users=12, step=5, every_s=10.0)
    assert [plan.users_at(t) for t in (0, 9.99, 10, 19.9, 20, 35, 600)] == [5, 5, 10, 10, 12, 12, 12]


def test_a_ramp_shape_rises_linearly_from_its_start_and_holds_its_peak() -> None:
    plan = parse_shape("ramp:users=20,over=1m,from=2")
    assert plan is not None and plan.over_s == 60.0 and plan.start == 2
    assert [plan.users_at(t) for t in (0, 30, 59, 60, 300)] == [2, 11, 20, 20, 20]
    assert parse_shape("ramp:users=10,over=10s").users_at(2.5) == 3   # rounded up: 2.5 callers -> 3


def test_each_tick_reaches_its_target_within_a_second_unless_a_rate_is_given_and_for_ends_the_shape() -> None:
    plan = parse_shape("step:users=10,step=4,every=5s,for=30s")
    assert plan is not None
    assert plan.tick(0.0, 0) == (4, 4.0)
    assert plan.tick(5.0, 4) == (8, 4.0)
    assert plan.tick(29.0, 10) == (10, 1.0)
    assert plan.tick(30.0, 10) is None
    assert parse_shape("ramp:users=10,over=10s,rate=0.5").tick(4.0, 0) == (4, 0.5)


def test_no_shape_given_is_none() -> None:
    assert parse_shape("") is None and parse_shape(None) is None and parse_shape("  ") is None


@pytest.mark.parametrize("text,fragment", [
    ("wave:users=3", "unknown shape 'wave'"),
    ("step:users=10,every=5s", "step needs step="),
    ("ramp:over=10s", "ramp needs users="),
    ("step:users=10,step=2,every=soon", "every='soon' is not a duration"),
    ("step:users=10,step=0,every=5s", "step=0 must be more than 0"),
    ("ramp:users=2.5,over=5s", "users=2.5 must be a whole number"),
    ("ramp:users=5,over=5s,from=9", "from=9 is more than users=5"),
    ("ramp:users=5,over=5s,hold=3s", "'hold=3s' is not one of"),
])
def test_a_malformed_shape_is_one_line_naming_it_and_the_forms(text: str, fragment: str) -> None:
    with pytest.raises(LoadSettingsError) as caught:
        parse_shape(text)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and "step:users=20,step=5,every=10s" in message


def test_the_user_count_log_writes_a_header_and_a_row_per_sample_with_the_target(tmp_path: Path) -> None:
    counts = iter([0, 3, 5])
    log = UserCountLog(tmp_path / "users.csv", lambda: next(counts), lambda: 5, interval_s=3600)
    log.start()
    log.stop()   # one sample when started, one as it stops
    log.sample(0.0)
    with (tmp_path / "users.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == USER_COUNT_COLUMNS
    assert [(r["users"], r["target_users"]) for r in rows] == [("0", "5"), ("3", "5"), ("5", "5")]
    assert float(rows[1]["elapsed_s"]) >= float(rows[0]["elapsed_s"]) >= 0
