"""Re-drive a bundled session against a target and tell whether its incident comes back.

The replay rebuilds the caller from the bundle: the same session settings, scenario and
parameters, the same utterances in the same order, the same chunking and real-time factor, so
the same audio goes out at the same pacing and the scenario makes the same client decisions
(cancel, truncate, tool outputs) on the same server events (anchored on events, not on clock
offsets). The bundle's `client_events` keep the original schedule for comparison.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from harness.client import SessionSpec
from harness.metrics import turns_from_trace
from harness.replay.bundle import BundleError, corpus_dir
from harness.scenarios import run_sessions
from harness.trace import read_trace


def load_bundle(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not a repro bundle (no readable bundle.json: {exc}); "
                          "pass a folder from a run's incidents/") from None


def replay(bundle: dict[str, Any], url: str, repeat: int = 1, rtf: float | None = None,
           dialect: str | None = None, fmt: str | None = None, trace_dir: Path | None = None) -> dict[str, Any]:
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
    results = run_sessions(specs)
    wanted = bundle["incident"]
    runs = []
    for result in results:
        rows = turns_from_trace(read_trace(result.trace_path))
        row = next((r for r in rows if r["turn"] == wanted.get("turn")), None)
        runs.append({"trace": str(result.trace_path), "incident": row.get("incident") if row else None,
                     "ttfa_ms": row.get("ttfa_ms") if row else None,
                     "cut_ms": ((row or {}).get("incident_evidence") or {}).get("cut_ms")})
    recurred = sum(1 for r in runs if r["incident"] == wanted.get("incident"))
    return {"cause": wanted.get("incident"), "repeat": repeat, "recurred": recurred, "runs": runs,
            "original": {"ttfa_ms": wanted.get("ttfa_ms"),
                         "cut_ms": (wanted.get("incident_evidence") or {}).get("cut_ms")}}
