"""Re-drive a bundled session against a target and tell whether its incident comes back.

Two anchors (README, "Reproduce an incident"):

- `events` (default): the caller is rebuilt from the bundle: the same session settings,
  scenario and parameters, the same utterances in the same order, the same chunking and
  real-time factor, so the same audio goes out at the same pacing and the scenario makes the
  same client decisions (cancel, truncate, tool outputs) on the new session's server events.
  Use it to ask "does this target still do that to this caller?".
- `session`: `schedule.play_schedule` sends `audio.bin` and every recorded client event at its
  original offset from the stream start, whatever the server does. Use it to ask "what does the
  target do with exactly this input?" (a cancel lands at the same instant even if the answer is
  now earlier or later).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from harness.client import SessionSpec
from harness.metrics import turns_from_trace
from harness.replay.bundle import BundleError, corpus_dir
from harness.replay.schedule import play_schedule
from harness.scenarios import run_each, run_sessions
from harness.trace import read_trace


def load_bundle(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a repro bundle (no readable bundle.json: {exc}); "
                          "pass a folder from a run's incidents/") from None


ANCHORS = ("events", "session")


def _schedule_traces(bundle_dir: Path, specs: list[SessionSpec]) -> list[Path]:
    if not (bundle_dir / "audio.bin").is_file():
        raise BundleError(f"{bundle_dir}: no audio.bin (its audio could not be rebuilt from the corpus); "
                          "replay it with --anchor events")
    paths = run_each(specs, lambda spec: play_schedule(bundle_dir, spec))
    return [path if path is not None else spec.trace_path() for path, spec in zip(paths, specs)]


def replay(bundle: dict[str, Any], url: str, repeat: int = 1, rtf: float | None = None,
           dialect: str | None = None, fmt: str | None = None, trace_dir: Path | None = None,
           anchor: str = "events", bundle_dir: Path | None = None) -> dict[str, Any]:
    if anchor not in ANCHORS:
        raise BundleError(f"--anchor {anchor!r}: use events (re-run the scenario) or session (recorded offsets)")
    params = dict(bundle.get("scenario_params") or {})
    if bundle.get("utterances"):
        params["utterances"] = bundle["utterances"]
    trace_dir = trace_dir or Path(tempfile.mkdtemp(prefix="harness-replay-"))
    specs = [SessionSpec(url=url, dialect=dialect or bundle["dialect"], fmt=fmt or bundle["format"],
                         scenario=bundle["scenario"], scenario_params=params,
                         corpus=str(corpus_dir(str(bundle.get("corpus") or "default"))),
                         chunk_ms=float(bundle["chunk_ms"]), rtf=float(rtf or bundle.get("rtf") or 1.0),
                         turns=max(1, len(bundle.get("utterances") or [])), run_id="replay",
                         session_id=f"replay-{i}", trace_dir=trace_dir)
             for i in range(repeat)]
    if anchor == "session":
        if bundle_dir is None:
            raise BundleError("a session-anchored replay needs the bundle folder (its audio.bin)")
        traces = _schedule_traces(Path(bundle_dir), specs)
    else:
        traces = [result.trace_path for result in run_sessions(specs)]
    wanted = bundle["incident"]
    runs = []
    for trace_path in traces:
        rows = turns_from_trace(read_trace(trace_path))
        row = next((r for r in rows if r["turn"] == wanted.get("turn")), None)
        runs.append({"trace": str(trace_path), "incident": row.get("incident") if row else None,
                     "ttfa_ms": row.get("ttfa_ms") if row else None,
                     "cut_ms": ((row or {}).get("incident_evidence") or {}).get("cut_ms")})
    recurred = sum(1 for r in runs if r["incident"] == wanted.get("incident"))
    return {"cause": wanted.get("incident"), "repeat": repeat, "recurred": recurred, "runs": runs, "anchor": anchor,
            "original": {"ttfa_ms": wanted.get("ttfa_ms"),
                         "cut_ms": (wanted.get("incident_evidence") or {}).get("cut_ms")}}
