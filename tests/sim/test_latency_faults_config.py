"""Latency distributions, fault specs and SimConfig parsing (flags and TOML)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from harness.sim import SimConfig, SimConfigError
from harness.sim.command import add_arguments, build_config
from harness.sim.faults import Fault, FaultPlan
from harness.sim.latency import Distribution, LatencyModel, parse_latency_flag


def test_each_distribution_parses_and_samples_within_its_shape() -> None:
    model = LatencyModel().with_specs({
        "first_audio": "fixed:300", "delta_gap": "uniform:20,40", "commit": "normal:100,10",
        "response_start": "lognormal:200,0.3",
    })
    sampler = model.sampler(seed=1, session_index=0)
    assert {sampler.delay_ns("first_audio") for _ in range(5)} == {300_000_000}
    gaps = [sampler.delay_ns("delta_gap") / 1e6 for _ in range(500)]
    assert 20 <= min(gaps) and max(gaps) <= 40
    commits = [sampler.delay_ns("commit") / 1e6 for _ in range(2000)]
    assert abs(statistics.mean(commits) - 100) < 2 and 8 < statistics.stdev(commits) < 12
    starts = [sampler.delay_ns("response_start") / 1e6 for _ in range(2000)]
    assert abs(statistics.median(starts) - 200) < 15


def test_the_same_seed_and_session_draw_the_same_delays_and_other_sessions_differ() -> None:
    model = LatencyModel().with_specs({"first_audio": "normal:300,50"})
    a = [model.sampler(7, 0).delay_ns("first_audio") for _ in range(1)]
    b = [model.sampler(7, 0).delay_ns("first_audio") for _ in range(1)]
    c = [model.sampler(7, 1).delay_ns("first_audio") for _ in range(1)]
    assert a == b and a != c


@pytest.mark.parametrize("spec", ["gauss:1", "fixed:-5", "uniform:5,1", "normal:1", "fixed:abc", "lognormal:100,-1"])
def test_a_bad_distribution_is_one_clear_user_error(spec: str) -> None:
    with pytest.raises(SimConfigError) as info:
        Distribution.parse(spec, "first_audio")
    assert info.value.user_error and "first_audio" in str(info.value)


def test_an_unknown_stage_is_rejected_with_the_list_of_stages() -> None:
    with pytest.raises(SimConfigError, match="delta_gap"):
        LatencyModel().with_specs({"first_byte": "fixed:1"})
    with pytest.raises(SimConfigError, match="STAGE=DIST"):
        parse_latency_flag("first_audio")


def test_fault_specs_fill_defaults_and_reject_bad_keys() -> None:
    fault = Fault.parse("stall:after_deltas=3,ms=4000")
    assert fault.after_deltas == 3 and fault.number("ms") == 4000 and fault.number("p") == 1.0
    assert Fault.parse("close:code=4000").number("code") == 4000
    assert Fault.parse("incomplete:reason=content_filter").text("reason") == "content_filter"
    for bad in ["explode", "stall:speed=3", "drop_socket:p=2", "incomplete:reason=tired", "close:code=12"]:
        with pytest.raises(SimConfigError):
            Fault.parse(bad)


def test_fault_probability_and_nth_select_responses_reproducibly() -> None:
    plan = FaultPlan.parse(["drop_socket:p=0.5", "stall:nth=2"])
    picks = [[f.kind for f in plan.chooser(3, 0).next_response()] for _ in range(1)]
    chooser = plan.chooser(3, 0)
    hits = [[f.kind for f in chooser.next_response()] for _ in range(400)]
    assert picks[0] == hits[0]
    assert 150 < sum("drop_socket" in h for h in hits) < 250
    assert [i for i, h in enumerate(hits, 1) if "stall" in h] == [2]


def test_toml_and_flags_build_the_same_config(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(
        'seed = 9\ndelta_ms = 50\n[latency]\nfirst_audio = "fixed:300"\n'
        '[function_call]\nevery = 2\n[[fault]]\nspec = "close:code=4000"\n'
    )
    from_file = SimConfig.from_toml(path)
    assert from_file.seed == 9 and from_file.delta_ms == 50 and from_file.function_call.every == 2
    assert from_file.latency_model.describe()["first_audio"] == "fixed:300"
    assert from_file.fault_plan.describe() == ["close:code=4000"]

    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", str(path), "--latency", "delta_gap=uniform:10,20", "--fault", "stall"])
    cfg = build_config(args)
    assert cfg.latency_model.describe()["first_audio"] == "fixed:300"
    assert cfg.latency_model.describe()["delta_gap"] == "uniform:10,20"
    assert cfg.fault_plan.describe() == ["close:code=4000", "stall:ms=3000"]


def test_bad_toml_files_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match="no such file"):
        SimConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = \n")
    with pytest.raises(SimConfigError, match="bad.toml"):
        SimConfig.from_toml(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("sed = 3\n")
    with pytest.raises(SimConfigError, match="unknown setting"):
        SimConfig.from_toml(unknown)
