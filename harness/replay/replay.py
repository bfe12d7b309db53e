"""Re-drive a bundled session against a target and tell whether its incident comes back.

Two anchors (README, "Reproduce an incident"):

- `events` (default): the caller is rebuilt from the bundle: the same session settings,
  scenario and parameters, the same utterances in the same order, the same chunking and
  real-time factor, so the same audio goes out at the same pacing and the scenario makes the
  same client decisions (cancel, truncate, tool outputs) on the new session's server events.
  Use it to ask "does this target still do that to this caller?".
- `session`: `schedule.play_schedule` sends the bundle's audio and every recorded client event at
  its original offset from the stream start, whatever the server does. Use it to ask "what does the
  target do with exactly this input?" (a cancel lands at the same instant even if the answer is
  now earlier or later).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from harness.client import SessionSpec
from harness.corpus import SHIPPED_CORPORA_DIR, CorpusError
from harness.metrics import turns_from_trace
from harness.protocol import AudioFormat, Dialect
from harness.replay.bundle import BUNDLE_SCHEMA, BundleError, corpus_dir
from harness.replay.bundle_files import bundle_trace, has_audio
from harness.replay.convert import replay_session_config
from harness.replay.outcome import explain
from harness.replay.schedule import play_schedule
from harness.scenarios import SCENARIOS, run_each, run_sessions
from harness.trace import TraceFormatError, read_trace

FIX = "pass a folder from a run's incidents/ (reports/RUN/incidents/SESSION-TURN)"


def _bad(path: Path, problem: str, fix: str = FIX) -> BundleError:
    return BundleError(f"{path}: not a repro bundle ({problem}); {fix}")


def _check_bundle(path: Path, bundle: Any) -> dict[str, Any]:
    """The fields a replay relies on, each of the right kind; BundleError (one line) otherwise."""
    if not isinstance(bundle, dict):
        raise _bad(path, f"bundle.json holds a JSON {type(bundle).__name__}, not an object")
    schema = bundle.get("schema", BUNDLE_SCHEMA)
    if schema != BUNDLE_SCHEMA:
        raise _bad(path, f"bundle.json schema {schema!r}, this harness reads {BUNDLE_SCHEMA}",
                   "rewrite it with `harness replay --bundle-run RUN_DIR` from this version")
    checks = {
        "dialect": lambda v: v in {d.value for d in Dialect},
        "format": lambda v: v in {f.value for f in AudioFormat},
        "scenario": lambda v: v in SCENARIOS,
        "chunk_ms": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "incident": lambda v: isinstance(v, dict),
    }
    optional = {
        "rtf": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        "utterances": lambda v: isinstance(v, list) and all(isinstance(u, str) for u in v),
        "scenario_params": lambda v: isinstance(v, dict),
        "session_update": lambda v: isinstance(v, dict),
        "corpus": lambda v: isinstance(v, str),
        "corpus_path": lambda v: isinstance(v, str),
    }
    for key, ok in checks.items():
        if key not in bundle:
            raise _bad(path, f"bundle.json has no {key!r}")
        if not ok(bundle[key]):
            raise _bad(path, f"bundle.json {key!r} is {bundle[key]!r}")
    for key, ok in optional.items():
        if bundle.get(key) is not None and not ok(bundle[key]):
            raise _bad(path, f"bundle.json {key!r} is {bundle[key]!r}")
    return bundle


def load_bundle(path: Path) -> dict[str, Any]:
    """The bundle's `bundle.json`, checked; BundleError (one line naming the problem and the fix)
    for a path that is missing, a file, a folder without bundle.json, not JSON or the wrong shape."""
    path = Path(path)
    if path.is_file() and path.name == "bundle.json":
        path = path.parent
    if not path.exists():
        raise _bad(path, "no such folder")
    if not path.is_dir():
        raise _bad(path, "a file, not a bundle folder")
    file = path / "bundle.json"
    if not file.is_file():
        if bundle_trace(path) is not None:
            raise _bad(path, "no bundle.json, only a trace: the bundle was never finished",
                       "rewrite the run's bundles with `harness replay --bundle-run RUN_DIR`")
        raise _bad(path, "no bundle.json")
    try:
        bundle = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _bad(path, f"bundle.json cannot be read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise _bad(path, f"bundle.json is not JSON{where}") from None
    return _check_bundle(path, bundle)


ANCHORS = ("events", "session")


def _schedule_traces(bundle_dir: Path, specs: list[SessionSpec]) -> list[Path]:
    if not has_audio(bundle_dir):
        raise BundleError(f"{bundle_dir}: no audio.flac or audio.bin (its audio could not be rebuilt from the "
                          "corpus); replay it with --anchor events")
    if bundle_trace(bundle_dir) is None:
        raise _bad(bundle_dir, "no trace.jsonl.gz, which a session-anchored replay plays back",
                   "replay it with --anchor events")
    paths = run_each(specs, lambda spec: play_schedule(bundle_dir, spec))
    return [path if path is not None else spec.trace_path() for path, spec in zip(paths, specs)]


def replay(bundle: dict[str, Any], url: str, repeat: int = 1, rtf: float | None = None,
           dialect: str | None = None, fmt: str | None = None, trace_dir: Path | None = None,
           anchor: str = "events", bundle_dir: Path | None = None, auth: str = "bearer",
           api_key_env: str = "OPENAI_API_KEY", turn_timeout_s: float | None = None,
           corpus: str | None = None) -> dict[str, Any]:
    """Replay the bundle `repeat` times at once against `url`; the outcome of every replay, why
    it did or did not reproduce (`runs[i]["why"]`), and where the traces are (`trace_dir`).

    The session settings are the bundle's own (`session_update`), converted to `dialect`/`fmt`
    when those differ, with a line in `notes` for each field that had to change. The events
    anchor speaks the utterances from the corpus (`corpus`, else the one the run recorded); the
    session anchor sends the bundle's audio and needs none.
    """
    if anchor not in ANCHORS:
        raise BundleError(f"--anchor {anchor!r}: use events (re-run the scenario) or session (recorded offsets)")
    params = dict(bundle.get("scenario_params") or {})
    if bundle.get("utterances"):
        params["utterances"] = bundle["utterances"]
    trace_dir = Path(trace_dir) if trace_dir is not None else Path(tempfile.mkdtemp(prefix="harness-replay-"))
    trace_dir.mkdir(parents=True, exist_ok=True)
    dialect, fmt = dialect or bundle["dialect"], fmt or bundle["format"]
    config, notes = replay_session_config(bundle.get("session_update"), bundle["dialect"], dialect, fmt)
    if anchor == "events":
        try:
            folder = str(corpus_dir(corpus, None) if corpus else corpus_dir(str(bundle.get("corpus") or "default"),
                                                                             bundle.get("corpus_path")))
        except CorpusError as exc:
            raise CorpusError(f"{exc}; copy it back there, or replay with --corpus DIR, or with --anchor session "
                              "(which sends the bundle's audio)") from None
    else:
        folder = str(bundle.get("corpus_path") or bundle.get("corpus") or "default")   # not read
    specs = [SessionSpec(url=url, dialect=dialect, fmt=fmt, scenario=bundle["scenario"], scenario_params=params,
                         corpus=folder, noise_corpus=str(SHIPPED_CORPORA_DIR / "noise"),
                         session_config=config, auth=auth, api_key_env=api_key_env,
                         chunk_ms=float(bundle["chunk_ms"]), rtf=float(rtf or bundle.get("rtf") or 1.0),
                         turn_timeout_s=float(turn_timeout_s or 15.0),
                         turns=max(1, len(bundle.get("utterances") or [])), run_id="replay",
                         session_id=f"replay-{i}", trace_dir=trace_dir)
             for i in range(repeat)]
    for spec in specs:
        spec.check()   # a bad setting fails here, in one line, before any thread starts
    if anchor == "session":
        if bundle_dir is None:
            raise BundleError("a session-anchored replay needs the bundle folder (its audio)")
        traces = _schedule_traces(Path(bundle_dir), specs)
    else:
        traces = [result.trace_path for result in run_sessions(specs)]
    wanted = bundle["incident"]
    runs = []
    for trace_path in traces:
        try:
            trace = read_trace(trace_path)
        except TraceFormatError as exc:
            runs.append({"trace": str(trace_path), "reproduced": False, "incident": None, "status": None,
                         "ttfa_ms": None, "cut_ms": None, "why": f"no trace was written ({exc})"})
            continue
        runs.append({"trace": str(trace_path), **explain(trace, turns_from_trace(trace), wanted, specs[0].turn_timeout_s)})
    recurred = sum(1 for r in runs if r["reproduced"])
    return {"cause": wanted.get("incident"), "turn": wanted.get("turn"), "repeat": repeat, "recurred": recurred,
            "runs": runs, "anchor": anchor, "dialect": dialect, "format": fmt, "notes": notes,
            "trace_dir": str(trace_dir),
            "original": {"ttfa_ms": wanted.get("ttfa_ms"),
                         "cut_ms": (wanted.get("incident_evidence") or {}).get("cut_ms")}}
