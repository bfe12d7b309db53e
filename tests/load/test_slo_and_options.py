"""SLO expressions, TOML files and evaluation on exact records; the scenario mix; run settings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.load.options import LoadSettings, LoadSettingsError, parse_mix
from harness.load.slo import SloError, evaluate, load_slos, parse_slo
from harness.metrics import summarize


def test_a_percentile_slo_parses_into_metric_stat_operator_and_threshold() -> None:
    slo = parse_slo("ttfa_ms:p95<1200")
    assert (slo.metric, slo.stat, slo.op, slo.threshold) == ("ttfa_ms", "p95", "<", 1200.0)


@pytest.mark.parametrize("expr,fragment", [
    ("ttfa_ms<1200", "unknown stat"),
    ("latency:p95<1", "unknown metric"),
    ("ttfa_ms:p95 << 3", "not an SLO"),
    ("incident_rate:gremlins<0.1", "unknown incident cause"),
    ("timeout_rate:p95<0.1", "takes no stat"),
    ("ttfa_ms:p95<1200@abc%", "is not a number from 50"),
    ("ttfa_ms:p95<1200@100%", "is not a number from 50"),
    ("ttfa_ms:max<1200@95%", "applies only to a percentile"),
    ("incident_rate:any<0.1@95%", "applies only to a percentile"),
    ("ttfa_ms:p95<1200@95", "not an SLO"),
])
def test_bad_slo_expressions_fail_with_one_line_naming_the_expression(expr: str, fragment: str) -> None:
    with pytest.raises(SloError, match=fragment) as info:
        parse_slo(expr)
    assert expr in str(info.value) and "\n" not in str(info.value)


def test_slos_come_from_a_toml_file_and_bad_toml_is_one_clear_line(tmp_path: Path) -> None:
    good = tmp_path / "slo.toml"
    good.write_text('slo = ["ttfa_ms:p95<1200", "incident_rate:any<0.05"]\n')
    assert [s.expr for s in load_slos([str(good)])] == ["ttfa_ms:p95<1200", "incident_rate:any<0.05"]
    bad = tmp_path / "bad.toml"
    bad.write_text("slo = [\n")
    with pytest.raises(SloError, match="not valid TOML"):
        load_slos([str(bad)])


def _records(ttfa: list[float | None], statuses: list[str], incidents: list[str | None]) -> list[dict]:
    return [{"scenario": "plain", "format": "pcm16", "dialect": "ga", "utterance": "u", "ttfa_ms": t,
             "status": s, "incident": i} for t, s, i in zip(ttfa, statuses, incidents)]


def test_slos_are_evaluated_on_the_exact_values_of_the_records() -> None:
    values = [100.0 + i for i in range(100)]  # p95 = 194.05 exactly (linear)
    summary = summarize(_records(values, ["ok"] * 100, [None] * 99 + ["false_barge_in"]))
    results = evaluate(load_slos(["ttfa_ms:p95<194.1", "ttfa_ms:p95<194.0", "incident_rate:false_barge_in<=0.01",
                                  "incident_rate:any<0.01", "timeout_rate<0.001"]), summary)
    assert [r["passed"] for r in results] == [True, False, True, False, True]
    assert results[0]["value"] == pytest.approx(194.05)


def test_an_slo_at_a_confidence_level_judges_the_bound_of_the_interval_not_the_point() -> None:
    records = _records([100.0 + i for i in range(100)], ["ok"] * 100, [None] * 100)
    summary = summarize(records)
    point, (low, high) = summary["metrics"]["ttfa_ms"]["p95"], summary["metrics"]["ttfa_ms"]["ci"]["p95"]
    assert low < point < high
    between = (point + high) / 2   # the point passes, the upper bound does not
    upper, plain, lower = evaluate(load_slos([f"ttfa_ms:p95<{between}@95%", f"ttfa_ms:p95<{between}",
                                              f"ttfa_ms:p95>{(low + point) / 2}@95%"]), summary, records)
    assert (upper["passed"], upper["value"], upper["point"]) == (False, high, point)
    assert upper["note"] == "upper bound of the 95 % interval" and plain["passed"]
    assert not lower["passed"] and lower["value"] == low and lower["note"].startswith("lower bound")
    (ninety,) = evaluate(load_slos(["ttfa_ms:p95<1000@90%"]), summary, records)
    assert point < ninety["value"] < high   # another level: computed from the records, narrower


def test_an_slo_at_a_confidence_level_fails_with_n_too_small_below_the_minimum_count() -> None:
    records = _records([100.0 + i for i in range(12)], ["ok"] * 12, [None] * 12)
    (result,) = evaluate(load_slos(["ttfa_ms:p95<10000@95%"]), summarize(records), records)
    assert result["value"] is None and not result["passed"] and result["note"] == "n too small (n=12 < 30)"


def test_timed_out_turns_stay_in_the_denominators() -> None:
    summary = summarize(_records([100.0, None, None, None], ["ok", "timeout", "timeout", "error"], [None] * 4))
    assert summary["turns"] == {"total": 4, "ok": 1, "timeout": 2, "error": 1, "invalid_pacing": 0, "stopped": 0}
    assert summary["metrics"]["ttfa_ms"]["timeouts"] == 2
    (result,) = evaluate(load_slos(["timeout_rate<0.5"]), summary)
    assert result["value"] == 0.5 and not result["passed"]


def test_the_scenario_mix_parses_weights_and_rejects_unknown_scenarios() -> None:
    assert parse_mix("plain:3,barge_in:1") == {"plain": 3.0, "barge_in": 1.0}
    assert parse_mix("manual") == {"manual": 1.0}
    with pytest.raises(LoadSettingsError, match="unknown scenario 'telepathy'"):
        parse_mix("plain:1,telepathy:2")


def _options(**overrides: object) -> SimpleNamespace:
    base = dict(target="ws://127.0.0.1:9/v1/realtime", host="", dialect="ga", audio_format="pcm16",
                corpus="corpora/default", scenario="plain:1", scenario_params="{}", turns=2, chunk_ms=20.0,
                rtf=1.0, turn_timeout=15.0, lateness_limit_ms=20.0, pacing_limit_ms=5.0, slo=None, out="",
                run_id="r1", auth="bearer", api_key_env="")
    base.update(overrides)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("overrides,fragment", [
    ({"target": "http://127.0.0.1:9/"}, "not a WebSocket URL"),
    ({"target": ""}, "no target"),
    ({"audio_format": "opus"}, "--format 'opus'"),
    ({"dialect": "v2"}, "--dialect 'v2'"),
    ({"corpus": "/nonexistent"}, "no such corpus folder"),
    ({"scenario_params": "{oops"}, "not valid JSON"),
])
def test_bad_run_settings_fail_with_one_line_naming_the_setting(overrides: dict, fragment: str) -> None:
    with pytest.raises(LoadSettingsError, match=fragment):
        LoadSettings.from_options(_options(**overrides))


def test_the_default_run_directory_is_reports_slash_the_run_id() -> None:
    assert LoadSettings.from_options(_options()).out == Path("reports") / "r1"
