"""Reading a session trace back as a story: helpers shared by the scenario tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.client import SessionSpec
from harness.trace import Trace, read_trace

# A short reply keeps playout (always real time) short; rtf 4 streams the utterances fast.
FAST_SIM = {"reply_text": "Okay, done.", "seed": 1}
SHORT_UTTERANCES = ["utt01", "utt11"]     # ~1.9-2.0 s each in corpora/default
FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
DIALECTS = ("ga", "beta")


def matrix_specs(url: str, tmp_path: Path, scenario: str, turns: int = 2, rtf: float = 4.0,
                 **params: Any) -> list[SessionSpec]:
    """One spec per dialect x format (6 sessions), run together."""
    specs = []
    for dialect in DIALECTS:
        for fmt in FORMATS:
            specs.append(SessionSpec(
                url=url, dialect=dialect, fmt=fmt, scenario=scenario, turns=turns, rtf=rtf, auth="none",
                trace_dir=tmp_path, session_id=f"{scenario}-{dialect}-{fmt}", turn_timeout_s=10,
                lateness_limit_ms=250.0, scenario_params=params))   # the story, not pacing: a busy CI machine
    return specs


@dataclass
class Story:
    trace: Trace

    @classmethod
    def read(cls, path: Path) -> "Story":
        return cls(read_trace(path))

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.trace.records

    def marks(self, name: str, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if r["rec"] == "mark" and r["mark"] == name
                and all(r.get(k) == v for k, v in match.items())]

    def mark_names(self) -> list[str]:
        return [r["mark"] for r in self.records if r["rec"] == "mark"]

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["rec"] == "recv" and r["kind"] == kind]

    def sent(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["rec"] == "send" and r["type"] == type_]

    def appends(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["rec"] == "append"]

    def violations(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["rec"] == "violation"]

    def first_t(self, records: list[dict[str, Any]]) -> int:
        assert records, "expected at least one record"
        return records[0]["t_ns"]


def assert_common_story(story: Story, spec: SessionSpec, turns: int) -> None:
    """What every completed session tells: header, connect, configuration, turns, footer."""
    header = story.trace.header
    assert header["dialect"] == spec.dialect and header["format"] == spec.fmt
    assert header["scenario"] == spec.scenario and header["session_id"] == spec.session_id
    assert header["session_config"], "the session object sent is in the header"
    assert story.trace.complete and story.trace.footer["reason"] == "done", story.mark_names()
    names = story.mark_names()
    assert names[:3] == ["connect_start", "connected", "stream_start"]
    assert story.received("session_created") and story.received("session_updated")
    assert len(story.marks("turn_start")) == turns
    ends = story.marks("turn_end")
    assert [e["turn"] for e in ends] == list(range(turns)) or sorted(e["turn"] for e in ends) == list(range(turns))
    assert all(e["status"] == "ok" for e in ends), ends
    seqs = [a["seq"] for a in story.appends()]
    assert seqs == list(range(len(seqs)))
    assert not story.violations(), story.violations()[:3]
    assert header["target"] == spec.url
