"""The non-tabular files of a run directory: settings, summary, traces and incident bundles.

Layout in docs/contracts.md section 6. Every file except the turn table is optional: a report
of a run that was killed halfway still shows what is there, and says what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.errors import ReportInputError
from harness.trace import existing_trace, iter_trace_files, redact_url, trace_stem


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportInputError(f"{path}: not valid JSON ({exc}); rewrite it or delete it to report without it") from exc
    return data if isinstance(data, dict) else None


@dataclass
class RunFiles:
    """What a run directory holds besides its turn table."""

    run_dir: Path
    run: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    bundles: dict[str, Path] = field(default_factory=dict)   # "<session>-<turn>" -> bundle folder
    _traces: dict[str, Path] | None = field(default=None, repr=False)  # trace file stem -> path

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunFiles":
        run_dir = Path(run_dir)
        summary = _read_json(run_dir / "summary.json")
        run = dict((summary or {}).get("run") or {})
        run.update(_read_json(run_dir / "run.json") or {})
        if isinstance(run.get("target"), str):
            run["target"] = redact_url(run["target"])  # again: a report must never show a key
        bundles = {}
        incidents = run_dir / "incidents"
        if incidents.is_dir():
            bundles = {p.name: p for p in sorted(incidents.iterdir()) if p.is_dir()}
        return cls(run_dir=run_dir, run=run, summary=summary, bundles=bundles)

    def trace_for(self, worker: Any, session_id: Any, turn: Any = None) -> Path | None:
        """The session's trace: its bundle's trace.jsonl(.gz), else traces/<worker>-<session>.jsonl(.gz)."""
        if turn is not None:
            bundle = self.bundles.get(f"{session_id}-{turn}")
            in_bundle = existing_trace(bundle / "trace.jsonl") if bundle is not None else None
            if in_bundle is not None:
                return in_bundle
        if self._traces is None:  # listed once: a big run asks for hundreds of sessions
            self._traces = {trace_stem(p): p for p in iter_trace_files(self.run_dir / "traces")}
        exact = self._traces.get(f"{worker}-{session_id}")
        if exact is not None:
            return exact
        suffix = f"-{session_id}"
        return next((path for stem, path in self._traces.items() if stem.endswith(suffix)), None)

    def header_facts(self, versions_fallback: dict[str, Any] | None = None,
                     turns_span_s: float | None = None) -> list[tuple[str, Any]]:
        """(label, value) pairs for the report header, in reading order."""
        run = self.run
        duration = run.get("duration_s")
        if duration is None and run.get("ended_wall_s") and run.get("started_wall_s"):
            duration = float(run["ended_wall_s"]) - float(run["started_wall_s"])
        duration_text = f"{float(duration):.0f} s" if duration is not None else run.get("run_time")
        if turns_span_s is not None:
            span = f"turns over {turns_span_s:.0f} s"
            duration_text = f"{duration_text} ({span})" if duration_text else span
        scenarios = run.get("scenarios")
        if isinstance(scenarios, dict):
            scenarios = ", ".join(f"{k}:{v}" for k, v in scenarios.items())
        versions = run.get("versions") or versions_fallback or {}
        if isinstance(versions, dict):
            versions = ", ".join(f"{k} {v}" for k, v in versions.items())
        facts = [
            ("run", run.get("run_id") or self.run_dir.name), ("target", run.get("target")),
            ("dialect", run.get("dialect")), ("format", run.get("format")), ("corpus", run.get("corpus")),
            ("scenarios", scenarios), ("users", run.get("users")),
            ("duration", duration_text),
            ("versions", versions),
        ]
        return facts + self.simulator_facts()

    def simulator_facts(self) -> list[tuple[str, Any]]:
        """For a run against the embedded simulator: its lateness verdict and its full settings."""
        settings = self.run.get("simulator")
        gate = (self.summary or {}).get("simulator") or {}
        if not isinstance(settings, dict):
            settings = gate.get("settings") if isinstance(gate.get("settings"), dict) else None
        if not settings:
            return []
        facts: list[tuple[str, Any]] = []
        late = gate.get("lateness") or {}
        if late:
            shown = "/".join("n/a" if late.get(k) is None else f"{late[k]:.2f}" for k in ("p50_ms", "p99_ms", "max_ms"))
            verdict = ("kept its latency model" if gate.get("passed", True) else
                       "OVERLOADED: could not keep its latency model, so this run's latencies are its own")
            facts.append(("simulator lateness", f"p50/p99/max {shown} ms (limit {gate.get('lateness_limit_ms')} ms "
                                                f"on p99, {late.get('count', 0)} samples): {verdict}"))
        latency = settings.get("latency") or {}
        faults = settings.get("faults") or []
        facts.append(("simulator latency", ", ".join(f"{k}={v}" for k, v in latency.items())))
        facts.append(("simulator settings",
                      f"seed {settings.get('seed')}, vad {settings.get('vad')}, processes {settings.get('processes')}, "
                      f"event loop {settings.get('event_loop')}, faults {', '.join(faults) if faults else 'none'}, "
                      f"voice {settings.get('voice')}, delta {settings.get('delta_ms')} ms"))
        return facts
