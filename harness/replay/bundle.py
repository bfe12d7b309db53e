"""Repro bundles: everything needed to see one session's incident again, in one folder.

A bundle holds the session trace (`trace.jsonl.gz`), the exact audio the caller sent (wire format,
send order; rebuilt from the corpus with the caller's own clip functions and checked chunk by
chunk against the sha1 of every append in the trace; `audio.flac`, lossless, for pcm16, else
`audio.bin`, see `bundle_files`), the session settings and scenario, the client-event schedule
(each client event's offset from the session start and from the server event it followed), a
short human summary and the timeline of the incident's turn.
"""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

from harness.client.clips import noise_clip, silence_clip, utterance_clip
from harness.corpus import SHIPPED_CORPORA_DIR, CorpusError, load_corpus
from harness.metrics import turns_from_trace
from harness.protocol import AudioFormat, Dialect
from harness.replay.bundle_files import write_audio, write_trace
from harness.trace import Trace, iter_trace_files, read_header, read_trace, redact_url
from harness.trace.vocabulary import Mark


class BundleError(ValueError):
    user_error = True


BUNDLE_SCHEMA = 1


def corpus_dir(name: str, recorded_path: str | None = None) -> Path:
    """The corpus folder a run used, wherever this process was started.

    `recorded_path` is the absolute path the run recorded (`run.json` / `bundle.json`
    `corpus_path`); it wins when it still holds a manifest. Otherwise `name` is tried as a
    folder, then against the repository (`corpora/default` from any directory), then as the
    bare name of a shipped corpus (`default`). Never resolved against the current directory
    alone: a run started from /tmp must find the same corpus as one started from the repository.
    """
    candidates = [Path(recorded_path)] if recorded_path else []
    given = Path(name)
    candidates.append(given)
    if not given.is_absolute():
        candidates += [SHIPPED_CORPORA_DIR.parent / given, SHIPPED_CORPORA_DIR / given]
    for candidate in candidates:
        if (candidate / "manifest.json").is_file():
            return candidate.resolve()
    where = f" (the run used {recorded_path})" if recorded_path else ""
    raise CorpusError(f"corpus {name!r} not found{where}")


def run_corpus_path(run_dir: Path) -> str | None:
    """The absolute corpus path `run.json` recorded (None for runs that did not record it)."""
    try:
        run = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = run.get("corpus_path") if isinstance(run, dict) else None
    return str(value) if value else None


def _chunks_by_sha1(trace: Trace, corpus_path: str | None = None) -> dict[str, bytes]:
    """Every chunk the caller could have sent in this session, by the sha1 the trace records."""
    header = trace.header
    fmt, dialect, chunk_ms = AudioFormat(header["format"]), Dialect(header["dialect"]), float(header["chunk_ms"])
    clips = [silence_clip(fmt, chunk_ms, dialect)]
    corpus = load_corpus(corpus_dir(str(header.get("corpus") or "default"), corpus_path))
    ids = {m.get("utterance") for m in trace.records if m.get("mark") == Mark.TURN_START}
    for utterance in corpus.utterances:
        if utterance.id in ids:
            clips.append(utterance_clip(utterance, fmt, chunk_ms, dialect))
    params = header.get("scenario_params") or {}
    if header.get("scenario") in ("noisy_playback", "silence") and (params.get("noise") or header["scenario"] == "noisy_playback"):
        noise_corpus = load_corpus(corpus_dir("noise"))   # shipped, like the callers' default
        name = params.get("noise", "babble")
        match = [u for u in noise_corpus.utterances if u.id.endswith(name)]
        if match:
            clips.append(noise_clip(match[0], fmt, chunk_ms, dialect, float(params.get("noise_dbfs", -30))))
    table: dict[str, bytes] = {}
    for clip in clips:
        for sha1, message in zip(clip.sha1, clip.messages):
            table.setdefault(sha1, base64.b64decode(json.loads(message)["audio"]))
    return table


def sent_audio(trace: Trace, corpus_path: str | None = None) -> tuple[bytes | None, str]:
    """The caller's audio in send order, or None with the reason when a chunk cannot be rebuilt
    (a chunk matches nothing, or the corpus is gone)."""
    try:
        table = _chunks_by_sha1(trace, corpus_path)
    except CorpusError as exc:
        return None, (f"not rebuilt: {exc}; put the corpus back and rewrite the bundles with "
                      "`harness replay --bundle-run RUN_DIR`")
    out = bytearray()
    for record in trace.records:
        if record.get("rec") != "append":
            continue
        chunk = table.get(record.get("sha1"))
        if chunk is None:
            return None, f"append {record.get('seq')} (sha1 {record.get('sha1')}) matches no corpus chunk"
        out += chunk
    return bytes(out), "verified against every append's sha1"


def client_schedule(trace: Trace) -> list[dict[str, Any]]:
    """Every client event but the appends, with its offsets from the session and from the
    server event it followed."""
    start = trace.records[0]["t_ns"] if trace.records else 0
    last_recv: dict[str, Any] | None = None
    schedule = []
    for record in trace.records:
        if record.get("rec") == "recv":
            last_recv = record
        elif record.get("rec") == "send" and record.get("type") != "input_audio_buffer.append":
            schedule.append({
                "type": record.get("type"), "at_ms": (record["t_ns"] - start) / 1e6,
                "after": last_recv.get("type") if last_recv else None,
                "after_ms": (record["t_ns"] - last_recv["t_ns"]) / 1e6 if last_recv else None,
                "event": record.get("event"),
            })
    return schedule


