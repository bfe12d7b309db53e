"""junit.xml: the common JUnit schema, the run's properties without secrets, values on every case."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.junit import junit_xml, number, write_junit
from harness.load.slo import evaluate, load_slos
from harness.metrics import summarize

etree = pytest.importorskip("lxml.etree", reason="lxml validates junit.xml against the XSD (pip install '.[test]')")
XSD = Path(__file__).with_name("junit.xsd")
RUN = {"run_id": "r-42", "target": "wss://gw.example/v1/realtime?api-key=sk-SECRET&model=m", "dialect": "ga",
       "format": "pcm16", "corpus": "corpora/default", "scenarios": {"plain": 3.0, "barge_in": 1.0}, "users": 10,
       "spawn_rate": 5.0, "run_time": "1m30s", "turns": 3, "argv": ["harness", "run", "--target", "wss://x?key=sk-ARGV"],
       "simulator": {"latency": {"first_audio": "fixed:300"}, "seed": 0, "api_key": "sk-NESTED"},
       "finished_at": "2026-12-02T05:58:30Z"}


def _results() -> list[dict]:
    records = [{"scenario": "plain", "status": "ok", "ttfa_ms": 400.0 + i * 0.3333333} for i in range(40)]
    summary = summarize(records)
    results = evaluate(load_slos(["ttfa_ms:p95<1200", "ttfa_ms:p50<100", "ttfa_ms:p95<1200@95%"]), summary, records)
    results.append({"expr": "pacing:p99<=5", "metric": "send_lateness_ms", "stat": "p99", "op": "<=",
                    "threshold": 5.0, "value": 0.39608089999996, "passed": True})
    return results


def _schema() -> "etree.XMLSchema":
    return etree.XMLSchema(etree.parse(str(XSD)))


def test_junit_xml_validates_against_the_common_junit_schema(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(path, "r-42", _results(), run=RUN)
    document = etree.parse(str(path))
    schema = _schema()
    assert schema.validate(document), schema.error_log
    root = document.getroot()
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "1"
    suite = root.find("testsuite")
    assert suite.get("time") == "90" and suite.get("timestamp") == "2026-12-02T05:58:30"


def test_the_schema_rejects_the_old_bare_testsuite_shape_without_time_and_timestamp() -> None:
    old = etree.fromstring(b'<testsuite name="x" tests="1" failures="0" errors="0">'
                           b'<testcase classname="slo" name="a"/></testsuite>')
    assert not _schema().validate(old)


def test_properties_hold_the_run_settings_and_no_secret() -> None:
    text = junit_xml("r-42", _results(), run=RUN)
    props = {p.get("name"): p.get("value") for p in etree.fromstring(text.encode()).iter("property")}
    assert props["run_id"] == "r-42" and props["users"] == "10" and props["scenarios.plain"] == "3"
    assert props["simulator.latency.first_audio"] == "fixed:300"
    assert "api-key=REDACTED" in props["target"] or "REDACTED" in props["target"]
    assert "SECRET" not in text and "sk-ARGV" not in text and "sk-NESTED" not in text and "argv" not in props


def test_every_case_carries_its_measured_value_rounded() -> None:
    root = etree.fromstring(junit_xml("r-42", _results(), run=RUN).encode())
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["ttfa_ms:p95<1200"].findtext("system-out").startswith("value 412.35 ")
    assert cases["pacing:p99<=5"].findtext("system-out").startswith("value 0.3961 ")
    assert "upper bound of the 95 % interval" in cases["ttfa_ms:p95<1200@95%"].findtext("system-out")
    failure = cases["ttfa_ms:p50<100"].find("failure")
    assert failure is not None and failure.get("message").startswith("value 406.5 does not satisfy")
    assert "0.3333" not in junit_xml("r-42", _results(), run=RUN)


@pytest.mark.parametrize("value,shown", [(459.39608089999996, "459.4"), (1200.0, "1200"), (0.0123456, "0.01235"),
                                         (None, "n/a"), (3, "3"), (12.005, "12.01"), (-3.14159, "-3.14")])
def test_numbers_are_rounded_for_people(value: float | None, shown: str) -> None:
    assert number(value) == shown