def write_bundle(out_dir: Path, trace_path: Path, record: dict[str, Any] | None = None,
                 corpus_path: str | None = None) -> Path:
    """One bundle in `out_dir`; `corpus_path` is the absolute corpus folder the run recorded
    (the trace header only names the corpus)."""
    trace = read_trace(trace_path)
    header = trace.header
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle_trace = write_trace(out_dir, trace_path)
    audio, audio_note = sent_audio(trace, corpus_path)
    if corpus_path is None:
        with contextlib.suppress(CorpusError):
            corpus_path = str(corpus_dir(str(header.get("corpus") or "default")))
    audio_entry: dict[str, Any] = {"file": None, "bytes": 0}
    if audio is not None:
        audio_entry = write_audio(out_dir, audio, AudioFormat(header["format"]))
    config = next((r["event"].get("session") for r in trace.records
                   if r.get("rec") == "send" and r.get("type") == "session.update"), None)
    bundle = {
        "schema": BUNDLE_SCHEMA, "session_id": header.get("session_id"), "run_id": header.get("run_id"),
        "target": redact_url(str(header.get("target", ""))), "dialect": header.get("dialect"),
        "format": header.get("format"), "corpus": header.get("corpus"), "corpus_path": corpus_path, "chunk_ms": header.get("chunk_ms"),
        "rtf": header.get("rtf"), "scenario": header.get("scenario"), "scenario_params": header.get("scenario_params"),
        "utterances": [m.get("utterance") for m in trace.records if m.get("mark") == Mark.TURN_START],
        "session_update": config, "audio": {**audio_entry, "note": audio_note},
        "incident": {k: (record or {}).get(k) for k in ("turn", "incident", "incident_evidence", "ttfa_ms",
                                                         "response_id", "response_status", "response_reason")},
        "client_events": client_schedule(trace),
    }
    (out_dir / "bundle.json").write_text(json.dumps(bundle, indent=2, default=str), encoding="utf-8")
    incident = bundle["incident"]
    (out_dir / "summary.txt").write_text(
        f"session {bundle['session_id']} turn {incident.get('turn')}: {incident.get('incident') or 'no incident'}\n"
        f"scenario {bundle['scenario']} {bundle['dialect']} {bundle['format']} target {bundle['target']}\n"
        f"response {incident.get('response_id')} {incident.get('response_status')} {incident.get('response_reason')}\n"
        f"evidence: {json.dumps(incident.get('incident_evidence'), default=str)}\n"
        f"audio: {audio_note}\nreplay: harness replay {out_dir} --repeat 10\n", encoding="utf-8")
    try:
        from harness.report import render_session_timeline

        turn = (record or {}).get("turn")   # the incident's events; `--timeline-only` draws the whole session
        render_session_timeline(bundle_trace, out_dir / "timeline.html", turn=None if turn is None else int(turn))
    except Exception as exc:  # noqa: BLE001 - a bundle without its picture is still a bundle
        (out_dir / "timeline.error.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
    return out_dir


BUNDLES_PER_CAUSE = 20   # a bundle is 0.3-0.5 MB (pcm16 FLAC, compressed trace); a few per cause explain it


def write_incident_bundles(run_dir: Path, records: list[dict[str, Any]] | None = None,
                           per_cause: int | None = BUNDLES_PER_CAUSE, errors: list[str] | None = None) -> list[Path]:
    """Bundles for the run's incidents, in `incidents/<session>-<turn>/`: the first `per_cause`
    of each cause in trace order (None: every incident).

    With the run's turn `records` (already measured), only the traces of sessions with an
    incident are read; without them every trace is measured again. The corpus is the absolute
    path `run.json` recorded, so a run started from any directory bundles its audio. A bundle
    that cannot be written is skipped (its folder gets `bundle.error.txt`, `errors` the line).
    """
    corpus_path = run_corpus_path(run_dir)
    wanted: dict[str, list[dict[str, Any]]] | None = None
    if records is not None:
        wanted = {}
        for record in records:
            if record.get("incident"):
                wanted.setdefault(str(record.get("session_id")), []).append(record)
    written: list[Path] = []
    per: dict[str, int] = {}
    for trace_path in iter_trace_files(run_dir / "traces"):
        if wanted is not None:
            header = read_header(trace_path)
            rows = wanted.get(str((header or {}).get("session_id")), [])
        else:
            rows = [r for r in turns_from_trace(read_trace(trace_path)) if r.get("incident")]
        for record in rows:
            cause = str(record["incident"])
            if per_cause is not None and per.get(cause, 0) >= per_cause:
                continue
            per[cause] = per.get(cause, 0) + 1
            name = f"{record['session_id']}-{record['turn']}"
            try:
                written.append(write_bundle(run_dir / "incidents" / name, trace_path, record, corpus_path))
            except Exception as exc:  # noqa: BLE001 - one bad bundle must not cost the others
                line = f"{name}: {type(exc).__name__}: {exc}"
                with contextlib.suppress(OSError):
                    (run_dir / "incidents" / name).mkdir(parents=True, exist_ok=True)
                    (run_dir / "incidents" / name / "bundle.error.txt").write_text(line + "\n", encoding="utf-8")
                if errors is not None:
                    errors.append(line)
    return written
